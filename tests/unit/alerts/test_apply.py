"""The pure signal step, table-driven: (alert before, signal) -> outcome, the alert after
and the exact records; the alert given is never changed."""

from __future__ import annotations

import copy

import pytest

from riskwatch.alerts.apply import SIGNAL_EVENTS, Subject, apply
from riskwatch.alerts.records import Action, Outcome
from riskwatch.alerts.stages.flapping import Flapping
from riskwatch.alerts.state import Alert, AlertState, Event
from riskwatch.model import Level, SignalState
from tests.unit.alerts.steps import T0, S, alert, signal

SUBJECT = Subject("ch4|m1/f1/S1", {"enterprise": "m1", "site": "f1", "sensor": "S1",
                                   "kind": "ch4"})  # fmt: skip
NOW = T0 + 60 * S


def run(before: Alert | None, state: SignalState, level: Level | None,
        flapping: Flapping | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    ids = iter(["new1"])
    return apply(before, signal(state, level, at=NOW - S), SIGNAL_EVENTS[state], NOW,
                 subject=SUBJECT, new_id=lambda: next(ids),
                 flapping=flapping or Flapping(600 * S, 6, 2))  # fmt: skip


def test_every_signal_state_has_an_event() -> None:
    assert dict(SIGNAL_EVENTS) == {SignalState.PENDING: Event.PENDING,
                                   SignalState.FIRING: Event.FIRING,
                                   SignalState.RESOLVED: Event.RESOLVED}  # fmt: skip
    assert SIGNAL_EVENTS.get("firing") is Event.FIRING  # type: ignore[call-overload]
    assert SIGNAL_EVENTS.get("maybe") is None  # type: ignore[call-overload]


# (id, alert before or None, signal state, level) ->
#   (outcome, state after, [(action, from_state, level)], activated)
CASES = [
    ("open-firing", None, SignalState.FIRING, Level.ORANGE,
     Outcome.NEW, AlertState.FIRING, [("firing", None, 2)], True),
    ("open-pending", None, SignalState.PENDING, Level.ORANGE,
     Outcome.NEW, AlertState.PENDING, [("pending", None, 2)], False),
    ("nothing-to-resolve", None, SignalState.RESOLVED, None,
     Outcome.DEDUP, None, [], False),
    ("same-state-and-level", alert(), SignalState.FIRING, Level.ORANGE,
     Outcome.DEDUP, None, [], False),
    ("pending-never-demotes", alert(), SignalState.PENDING, Level.YELLOW,
     Outcome.DEDUP, None, [], False),
    ("level-up-while-firing", alert(), SignalState.FIRING, Level.RED,
     Outcome.TRANSITION, AlertState.FIRING, [("level", "firing", 1)], False),
    ("level-while-acknowledged", alert(AlertState.ACKNOWLEDGED), SignalState.FIRING, Level.RED,
     Outcome.TRANSITION, AlertState.ACKNOWLEDGED, [("level", "acknowledged", 1)], False),
    ("resolve", alert(), SignalState.RESOLVED, None,
     Outcome.TRANSITION, AlertState.RESOLVED, [("resolved", "firing", None)], False),
    ("pending-promotes", alert(AlertState.PENDING), SignalState.FIRING, Level.ORANGE,
     Outcome.TRANSITION, AlertState.FIRING, [("firing", "pending", 2)], True),
    ("pending-clears-closed", alert(AlertState.PENDING), SignalState.RESOLVED, None,
     Outcome.TRANSITION, AlertState.CLOSED, [("resolved", "pending", None)], False),
    ("re-alarm", alert(AlertState.RESOLVED, acked=True), SignalState.FIRING, Level.ORANGE,
     Outcome.TRANSITION, AlertState.FIRING, [("firing", "resolved", 2)], True),
    ("under-shelving", alert(AlertState.SHELVED, active=True), SignalState.RESOLVED, None,
     Outcome.TRANSITION, AlertState.SHELVED, [("resolved", "shelved", None)], False),
    ("level-under-shelving", alert(AlertState.SHELVED, active=True), SignalState.FIRING,
     Level.RED, Outcome.TRANSITION, AlertState.SHELVED, [("level", "shelved", 1)], False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "state", "level", "outcome", "after", "records", "activated"),
    [c[1:] for c in CASES], ids=[c[0] for c in CASES],
)  # fmt: skip
def test_signal_step(before: Alert | None, state: SignalState, level: Level | None,
                     outcome: Outcome, after: AlertState | None,
                     records: list[tuple[str, str | None, int | None]],
                     activated: bool) -> None:  # fmt: skip
    kept = copy.deepcopy(before)
    got, step = run(before, state, level)
    assert got is outcome
    assert before == kept  # the alert given is not changed
    if after is None:
        assert step is None
        return
    assert step is not None and step.alert is not before
    assert step.alert.state is after
    assert [(str(r.action), r.from_state and str(r.from_state), r.level)
            for r in step.records] == records  # fmt: skip
    assert all(r.ts_ns == NOW - S and r.value == 1.2 for r in step.records)
    assert step.activated is activated
    a = step.alert
    assert (a.value, a.ts_ns, a.updated_ns, a.message) == (1.2, NOW - S, NOW, f"CH4 {state}")


def test_open_copies_the_subject_and_counts_from_now() -> None:
    _, step = run(None, SignalState.FIRING, Level.RED)
    assert step is not None
    a = step.alert
    assert (a.id, a.key, a.enterprise, a.site, a.sensor, a.kind) == (
        "new1",
        "ch4|m1/f1/S1",
        "m1",
        "f1",
        "S1",
        "ch4",
    )
    assert (a.since_ns, a.fired_ns, a.level, a.max_level, a.flap_times) == (NOW, NOW, 1, 1, [NOW])


def test_reactivation_restarts_escalation_and_max_level_keeps_the_worst() -> None:
    before = alert(AlertState.RESOLVED, tier=2, level=1, max_level=1)
    _, step = run(before, SignalState.FIRING, Level.YELLOW)
    assert step is not None
    assert (step.alert.fired_ns, step.alert.tier, step.alert.level, step.alert.max_level) == (
        NOW,
        0,
        3,
        1,
    )


def test_pending_that_clears_is_closed_with_a_system_note() -> None:
    _, step = run(alert(AlertState.PENDING), SignalState.RESOLVED, None)
    assert step is not None
    assert (step.alert.closed_ns, step.alert.note) == (NOW, "cleared while pending (never fired)")
    assert step.records[0].note == "cleared while pending (never fired)"


def test_reaching_the_flapping_threshold_records_flapping_once() -> None:
    flapping = Flapping(window_ns=600 * S, high=3, low=1)
    before = alert(AlertState.RESOLVED, flap_times=[NOW - 200 * S, NOW - 100 * S])
    _, step = run(before, SignalState.FIRING, Level.ORANGE, flapping)
    assert step is not None
    assert [(str(r.action), str(r.from_state)) for r in step.records] == [
        ("firing", "resolved"),
        ("flapping", "firing"),
    ]
    assert step.alert.flapping and step.alert.flap_times == [NOW - 200 * S, NOW - 100 * S, NOW]
    assert before.flap_times == [NOW - 200 * S, NOW - 100 * S]  # a new list, not appended
    again = step.alert.copy()
    again.state, again.active = AlertState.RESOLVED, False
    _, step2 = run(again, SignalState.FIRING, Level.ORANGE, flapping)
    assert step2 is not None
    assert [str(r.action) for r in step2.records] == ["firing"]  # already flapping


def test_activations_outside_the_window_are_forgotten() -> None:
    flapping = Flapping(window_ns=600 * S, high=3, low=1)
    before = alert(AlertState.RESOLVED, flap_times=[NOW - 700 * S, NOW - 600 * S, NOW - 10 * S])
    _, step = run(before, SignalState.FIRING, Level.ORANGE, flapping)
    assert step is not None
    assert step.alert.flap_times == [NOW - 10 * S, NOW] and not step.alert.flapping
    assert [str(r.action) for r in step.records] == ["firing"]
    assert Action.FLAPPING not in {r.action for r in step.records}
