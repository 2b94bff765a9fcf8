"""The event-time policy in a real ``riskwatch run`` over Mosquitto, with the coal pack.

(a) a gateway clock 290 s fast: its reading does not hide the true readings after it
    (the 2.0 % CH4 raises power-off) and raises the gateway clock alert, with metrics;
(b) an out-of-order dangerous reading raises;
(c) a late low reading does not clear a firing alarm (the next in-order one does).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest

from tests.integration.spine_helpers import Collector, Publisher, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))
TOKEN = "t15time-secret"


def _port() -> int:
    """A free port in this test's range (21000-21999)."""
    for p in random.sample(range(21000, 22000), 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError("no free port in 21000-21999")


class Rig:
    def __init__(self, root: str, api: httpx.Client, metrics_url: str, pub: Publisher,
                 col: Collector) -> None:  # fmt: skip
        self.root, self.api, self.metrics_url, self.pub, self.col = root, api, metrics_url, pub, col

    def send(self, gateway: str, sensor: str, ts: int, value: float) -> None:
        self.pub.send(f"{self.root}/m1/f2/{gateway}", {"sensor": sensor, "ts": ts, "value": value})

    def alerts(self, rule: str, sensor: str | None = None, group: str | None = None) -> list[dict]:
        return [m for m in self.col.json() if m["rule"] == rule
                and (sensor is None or m["sensor"] == sensor)
                and (group is None or m["group"] == group)]  # fmt: skip

    def metric(self, line_start: str) -> float | None:
        text = httpx.get(self.metrics_url, timeout=5).text
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    host, _, port_s = os.environ.get("RW_TEST_MQTT", "127.0.0.1:1883").rpartition(":")
    mqtt_port = int(port_s)
    tmp = tmp_path_factory.mktemp("t15time")
    root = unique("t15time")
    api_port, metrics_port = _port(), _port()
    while metrics_port == api_port:
        metrics_port = _port()
    (tmp / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "m1,f2,CH4-F2-T0,ch4,%,upper_corner,gw-a,3600,0,4\n"
        "m1,f2,CH4-F2-T1,ch4,%,working_face,gw-b,3600,0,4\n"
        "m1,f2,CH4-F2-S1,ch4,%,shearer,gw-c,3600,0,4\n"
    )
    cfg = tmp / "engine.yaml"
    cfg.write_text(
        f"mqtt: {{url: 'mqtt://{host}:{mqtt_port}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
        f"metrics: {{listen: '127.0.0.1:{metrics_port}'}}\n"
        f"catalog: ['{tmp}/catalog.csv']\nrules: ['{PACK}']\n"
        f"alerts:\n  topic: '{root}-al/{{enterprise}}'\n  store: '{tmp}/alerts.sqlite'\n"
        f"  api: {{listen: '127.0.0.1:{api_port}', tokens: [{{name: ops, token_env: RW_T15TIME_TOKEN}}]}}\n"
    )
    log = open(tmp / "engine.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        env={**os.environ, "RW_T15TIME_TOKEN": TOKEN},
    )  # fmt: skip
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}",
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip

    def up() -> bool:
        try:
            r = api.get("/healthz")
            return r.status_code == 200 and r.json() == {"status": "ok"}
        except httpx.HTTPError:
            return False

    col = Collector(host, mqtt_port, f"{root}-al/#")
    pub = Publisher(host, mqtt_port)
    try:
        wait_for(up, timeout=40, what="the engine API")
        yield Rig(root, api, f"http://127.0.0.1:{metrics_port}/metrics", pub, col)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        pub.close()
        col.close()
        log.close()


def test_a_fast_gateway_clock_does_not_hide_methane(rig: Rig) -> None:
    now = now_ms()
    rig.send("gw-a", "CH4-F2-T0", now + 290_000, 0.3)  # a gateway clock 290 s fast
    time.sleep(0.3)
    for i in range(3):  # then the true readings, each stamped correctly
        rig.send("gw-a", "CH4-F2-T0", now_ms() + i, 2.0)
        time.sleep(0.1)
    wait_for(lambda: rig.alerts("ch4_face", "CH4-F2-T0"), timeout=20, what="the ch4_face alert")
    first = rig.alerts("ch4_face", "CH4-F2-T0")[0]
    assert (first["action"], first["state"], first["level"], first["value"]) == (
        "firing", "firing", "red", 2.0)  # fmt: skip
    # the gateway clock alert, and the skew per gateway as metrics
    wait_for(lambda: rig.alerts("gateway_clock_skew", group="m1/f2/gw-a"), timeout=10,
             what="the gateway clock alert")  # fmt: skip
    skew = rig.alerts("gateway_clock_skew", group="m1/f2/gw-a")
    assert (skew[0]["action"], skew[0]["level"]) == ("firing", "yellow")
    assert skew[0]["value"] == pytest.approx(290, abs=2)
    # the true readings after it resolved the gateway alert
    wait_for(lambda: len(rig.alerts("gateway_clock_skew", group="m1/f2/gw-a")) >= 2, timeout=10,
             what="the gateway clock alert resolved")  # fmt: skip
    assert rig.alerts("gateway_clock_skew", group="m1/f2/gw-a")[1]["action"] == "resolved"
    assert rig.metric('riskwatch_clock_skew_readings_total{gateway="m1/f2/gw-a"}') == 1.0
    gauge = rig.metric('riskwatch_gateway_clock_skew_seconds{gateway="m1/f2/gw-a"}')
    assert gauge is not None and -5 < gauge < 2  # the latest reading's (true) clock
    # the alert store holds the alarm too
    items = rig.api.get("/api/v1/alerts", params={"open": "true"}).json()["items"]
    assert ("ch4_face", "CH4-F2-T0", "firing", "red") in {
        (a["rule"], a["sensor"], a["state"], a["level"]) for a in items}  # fmt: skip


def test_an_out_of_order_dangerous_reading_raises(rig: Rig) -> None:
    now = now_ms()
    rig.send("gw-b", "CH4-F2-T1", now, 0.3)
    time.sleep(0.5)  # its own batch: the watermark is now
    rig.send("gw-b", "CH4-F2-T1", now - 60_000, 2.0)  # a buffered reading, a minute old
    wait_for(lambda: rig.alerts("ch4_face", "CH4-F2-T1"), timeout=20, what="the ch4_face alert")
    got = [(m["action"], m["level"], m["value"]) for m in rig.alerts("ch4_face", "CH4-F2-T1")]
    assert got == [("firing", "red", 2.0)]
    assert "out-of-order reading" in rig.alerts("ch4_face", "CH4-F2-T1")[0]["message"]


def test_a_late_low_reading_does_not_clear_a_firing_alarm(rig: Rig) -> None:
    now = now_ms()
    rig.send("gw-c", "CH4-F2-S1", now, 1.7)
    wait_for(lambda: rig.alerts("ch4_face", "CH4-F2-S1"), timeout=20, what="the ch4_face alert")
    rig.send("gw-c", "CH4-F2-S1", now - 30_000, 0.2)  # late, below restore
    rig.send("gw-c", "CH4-F2-S1", now + 120_000, 0.2)  # from a fast clock, below restore
    time.sleep(2.0)
    assert [m["action"] for m in rig.alerts("ch4_face", "CH4-F2-S1")] == ["firing"]
    # the next in-order reading below restore clears it, as the regulation says
    rig.send("gw-c", "CH4-F2-S1", now_ms(), 0.2)
    wait_for(lambda: len(rig.alerts("ch4_face", "CH4-F2-S1")) >= 2, timeout=20,
             what="the resolution")  # fmt: skip
    assert [m["action"] for m in rig.alerts("ch4_face", "CH4-F2-S1")] == ["firing", "resolved"]
