r"""The ``alert`` measurement: one InfluxDB point per alert transition.

Schema (docs/ARCHITECTURE.md, storage): tags ``enterprise``, ``site``, ``sensor``,
``rule``, ``level`` (empty tags are left out); fields ``state``, ``action``, ``value``,
``message``, ``id`` and ``alert_level``. ``level`` is the level the alarm stands at after
the transition: ``none`` once it is resolved or closed, so ``WHERE level = 'red'`` never
counts an alarm that has ended; ``alert_level`` keeps the alert's own level for the record.
The point's time is the reading that caused the transition (the
operator's action time for operator transitions) plus the transition's sequence number
modulo 1000 in ns, so two transitions of one alert caused by the same reading stay two
points (Grafana cannot see the nanoseconds). A non-finite value is written as 0.

This module knows nothing of alerts: :mod:`riskwatch.alerts.points` turns the alert
sink's transitions into :class:`AlertPoint` s.

>>> p = AlertPoint(enterprise="m1", site="f1", sensor="S1", rule="ch4 face", level="orange",
...                state="firing", action="firing", value=1.1, message="CH4 high", id="a1",
...                time_ns=6)
>>> print(alert_lines([p])[0].replace(" state", "\n state"))
alert,enterprise=m1,level=orange,rule=ch4\ face,sensor=S1,site=f1
 state="firing",action="firing",value=1.1,message="CH4 high",id="a1",alert_level="orange" 6
>>> from dataclasses import replace
>>> print(alert_lines([replace(p, state="resolved", action="resolved")])[0].split(" state")[0])
alert,enterprise=m1,level=none,rule=ch4\ face,sensor=S1,site=f1
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from riskwatch.storage.lineproto import escape_field_string, escape_tag

__all__ = ["ENDED_STATES", "AlertPoint", "alert_lines"]

#: alert states (their text) after which the alarm no longer stands: level tag ``none``
ENDED_STATES = frozenset({"resolved", "closed"})


@dataclass(frozen=True, slots=True)
class AlertPoint:
    """One point of the ``alert`` measurement, in plain fields."""

    enterprise: str
    site: str
    sensor: str
    rule: str
    level: str
    state: str
    action: str
    value: float
    message: str
    id: str
    time_ns: int


def alert_lines(points: Iterable[AlertPoint]) -> list[str]:
    """Line protocol of each point (one line per point, in order)."""
    out = []
    for p in points:
        level = "none" if p.state in ENDED_STATES else p.level
        tags = {"enterprise": p.enterprise, "site": p.site, "sensor": p.sensor, "rule": p.rule,
                "level": level}  # fmt: skip
        tagstr = ",".join(f"{k}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
        v = p.value if math.isfinite(p.value) else 0.0
        out.append(
            f"alert,{tagstr} state={escape_field_string(p.state)},"
            f"action={escape_field_string(p.action)},value={float(v)!r},"
            f"message={escape_field_string(p.message)},id={escape_field_string(p.id)},"
            f"alert_level={escape_field_string(p.level)} {p.time_ns}"
        )
    return out
