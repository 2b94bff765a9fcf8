"""Durable engine state over the real Mosquitto with real ``riskwatch run`` processes:
a latched power-off stays red across kill -9 at 1.2 % CH4 and clears only below the restore
value; a pending ``for`` keeps its start; and an engine killed (kill -9) in the middle of a
run publishes exactly the alert transitions an uninterrupted engine publishes for the same
input. The state folder is the default one (``var/state`` beside the config)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.spine_helpers import Collector, Publisher, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

PREFIX = "t15state"

RULES = """
rules:
  - name: ch4_face
    match: {kind: ch4, location: working_face}
    levels:
      - {level: orange, label: alarm, above: 1.0}
      - {level: red, label: power-off, above: 1.5, clear_below: 1.0}
  - name: ch4_corner_slow
    match: {kind: ch4, location: upper_corner}
    for: 3s
    levels:
      - {level: orange, above: 1.0}
"""

CATALOG = (
    "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
    "m1,face1,F1,ch4,%,working_face,GW-1,3600,0,10\n"
    "m1,face1,C1,ch4,%,upper_corner,GW-1,3600,0,10\n"
)


def _port() -> int:
    """A free port of this test file's range (22100-22199)."""
    for port in range(22100, 22200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 22100-22199")


class Engine:
    """One engine folder (config, rules, catalogue, alert store, state) and its process."""

    def __init__(self, tmp: Path, mqtt_port: int) -> None:
        self.tmp = tmp
        self.root = unique(PREFIX)
        self.api_port = _port()
        (tmp / "rules.yaml").write_text(RULES)
        (tmp / "catalog.csv").write_text(CATALOG)
        self.cfg = tmp / "engine.yaml"
        self.cfg.write_text(
            f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_port}', client_id: {self.root},"
            f" topics: ['{self.root}/#'],"
            f" topic_template: '{self.root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
            f"storage: {{influx: null, spool_dir: '{tmp}/spool'}}\n"
            f"ingest: {{batch_max_wait_ms: 50, tick_ms: 100,"
            f" deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
            "metrics: {listen: null}\n"
            "state: {snapshot_every: 2s}\n"
            f"catalog: ['{tmp}/catalog.csv']\nrules: ['{tmp}/rules.yaml']\n"
            f"alerts:\n  topic: '{self.root}-al/{{enterprise}}'\n"
            f"  api: {{listen: '127.0.0.1:{self.api_port}',"
            f" tokens: [{{name: ops, token_env: RW_TEST_STATE_TOKEN}}]}}\n"
        )
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=5,
                                headers={"Authorization": "Bearer state-secret"})  # fmt: skip
        self.p: subprocess.Popen[bytes] | None = None
        self.log = tmp / "engine.log"

    def start(self) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(self.cfg)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"), start_new_session=True,
            env={**os.environ, "RW_TEST_STATE_TOKEN": "state-secret"},
        )  # fmt: skip
        wait_for(self._up, timeout=40, what="engine API")

    def _up(self) -> bool:
        assert self.p is not None
        if self.p.poll() is not None:
            raise AssertionError(f"engine exited:\n{self.log.read_text()[-3000:]}")
        try:
            r = self.api.get("/healthz")
            return r.status_code == 200 and r.json() == {"status": "ok"}
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.p is not None
        os.killpg(self.p.pid, signal.SIGKILL)  # the engine and its MQTT receiver process
        self.p.wait(10)
        self.p = None

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
        self.p = None

    def open_alerts(self) -> list[dict]:
        return self.api.get("/api/v1/alerts", params={"open": "true"}).json()["items"]


def _transitions(col: Collector) -> list[tuple[str, str, str, str | None]]:
    return [(m["sensor"], m["action"], m["state"], m["level"])
            for m in (orjson.loads(p) for _, p in col.messages)]  # fmt: skip


def test_latched_power_off_stays_red_across_kill9_and_clears_below_restore(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    eng = Engine(tmp_path, mqtt_addr[1])
    col = Collector(*mqtt_addr, f"{eng.root}-al/#")
    pub = Publisher(*mqtt_addr)
    t = [now_ms() - 60_000]

    def send(sensor: str, value: float, step_ms: int = 1000) -> None:
        t[0] += step_ms
        pub.send(f"{eng.root}/m1/face1/GW-1", {"sensor": sensor, "ts": t[0], "value": value})

    try:
        eng.start()
        send("F1", 1.6)
        send("C1", 1.2)  # pending: for 3s starts at this reading's time
        wait_for(lambda: len(_transitions(col)) == 2, timeout=20, what="red and pending")
        assert _transitions(col) == [("F1", "firing", "firing", "red"),
                                     ("C1", "pending", "pending", "orange")]  # fmt: skip
        time.sleep(0.5)  # its acks (the journal is fsynced before them)
        eng.kill9()

        eng.start()
        log = eng.log.read_text()
        assert "state: restored from" in log or "state: journal replayed" in log
        send("F1", 1.2)  # above the restore value: the power-off latch holds
        send("C1", 1.3, step_ms=3000)  # 3 s after the pending start: for is met
        wait_for(lambda: len(_transitions(col)) == 3, timeout=20, what="the corner firing")
        time.sleep(1.0)  # nothing else may come: no step down of F1 to orange
        assert _transitions(col)[2:] == [("C1", "firing", "firing", "orange")]
        f1 = next(a for a in eng.open_alerts() if a["sensor"] == "F1")
        assert (f1["state"], f1["level"]) == ("firing", "red")
        send("F1", 0.9)  # below restore: clears, as the rule says
        wait_for(lambda: len(_transitions(col)) == 4, timeout=20, what="F1 resolved")
        assert _transitions(col)[3] == ("F1", "resolved", "resolved", None)
    finally:
        eng.stop()
        pub.close()
        col.close()


INPUT: list[tuple[str, float]] = [
    ("F1", 0.4), ("C1", 0.3), ("F1", 1.2), ("F1", 1.6), ("C1", 1.1), ("F1", 1.3),
    ("C1", 1.2), ("F1", 1.1), ("C1", 1.4), ("F1", 0.8), ("C1", 0.5), ("F1", 1.7),
    ("F1", 1.2), ("C1", 1.5), ("C1", 1.6), ("F1", 0.6), ("C1", 0.4),
]  # fmt: skip


def _feed(eng: Engine, pub: Publisher, base_ms: int, items: range, col: Collector) -> None:
    for i in items:
        sensor, value = INPUT[i]
        pub.send(f"{eng.root}/m1/face1/GW-1",
                 {"sensor": sensor, "ts": base_ms + 2000 * i, "value": value})  # fmt: skip
    time.sleep(0.3)


def _run(tmp: Path, mqtt_addr: tuple[str, int], base_ms: int, kill_after: int | None) -> list:
    eng = Engine(tmp, mqtt_addr[1])
    col = Collector(*mqtt_addr, f"{eng.root}-al/#")
    pub = Publisher(*mqtt_addr)
    try:
        eng.start()
        if kill_after is None:
            _feed(eng, pub, base_ms, range(len(INPUT)), col)
        else:
            _feed(eng, pub, base_ms, range(kill_after), col)
            eng.kill9()  # maybe before its last acks: the broker redelivers those
            eng.start()
            _feed(eng, pub, base_ms, range(kill_after, len(INPUT)), col)
        n = [-1]

        def settled() -> bool:  # no new transition for a second
            k = len(col.messages)
            if k == n[0]:
                return True
            n[0] = k
            return False

        time.sleep(1.0)
        wait_for(settled, timeout=30, what="alert messages settled")
        time.sleep(1.0)
        return _transitions(col)
    finally:
        eng.stop()
        pub.close()
        col.close()


@pytest.mark.parametrize("kill_after", [5, 12])
def test_kill9_mid_run_gives_the_uninterrupted_alert_sequence(
    tmp_path: Path, mqtt_addr: tuple[str, int], kill_after: int
) -> None:
    base = now_ms() - 60_000
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want = _run(tmp_path / "a", mqtt_addr, base, None)
    got = _run(tmp_path / "b", mqtt_addr, base, kill_after)
    assert ("F1", "firing", "firing", "red") in want  # the input does latch red
    assert got == want
