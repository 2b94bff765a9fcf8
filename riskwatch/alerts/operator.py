"""Operator moves as pure steps, and the checks of what an operator gives.

An operator (through the API, the console or the CLI) acknowledges, shelves, unshelves,
takes out of service, returns to service and closes alerts, and creates and expires
silences. The sink does the locking, finding, storing and notifying; this module holds
what is pure: :func:`operate` (one event on one alert at ``now``) and the rules an
operator's input must follow, which raise ``ValueError`` (HTTP 422) with the reason.
The shelving and out-of-service timers end through :func:`operate` too (``who`` =
``system``).

>>> from riskwatch.alerts.state import Alert, AlertState, Event
>>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule",
...           AlertState.FIRING, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> acked = operate(a, Event.ACK, 100, who="li", note="on my way")
>>> acked.alert.state.value, acked.alert.acked_by, a.state.value
('acknowledged', 'li', 'firing')
>>> r = acked.records[0]
>>> (str(r.action), r.from_state.value, r.who, r.note)
('ack', 'firing', 'li', 'on my way')
>>> shelved = operate(acked.alert, Event.SHELVE, 200, who="li", note="leak",
...                   reason="leak", until_ns=until(200, 60.0))
>>> shelved.alert.state.value, shelved.alert.shelved_until_ns
('shelved', 60000000200)
>>> check_shelve(" ", 60.0, 3600.0)
Traceback (most recent call last):
ValueError: shelving needs a reason
"""

from __future__ import annotations

from riskwatch.alerts.records import EVENT_ACTIONS, Record, Step
from riskwatch.alerts.state import Alert, Event, transition
from riskwatch.alerts.store import Silence
from riskwatch.config.alerts import check_matchers

__all__ = [
    "check_close",
    "check_out_of_service",
    "check_shelve",
    "new_silence",
    "operate",
    "until",
]

S = 1_000_000_000


def operate(
    alert: Alert, event: Event, now: int, *, who: str, note: str | None,
    reason: str | None = None, until_ns: int | None = None,
) -> Step:  # fmt: skip
    """``event`` applied by ``who`` at ``now``; raises
    :class:`~riskwatch.alerts.state.IllegalTransition` before anything changes.
    ``reason`` and ``until_ns`` are the shelve / out-of-service reason and expiry."""
    old = alert.condition
    new = transition(old, event)
    a = alert.copy()
    a.state, a.active, a.acked = new.state, new.active, new.acked
    if event is Event.SHELVE or event is Event.OUT_OF_SERVICE:
        a.shelved_until_ns, a.reason = until_ns, reason
    if event is Event.ACK:
        a.acked_ns, a.acked_by = now, who
    if event is Event.UNSHELVE or event is Event.RETURN_TO_SERVICE:
        a.shelved_until_ns, a.reason = None, None
    if event is Event.CLOSE:
        a.closed_ns, a.note = now, note
    record = Record(EVENT_ACTIONS[event], old.state, a.level, a.value, who=who, note=note)
    return Step(a, (record,))


def until(now: int, duration_s: float | None) -> int | None:
    """When a shelving or out-of-service period of ``duration_s`` seconds from ``now``
    ends (None: no end)."""
    return now + int(duration_s * S) if duration_s else None


def check_shelve(reason: str, duration_s: float, shelve_max_s: float) -> None:
    if not reason.strip():
        raise ValueError("shelving needs a reason")
    if not 0 < duration_s <= shelve_max_s:
        raise ValueError(f"duration_s must be within (0, {shelve_max_s:g}] seconds")


def check_out_of_service(reason: str, duration_s: float | None) -> None:
    if not reason.strip():
        raise ValueError("out of service needs a reason")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("duration_s must be > 0")


def check_close(note: str) -> None:
    if not note or not note.strip():
        raise ValueError("closing needs a disposition note (what was done)")


def new_silence(
    silence_id: str, matchers: dict[str, list[str]], author: str, reason: str,
    ends_ns: int, starts_ns: int | None, now: int,
) -> Silence:  # fmt: skip
    """A silence from what the operator gave, or ``ValueError`` saying what is wrong.

    >>> new_silence("s1", {"site": ["face1"]}, "wang", "calibration", 500, None, 100).starts_ns
    100
    >>> new_silence("s1", {}, "wang", "calibration", 500, None, 100)
    Traceback (most recent call last):
    ValueError: a silence needs at least one matcher
    """
    msg = check_matchers(matchers)
    if msg:
        raise ValueError(msg)
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if not reason.strip() or not author.strip():
        raise ValueError("a silence needs an author and a reason")
    start = now if starts_ns is None else starts_ns
    if ends_ns <= start or ends_ns <= now:
        raise ValueError("a silence must end in the future and after it starts")
    return Silence(silence_id, matchers, start, ends_ns, author, reason, now)
