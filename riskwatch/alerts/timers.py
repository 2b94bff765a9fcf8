"""What is due for an alert when no signal comes: pure functions of (alert, now, policy).

The engine calls the sink's ``tick`` with its ``now``; for every open alert the sink asks
:func:`due`, which returns a :class:`~riskwatch.alerts.records.Step` (the alert after the
timer and what to record) or None. At most one timer fires per alert and tick, in this
order:

1. a shelved or out-of-service alert whose time is up returns (``unshelve`` /
   ``return_to_service`` by ``system``, note "time is up"); while hidden nothing else runs;
2. a flapping alert whose activations within the window fell to ``low`` settles
   (``settled``); the activations that left the window are forgotten on every tick;
3. a firing (unacknowledged) alert escalates to the next tier after tier+1 times its
   level's limit since it fired, up to ``max_tier`` (``escalate``);
4. otherwise, it is notified again every ``repeat_interval_s`` (``repeat``);
5. an alert whose last change was muted by a silence or an inhibition offers ``unmuted``,
   recorded only once nothing mutes it any more.

:class:`Cadence` paces the sink's slower chores (retention hourly, the health snapshot
every 10 s of engine time).

>>> from riskwatch.alerts.state import Alert, AlertState
>>> from riskwatch.alerts.stages.flapping import Flapping
>>> policy = TimerPolicy({2: 60 * S}, max_tier=2, repeat_ns=3600 * S,
...                      flapping=Flapping(600 * S, 6, 2))
>>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule", AlertState.FIRING,
...           True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 0, 0, fired_ns=0, last_notified_ns=0)
>>> due(a, 59 * S, policy) is None
True
>>> step = due(a, 60 * S, policy)
>>> step.alert.tier, [(str(r.action), r.note) for r in step.records]
(1, [('escalate', 'unacknowledged for 60 s; tier 1')])
>>> [str(r.action) for r in due(step.alert, 3600 * S, policy).records]
['escalate']
>>> a.tier
0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from riskwatch.alerts.operator import operate
from riskwatch.alerts.records import Action, Record, Step
from riskwatch.alerts.stages.flapping import Flapping
from riskwatch.alerts.state import HIDDEN_STATES, Alert, AlertState, Event
from riskwatch.config.alerts import AlertsConfig
from riskwatch.model import Level

__all__ = ["Cadence", "TimerPolicy", "due"]

S = 1_000_000_000
TIME_IS_UP = "time is up"


@dataclass(frozen=True, slots=True)
class TimerPolicy:
    """The timers' settings in ns: escalation limit per level (``Level`` as int), the
    highest tier, the repeat interval, and the flapping window."""

    escalate_ns: Mapping[int, int]
    max_tier: int
    repeat_ns: int
    flapping: Flapping

    @classmethod
    def from_config(cls, cfg: AlertsConfig) -> TimerPolicy:
        """>>> p = TimerPolicy.from_config(AlertsConfig())
        >>> p.escalate_ns[int(Level.RED)] // S, p.max_tier, p.repeat_ns // S, p.flapping.high
        (300, 3, 3600, 6)
        """
        return cls(
            escalate_ns={int(Level.from_name(k)): int(v * S)
                         for k, v in cfg.escalate_after_s.items()},
            max_tier=cfg.max_tier,
            repeat_ns=int(cfg.repeat_interval_s * S),
            flapping=Flapping(int(cfg.flapping.window_s * S), cfg.flapping.high,
                              cfg.flapping.low),
        )  # fmt: skip


def due(alert: Alert, now: int, policy: TimerPolicy) -> Step | None:
    """The timer step of ``alert`` at ``now``, or None. ``alert`` is not changed; a step
    without records only forgets flapping activations that left the window."""
    state = alert.state
    if state in HIDDEN_STATES and alert.shelved_until_ns:
        if now < alert.shelved_until_ns:
            return None
        event = Event.UNSHELVE if state is AlertState.SHELVED else Event.RETURN_TO_SERVICE
        return operate(alert, event, now, who="system", note=TIME_IS_UP)
    a = alert
    if a.flapping and a.flap_times is not None:
        kept, settled = policy.flapping.settle(a.flap_times, now)
        if kept is not a.flap_times or settled:
            a = a.copy()
            a.flap_times = kept
        if settled:
            a.flapping = False
            return Step(a, (Record(Action.SETTLED, state, a.level, a.value),))
    if state is AlertState.FIRING and a.level is not None and a.fired_ns is not None:
        limit = policy.escalate_ns.get(a.level)
        if limit and a.tier < policy.max_tier and now - a.fired_ns >= limit * (a.tier + 1):
            fired = a.fired_ns
            a = a.copy() if a is alert else a
            a.tier += 1
            note = f"unacknowledged for {(now - fired) / S:.0f} s; tier {a.tier}"
            return Step(a, (Record(Action.ESCALATE, state, a.level, a.value, note=note),))
        if a.last_notified_ns is not None and now - a.last_notified_ns >= policy.repeat_ns:
            return Step(a, (Record(Action.REPEAT, state, a.level, a.value),))
    if a.undelivered:
        return Step(a, (Record(Action.UNMUTED, state, a.level, a.value, if_unmuted=True),))
    return None if a is alert else Step(a)


class Cadence:
    """Due once every ``period_ns`` of engine time (the first time when ``now`` is at
    least one period past 0).

    >>> hourly = Cadence(3600 * S)
    >>> [hourly.due(t * S) for t in (3600, 3700, 7199, 7200)]
    [True, False, False, True]
    """

    def __init__(self, period_ns: int) -> None:
        self.period_ns = period_ns
        self._last = 0

    def due(self, now: int) -> bool:
        if now - self._last < self.period_ns:
            return False
        self._last = now
        return True
