"""End to end: a methane series published through real Mosquitto crosses the alarm,
power-off and restore levels of the bundled coal-mine pack, and the engine publishes the
right alert transitions on the MQTT alert topic."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.engine import Engine
from tests.integration.spine_helpers import (
    NOW_MS,
    Collector,
    Publisher,
    engine_yaml,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))


def test_methane_alarm_power_off_restore_on_the_alert_topic(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("rwr")
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "mine1,face1,CH4-T1,ch4,%,working_face,GW-1,10,0,4\n"
    )
    extra = (
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{PACK}']\n"
        f"alerts: {{topic: '{root}-alerts/{{enterprise}}'}}\n"
    )
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root, influx=None, extra=extra)
    alerts = Collector(*mqtt_addr, f"{root}-alerts/#")
    pub = Publisher(*mqtt_addr)
    eng = Engine(load_engine_config(cfg))
    eng.start()
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        t0 = NOW_MS - 120_000
        series = [0.5, 0.8, 1.1, 1.3, 1.6, 1.2, 1.0, 0.9, 0.6]
        for i, v in enumerate(series):
            pub.send(
                f"{root}/mine1/face1/GW-1", {"sensor": "CH4-T1", "ts": t0 + i * 10_000, "value": v}
            )

        def face() -> list[dict]:
            return [m for m in alerts.json() if m["rule"] == "ch4_face"]

        wait_for(lambda: len(face()) >= 3, timeout=20, what="three ch4_face transitions")
        got = [(m["state"], m["level"], m["value"], m["threshold"], m["ts"]) for m in face()]
        assert got == [
            ("firing", "orange", 1.1, 1.0, t0 + 20_000),  # alarm >= 1.0
            ("firing", "red", 1.6, 1.5, t0 + 40_000),  # power-off >= 1.5
            ("resolved", None, 0.9, 1.0, t0 + 70_000),  # restore < 1.0 (1.2 and 1.0 stay red)
        ]
        first = face()[0]
        assert (first["enterprise"], first["site"], first["sensor"]) == ("mine1", "face1", "CH4-T1")
        assert first["message"] == "mine1/face1/CH4-T1: ch4 1.1 % >= alarm 1 % [ch4_face, firing]"
        topics = {t for t, p in alerts.messages if b"ch4_face" in p}
        assert topics == {f"{root}-alerts/mine1"}
    finally:
        eng.stop()
        pub.close()
        alerts.close()
