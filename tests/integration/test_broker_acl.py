"""Identity comes from the broker: under the shipped Mosquitto ACL (``riskwatch config
sample mosquitto/riskwatch.acl``) a gateway account may publish only under its own
enterprise, so entA cannot clear entB's firing methane alarm; and a payload whose
``gateway`` contradicts its topic is dead-lettered (``topic_mismatch``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.config.cli import bundled_root
from riskwatch.config.engine import load_engine_config
from riskwatch.engine import Engine
from tests.conftest import free_port, wait_tcp
from tests.integration.spine_helpers import Collector, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

RULES = """
rules:
  - name: ch4_now
    match: {sensor: "CH4-*"}
    levels:
      - {level: red, above: 1.5}
"""
ACCOUNTS = {"riskwatch": "engine-pw", "entA": "a-pw", "entB": "b-pw"}


@pytest.fixture
def acl_broker() -> Iterator[int]:
    """A Mosquitto with passwords and the bundled ACL file, as shipped."""
    wd = Path(tempfile.mkdtemp(prefix="rw-mosq-acl-"))
    for i, (user, pw) in enumerate(ACCOUNTS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(wd / "pw"),
                        user, pw], check=True)  # fmt: skip
    port = free_port()
    acl = bundled_root() / "mosquitto" / "riskwatch.acl"
    (wd / "m.conf").write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {wd}/pw\nacl_file {acl}\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(wd / "m.conf")], stderr=open(wd / "log", "wb"))
    wait_tcp("127.0.0.1", port)
    yield port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(wd, ignore_errors=True)


def send(port: int, user: str, topic: str, payload: dict) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique(f"{user}-"))
    c.username_pw_set(user, ACCOUNTS[user])
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def test_a_foreign_enterprise_cannot_clear_an_alarm_and_payloads_cannot_lie(
    tmp_path: Path, acl_broker: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = acl_broker
    monkeypatch.setenv("RW_TEST_ACL_PW", ACCOUNTS["riskwatch"])
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "engine.yaml").write_text(
        f"mqtt: {{url: 'mqtt://127.0.0.1:{port}', client_id: {unique('rw-')}, username: riskwatch,"
        f" password_env: RW_TEST_ACL_PW}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp_path}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, deadletter: {{file: '{tmp_path}/dl.jsonl', topic: null}}}}\n"
        f"metrics: {{listen: null}}\nrules: ['{tmp_path}/rules.yaml']\n"
        f"alerts: {{store: '{tmp_path}/alerts.sqlite', topic: 'rw-alerts/{{enterprise}}'}}\n"
    )
    watcher = Collector("127.0.0.1", port, "rw-alerts/#")  # anonymous: refused by the broker
    eng = Engine(load_engine_config(tmp_path / "engine.yaml"))
    eng.start()
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        t = now_ms() - 5_000
        send(port, "entB", "rw/entB/face1/gw1", {"sensor": "CH4-1", "ts": t, "value": 2.0})
        wait_for(lambda: len(eng.sink.open_alerts()) == 1, 20, "entB's red methane alarm")
        # entA writes a low reading on entB's topic: the broker drops it (ACL)
        send(port, "entA", "rw/entB/face1/gw1", {"sensor": "CH4-1", "ts": t + 1000, "value": 0.1})
        # entA on its own topic: accepted, so the engine was listening all along
        send(port, "entA", "rw/entA/face1/gw1", {"sensor": "CH4-9", "ts": t + 1000, "value": 0.2})
        wait_for(lambda: eng.readings_total >= 2, 20, "entA's own reading")
        time.sleep(0.5)
        assert eng.readings_total == 2
        [alert] = eng.sink.open_alerts()
        assert alert.enterprise == "entB" and alert.state.value == "firing"
        # a payload naming another gateway than its topic: dead-lettered, not evaluated
        send(port, "entB", "rw/entB/face1/gw1",
             {"gateway": "gw2", "ts": t + 2000, "readings": [{"sensor": "CH4-1", "value": 0.1}]})  # fmt: skip
        wait_for(lambda: (tmp_path / "dl.jsonl").exists()
                 and "topic_mismatch" in (tmp_path / "dl.jsonl").read_text(), 20,
                 "the topic_mismatch dead letter")  # fmt: skip
        assert len(eng.sink.open_alerts()) == 1
        assert watcher.messages == []  # an anonymous client reads nothing
    finally:
        eng.stop()
        watcher.close()
        os.environ.pop("RW_TEST_ACL_PW", None)
