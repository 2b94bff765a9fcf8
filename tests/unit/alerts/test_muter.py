"""Noise control: each stage alone, the sequence's order (the first that mutes names the
reason), and the stored text of every reason, which the store, the API, the console and
the golden runs read."""

from __future__ import annotations

import pytest

from riskwatch.alerts.records import Action
from riskwatch.alerts.stages import (
    FlappingStage,
    HiddenStage,
    InhibitionStage,
    Inhibitor,
    MuteSequence,
    Silencer,
    SilenceStage,
    Suppression,
    SuppressReason,
)
from riskwatch.alerts.state import Alert, AlertState
from riskwatch.alerts.store import Silence
from riskwatch.config.alerts import InhibitRule
from tests.unit.alerts.steps import T0, S, alert

SOURCE = alert(id="src", key="power_off|m1/f1/P1", rule="power_off", sensor="P1", level=1)


def sequence(*, silenced: bool = False, inhibited: bool = False) -> MuteSequence:
    silences = [Silence("s7", {"site": ["f1"]}, T0, T0 + 600 * S, "li", "calibration", T0)]
    rules = [InhibitRule(source={"rule": ["power_off"]}, target={"rule": ["ch4"]})]
    others = [SOURCE] if inhibited else []
    return MuteSequence([
        HiddenStage(),
        SilenceStage(Silencer(silences if silenced else [])),
        InhibitionStage(Inhibitor(rules), lambda enterprise, site: others),
        FlappingStage(),
    ])  # fmt: skip


def why(m: MuteSequence, a: Alert, action: Action = Action.FIRING) -> str:
    got = m(a, action, T0 + S)
    return got.text if got is not None else ""


CASES = [
    ("nothing", {}, alert(), Action.FIRING, ""),
    ("shelved", {"silenced": True}, alert(AlertState.SHELVED, active=True), Action.RESOLVED,
     "shelved"),
    ("out-of-service", {}, alert(AlertState.OUT_OF_SERVICE), Action.FIRING, "out_of_service"),
    ("the-move-into-shelved-is-told", {}, alert(AlertState.SHELVED), Action.SHELVE, ""),
    ("the-move-out-of-service-is-told", {}, alert(AlertState.OUT_OF_SERVICE),
     Action.OUT_OF_SERVICE, ""),
    ("silence-before-inhibition", {"silenced": True, "inhibited": True}, alert(),
     Action.FIRING, "silence:s7"),
    ("inhibition-before-flapping", {"inhibited": True}, alert(flapping=True), Action.FIRING,
     "inhibited"),
    ("flapping", {}, alert(flapping=True), Action.RESOLVED, "flapping"),
    ("flapping-itself-is-told", {}, alert(flapping=True), Action.FLAPPING, ""),
    ("settled-is-told", {}, alert(flapping=True), Action.SETTLED, ""),
    ("a-source-never-inhibits-itself", {"inhibited": True}, SOURCE, Action.FIRING, ""),
]  # fmt: skip


@pytest.mark.parametrize(("kw", "a", "action", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_sequence(kw: dict[str, bool], a: Alert, action: Action, text: str) -> None:
    assert why(sequence(**kw), a, action) == text


def test_an_inactive_source_does_not_inhibit() -> None:
    quiet = SOURCE.copy()
    quiet.active, quiet.state = False, AlertState.RESOLVED
    stage = InhibitionStage(Inhibitor([InhibitRule(source={"rule": ["power_off"]})]),
                            lambda enterprise, site: [quiet])  # fmt: skip
    assert stage(alert(), Action.FIRING, T0) is None


def test_silences_apply_between_start_and_end_only() -> None:
    stage = SilenceStage(Silencer([Silence("s1", {"rule": ["ch4"]}, T0, T0 + 10 * S, "li",
                                           "x", T0)]))  # fmt: skip
    got = [stage(alert(), Action.FIRING, T0 + t * S) for t in (-1, 0, 9, 10)]
    assert [g.text if g else None for g in got] == [None, "silence:s1", "silence:s1", None]


STORED = [
    (Suppression(SuppressReason.SILENCE, "0a1b2c3d4e5f"), "silence:0a1b2c3d4e5f", "silence"),
    (Suppression(SuppressReason.INHIBITED), "inhibited", "inhibited"),
    (Suppression(SuppressReason.FLAPPING), "flapping", "flapping"),
    (Suppression(SuppressReason.SHELVED), "shelved", "shelved"),
    (Suppression(SuppressReason.OUT_OF_SERVICE), "out_of_service", "out_of_service"),
    (Suppression(SuppressReason.QUIET), "quiet", "quiet"),
]


@pytest.mark.parametrize(("suppression", "text", "label"), STORED,
                         ids=[t for _, t, _ in STORED])  # fmt: skip
def test_stored_text_and_metric_label(suppression: Suppression, text: str, label: str) -> None:
    assert suppression.text == text
    assert Suppression.parse(text) == suppression
    assert suppression.reason.value == label


def test_what_is_sent_when_lifted_and_what_is_counted() -> None:
    assert {r for r in SuppressReason if r.resend_when_lifted} == {
        SuppressReason.SILENCE,
        SuppressReason.INHIBITED,
    }
    assert {r for r in SuppressReason if not r.counted} == {SuppressReason.QUIET}
    assert Suppression.parse("") is None
