"""``riskwatch demo`` end to end, as a user runs it: with its embedded fallbacks (no
broker, no database) and with the real Mosquitto and InfluxDB. Each run must show
alerts within its first minute and stop cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from riskwatch.console.users import UserStore
from tests.integration.spine_helpers import Collector

pytestmark = pytest.mark.integration


def run_demo_until_alerts(args: list[str], workdir: Path, n_alerts: int = 3) -> tuple[str, int]:
    """Start the demo, wait for ``n_alerts`` ALERT lines (at most 90 s), send SIGINT and
    return (all output, exit status)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "demo", "--workdir", str(workdir),
         "--metrics", "127.0.0.1:0", "--summary-every", "2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: list[str] = []
    alerts = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sum(ln.lstrip().startswith("ALERT ") for ln in lines) >= n_alerts:
                alerts.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        alerts.wait(90)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    return "".join(lines), rc


def first_alert_s(out: str) -> int:
    line = next(ln for ln in out.splitlines() if ln.startswith("stopped cleanly"))
    return int(line.split("first alert after ")[1].split(" s")[0])


def test_demo_with_embedded_broker_and_store(tmp_path: Path) -> None:
    out, rc = run_demo_until_alerts(["--embedded-broker"], tmp_path, n_alerts=2)
    assert rc == 0, out
    assert "(embedded (amqtt))" in out and "embedded local store" in out
    port = out.split("MQTT broker:   mqtt://127.0.0.1:")[1].split(" ")[0]
    assert f"mosquitto_sub -h 127.0.0.1 -p {port} -t 'rw-demo-alerts/#' -v" in out
    assert "readings on rw-demo/<enterprise>/<site>/<gateway>" in out
    assert first_alert_s(out) < 60, out
    assert "open alerts: " in out and "stopped cleanly" in out
    # the run left its artefacts: readings in the local store, alerts, labels, config
    lp = (tmp_path / "readings.lp").read_text()
    assert lp.count("\nreading,") > 20
    assert "alert," in lp
    labels = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert {"ch4_buildup", "gas_leak", "tank_overfill"} <= {x["type"] for x in labels}
    assert (tmp_path / "var" / "alerts.sqlite").exists()
    assert "riskwatch run -c engine.yaml" in (tmp_path / "engine.yaml").read_text()
    # the console's demo user is an operator of the simulated enterprises, not an admin of all
    demo = UserStore(tmp_path / "var" / "console-users.json").get("demo")
    assert demo is not None and demo.role == "operator"
    assert demo.enterprises and "*" not in demo.enterprises
    assert "(user demo, operator, password " in out


def test_demo_with_mosquitto_and_influxdb(
    mqtt_addr: tuple[str, int], influx_v1_url: str, tmp_path: Path
) -> None:
    db = f"rwdemo{os.getpid()}"
    alerts = Collector(*mqtt_addr, "rw-demo-alerts/#")  # the demo's own alert topics
    try:
        out, rc = run_demo_until_alerts(
            ["--mqtt", f"mqtt://{mqtt_addr[0]}:{mqtt_addr[1]}", "--influx", influx_v1_url,
             "--influx-db", db],
            tmp_path,
        )  # fmt: skip
    finally:
        alerts.close()
    assert rc == 0, out
    assert alerts.messages and all(t.startswith("rw-demo-alerts/") for t, _ in alerts.messages)
    assert f"InfluxDB {influx_v1_url} database {db}" in out
    assert first_alert_s(out) < 60, out

    def count(measurement: str) -> int:
        q = urllib.parse.urlencode({"db": db, "q": f"SELECT count(*) FROM {measurement}"})
        with urllib.request.urlopen(f"{influx_v1_url}/query?{q}", timeout=10) as r:
            res = json.load(r)["results"][0]
        if "series" not in res:
            return 0
        return int(max(v for v in res["series"][0]["values"][0][1:] if v is not None))

    deadline = time.monotonic() + 10
    while count("reading") == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert count("reading") > 20
    assert count("alert") >= 3
    q = urllib.parse.urlencode({"q": f'DROP DATABASE "{db}"'})
    urllib.request.urlopen(urllib.request.Request(f"{influx_v1_url}/query?{q}", method="POST"))
