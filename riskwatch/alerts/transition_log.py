"""Every alert transition in the engine's log, so that ``riskwatch run`` says what it raised.

:func:`log_listener` is a transition listener for the alert sink (wired by the engine, as
the storage listener is): one line per stored transition, WARNING for a red alarm firing
or escalating, INFO otherwise. An alert storm must not drown the log: at most ``per_batch``
lines per stored batch, then one line saying how many more (they are all in the store, on
MQTT and in InfluxDB).

>>> import logging, sys
>>> from riskwatch.alerts.state import Alert, AlertState, Transition
>>> logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s", force=True)
>>> a = Alert("a1", "k", "ch4_face", "m1", "f1", "S1", None, "ch4", "rule",
...           AlertState.FIRING, True, False, 1, 1, 1.6, 1.5, "CH4 1.6 % at the face", 0, 5, 5)
>>> t = Transition("a1:1", "a1", 1, 7, 5, "engine", "firing", None, "firing", 1, 1.6, None)
>>> log_listener(logging.getLogger("demo"))([(a, t)])
WARNING alert a1 ch4_face m1/f1/S1: firing red (firing) value 1.6: CH4 1.6 % at the face
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from riskwatch.alerts.state import Alert, Transition
from riskwatch.model import Level

__all__ = ["log_listener"]

_ESCALATING = frozenset(("firing", "level", "escalate"))


def log_listener(
    logger: logging.Logger, per_batch: int = 20
) -> Callable[[Sequence[tuple[Alert, Transition]]], None]:
    """A transition listener that logs each stored transition (``per_batch`` at most)."""

    def write(items: Sequence[tuple[Alert, Transition]]) -> None:
        for a, t in items[:per_batch]:
            level = t.level or a.level
            colour = Level(level).colour if level else ""
            red = level == Level.RED and t.action in _ESCALATING
            subject = a.sensor or a.group or ""
            logger.log(
                logging.WARNING if red else logging.INFO,
                "alert %s %s %s/%s/%s: %s%s (%s)%s%s: %s", a.id, a.rule, a.enterprise, a.site,
                subject, t.to_state, f" {colour}" if colour else "", t.action,
                f" value {t.value:g}" if t.value is not None else "",
                f" by {t.who}" if t.who and t.who != "engine" else "",
                a.message if not t.note else f"{a.message} ({t.note})",
            )  # fmt: skip
        if len(items) > per_batch:
            logger.info("… and %d more alert transitions in this batch (all stored and "
                        "notified)", len(items) - per_batch)  # fmt: skip

    return write
