"""Killing the engine with SIGKILL mid-stream loses no reading; SIGTERM flushes everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.spine_helpers import (
    Publisher,
    engine_yaml,
    influx_count,
    influx_query,
    now_ms,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration

N_MSGS = 300
PER_MSG = 100


def spawn(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def publish_stream(pub: Publisher, root: str, start: int, n_msgs: int, pace_s: float) -> None:
    t0 = now_ms() - 200_000
    for m in range(start, start + n_msgs):
        k = m * PER_MSG
        pub.send(
            f"{root}/mine1/face{m % 3}/gw",
            {
                "gateway": "gw",
                "ts": t0,
                "readings": [
                    {"sensor": f"S{i % 50}", "ts": t0 + i, "value": float(i)}
                    for i in range(k, k + PER_MSG)
                ],
            },
        )
        time.sleep(pace_s)


def test_sigkill_mid_stream_loses_nothing(
    tmp_path: Path, private_mosquitto, influx_v1_url: str
) -> None:
    broker = private_mosquitto()
    root, db = unique("rwk"), unique("t_")
    cfg = engine_yaml(tmp_path, mqtt_port=broker.port, root=root, client_id=unique("rw-crash-"),
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}")  # fmt: skip
    log = tmp_path / "engine.log"
    eng = spawn(cfg, log)
    pub = Publisher("127.0.0.1", broker.port)
    try:
        # the engine's persistent session must exist before the stream starts
        wait_for(lambda: b"subscribed" in log.read_bytes(), what="engine subscribed")
        sender = threading.Thread(target=publish_stream, args=(pub, root, 0, N_MSGS, 0.01))
        sender.start()
        wait_for(lambda: influx_count(influx_v1_url, db) > 2_000, what="some readings stored")
        eng.send_signal(signal.SIGKILL)
        eng.wait(10)
        stored_at_kill = influx_count(influx_v1_url, db)
        sender.join(60)
        assert stored_at_kill < N_MSGS * PER_MSG, "the kill must happen mid-stream"
        eng = spawn(cfg, log)
        wait_for(lambda: influx_count(influx_v1_url, db) == N_MSGS * PER_MSG, timeout=60,
                 what=f"all {N_MSGS * PER_MSG} readings after restart")  # fmt: skip
        values = sorted(
            r["value"] for r in influx_query(influx_v1_url, db, "SELECT value FROM reading")
        )
        assert values == [float(i) for i in range(N_MSGS * PER_MSG)]
    finally:
        pub.close()
        if eng.poll() is None:
            eng.kill()
            eng.wait(10)


def test_sigterm_flushes_and_exits_cleanly(
    tmp_path: Path, private_mosquitto, influx_v1_url: str
) -> None:
    broker = private_mosquitto()
    root, db = unique("rwt"), unique("t_")
    cfg = engine_yaml(tmp_path, mqtt_port=broker.port, root=root, client_id=unique("rw-term-"),
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}",
                      extra="")  # fmt: skip
    # a 5 s batch window that the input going quiet does not cut short (batch_idle_ms: 0)
    cfg.write_text(
        cfg.read_text().replace(
            "batch_max_wait_ms: 50", "batch_max_wait_ms: 5000\n  batch_idle_ms: 0"
        )
    )
    log = tmp_path / "engine.log"
    eng = spawn(cfg, log)
    pub = Publisher("127.0.0.1", broker.port)
    try:
        wait_for(lambda: b"subscribed" in log.read_bytes(), what="engine subscribed")
        publish_stream(pub, root, 0, 5, 0.0)
        time.sleep(0.5)
        assert influx_count(influx_v1_url, db) == 0  # still inside the 5 s batch window
        os.kill(eng.pid, signal.SIGTERM)
        assert eng.wait(30) == 0
        assert influx_count(influx_v1_url, db) == 5 * PER_MSG
        assert b"stopped; 500 readings processed" in log.read_bytes()
    finally:
        pub.close()
        if eng.poll() is None:
            eng.kill()
