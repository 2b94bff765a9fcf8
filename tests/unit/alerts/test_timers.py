"""The pure timers over time: a clock stepped through a series, the exact record (or
none) at each step, and the alert given never changed."""

from __future__ import annotations

import copy

import pytest

from riskwatch.alerts.records import Action
from riskwatch.alerts.stages.flapping import Flapping
from riskwatch.alerts.state import Alert, AlertState
from riskwatch.alerts.timers import Cadence, TimerPolicy, due
from riskwatch.config.alerts import AlertsConfig
from tests.unit.alerts.steps import T0, S, alert

POLICY = TimerPolicy({2: 60 * S}, max_tier=2, repeat_ns=300 * S,
                     flapping=Flapping(100 * S, 3, 1))  # fmt: skip


def walk(a: Alert, seconds: list[float]) -> list[tuple[float, str | None, str | None]]:
    """(t, action, note) at each step, the alert after each step carried on."""
    out = []
    for t in seconds:
        kept = copy.deepcopy(a)
        step = due(a, T0 + int(t * S), POLICY)
        assert a == kept
        if step is None or not step.records:
            out.append((t, None, None))
        else:
            (r,) = step.records
            out.append((t, str(r.action), r.note))
        if step is not None:
            a = step.alert
    return out


def test_escalation_by_tier_then_repeat() -> None:
    a = alert(last_notified_ns=T0)
    assert walk(a, [59, 60, 119, 120, 300, 400, 600]) == [
        (59, None, None),
        (60, "escalate", "unacknowledged for 60 s; tier 1"),
        (119, None, None),
        (120, "escalate", "unacknowledged for 120 s; tier 2"),
        (300, "repeat", None),  # max tier reached; 300 s since the last notification
        (400, "repeat", None),  # the recorder, not the timer, moves last_notified
        (600, "repeat", None),
    ]


@pytest.mark.parametrize("state", [AlertState.ACKNOWLEDGED, AlertState.RESOLVED,
                                   AlertState.PENDING])  # fmt: skip
def test_only_firing_unacknowledged_alerts_escalate_or_repeat(state: AlertState) -> None:
    assert walk(alert(state, last_notified_ns=T0), [60, 3600]) == [(60, None, None),
                                                                   (3600, None, None)]  # fmt: skip


def test_no_limit_for_the_level_means_repeat_only() -> None:
    a = alert(level=3, max_level=3, last_notified_ns=T0)
    assert walk(a, [60, 299, 300]) == [(60, None, None), (299, None, None),
                                       (300, "repeat", None)]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "action"),
    [(AlertState.SHELVED, "unshelve"), (AlertState.OUT_OF_SERVICE, "return_to_service")],
)
def test_hidden_alerts_return_when_the_time_is_up(state: AlertState, action: str) -> None:
    a = alert(state, active=True, shelved_until_ns=T0 + 120 * S, reason="leak",
              last_notified_ns=T0)  # fmt: skip
    assert walk(a, [60, 119]) == [(60, None, None), (119, None, None)]  # hidden: no escalation
    step = due(a, T0 + 120 * S, POLICY)
    assert step is not None
    (r,) = step.records
    assert (str(r.action), r.who, r.note, str(r.from_state)) == (action, "system", "time is up",
                                                                 str(state))  # fmt: skip
    assert (step.alert.state, step.alert.shelved_until_ns, step.alert.reason) == (
        AlertState.FIRING,
        None,
        None,
    )


def test_out_of_service_without_an_end_waits_for_an_operator() -> None:
    a = alert(AlertState.OUT_OF_SERVICE, active=True, undelivered=True)
    step = due(a, T0 + 10**6 * S, POLICY)
    assert step is not None  # offers unmuted; the hidden stage mutes it, so it is dropped
    (r,) = step.records
    assert (r.action, r.if_unmuted) == (Action.UNMUTED, True)


def test_flapping_settles_and_forgets_old_activations_on_the_way() -> None:
    a = alert(AlertState.ACKNOWLEDGED, flapping=True, flap_times=[T0, T0 + 20 * S, T0 + 40 * S])
    step = due(a, T0 + 110 * S, POLICY)  # T0 left the window: forgotten, not yet settled
    assert step is not None and step.records == ()
    assert step.alert.flap_times == [T0 + 20 * S, T0 + 40 * S] and step.alert.flapping
    assert a.flap_times == [T0, T0 + 20 * S, T0 + 40 * S]
    assert due(step.alert, T0 + 115 * S, POLICY) is None  # nothing left to forget
    settled = due(step.alert, T0 + 120 * S, POLICY)
    assert settled is not None
    assert [str(r.action) for r in settled.records] == ["settled"]
    assert not settled.alert.flapping and settled.alert.flap_times == [T0 + 40 * S]


def test_settling_comes_before_escalation() -> None:
    a = alert(flapping=True, flap_times=[T0], last_notified_ns=T0)
    assert walk(a, [3600, 3601]) == [(3600, "settled", None),
                                     (3601, "escalate", "unacknowledged for 3601 s; tier 1")]  # fmt: skip


def test_muted_alert_offers_unmuted_once_nothing_fires() -> None:
    a = alert(AlertState.ACKNOWLEDGED, undelivered=True)
    step = due(a, T0 + S, POLICY)
    assert step is not None and step.alert is a  # nothing changed: the recorder copies
    (r,) = step.records
    assert (r.action, r.if_unmuted, str(r.from_state)) == (Action.UNMUTED, True, "acknowledged")


def test_policy_from_config() -> None:
    p = TimerPolicy.from_config(AlertsConfig(escalate_after_s={"red": 30.0},
                                             repeat_interval_s=90.0, max_tier=1))  # fmt: skip
    assert (dict(p.escalate_ns), p.max_tier, p.repeat_ns) == ({1: 30 * S}, 1, 90 * S)
    assert (p.flapping.window_ns, p.flapping.high, p.flapping.low) == (600 * S, 6, 2)


def test_cadence_counts_from_the_last_time_it_was_due() -> None:
    every = Cadence(10 * S)
    assert [every.due(T0 + t * S) for t in (0, 5, 10, 19, 20, 35)] == [
        True,
        False,
        True,
        False,
        True,
        True,
    ]
