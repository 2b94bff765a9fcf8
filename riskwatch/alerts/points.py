"""Alert transitions as points of the ``alert`` measurement in InfluxDB.

:func:`storage_listener` is a transition listener for the alert sink: every stored batch
of transitions goes to the engine's storage runner as line protocol
(:mod:`riskwatch.storage.alert_points` owns the schema).

>>> from riskwatch.alerts.state import Alert, AlertState, Transition
>>> a = Alert("a1", "k", "ch4 face", "m1", "f1", "S1", None, "ch4", "rule",
...           AlertState.FIRING, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> t = Transition("a1:1", "a1", 1, 7, 5, "engine", "firing", None, "firing", 2, 1.1, None)
>>> p = to_point(a, t)
>>> (p.level, p.sensor, p.message, p.time_ns)
('orange', 'S1', 'CH4 high', 6)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from riskwatch.alerts.state import Alert, Transition
from riskwatch.model import Level
from riskwatch.storage.alert_points import AlertPoint, alert_lines

__all__ = ["LineSubmitter", "storage_listener", "to_point"]


class LineSubmitter(Protocol):
    """Where line protocol goes (the engine's :class:`~riskwatch.storage.runner.StorageRunner`)."""

    def submit_lines(self, body: bytes, n_points: int) -> None: ...


def _colour(level: int | None) -> str:
    return Level(level).colour if level else ""


def to_point(a: Alert, t: Transition) -> AlertPoint:
    """The point of one transition: the transition's level (else the alert's), the note
    appended to the message, time = reading time + sequence number mod 1000 ns."""
    return AlertPoint(
        enterprise=a.enterprise, site=a.site, sensor=a.sensor or (a.group or ""), rule=a.rule,
        level=_colour(t.level) or _colour(a.level), state=t.to_state, action=t.action,
        value=t.value, message=a.message if not t.note else f"{a.message} ({t.note})", id=a.id,
        time_ns=t.ts_ns + t.seq % 1000,
    )  # fmt: skip


def storage_listener(
    storage: LineSubmitter,
) -> Callable[[Sequence[tuple[Alert, Transition]]], None]:
    """A transition listener writing each stored batch as ``alert`` points."""

    def write(items: Sequence[tuple[Alert, Transition]]) -> None:
        lines = alert_lines(to_point(a, t) for a, t in items)
        if lines:
            storage.submit_lines("\n".join(lines).encode(), len(lines))

    return write
