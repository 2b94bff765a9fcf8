"""The sensor chart's history comes from InfluxDB when the engine stores there: with a
one-reading in-memory window the console still returns every stored reading (the window
only adds readings newer than the last stored one)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import httpx
import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.console.users import UserStore
from riskwatch.engine import Engine
from tests.integration.spine_helpers import Publisher, engine_yaml, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))


def test_sensor_series_from_influx(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> None:
    root, db = unique("rwci"), unique("c_")
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "mine1,face1,CH4-T1,ch4,%,working_face,GW-1,10,0,4\n"
    )
    UserStore(tmp_path / "users.json").add("li", "pw-123456", "viewer", ["mine1"])
    extra = (
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{PACK}']\n"
        f"alerts: {{topic: '{root}-alerts/{{enterprise}}'}}\n"
        f"console: {{listen: '127.0.0.1:0', users: '{tmp_path}/users.json', window_readings: 1}}\n"
    )
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}", extra=extra)  # fmt: skip
    eng = Engine(load_engine_config(cfg))
    eng.start()
    pub = Publisher(*mqtt_addr)
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        t0 = now_ms() - 60_000
        vals = [0.3, 0.5, 0.7, 0.6]
        for i, v in enumerate(vals):
            pub.send(f"{root}/mine1/face1/GW-1",
                     {"sensor": "CH4-T1", "ts": t0 + i * 10_000, "value": v})  # fmt: skip
        c = httpx.Client(base_url=str(eng.console_url))
        assert c.post("/api/login", json={"name": "li", "password": "pw-123456"}).status_code == 200

        def series() -> dict:
            return c.get("/api/sensors/mine1/face1/CH4-T1?minutes=5").json()

        wait_for(lambda: len(series()["t"]) == 4, timeout=15, what="four stored readings")
        d = series()
        assert d["source"] == "influx"
        assert d["v"] == vals
        assert d["t"] == [t0 + i * 10_000 for i in range(4)]
        assert len(eng.console.window.series(eng.registry.id_of("mine1/face1/CH4-T1"))[0]) == 1
    finally:
        pub.close()
        eng.stop()
