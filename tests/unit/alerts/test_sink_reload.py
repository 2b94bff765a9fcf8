"""The alert sink after a reload: the open alerts of a removed rule end with the reason
``rule_removed`` (a resolved transition stored with it, notified, in the history) and can
then be closed; subjects a changed rule no longer watches end ``unwatched``; a detector
and a rule of the same name are told apart by their source."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from riskwatch.alerts.state import AlertState, IllegalTransition
from riskwatch.model import EndReason, Level, Signal, SignalSource, SignalState
from riskwatch.pipeline import StageReload
from tests.unit.alerts.helpers import T0, Rig, S

RULES = SignalSource.RULE


def removed(*names: str, source: SignalSource = RULES) -> StageReload:
    return StageReload("rules" if source is RULES else "detectors", source, removed=names)


def test_removed_rule_ends_its_alerts_then_they_close(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.RED, sensor=0, rule="ch4_face", value=1.6)
    r.sig("firing", Level.ORANGE, sensor=1, rule="ch4_face", value=1.1)
    r.sig("firing", Level.ORANGE, sensor=2, rule="co_high", value=30)
    first = {a.sensor: a for a in r.sink.open_alerts() if a.rule == "ch4_face"}
    with pytest.raises(IllegalTransition, match="still active"):
        r.sink.close(first["CH4-01"].id, "li", "rule gone")
    r.sink.ack(first["CH4-02"].id, "li")
    r.clock.advance(5)
    r.sink.reloaded([removed("ch4_face")], r.ctx())
    assert r.sink.wait_idle()
    after = {(a.rule, a.sensor): (a.state, a.active, a.acked) for a in r.sink.open_alerts()}
    assert after == {
        ("ch4_face", "CH4-01"): (AlertState.RESOLVED, False, False),
        ("ch4_face", "CH4-02"): (AlertState.RESOLVED, False, True),
        ("co_high", "CO-01"): (AlertState.FIRING, True, False),  # another rule: untouched
    }
    a = first["CH4-01"]
    hist = r.sink.store.transitions(a.id)
    assert [(t.action, t.from_state, t.to_state, t.reason, t.who, t.at_ns) for t in hist] == [
        ("firing", None, "firing", "", "engine", T0),
        ("resolved", "firing", "resolved", "rule_removed", "reload", T0 + 5 * S),
    ]
    assert hist[-1].note == "ended by a reload: rule_removed"
    assert hist[-1].value == 1.6  # the last value the rule saw
    ended = [m for m in r.pub.alerts("al/") if m["action"] == "resolved"]
    assert sorted((m["sensor"], m["state"], m["reason"]) for m in ended) == [
        ("CH4-01", "resolved", "rule_removed"),
        ("CH4-02", "resolved", "rule_removed"),
    ]
    assert ended[0]["message"].startswith("rule ch4_face was removed by a reload")
    closed = r.sink.close(a.id, "li", "rule retired with the face; checked on site")
    assert closed.state is AlertState.CLOSED
    r.sink.reloaded([removed("ch4_face")], r.ctx())  # again: nothing left to end
    assert r.sink.wait_idle()
    assert len(r.sink.store.transitions(first["CH4-02"].id)) == 3  # firing, ack, resolved
    r.sink.stop()


def test_a_normal_resolve_carries_no_reason(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.ORANGE)
    r.sig("resolved")
    (_, t2) = r.sink.store.transitions(r.only().id)
    assert (t2.action, t2.reason) == ("resolved", "")
    assert [m["reason"] for m in r.pub.alerts("al/")] == [None, None]
    r.sink.stop()


def test_removed_rule_ends_pending_shelved_and_hidden_alerts(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("pending", Level.ORANGE, sensor=0, rule="gone")
    r.sig("firing", Level.RED, sensor=1, rule="gone")
    shelved = next(a for a in r.sink.open_alerts() if a.sensor == "CH4-02")
    r.sink.shelve(shelved.id, "li", "known leak", 3600)
    pending = next(a for a in r.sink.open_alerts() if a.sensor == "CH4-01")
    r.sink.reloaded([removed("gone")], r.ctx())
    assert r.sink.wait_idle()
    stored = r.sink.store.get(pending.id)
    assert stored is not None and stored.state is AlertState.CLOSED
    assert stored.note == "ended while pending (never fired): rule_removed"
    (still,) = r.sink.open_alerts()
    assert (still.id, still.state, still.active) == (shelved.id, AlertState.SHELVED, False)
    hist = r.sink.store.transitions(still.id)
    assert (hist[-1].action, hist[-1].reason, hist[-1].muted) == (
        "resolved", "rule_removed", "shelved",
    )  # fmt: skip
    assert r.sink.close(still.id, "li", "rule retired").state is AlertState.CLOSED
    r.sink.stop()


def test_detector_removal_ends_only_detector_alerts(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.YELLOW, sensor=0, rule="level", source=SignalSource.DETECTOR)
    r.sig("firing", Level.ORANGE, sensor=1, rule="level")  # a rule of the same name
    r.sink.reloaded([removed("level", source=SignalSource.DETECTOR)], r.ctx())
    assert r.sink.wait_idle()
    states = {(a.source, a.sensor): a.state for a in r.sink.open_alerts()}
    assert states == {
        ("detector", "CH4-01"): AlertState.RESOLVED,
        ("rule", "CH4-02"): AlertState.FIRING,
    }
    r.sink.stop()


def test_unwatched_subject_ends_with_its_reason(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.ORANGE, sensor=1, rule="ch4")
    end = Signal("ch4", 1, r.clock.now_ns(), SignalState.RESOLVED, None, math.nan, math.nan,
                 "m1/face1/CH4-02: rule ch4 was changed by a reload and no longer watches it",
                 reason=EndReason.UNWATCHED)  # fmt: skip
    r.sink.reloaded([StageReload("rules", RULES, changed=("ch4",), ended=(end,))], r.ctx())
    assert r.sink.wait_idle()
    a = r.only()
    assert (a.state, r.sink.store.transitions(a.id)[-1].reason) == (
        AlertState.RESOLVED, "unwatched",
    )  # fmt: skip
    r.sink.stop()


def test_reason_survives_a_restart_of_the_sink(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.RED, rule="gone")
    r.sink.reloaded([removed("gone")], r.ctx())
    assert r.sink.wait_idle()
    r.sink.stop()
    r.sink = r.new_sink()
    a = r.only()
    assert a.state is AlertState.RESOLVED
    assert r.sink.store.transitions(a.id)[-1].reason == "rule_removed"
    r.sink.stop()
