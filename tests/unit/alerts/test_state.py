"""The state machine, table-driven: every (state, event) pair gives an exact result."""

from __future__ import annotations

import pytest

from riskwatch.alerts.state import AlertState as S
from riskwatch.alerts.state import Condition, Event, IllegalTransition, transition

C = Condition
ALLOWED = [
    (C(S.PENDING, False, False), Event.FIRING, C(S.FIRING, True, False)),
    (C(S.PENDING, False, False), Event.RESOLVED, C(S.CLOSED, False, False)),
    (C(S.PENDING, False, False), Event.PENDING, C(S.PENDING, False, False)),
    (C(S.FIRING, True, False), Event.FIRING, C(S.FIRING, True, False)),
    (C(S.FIRING, True, False), Event.PENDING, C(S.FIRING, True, False)),
    (C(S.FIRING, True, False), Event.ACK, C(S.ACKNOWLEDGED, True, True)),
    (C(S.FIRING, True, False), Event.RESOLVED, C(S.RESOLVED, False, False)),
    (C(S.ACKNOWLEDGED, True, True), Event.RESOLVED, C(S.RESOLVED, False, True)),
    (C(S.RESOLVED, False, False), Event.ACK, C(S.RESOLVED, False, True)),
    (C(S.RESOLVED, False, True), Event.FIRING, C(S.FIRING, True, False)),
    (C(S.RESOLVED, False, False), Event.CLOSE, C(S.CLOSED, False, False)),
    (C(S.RESOLVED, False, True), Event.CLOSE, C(S.CLOSED, False, True)),
    (C(S.FIRING, True, False), Event.SHELVE, C(S.SHELVED, True, False)),
    (C(S.SHELVED, True, False), Event.RESOLVED, C(S.SHELVED, False, False)),
    (C(S.SHELVED, False, False), Event.UNSHELVE, C(S.RESOLVED, False, False)),
    (C(S.SHELVED, True, True), Event.UNSHELVE, C(S.ACKNOWLEDGED, True, True)),
    (C(S.SHELVED, False, True), Event.FIRING, C(S.SHELVED, True, False)),
    (C(S.ACKNOWLEDGED, True, True), Event.OUT_OF_SERVICE, C(S.OUT_OF_SERVICE, True, True)),
    (C(S.OUT_OF_SERVICE, True, True), Event.RETURN_TO_SERVICE, C(S.ACKNOWLEDGED, True, True)),
    (C(S.OUT_OF_SERVICE, True, False), Event.RESOLVED, C(S.OUT_OF_SERVICE, False, False)),
    (C(S.SHELVED, False, True), Event.CLOSE, C(S.CLOSED, False, True)),
]


@pytest.mark.parametrize(("before", "event", "after"), ALLOWED,
                         ids=[f"{b.state}-{e}" for b, e, _ in ALLOWED])  # fmt: skip
def test_allowed(before: Condition, event: Event, after: Condition) -> None:
    assert transition(before, event) == after


REFUSED = [
    (C(S.PENDING, False, False), Event.ACK, "it has not fired yet"),
    (C(S.ACKNOWLEDGED, True, True), Event.ACK, "it is already acknowledged"),
    (C(S.FIRING, True, False), Event.CLOSE, "its condition is still active"),
    (C(S.ACKNOWLEDGED, True, True), Event.CLOSE, "its condition is still active"),
    (C(S.PENDING, False, False), Event.SHELVE, "only firing, acknowledged or resolved"),
    (C(S.FIRING, True, False), Event.UNSHELVE, "it is not shelved"),
    (C(S.FIRING, True, False), Event.RETURN_TO_SERVICE, "it is not out of service"),
    (C(S.CLOSED, False, True), Event.FIRING, "it is closed"),
    (C(S.CLOSED, False, True), Event.ACK, "it is closed"),
]


@pytest.mark.parametrize(("before", "event", "why"), REFUSED,
                         ids=[f"{b.state}-{e}" for b, e, _ in REFUSED])  # fmt: skip
def test_refused(before: Condition, event: Event, why: str) -> None:
    with pytest.raises(IllegalTransition) as ei:
        transition(before, event)
    assert ei.value.why.startswith(why)
    assert str(ei.value).startswith(f"cannot {event.value.replace('_', ' ')} an alert that is")
