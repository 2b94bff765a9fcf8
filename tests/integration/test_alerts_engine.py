"""The alert sink inside the real engine: methane readings through Mosquitto open, escalate
and resolve one alert; an operator closes it through the API the engine serves
(``alerts.api.listen``); every transition is also an ``alert`` point in InfluxDB."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import httpx
import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.engine import Engine
from tests.integration.spine_helpers import (
    NOW_MS,
    Collector,
    Publisher,
    engine_yaml,
    influx_query,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))


def test_engine_alert_lifecycle_api_and_influx(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> None:
    root, db = unique("rwe"), unique("t_")
    os.environ["RW_TEST_ENGINE_TOKEN"] = "engine-secret"
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "mine1,face1,CH4-T1,ch4,%,working_face,GW-1,10,0,4\n"
    )
    extra = (
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{PACK}']\n"
        f"alerts:\n  topic: '{root}-alerts/{{enterprise}}'\n"
        f"  api: {{listen: '127.0.0.1:0', tokens: [{{name: ops, token_env: RW_TEST_ENGINE_TOKEN}}]}}\n"
    )
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}", extra=extra)  # fmt: skip
    alerts = Collector(*mqtt_addr, f"{root}-alerts/#")
    pub = Publisher(*mqtt_addr)
    eng = Engine(load_engine_config(cfg))
    eng.start()
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        assert (tmp_path / "var" / "alerts.sqlite").exists()  # default store, next to the config
        t0 = NOW_MS - 120_000
        for i, v in enumerate([0.5, 1.1, 1.6, 0.9]):
            pub.send(f"{root}/mine1/face1/GW-1",
                     {"sensor": "CH4-T1", "ts": t0 + i * 10_000, "value": v})  # fmt: skip

        def face() -> list[dict]:
            return [m for m in alerts.json() if m["rule"] == "ch4_face"]

        wait_for(lambda: len(face()) >= 3, timeout=20, what="three ch4_face transitions")
        assert [(m["action"], m["state"], m["level"]) for m in face()] == [
            ("firing", "firing", "orange"), ("level", "firing", "red"),
            ("resolved", "resolved", None)]  # fmt: skip
        aid = face()[0]["id"]
        assert {m["id"] for m in face()} == {aid}
        url = eng.api_url
        assert url is not None
        c = httpx.Client(base_url=url, headers={"Authorization": "Bearer engine-secret"})
        r = c.post(f"/api/v1/alerts/{aid}/close", json={"note": "power restored, face ventilated"})
        assert r.status_code == 200, r.text
        wait_for(lambda: len(face()) >= 4, timeout=10, what="the close on MQTT")
        assert face()[3]["by"] == "ops" and face()[3]["state"] == "closed"
    finally:
        eng.stop()
        pub.close()
        alerts.close()

    def points() -> list[dict]:
        try:
            return influx_query(influx_v1_url, db,
                                "SELECT * FROM alert WHERE \"rule\" = 'ch4_face'")  # fmt: skip
        except OSError:
            return []

    wait_for(lambda: len(points()) >= 4, timeout=20, what="4 alert points in InfluxDB")
    got = [(p["action"], p["state"], p["level"], p["alert_level"], p["sensor"], p["id"])
           for p in points()]  # fmt: skip
    # an ended alarm is level=none (a red panel must not count it); alert_level keeps red
    assert got == [
        ("firing", "firing", "orange", "orange", "CH4-T1", aid),
        ("level", "firing", "red", "red", "CH4-T1", aid),
        ("resolved", "resolved", "none", "red", "CH4-T1", aid),
        ("close", "closed", "none", "red", "CH4-T1", aid),
    ]
