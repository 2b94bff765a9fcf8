"""kill -9 of the whole engine (``riskwatch run``, its process group) with an open firing
alert, an acknowledged one and a pending one; a restarted engine restores all three with
their ids and states, re-sends nothing, and carries on with the same alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import free_port
from tests.integration.spine_helpers import Collector, Publisher, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

RULES = """
rules:
  - name: ch4_slow
    match: {kind: ch4, location: upper_corner}
    for: 1h
    levels:
      - {level: orange, above: 1.0}
  - name: ch4_now
    match: {kind: ch4, location: working_face}
    levels:
      - {level: orange, above: 1.0}
      - {level: red, above: 1.5}
"""


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
        env={**os.environ, "RW_TEST_CRASH_TOKEN": "crash-secret"},
    )  # fmt: skip


def _kill9(p: subprocess.Popen[bytes]) -> None:
    os.killpg(p.pid, signal.SIGKILL)  # the engine and its MQTT receiver process
    p.wait(10)


def test_engine_kill9_restores_alerts_without_duplicates(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("rwc")
    port = free_port()
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "m1,face1,F1,ch4,%,working_face,GW-1,3600,0,4\n"
        "m1,face1,F2,ch4,%,working_face,GW-1,3600,0,4\n"
        "m1,face1,C1,ch4,%,upper_corner,GW-1,3600,0,4\n"
    )
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(
        f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_addr[1]}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp_path}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, deadletter: {{file: '{tmp_path}/dl.jsonl', topic: null}}}}\n"
        "metrics: {listen: null}\n"
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{tmp_path}/rules.yaml']\n"
        f"alerts:\n  topic: '{root}-al/{{enterprise}}'\n"
        f"  api: {{listen: '127.0.0.1:{port}', tokens: [{{name: ops, token_env: RW_TEST_CRASH_TOKEN}}]}}\n"
    )
    col = Collector(*mqtt_addr, f"{root}-al/#")
    pub = Publisher(*mqtt_addr)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                       headers={"Authorization": "Bearer crash-secret"}, timeout=5)  # fmt: skip

    def api_up() -> bool:
        try:
            r = api.get("/healthz")  # up, and the engine's MQTT client connected
            return r.status_code == 200 and r.json() == {"status": "ok"}
        except httpx.HTTPError:
            return False

    last_ts = [0]

    def send(sensor: str, value: float) -> None:
        # strictly increasing event times: two readings of one sensor in the same
        # millisecond would be a duplicate (quality stage), which rules skip
        last_ts[0] = max(now_ms(), last_ts[0] + 1)
        pub.send(f"{root}/m1/face1/GW-1", {"sensor": sensor, "ts": last_ts[0], "value": value})

    def msgs() -> list[dict]:
        return [orjson.loads(p) for _, p in col.messages]

    p = _start(cfg, tmp_path / "engine.log")
    try:
        wait_for(api_up, timeout=30, what="engine API")
        send("F1", 1.2)
        send("F2", 1.6)
        send("C1", 1.2)
        wait_for(lambda: len(msgs()) == 3, timeout=20, what="3 alert messages")
        f2 = next(m["id"] for m in msgs() if m["sensor"] == "F2")
        assert api.post(f"/api/v1/alerts/{f2}/ack", json={"by": "Li"}).status_code == 200
        wait_for(lambda: len(msgs()) == 4, timeout=10, what="the ack on MQTT")
        before = {(a["id"], a["sensor"], a["state"])
                  for a in api.get("/api/v1/alerts", params={"open": "true"}).json()["items"]}  # fmt: skip
        assert {(s, st) for _, s, st in before} == {
            ("F1", "firing"), ("F2", "acknowledged"), ("C1", "pending")}  # fmt: skip
        _kill9(p)

        p = _start(cfg, tmp_path / "engine.log")
        wait_for(api_up, timeout=30, what="restarted engine API")
        after = {(a["id"], a["sensor"], a["state"])
                 for a in api.get("/api/v1/alerts", params={"open": "true"}).json()["items"]}  # fmt: skip
        assert after == before
        # the restarted rule engine has no memory: it fires again for F1 and F2, which the
        # sink deduplicates against the restored alerts; then F2 clears and the restored,
        # acknowledged alert resolves
        send("F1", 1.3)
        send("F2", 1.7)
        send("F2", 0.5)
        wait_for(lambda: len(msgs()) >= 5, timeout=20, what="the resolve after restart")
        got = [(m["sensor"], m["action"], m["state"]) for m in msgs()]
        assert got == [
            ("F1", "firing", "firing"), ("F2", "firing", "firing"), ("C1", "pending", "pending"),
            ("F2", "ack", "acknowledged"), ("F2", "resolved", "resolved"),
        ]  # fmt: skip
        events = [m["event"] for m in msgs()]
        assert len(set(events)) == len(events)
        assert msgs()[-1]["id"] == f2
    finally:
        if p.poll() is None:
            _kill9(p)
        pub.close()
        col.close()
