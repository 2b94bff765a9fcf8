"""The vocabulary of an alert step: what a pure step decided, before anything is stored.

The pure parts of the sink (:func:`riskwatch.alerts.apply.apply` for signals,
:func:`riskwatch.alerts.operator.operate` for operator moves,
:func:`riskwatch.alerts.timers.due` for timers) never store, notify, lock or read a
clock. Each returns a :class:`Step`: the alert as it is after the step (a new object
when the step changed it; the one passed in is left as it was) and the :class:`Record` s
it asks the sink to write into the alert's history. The sink's recorder turns each
record into a stored :class:`~riskwatch.alerts.state.Transition`, asks the muter whether
it is notified, and queues the notifications.

>>> r = Record(Action.ESCALATE, AlertState.FIRING, 2, 1.3, note="tier 1")
>>> (str(r.action), r.who, r.ts_ns, r.if_unmuted)
('escalate', 'engine', None, False)
>>> Action("firing") is Action.FIRING, EVENT_ACTIONS[Event.RETURN_TO_SERVICE]
(True, <Action.RETURN_TO_SERVICE: 'return_to_service'>)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from riskwatch.alerts.state import Alert, AlertState, Event
from riskwatch.model import EndReason

__all__ = ["EVENT_ACTIONS", "Action", "Outcome", "Record", "Step"]


class Action(StrEnum):
    """What a transition records (``Transition.action``, the ``action`` of a notification
    and the ``action`` label of ``riskwatch_alert_transitions_total``): every
    :class:`~riskwatch.alerts.state.Event` under its own name, plus what timers and the
    level logic record."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    ACK = "ack"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    OUT_OF_SERVICE = "out_of_service"
    RETURN_TO_SERVICE = "return_to_service"
    CLOSE = "close"
    LEVEL = "level"  # same state, another level while active
    FLAPPING = "flapping"  # started flapping: notified once
    SETTLED = "settled"  # stopped flapping
    ESCALATE = "escalate"  # unacknowledged too long: next tier
    REPEAT = "repeat"  # still firing unacknowledged: notified again
    UNMUTED = "unmuted"  # the silence or inhibition that muted it lifted: notified now


#: the action that records each lifecycle event
EVENT_ACTIONS: Mapping[Event, Action] = MappingProxyType({e: Action(e.value) for e in Event})


class Outcome(StrEnum):
    """What one signal did to its alert (the ``outcome`` label of
    ``riskwatch_alert_signals_total``)."""

    NEW = "new"  # opened an alert
    TRANSITION = "transition"  # changed the open alert's state or level
    DEDUP = "dedup"  # changed nothing (the state machine's dedup)
    IGNORED = "ignored"  # a state the alert lifecycle does not know


class Record(NamedTuple):
    """One transition a step asks to record. ``level`` is the level the transition is
    about (a resolved signal carries none); ``ts_ns`` the reading's time (default: when
    it is recorded). ``notify=False`` records for the history only (muted ``quiet``);
    ``if_unmuted`` drops the record altogether while the alert is still muted (a timer
    offering to notify what a silence or inhibition held back). ``reason``: why a
    ``resolved`` ended the alert without a reading (a reload stopped watching it). A
    named tuple: one is made
    per transition, and a frozen dataclass costs several times more to build."""

    action: Action
    from_state: AlertState | None
    level: int | None
    value: float
    who: str = "engine"
    note: str | None = None
    ts_ns: int | None = None
    notify: bool = True
    if_unmuted: bool = False
    reason: EndReason | None = None


class Step(NamedTuple):
    """The alert after a step and what to record, in order. ``alert`` is either the alert
    the step was given (it changed nothing) or a new copy that nobody else holds yet.
    ``activated``: the alert's condition became active (an annunciation, for alarm-system
    health)."""

    alert: Alert
    records: tuple[Record, ...] = ()
    activated: bool = False
