"""Apply one rule or detector signal to its alert: a pure step.

:func:`apply` is the heart of the sink's ``handle``. Given the open alert of the signal's
key (or None), the signal and the engine's ``now``, it returns what happened
(:class:`~riskwatch.alerts.records.Outcome`) and, unless nothing changed, a
:class:`~riskwatch.alerts.records.Step`: the alert after the signal (a new object) and
the transitions to record. It stores nothing, notifies nothing, takes no lock and reads
no clock, so the same code runs live, in replay and in tests.

What it decides, in Prometheus' terms (``rules/alerting.go``):

- a signal with no open alert opens one (``since`` = now), unless it is ``resolved``
  (nothing to resolve: dedup); a ``firing`` one starts active (``fired`` = now);
- otherwise the state machine (:func:`riskwatch.alerts.state.transition`) moves the
  alert; a signal that changes neither state nor level is dedup;
- becoming active again restarts the escalation base and tier and counts one activation
  for flapping; reaching the flapping threshold records ``flapping`` right after;
- a pending alert that resolves is closed with the note "cleared while pending (never
  fired)";
- a ``resolved`` signal with a :class:`~riskwatch.model.EndReason` (a reload stopped
  watching the subject, see :func:`removed_rule_signal`) moves the alert exactly as a
  resolve does and records the reason on the transition, so the alert can be closed.

Signal states map to lifecycle events through one table, :data:`SIGNAL_EVENTS`.

>>> from riskwatch.model import Level, Signal
>>> from riskwatch.alerts.stages.flapping import Flapping
>>> subject = Subject("ch4|m1/f1/S1", {"enterprise": "m1", "site": "f1", "sensor": "S1",
...                                    "kind": "ch4"})
>>> flapping = Flapping(window_ns=600, high=2, low=0)
>>> def step(alert, state, level, now):
...     sig = Signal("ch4", 0, now, state, level, 1.2, 1.0, f"CH4 {state}")
...     return apply(alert, sig, SIGNAL_EVENTS[sig.state], now, subject=subject,
...                  new_id=lambda: "a1", flapping=flapping)
>>> outcome, opened = step(None, SignalState.FIRING, Level.ORANGE, 10)
>>> outcome, opened.alert.state.value, opened.alert.fired_ns
(<Outcome.NEW: 'new'>, 'firing', 10)
>>> [str(r.action) for r in opened.records]
['firing']
>>> step(opened.alert, SignalState.FIRING, Level.ORANGE, 20)
(<Outcome.DEDUP: 'dedup'>, None)
>>> _, louder = step(opened.alert, SignalState.FIRING, Level.RED, 30)
>>> [(str(r.action), r.level) for r in louder.records], louder.alert.max_level
([('level', 1)], 1)
>>> _, cleared = step(louder.alert, SignalState.RESOLVED, None, 40)
>>> cleared.alert.state.value, cleared.alert.level, opened.alert.level
('resolved', 1, 2)
>>> _, again = step(cleared.alert, SignalState.FIRING, Level.ORANGE, 50)
>>> [str(r.action) for r in again.records], again.alert.flapping, again.alert.flap_times
(['firing', 'flapping'], True, [10, 50])
>>> gone = removed_rule_signal(again.alert, 60)
>>> _, ended = apply(again.alert, gone, Event.RESOLVED, 60, subject=subject,
...                  new_id=lambda: "a2", flapping=flapping)
>>> ended.alert.state.value, [(str(r.action), r.who, r.note) for r in ended.records]
('resolved', [('resolved', 'reload', 'ended by a reload: rule_removed')])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from riskwatch.alerts.records import EVENT_ACTIONS, Action, Outcome, Record, Step
from riskwatch.alerts.stages.flapping import Flapping
from riskwatch.alerts.state import Alert, AlertState, Event, transition
from riskwatch.catalog import SensorRegistry
from riskwatch.model import EndReason, Signal, SignalSource, SignalState

__all__ = ["SIGNAL_EVENTS", "Subject", "apply", "removed_rule_signal", "subject_of"]

#: what each signal state from rules and detectors means to an alert
SIGNAL_EVENTS: Mapping[SignalState, Event] = MappingProxyType({
    SignalState.PENDING: Event.PENDING,
    SignalState.FIRING: Event.FIRING,
    SignalState.RESOLVED: Event.RESOLVED,
})  # fmt: skip

CLEARED_WHILE_PENDING = "cleared while pending (never fired)"
ENDED_WHILE_PENDING = "ended while pending (never fired): {reason}"
ENDED = "ended by a reload: {reason}"
#: who records an end with a reason: no reading, no operator, but a reload
BY_RELOAD = "reload"


class Subject(NamedTuple):
    """Whose alert a signal concerns: the alert key (one open alert per key) and the
    labels the alert copies."""

    key: str
    labels: Mapping[str, str]


def subject_of(s: Signal, registry: SensorRegistry) -> Subject:
    """Key ``rule|enterprise/site/sensor`` for a sensor signal, ``rule|group`` for a group
    signal (enterprise and site then come from ``extra`` or the group's path)."""
    if s.sensor >= 0:
        labels = {
            c: str(registry.column(c)[s.sensor]) for c in ("enterprise", "site", "sensor", "kind")
        }
    else:
        extra = s.extra or {}
        parts = (s.group or "").split("/")
        labels = {
            "enterprise": str(extra.get("enterprise", parts[0] if parts else "")),
            "site": str(extra.get("site", parts[1] if len(parts) > 1 else "")),
            "sensor": "", "kind": "",
        }  # fmt: skip
    if s.group:
        key = f"{s.rule}|{s.group}"
    else:
        key = f"{s.rule}|{labels['enterprise']}/{labels['site']}/{labels['sensor']}"
    return Subject(key, labels)


def apply(
    alert: Alert | None,
    s: Signal,
    event: Event,
    now: int,
    *,
    subject: Subject,
    new_id: Callable[[], str],
    flapping: Flapping,
) -> tuple[Outcome, Step | None]:
    """The signal ``s`` (meaning ``event``) applied at ``now`` to the open ``alert`` of its
    key. ``new_id`` is called once when an alert opens. ``alert`` is not changed."""
    level = int(s.level) if s.level is not None else None
    if alert is None:
        if event is Event.RESOLVED:
            return Outcome.DEDUP, None
        return Outcome.NEW, _open(s, event, level, now, subject, new_id(), flapping)
    old = alert.condition
    new = transition(old, event)
    level_change = event is Event.FIRING and level is not None and level != alert.level
    if new == old and not level_change:
        return Outcome.DEDUP, None
    a = alert.copy()
    a.state, a.active, a.acked = new.state, new.active, new.acked
    a.value, a.threshold, a.message, a.ts_ns, a.updated_ns = (
        s.value, s.threshold, s.message, s.time, now,
    )  # fmt: skip
    if level is not None:
        a.level = level
        a.max_level = min(a.max_level or level, level)
    activated = new.active and not old.active
    started_flapping = False
    if activated:
        a.fired_ns, a.tier = now, 0  # escalation counts from the new activation
        started_flapping = _activation(a, now, flapping)
    reason = s.reason if event is Event.RESOLVED else None
    if new.state is AlertState.CLOSED:
        a.closed_ns = now
        a.note = (
            CLEARED_WHILE_PENDING
            if reason is None
            else ENDED_WHILE_PENDING.format(reason=reason.value)
        )
    # a level change keeps the state; any other change (including one underneath a shelved
    # or out-of-service alert) records the event itself
    action = Action.LEVEL if new.state == old.state and level_change else EVENT_ACTIONS[event]
    note = a.note if new.state is AlertState.CLOSED else None
    who = "engine"
    if reason is not None:
        who, note = BY_RELOAD, note or ENDED.format(reason=reason.value)
    records = [Record(action, old.state, level, s.value, who=who, note=note, ts_ns=s.time,
                      reason=reason)]  # fmt: skip
    if started_flapping:
        records.append(Record(Action.FLAPPING, a.state, a.level, s.value, ts_ns=s.time))
    return Outcome.TRANSITION, Step(a, tuple(records), activated)


def _open(
    s: Signal, event: Event, level: int | None, now: int, subject: Subject, alert_id: str,
    flapping: Flapping,
) -> Step:  # fmt: skip
    firing = event is Event.FIRING
    labels = subject.labels
    a = Alert(
        id=alert_id, key=subject.key, rule=s.rule, enterprise=labels["enterprise"],
        site=labels["site"], sensor=labels["sensor"], group=s.group, kind=labels["kind"],
        source=s.source, state=AlertState.FIRING if firing else AlertState.PENDING,
        active=firing, acked=False, level=level, max_level=level, value=s.value,
        threshold=s.threshold, message=s.message, since_ns=now, ts_ns=s.time,
        updated_ns=now, fired_ns=now if firing else None, flap_times=[],
    )  # fmt: skip
    started_flapping = _activation(a, now, flapping) if firing else False
    records = [Record(EVENT_ACTIONS[event], None, level, s.value, ts_ns=s.time)]
    if started_flapping:
        records.append(Record(Action.FLAPPING, a.state, a.level, s.value, ts_ns=s.time))
    return Step(a, tuple(records), firing)


def _activation(a: Alert, now: int, flapping: Flapping) -> bool:
    """Count an activation on ``a`` (a copy this step owns); True when it has just
    started flapping."""
    a.flap_times, over = flapping.activate(a.flap_times or [], now)
    if over and not a.flapping:
        a.flapping = True
        return True
    return False


def removed_rule_signal(alert: Alert, now: int) -> Signal:
    """The ``resolved`` signal that ends ``alert`` because a reload removed its rule (or
    detector entry): nothing will ever evaluate its condition again. It keeps the
    alert's last value and threshold; the message says why.

    >>> from riskwatch.alerts.state import AlertState
    >>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule", AlertState.FIRING,
    ...           True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
    >>> s = removed_rule_signal(a, 9)
    >>> (s.state.value, s.reason.value, s.time, s.value)
    ('resolved', 'rule_removed', 9, 1.1)
    >>> s.message
    'rule ch4 was removed by a reload: its condition is no longer evaluated'
    """
    return Signal(
        rule=alert.rule, sensor=-1, time=now, state=SignalState.RESOLVED, level=None,
        value=alert.value, threshold=alert.threshold,
        message=f"rule {alert.rule} was removed by a reload: its condition is no longer "
        "evaluated",
        source=SignalSource(alert.source), group=alert.group, reason=EndReason.RULE_REMOVED,
    )  # fmt: skip
