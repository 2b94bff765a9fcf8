"""The alert sink over time with a manual clock, a real SQLite file and a capturing
publisher: every step checks the exact state and the exact notifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.alerts.state import AlertState, IllegalTransition
from riskwatch.config.alerts import FlappingConfig, InhibitRule, NotifierConfig
from riskwatch.model import Level
from tests.unit.alerts.helpers import T0, Rig, S


def test_one_alert_escalates_in_level_acked_resolved_closed(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.ORANGE, value=1.1)
    r.clock.advance(10)
    r.sig("firing", Level.RED, value=1.6)
    r.sig("firing", Level.RED, value=1.7)  # dedup: same state and level
    a = r.only()
    assert (a.state, a.level, a.max_level) == (AlertState.FIRING, 1, 1)
    with pytest.raises(IllegalTransition, match="still active"):
        r.sink.close(a.id, "li", "done")
    r.sink.ack(a.id, "li", "on my way")
    r.clock.advance(30)
    r.sig("resolved", value=0.8)
    assert (r.only().state, r.only().acked) == (AlertState.RESOLVED, True)
    with pytest.raises(ValueError, match="disposition note"):
        r.sink.close(a.id, "li", " ")
    r.sink.close(a.id, "li", "ventilation restored, fan 2 restarted")
    assert r.sink.wait_idle()
    assert r.sink.open_alerts() == []
    assert r.sent() == [
        ("firing", "firing", "orange"),
        ("level", "firing", "red"),
        ("ack", "acknowledged", "red"),
        ("resolved", "resolved", None),
        ("close", "closed", "red"),
    ]
    hist = r.sink.store.transitions(a.id)
    assert [(t.action, t.from_state, t.to_state, t.who) for t in hist] == [
        ("firing", None, "firing", "engine"),
        ("level", "firing", "firing", "engine"),
        ("ack", "firing", "acknowledged", "li"),
        ("resolved", "acknowledged", "resolved", "engine"),
        ("close", "resolved", "closed", "li"),
    ]
    assert hist[1].value == 1.6 and hist[-1].note == "ventilation restored, fan 2 restarted"
    stored = r.sink.store.get(a.id)
    assert stored is not None and stored.state is AlertState.CLOSED
    assert stored.closed_ns == T0 + 40 * S
    msgs = r.pub.alerts()
    assert {m["id"] for m in msgs} == {a.id}
    assert msgs[0]["ts"] == T0 // 1_000_000 and msgs[0]["since"] == T0 // 1_000_000
    assert msgs[0]["enterprise"] == "m1" and msgs[0]["sensor"] == "CH4-01"
    r.sink.stop()


def test_pending_that_clears_is_closed_and_pending_promotes(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("pending")
    a = r.only()
    assert a.state is AlertState.PENDING
    r.sig("resolved")
    assert r.sink.open_alerts() == []
    assert r.sink.store.get(a.id).note == "cleared while pending (never fired)"  # type: ignore[union-attr]
    r.sig("pending")
    r.sig("firing")
    assert r.only().state is AlertState.FIRING
    assert [x[0] for x in r.sent()] == ["pending", "resolved", "pending", "firing"]
    r.sink.stop()


def test_escalation_by_tier_with_a_manual_clock(tmp_path: Path) -> None:
    r = Rig(tmp_path, escalate_after_s={"orange": 60.0}, max_tier=2, notify=[
        NotifierConfig(kind="mqtt", topic="al/{enterprise}"),
        NotifierConfig(kind="mqtt", name="shift-lead", topic="boss/{enterprise}", min_tier=1),
    ])  # fmt: skip
    r.sig("firing")
    r.tick(59)
    assert r.sent() == [("firing", "firing", "orange")]
    r.tick(1)  # 60 s unacknowledged -> tier 1, the shift lead hears it
    r.tick(59)
    r.tick(1)  # 120 s -> tier 2
    r.tick(600)  # max_tier reached: no more escalation
    a = r.only()
    assert a.tier == 2
    boss = [(m["action"], m["tier"]) for t, p, q, ret in r.pub.sent if t == "boss/m1"
            for m in [__import__("orjson").loads(p)]]  # fmt: skip
    assert boss == [("escalate", 1), ("escalate", 2)]
    r.sink.ack(a.id, "li")
    assert r.sink.wait_idle()
    assert [x[0] for x in r.sent()] == ["firing", "escalate", "escalate", "ack"]
    notes = [t.note for t in r.sink.store.transitions(a.id) if t.action == "escalate"]
    assert notes == ["unacknowledged for 60 s; tier 1", "unacknowledged for 120 s; tier 2"]
    r.sink.stop()


def test_repeat_while_unacknowledged_only(tmp_path: Path) -> None:
    r = Rig(tmp_path, escalate_after_s={}, repeat_interval_s=300.0)
    r.sig("firing")
    r.tick(299)
    r.tick(1)
    r.tick(300)
    r.sink.ack(r.only().id, "li")
    r.tick(3000)
    assert [x[0] for x in r.sent()] == ["firing", "repeat", "repeat", "ack"]
    r.sink.stop()


def test_flapping_notified_once_until_it_settles(tmp_path: Path) -> None:
    r = Rig(tmp_path, flapping=FlappingConfig(window_s=100.0, high=3, low=1))
    for _ in range(5):
        r.sig("firing")
        r.clock.advance(5)
        r.sig("resolved")
        r.clock.advance(5)
    a = r.only()
    assert a.flapping
    # the 3rd activation is notified as "flapping" (state firing); the rest is muted
    assert r.sent() == [("firing", "firing", "orange"), ("resolved", "resolved", None),
                        ("firing", "firing", "orange"), ("resolved", "resolved", None),
                        ("flapping", "firing", "orange")]  # fmt: skip
    muted = [t.muted for t in r.sink.store.transitions(a.id)]
    assert muted.count("flapping") == 6
    r.tick(100)  # activations at +20, +30, +40 s; at +150 s none left within 100 s
    assert not r.only().flapping
    assert r.sent()[-1] == ("settled", "resolved", "orange")
    r.sink.stop()


def test_inhibition_mutes_lower_alerts_of_the_site_and_they_come_back(tmp_path: Path) -> None:
    rule = InhibitRule(source={"rule": ["power_off"]}, target={"rule": ["~ch4|co"]})
    r = Rig(tmp_path, inhibit=[rule])
    r.sig("firing", Level.RED, sensor=0, rule="power_off")
    r.sig("firing", Level.ORANGE, sensor=1, rule="ch4")  # same site: muted
    r.sig("firing", Level.ORANGE, sensor=r.reg.lookup(["m1/face2/"], ["CH4-01"])[0], rule="ch4")
    assert [(m["rule"], m["site"]) for m in r.pub.alerts()] == [("power_off", "face1"),
                                                                 ("ch4", "face2")]  # fmt: skip
    muted = [a for a in r.sink.open_alerts() if a.undelivered]
    assert [(a.rule, a.sensor, a.site) for a in muted] == [("ch4", "CH4-02", "face1")]
    assert r.sink.store.transitions(muted[0].id)[0].muted == "inhibited"
    r.sig("resolved", sensor=0, rule="power_off")
    r.tick(1)  # the muted alert is still firing: now it is notified
    assert [(m["rule"], m["action"]) for m in r.pub.alerts()][-2:] == [("power_off", "resolved"),
                                                                        ("ch4", "unmuted")]  # fmt: skip
    r.sink.stop()


def test_lower_only_inhibition(tmp_path: Path) -> None:
    r = Rig(tmp_path, inhibit=[InhibitRule(lower_only=True)])
    r.sig("firing", Level.RED, sensor=0, rule="a")
    r.sig("firing", Level.RED, sensor=1, rule="b")  # same level: not muted
    r.sig("firing", Level.YELLOW, sensor=2, rule="c")  # lower: muted
    assert [m["rule"] for m in r.pub.alerts()] == ["a", "b"]
    r.sink.stop()


def test_silence_mutes_until_expired(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    s = r.sink.add_silence({"site": ["face1"], "rule": ["ch4"]}, "wang", "calibration",
                           ends_ns=T0 + 600 * S)  # fmt: skip
    r.sig("firing", sensor=0)
    r.sig("firing", sensor=r.reg.lookup(["m2/pit/"], ["CH4-01"])[0])
    assert [m["enterprise"] for m in r.pub.alerts()] == ["m2"]
    muted = next(a for a in r.sink.open_alerts() if a.enterprise == "m1")
    assert r.sink.store.transitions(muted.id)[0].muted == f"silence:{s.id}"
    r.tick(300)
    assert len(r.pub.alerts()) == 1
    r.sink.expire_silence(s.id)
    r.tick(1)
    assert [(m["enterprise"], m["action"]) for m in r.pub.alerts()][-1] == ("m1", "unmuted")
    with pytest.raises(ValueError, match="at least one matcher"):
        r.sink.add_silence({}, "wang", "x", ends_ns=T0 + 10**12)
    with pytest.raises(ValueError, match="unknown matcher key"):
        r.sink.add_silence({"plant": ["x"]}, "wang", "x", ends_ns=T0 + 10**12)
    assert [x.author for x in r.sink.store.silences()] == ["wang"]
    r.sink.stop()


def test_shelve_expires_and_out_of_service(tmp_path: Path) -> None:
    r = Rig(tmp_path, escalate_after_s={"orange": 60.0})
    r.sig("firing")
    a = r.only()
    with pytest.raises(ValueError, match="needs a reason"):
        r.sink.shelve(a.id, "li", "", 60)
    r.sink.shelve(a.id, "li", "known leak, crew on site", 120)
    r.tick(100)  # shelved: no escalation
    r.sig("resolved")
    assert r.only().state is AlertState.SHELVED
    r.tick(20)
    assert r.only().state is AlertState.RESOLVED
    r.sink.out_of_service(a.id, "li", "sensor swap")
    r.sig("firing")
    assert (r.only().state, r.only().active) == (AlertState.OUT_OF_SERVICE, True)
    r.sink.return_to_service(a.id, "li")
    assert r.sink.wait_idle()
    assert r.only().state is AlertState.FIRING
    # condition changes while hidden are recorded, not annunciated
    assert r.sent() == [("firing", "firing", "orange"), ("shelve", "shelved", "orange"),
                        ("unshelve", "resolved", "orange"),
                        ("out_of_service", "out_of_service", "orange"),
                        ("return_to_service", "firing", "orange")]  # fmt: skip
    muted = [(t.action, t.muted) for t in r.sink.store.transitions(a.id) if t.muted]
    assert muted == [("resolved", "shelved"), ("firing", "out_of_service")]
    r.sink.stop()


def test_restart_restores_open_alerts_timers_and_sends_nothing_twice(tmp_path: Path) -> None:
    r = Rig(tmp_path, escalate_after_s={"orange": 60.0})
    r.sig("firing", sensor=0)
    r.sig("firing", sensor=1)
    r.sig("pending", sensor=2, rule="co")
    by_sensor = {(a.rule, a.sensor): a for a in r.sink.open_alerts()}
    r.sink.ack(by_sensor["ch4", "CH4-02"].id, "li")
    r.sink.shelve(by_sensor["ch4", "CH4-01"].id, "li", "test", 3600)
    assert r.sink.wait_idle()
    before = {(a.id, a.state, a.acked, a.fired_ns) for a in r.sink.open_alerts()}
    n_sent = len(r.pub.sent)
    r.sink.stop()
    r.sink = r.new_sink()
    assert r.sink.wait_idle()
    assert {(a.id, a.state, a.acked, a.fired_ns) for a in r.sink.open_alerts()} == before
    assert len([x for x in r.pub.sent[n_sent:] if not x[3]]) == 0  # only retained summaries
    r.sig("firing", sensor=1)  # dedup against the restored acknowledged alert
    r.sig("firing", sensor=2, rule="co")  # pending -> firing of the restored alert
    r.tick(60)  # escalation timer restored: CH4-02 is acknowledged, CO fired 60 s ago
    assert [(m["rule"], m["action"]) for m in r.pub.alerts()][-2:] == [
        ("co", "firing"),
        ("co", "escalate"),
    ]
    assert len(r.sink.open_alerts()) == 3
    r.tick(3600)  # shelving expiry restored too
    assert by_sensor["ch4", "CH4-01"].id in {
        a.id for a in r.sink.open_alerts() if a.state is AlertState.FIRING
    }
    r.sink.stop()


def test_retained_summary_per_site(tmp_path: Path) -> None:
    r = Rig(tmp_path, notify=[NotifierConfig(kind="mqtt", summary_topic="sum/{enterprise}/{site}")])
    r.sig("firing", Level.RED, sensor=0)
    r.sig("firing", Level.YELLOW, sensor=1, rule="co")
    summ = r.pub.retained()["sum/m1/face1"]
    assert (summ["open"], summ["by_level"], [a["level"] for a in summ["alerts"]]) == (
        2, {"red": 1, "yellow": 1}, ["red", "yellow"])  # fmt: skip
    r.sink.stop()


def test_replayed_signals_the_alert_moved_past_are_skipped_lost_ones_recorded(
    tmp_path: Path,
) -> None:
    """Durable engine state replays the journal at start: a signal older than the open
    alert's last transition was recorded before the restart (skipped, not re-sent); one the
    crash lost (newer) is recorded once; a repeat of the current state is dedup."""
    from riskwatch.model import Signal, SignalState

    r = Rig(tmp_path)

    def s(t: int, state: SignalState, level: Level | None) -> Signal:
        return Signal("ch4", 0, T0 + t * S, state, level, 1.2, 1.0, f"ch4 {state}")

    fired, resolved = s(1, SignalState.FIRING, Level.RED), s(5, SignalState.RESOLVED, None)
    r.sink.handle([fired, resolved], r.ctx())
    assert r.sink.wait_idle()
    r2 = r.new_sink()  # the restarted engine's sink: restores the resolved alert
    r.sink.stop()
    r.sink = r2
    lost = s(9, SignalState.FIRING, Level.ORANGE)
    # fired (t=1) is older than the alert's last transition (t=5): skipped; resolved (t=5)
    # is the alert's own state: handed on and dedup; lost (t=9) is recorded
    assert r.sink.replay([fired, resolved, lost], r.ctx()) == 1
    assert r.sink.replay([lost], r.ctx()) == 0  # same state again: dedup in handle
    assert r.sink.wait_idle()
    assert r.sent() == [("firing", "firing", "red"), ("resolved", "resolved", None),
                        ("firing", "firing", "orange")]  # fmt: skip
