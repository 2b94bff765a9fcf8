"""The alert state machine: states, operator actions, and one pure transition function.

Each alert is keyed by (rule, sensor) or (rule, group). Its *display state* is one of
:class:`AlertState`; underneath, two booleans follow ISA-18.2: ``active`` (the process
condition is present) and ``acked`` (an operator acknowledged it). Shelved and
out-of-service are states, not deletions: while in them the alert still follows its
condition, and leaving them returns to the state that the condition and the
acknowledgement give (:func:`settle`).

::

    (none) --pending--> PENDING --firing--> FIRING (active, unacknowledged)
    PENDING --resolved--> CLOSED (cleared before it became an alarm; system note)
    FIRING --ack--> ACKNOWLEDGED --resolved--> RESOLVED (acked)
    FIRING --resolved--> RESOLVED (returned to normal, unacknowledged) --ack--> RESOLVED (acked)
    RESOLVED --firing--> FIRING (the same alert re-alarms, unacknowledged again)
    RESOLVED --close(note)--> CLOSED
    FIRING | ACKNOWLEDGED | RESOLVED --shelve(reason, until)--> SHELVED
    SHELVED --unshelve or expiry--> settle(active, acked)
    any open state --out_of_service(reason)--> OUT_OF_SERVICE --return_to_service--> settle()
    level change while active: same state, same alert, level history in the transitions

>>> s = Condition(AlertState.FIRING, active=True, acked=False)
>>> s = transition(s, Event.ACK); s.state
<AlertState.ACKNOWLEDGED: 'acknowledged'>
>>> transition(s, Event.RESOLVED).state
<AlertState.RESOLVED: 'resolved'>
>>> try:
...     transition(s, Event.CLOSE)
... except IllegalTransition as e:
...     print(e.why)
its condition is still active; close it after it resolves
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

from riskwatch.errors import StateError

__all__ = [
    "HIDDEN_STATES",
    "OPEN_STATES",
    "AlertState",
    "Condition",
    "Event",
    "IllegalTransition",
    "settle",
    "transition",
]


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"  # active, unacknowledged
    ACKNOWLEDGED = "acknowledged"  # active, acknowledged
    RESOLVED = "resolved"  # returned to normal; ``acked`` tells whether anyone acknowledged it
    SHELVED = "shelved"  # hidden by an operator for a bounded time, with a reason
    OUT_OF_SERVICE = "out_of_service"  # sensor under maintenance
    CLOSED = "closed"  # terminal, with a disposition note


OPEN_STATES = frozenset(s for s in AlertState if s is not AlertState.CLOSED)
#: hidden from operators (shelved, out of service): transitions are recorded, not annunciated
HIDDEN_STATES = frozenset((AlertState.SHELVED, AlertState.OUT_OF_SERVICE))


class Event(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    ACK = "ack"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    OUT_OF_SERVICE = "out_of_service"
    RETURN_TO_SERVICE = "return_to_service"
    CLOSE = "close"


class IllegalTransition(StateError):
    """An operator asked for a move the state machine does not allow (HTTP 409)."""

    def __init__(self, state: AlertState, event: Event, why: str) -> None:
        self.state, self.event, self.why = state, event, why
        verb = event.value.replace("_", " ")
        super().__init__(f"cannot {verb} an alert that is {state.value.replace('_', ' ')}: {why}")


@dataclass(frozen=True, slots=True)
class Condition:
    """Display state plus the two ISA-18.2 booleans underneath it."""

    state: AlertState
    active: bool
    acked: bool


def settle(active: bool, acked: bool) -> AlertState:
    """The state an alert returns to when it leaves shelved or out-of-service.

    >>> [str(settle(True, False)), str(settle(True, True)), str(settle(False, True))]
    ['firing', 'acknowledged', 'resolved']
    """
    if active:
        return AlertState.ACKNOWLEDGED if acked else AlertState.FIRING
    return AlertState.RESOLVED


def transition(c: Condition, ev: Event) -> Condition:
    """Apply one event. Condition events (pending/firing/resolved) never raise: a repeat is a
    no-op (dedup). Operator events raise :class:`IllegalTransition` when not allowed."""
    S = AlertState
    st = c.state
    if st is S.CLOSED:
        raise IllegalTransition(st, ev, "it is closed; a new signal opens a new alert")
    if ev is Event.PENDING:
        return c  # a pending signal never demotes an open alert
    if ev is Event.FIRING:
        if st in HIDDEN_STATES:
            return replace(c, active=True, acked=c.acked and c.active)
        if st is S.PENDING or st is S.RESOLVED:
            return Condition(S.FIRING, True, False)
        return c
    if ev is Event.RESOLVED:
        if st is S.PENDING:
            return Condition(S.CLOSED, False, False)
        if st in HIDDEN_STATES:
            return replace(c, active=False)
        return Condition(S.RESOLVED, False, c.acked)
    if ev is Event.ACK:
        if st in (S.FIRING, S.RESOLVED) and not c.acked:
            return Condition(S.ACKNOWLEDGED if c.active else S.RESOLVED, c.active, True)
        if st is S.PENDING:
            raise IllegalTransition(st, ev, "it has not fired yet")
        why = "it is already acknowledged" if c.acked else "unshelve it first"
        raise IllegalTransition(st, ev, why)
    if ev is Event.SHELVE:
        if st in (S.FIRING, S.ACKNOWLEDGED, S.RESOLVED):
            return replace(c, state=S.SHELVED)
        why = "only firing, acknowledged or resolved alerts can be shelved"
        raise IllegalTransition(st, ev, why)
    if ev is Event.UNSHELVE:
        if st is S.SHELVED:
            return replace(c, state=settle(c.active, c.acked))
        raise IllegalTransition(st, ev, "it is not shelved")
    if ev is Event.OUT_OF_SERVICE:
        if st is S.OUT_OF_SERVICE:
            raise IllegalTransition(st, ev, "it is already out of service")
        return replace(c, state=S.OUT_OF_SERVICE, active=c.active and st is not S.PENDING)
    if ev is Event.RETURN_TO_SERVICE:
        if st is S.OUT_OF_SERVICE:
            return replace(c, state=settle(c.active, c.acked))
        raise IllegalTransition(st, ev, "it is not out of service")
    if ev is Event.CLOSE:
        if c.active or st is S.PENDING:
            raise IllegalTransition(
                st, ev, "its condition is still active; close it after it resolves"
            )
        return Condition(S.CLOSED, False, c.acked)
    raise ValueError(f"unknown event {ev!r}")  # pragma: no cover


@dataclass(slots=True)
class Alert:
    """One alert, open or closed, as the sink keeps it in memory and the store keeps it on
    disk. Times are ns since the epoch; ``level`` is ``Level`` as int (1 red .. 4 blue).

    The sink treats an alert it has published (indexed, queued for the store, handed to
    listeners) as frozen: every step works on :meth:`copy` and the sink swaps the copy in.
    So a reader in another thread never sees half a change, and a queued row or a
    listener's pair never moves on under it.
    """

    id: str
    key: str
    rule: str
    enterprise: str
    site: str
    sensor: str
    group: str | None
    kind: str
    source: str
    state: AlertState
    active: bool
    acked: bool
    level: int | None
    max_level: int | None
    value: float
    threshold: float
    message: str
    since_ns: int  # when the alert opened
    ts_ns: int  # reading time of the last transition
    updated_ns: int
    fired_ns: int | None = None  # when it last became active-unacknowledged (escalation base)
    acked_ns: int | None = None
    acked_by: str | None = None
    tier: int = 0
    last_notified_ns: int | None = None
    shelved_until_ns: int | None = None
    reason: str | None = None  # shelve / out-of-service reason
    flapping: bool = False
    flap_times: list[int] | None = None
    undelivered: bool = False  # a state change was muted (inhibition/silence); send when lifted
    closed_ns: int | None = None
    note: str | None = None  # disposition note when closed
    seq: int = 0  # transitions recorded so far (transition ids are ``{id}:{seq}``)

    @property
    def condition(self) -> Condition:
        return Condition(self.state, self.active, self.acked)

    def copy(self) -> Alert:
        """A shallow copy to change. ``flap_times`` is shared with the original, so a step
        replaces that list and never changes it in place.

        >>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule",
        ...           AlertState.FIRING, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
        >>> b = a.copy(); b.tier = 1
        >>> (a.tier, b.tier, b == a.copy())
        (0, 1, False)
        """
        return Alert(*_ALERT_FIELDS(self))

    def labels(self) -> dict[str, str]:
        """What matchers (routing, silences, inhibition, consoles) look at."""
        return {
            "enterprise": self.enterprise,
            "site": self.site,
            "sensor": self.sensor,
            "group": self.group or "",
            "rule": self.rule,
            "level": _COLOURS[self.level] if self.level else "",
            "kind": self.kind,
            "source": self.source,
        }


_COLOURS = ("", "red", "orange", "yellow", "blue")
_ALERT_FIELDS = attrgetter(*(f.name for f in fields(Alert)))


class Transition(NamedTuple):
    """One recorded change of an alert, as the store keeps it: who, when, from, to, level,
    value, note.

    ``action`` is a :class:`~riskwatch.alerts.records.Action` value (``pending``,
    ``firing``, ``level``, ``resolved``, ``ack``, ``escalate``, ``repeat``, ``flapping``,
    ``settled``, ``shelve``, ``unshelve``, ``out_of_service``, ``return_to_service``,
    ``close``, ``unmuted``); ``muted`` says why no notification went out, as
    :attr:`riskwatch.alerts.stages.muter.Suppression.text` (``silence:<id>``,
    ``inhibited``, ``flapping``, ``shelved``, ``out_of_service``, ``quiet``), or is empty.
    ``reason`` is the :class:`~riskwatch.model.EndReason` value of a ``resolved``
    transition that no reading caused (``rule_removed``, ``unwatched``: a reload stopped
    watching the alert's subject), or is empty.
    A named tuple: immutable, and one is built per transition, where a frozen dataclass
    costs three times as much.
    """

    id: str
    alert_id: str
    seq: int
    at_ns: int
    ts_ns: int
    who: str
    action: str
    from_state: str | None
    to_state: str
    level: int | None
    value: float
    note: str | None
    muted: str = ""
    reason: str = ""
