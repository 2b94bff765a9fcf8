"""Hot reload inside a running engine: editing the rule file swaps the rule set (a changed
rule takes over what its predecessor had active), and a broken edit is rejected while the
running set keeps working."""

from __future__ import annotations

import logging
import os
import time
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

RULES = "rules:\n  - {name: hot, match: {kind: temp}, level: orange, above: THRESHOLD}\n"


def write_rules(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a visible mtime change


def test_rule_file_edit_is_picked_up_and_broken_edit_rejected(
    tmp_path: Path, mqtt_addr: tuple[str, int], caplog
) -> None:
    caplog.set_level(logging.INFO)
    root = unique("rwh")
    rules = tmp_path / "rules.yaml"
    write_rules(rules, RULES.replace("THRESHOLD", "50"))
    (tmp_path / "catalog.csv").write_text("enterprise,site,sensor,kind,unit\nm1,s1,T1,temp,C\n")
    extra = (
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{rules}']\n"
        f"alerts: {{topic: '{root}-alerts/{{enterprise}}'}}\n"
    )
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root, influx=None, extra=extra)
    cfg.write_text(cfg.read_text().replace("ingest:\n", "ingest:\n  reload_check_s: 0.2\n"))
    alerts = Collector(*mqtt_addr, f"{root}-alerts/#")
    pub = Publisher(*mqtt_addr)
    eng = Engine(load_engine_config(cfg))
    eng.start()
    topic = f"{root}/m1/s1/GW"
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        pub.send(topic, {"sensor": "T1", "ts": NOW_MS - 30_000, "value": 40})
        assert eng.wait_idle(10)
        assert alerts.json() == []  # 40 < 50
        write_rules(rules, RULES.replace("THRESHOLD", "35"))
        wait_for(lambda: "changed (active subjects taken over): hot" in caplog.text, 10, "the reload log line")
        pub.send(topic, {"sensor": "T1", "ts": NOW_MS - 20_000, "value": 40})
        wait_for(lambda: len(alerts.json()) == 1, 10, "an alert under the new threshold")
        assert [(m["rule"], m["state"], m["threshold"]) for m in alerts.json()] == [
            ("hot", "firing", 35.0)
        ]
        write_rules(rules, RULES.replace("above: THRESHOLD", "abov: 10"))
        wait_for(lambda: "reload of rules rejected" in caplog.text, 10, "the rejection")
        assert "rules.yaml:2:53: rules[0].abov: unknown key" in caplog.text
        time.sleep(0.3)
        pub.send(topic, {"sensor": "T1", "ts": NOW_MS - 10_000, "value": 20})  # running set
        wait_for(lambda: len(alerts.json()) == 2, 10, "the resolve from the kept rule set")
        assert alerts.json()[1]["state"] == "resolved"
    finally:
        eng.stop()
        pub.close()
        alerts.close()
