"""The operator lifecycle through the real HTTP API (uvicorn on loopback) and the CLI:
list, show with history, acknowledge, shelve, close with a note, silences, health;
unauthorised and out-of-scope calls refused; bad input answered with a clear 4xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from riskwatch.alerts.api import ApiServer
from riskwatch.alerts.sink import AlertSink
from riskwatch.catalog import SensorRegistry
from riskwatch.cli import main as cli_main
from riskwatch.clock import ManualClock
from riskwatch.config.alerts import AlertsApiConfig, AlertsConfig, ApiToken, NotifierConfig
from riskwatch.model import Level, Signal
from riskwatch.pipeline import StageContext
from tests.integration.alerts_helpers import PahoPublisher
from tests.integration.spine_helpers import unique

pytestmark = pytest.mark.integration

T0 = 1_795_880_000 * 10**9
TOKENS = {"RW_T_OPS": "ops-secret", "RW_T_M2": "m2-secret", "RW_T_RO": "ro-secret"}


class Rig:
    def __init__(self, tmp: Path, mqtt_addr: tuple[str, int]) -> None:
        os.environ.update(TOKENS)
        self.reg = SensorRegistry()
        self.reg.intern("m1", "face1", ["CH4-01", "CH4-02"])
        self.reg.intern("m2", "pit", ["CH4-01"])
        self.clock = ManualClock(T0)
        self.pub = PahoPublisher(*mqtt_addr)
        self.metrics = CollectorRegistry()
        cfg = AlertsConfig(
            store=str(tmp / "alerts.sqlite"),
            notify=[NotifierConfig(kind="mqtt", topic=unique("rwapi") + "/{enterprise}",
                                   summary_topic=None)],
            api=AlertsApiConfig(listen="127.0.0.1:0", tokens=[
                ApiToken("ops", token_env="RW_T_OPS"),
                ApiToken("m2-only", token_env="RW_T_M2", enterprises=["m2"]),
                ApiToken("viewer", token_env="RW_T_RO", role="read"),
            ]),
        )  # fmt: skip
        self.sink = AlertSink(cfg, self.reg, self.pub, self.metrics, self.clock)
        self.sink.start()
        self.api = ApiServer(self.sink, cfg.api)
        self.api.start()
        assert self.api.url is not None
        self.url = self.api.url

    def sig(self, sensor: int, state: str, level: Level | None = Level.ORANGE) -> None:
        s = Signal("ch4", sensor, self.clock.now_ns(), state, level, 1.2, 1.0, f"CH4 {state}")
        self.sink.handle([s], StageContext(self.clock.now_ns(), self.reg))

    def http(self, token: str | None = "ops-secret") -> httpx.Client:
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=h, timeout=10)

    def close(self) -> None:
        self.api.stop()
        self.sink.stop()
        self.pub.close()


@pytest.fixture
def rig(tmp_path: Path, mqtt_addr: tuple[str, int]) -> Iterator[Rig]:
    r = Rig(tmp_path, mqtt_addr)
    yield r
    r.close()


def test_full_lifecycle_through_the_api(rig: Rig) -> None:
    rig.sig(0, "firing", Level.ORANGE)
    rig.sig(1, "firing", Level.RED)
    rig.sig(2, "firing", Level.YELLOW)
    c = rig.http()
    lst = c.get("/api/v1/alerts", params={"open": "true"}).json()
    assert lst["total"] == 3
    assert [(a["level"], a["sensor"], a["enterprise"]) for a in lst["items"]] == [
        ("red", "CH4-02", "m1"), ("orange", "CH4-01", "m1"), ("yellow", "CH4-01", "m2")]  # fmt: skip
    red = lst["items"][0]["id"]
    only_red = c.get("/api/v1/alerts", params=[("level", "red"), ("site", "face1")]).json()
    assert [a["id"] for a in only_red["items"]] == [red]
    rig.clock.advance(42)
    r = c.post(f"/api/v1/alerts/{red}/ack", json={"note": "crew informed", "by": "Li Wei"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acked_by"] == "Li Wei (token ops)"
    r = c.post(f"/api/v1/alerts/{red}/ack", json={})
    assert r.status_code == 409
    assert r.json()["detail"] == (
        "cannot ack an alert that is acknowledged: it is already acknowledged"
    )
    r = c.post(f"/api/v1/alerts/{red}/close", json={"note": "done"})
    assert r.status_code == 409 and "still active" in r.json()["detail"]
    r = c.post(f"/api/v1/alerts/{red}/shelve", json={"reason": "ventilating", "duration_s": 600})
    assert r.json()["state"] == "shelved"
    assert r.json()["shelved_until"] == (T0 + 642 * 10**9) // 10**6
    c.post(f"/api/v1/alerts/{red}/unshelve", json={})
    rig.sig(1, "resolved", None)
    r = c.post(f"/api/v1/alerts/{red}/close", json={"note": "fan 2 restarted, CH4 0.3 %"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    d = c.get(f"/api/v1/alerts/{red}").json()
    assert [(h["action"], h["to_state"], h["who"]) for h in d["history"]] == [
        ("firing", "firing", "engine"),
        ("ack", "acknowledged", "Li Wei (token ops)"),
        ("shelve", "shelved", "ops"),
        ("unshelve", "acknowledged", "ops"),
        ("resolved", "resolved", "engine"),
        ("close", "closed", "ops"),
    ]
    assert d["note"] == "fan 2 restarted, CH4 0.3 %"
    assert c.get("/api/v1/alerts", params={"state": "closed"}).json()["total"] == 1
    # alarm-system health: one acknowledgement after 42 s
    h = c.get("/api/v1/health").json()
    assert h["sites"]["m1/face1"]["time_to_ack_s"] == {"p50": 42.0, "p90": 42.0, "p99": 42.0,
                                                       "n": 1}  # fmt: skip
    assert h["sites"]["m1/face1"]["alarms_10min"] == 2
    metrics = generate_latest(rig.metrics).decode()
    assert 'riskwatch_alarm_rate_10min{name="m1/face1",scope="site"} 2.0' in metrics
    assert 'riskwatch_alert_notifications_sent_total{notifier="mqtt"}' in metrics
    spec = c.get("/openapi.json").json()
    assert {"/api/v1/alerts", "/api/v1/alerts/{alert_id}/close", "/api/v1/silences"} <= set(
        spec["paths"])  # fmt: skip


def test_auth_and_scope(rig: Rig) -> None:
    rig.sig(0, "firing")
    rig.sig(2, "firing")
    m1 = next(a.id for a in rig.sink.open_alerts() if a.enterprise == "m1")
    r = rig.http(None).get("/api/v1/alerts")
    assert (r.status_code, r.json()["detail"]) == (401, "missing bearer token")
    r = rig.http("nope").get("/api/v1/alerts")
    assert (r.status_code, r.json()["detail"]) == (401, "unknown token")
    m2 = rig.http("m2-secret")
    assert [a["enterprise"] for a in m2.get("/api/v1/alerts").json()["items"]] == ["m2"]
    r = m2.get(f"/api/v1/alerts/{m1}")  # out of scope: the answer an unknown id gets
    assert (r.status_code, r.json()) == (404, {"detail": f"no alert with id {m1!r}"})
    r = m2.post(f"/api/v1/alerts/{m1}/ack", json={})
    assert (r.status_code, r.json()) == (404, {"detail": f"no alert with id {m1!r}"})
    r = m2.get("/api/v1/alerts", params={"enterprise": "m1"})
    assert (r.status_code, r.json()) == (200, {"total": 0, "items": []})
    r = m2.post("/api/v1/silences", json={"matchers": {"site": ["face1"]}, "duration_s": 60,
                                          "reason": "x"})  # fmt: skip
    assert r.status_code == 403 and "may only silence its enterprises" in r.json()["detail"]
    ro = rig.http("ro-secret")
    assert ro.get(f"/api/v1/alerts/{m1}").status_code == 200
    r = ro.post(f"/api/v1/alerts/{m1}/ack", json={})
    assert (r.status_code, r.json()["detail"]) == (403, "token 'viewer' has no 'operate' rights")
    assert rig.sink.open_alerts()[0].acked is False
    assert rig.http(None).get("/healthz").json() == {"status": "ok"}
    assert rig.http(None).get("/openapi.json").status_code == 401


def test_bad_input_is_a_clear_4xx(rig: Rig) -> None:
    rig.sig(0, "firing")
    aid = rig.sink.open_alerts()[0].id
    c = rig.http()

    def err(r: httpx.Response) -> tuple[int, Any]:
        d = r.json()["detail"]
        if isinstance(d, list):
            d = [(e["loc"][-1], e["msg"]) for e in d]
        return r.status_code, d

    assert err(c.post(f"/api/v1/alerts/{aid}/shelve", json={"duration_s": 60})) == (
        422, [("reason", "Field required")])  # fmt: skip
    assert err(c.post(f"/api/v1/alerts/{aid}/shelve", json={"reason": "x", "duration_s": -5})) == (
        422, [("duration_s", "Input should be greater than 0")])  # fmt: skip
    assert err(c.post(f"/api/v1/alerts/{aid}/shelve", json={"reason": "x", "duration_s": 1e9})) == (
        422, "duration_s must be within (0, 86400] seconds")  # fmt: skip
    assert err(c.post(f"/api/v1/alerts/{aid}/close", json={"note": ""})) == (
        422, [("note", "String should have at least 1 character")])  # fmt: skip
    assert err(c.post("/api/v1/alerts/nope/ack", json={})) == (404, "no alert with id 'nope'")
    assert err(c.get("/api/v1/alerts", params={"level": "purple"}))[0] == 422
    assert err(c.get("/api/v1/alerts", params={"limit": 0}))[0] == 422
    r = c.post("/api/v1/silences", json={"matchers": {"plant": ["x"]}, "duration_s": 60,
                                         "reason": "r"})  # fmt: skip
    assert err(r) == (422, "unknown matcher key 'plant' (known: enterprise, site, sensor, group, "
                           "rule, level, kind, source)")  # fmt: skip
    r = c.post("/api/v1/silences", json={"matchers": {"site": ["face1"]}, "reason": "r"})
    assert err(r) == (422, "give exactly one of duration_s or ends")


def test_silences_and_the_cli(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["RW_ALERTS_TOKEN"] = "ops-secret"
    base = ["alerts", "--url", rig.url]
    assert cli_main([*base, "silence", "add", "--match", "enterprise=m1", "--match",
                     "site=face1", "--for", "2h", "--reason", "calibration"]) == 0  # fmt: skip
    sid = capsys.readouterr().out.split()[1]
    rig.sig(0, "firing")
    assert rig.sink.wait_idle()
    t = rig.sink.store.transitions(rig.sink.open_alerts()[0].id)
    assert t[0].muted == f"silence:{sid}"
    assert cli_main([*base, "--json", "silence", "list"]) == 0
    out = capsys.readouterr().out
    assert f'"id": "{sid}"' in out and '"author": "ops"' in out
    assert cli_main([*base, "silence", "expire", sid]) == 0
    assert capsys.readouterr().out.strip() == f"silence {sid} expired"
    assert cli_main([*base, "list", "--open"]) == 0
    out = capsys.readouterr().out.splitlines()
    aid = out[1].split()[0]
    assert out[0].split()[:3] == ["ID", "LEVEL", "STATE"] and out[-1] == "1 alerts"
    assert cli_main([*base, "ack", aid, "--by", "Zhang"]) == 0
    assert capsys.readouterr().out.strip() == f"{aid}: acknowledged"
    assert cli_main([*base, "close", aid, "--note", "x"]) == 1
    assert "409: cannot close an alert that is acknowledged" in capsys.readouterr().err
    assert cli_main([*base, "shelve", aid, "--reason", "r", "--for", "0"]) == 1
    assert "422: duration_s: Input should be greater than 0" in capsys.readouterr().err
    assert cli_main([*base, "show", aid]) == 0
    hist = capsys.readouterr().out
    assert "firing" in hist and "[muted: silence:" in hist and "Zhang (token ops)" in hist
