"""Alarm-system health figures, group (compound-rule) alerts, and retention, with exact
numbers over a manual clock."""

from __future__ import annotations

from pathlib import Path

from riskwatch.alerts.health import HealthTracker
from riskwatch.alerts.state import Alert, AlertState
from riskwatch.model import Level, Signal
from tests.unit.alerts.helpers import T0, Rig, S


def _alert(aid: str, fired_ns: int, active: bool = True) -> Alert:
    return Alert(aid, f"r|{aid}", "r", "m1", "face1", aid, None, "ch4", "rule",
                 AlertState.FIRING, active, False, 2, 2, 1.0, 1.0, "", fired_ns, fired_ns,
                 fired_ns, fired_ns=fired_ns)  # fmt: skip


def test_health_per_site_and_console() -> None:
    h = HealthTracker({"north": {"site": ["face1"]}, "south": {"site": ["face9"]}})
    lab = {"enterprise": "m1", "site": "face1"}
    # key a: 3 annunciations within 60 s (chattering); key b: 3 spread over 3 minutes
    for t in (0, 20, 50):
        h.annunciate(lab, "a", T0 + t * S)
    for t in (0, 90, 180):
        h.annunciate(lab, "b", T0 + t * S)
    h.annunciate(lab, "c", T0 + 200 * S)
    for secs in (10, 20, 30, 40, 100):
        h.acknowledged(lab, secs, T0 + 300 * S)
    now = T0 + 25 * 3600 * S  # a day later: the annunciations of day 1 are gone
    stale = _alert("old", T0)  # active for 25 h
    fresh = _alert("new", now - S)
    snap = h.snapshot(T0 + 601 * S, [stale, fresh])  # 10 min + 1 s after the first ones
    site = snap["sites"]["m1/face1"]
    assert site["alarms_10min"] == 5  # the three at t=0 are out of the 10-minute window
    assert site["flood"] is False
    assert site["chattering"] == ["a"]
    assert site["time_to_ack_s"] == {"p50": 30.0, "p90": 76.0, "p99": 97.6, "n": 5}
    assert site["top10"] == [{"key": "a", "count": 3}, {"key": "b", "count": 3},
                             {"key": "c", "count": 1}]  # fmt: skip
    assert snap["consoles"]["north"]["alarms_10min"] == 5
    assert snap["consoles"]["south"]["alarms_10min"] == 0
    later = h.snapshot(now, [stale, fresh])
    assert later["sites"]["m1/face1"]["stale"] == ["old"]
    assert later["sites"]["m1/face1"]["alarms_10min"] == 0


def test_group_alert_key_and_labels(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    s = Signal("feed_anomaly", -1, r.clock.now_ns(), "firing", Level.RED, 2.0, 2.0,
               "feed anomaly", group="m1/face1/CH4-01")  # fmt: skip
    r.sink.handle([s], r.ctx())
    assert r.sink.wait_idle()
    a = r.only()
    assert (a.key, a.enterprise, a.site, a.sensor, a.group) == (
        "feed_anomaly|m1/face1/CH4-01", "m1", "face1", "", "m1/face1/CH4-01")  # fmt: skip
    assert r.pub.alerts()[0]["group"] == "m1/face1/CH4-01"
    r.sink.stop()


def test_retention_deletes_old_closed_alerts_only(tmp_path: Path) -> None:
    r = Rig(tmp_path, retention_days=1.0)
    r.sig("firing", sensor=0)
    r.sig("resolved", sensor=0)
    old = r.sink.store.query()[1][0].id
    r.sink.close(old, "li", "checked")
    r.sig("firing", sensor=1)  # stays open
    r.tick(3600)  # first retention pass: nothing is a day old yet
    assert r.sink.store.query()[0] == 2
    r.tick(24 * 3600)
    total, rows = r.sink.store.query()
    assert total == 1 and rows[0].sensor == "CH4-02"
    assert r.sink.store.transitions(old) == []
    r.sink.stop()
