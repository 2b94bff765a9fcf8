"""Hostile and odd input against a real ``riskwatch run`` (real Mosquitto and InfluxDB 1.x).

Poison messages that once killed the engine thread (and, being never acknowledged, killed
it again after every restart) are dead-lettered with their reason and acknowledged; the good
readings around them are stored. A full disk under the spool is backpressure, logged as
SPOOL FULL, and SIGTERM still stops the engine promptly; what was not durable stays
unacknowledged and arrives after a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
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

POISON = [
    (b"[" * 10_000 + b"]" * 10_000, "too_deep"),
    (b'{"sensor":"P1","ts":%d,"value":' + b"9" * 400 + b"}", "number_out_of_range"),
    (b'{"sensor":"P2","ts":"9999-12-31T23:59:59+00:00","value":1}', "absurd_timestamp"),
    (b'{"sensor":"X\\ud800","ts":%d,"value":1}', "bad_text"),
    (b'{"sensor":"P3","ts":%d,"value":1,"kind":"ch4\\udfff"}', "bad_text"),
]


def _run(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
    )  # fmt: skip


def _stop(p: subprocess.Popen[bytes], timeout: float = 30) -> int:
    os.killpg(p.pid, signal.SIGTERM)
    return p.wait(timeout)


@pytest.fixture
def publisher(mqtt_addr: tuple[str, int]) -> Iterator[Publisher]:
    p = Publisher(*mqtt_addr)
    yield p
    p.close()


def test_poison_messages_are_dead_lettered_and_good_readings_flow(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str, publisher: Publisher
) -> None:
    root, db = unique("rwh"), unique("t_")
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}")  # fmt: skip
    log = tmp_path / "engine.log"
    eng = _run(cfg, log)
    try:
        wait_for(lambda: "subscribed to" in log.read_text(), 30, "the engine to subscribe")
        topic = f"{root}/e/s/gw"
        t = now_ms() - 10_000
        for i in range(150):  # good readings before, between and after every poison message
            publisher.send(topic, {"sensor": f"G{i % 3}", "ts": t + i, "value": float(i)})
            if i % 30 == 15:
                body, _ = POISON[i // 30]
                publisher.send(topic, body % t if b"%d" in body else body)
        wait_for(lambda: influx_count(influx_v1_url, db) >= 150, 60, "150 good readings stored")
        assert eng.poll() is None, log.read_text()[-3000:]
        values = sorted(r["value"] for r in influx_query(influx_v1_url, db, "SELECT value FROM reading"))
        assert values == [float(i) for i in range(150)]
        records = [json.loads(x) for x in (tmp_path / "deadletter.jsonl").read_text().splitlines()]
        assert [r["reason"] for r in records] == [reason for _, reason in POISON]
        assert records[3]["field"] == "sensor" and records[4]["field"] == "kind"
        assert "Traceback" not in log.read_text()
        assert _stop(eng) == 0
        # acknowledged: a restart sees none of them again, and goes on
        eng = _run(cfg, log)
        wait_for(lambda: log.read_text().count("subscribed to") == 2, 30, "the restart")
        publisher.send(topic, {"sensor": "G0", "ts": t + 1000, "value": 1000.0})
        wait_for(lambda: influx_count(influx_v1_url, db) >= 151, 30, "the reading after restart")
        records = (tmp_path / "deadletter.jsonl").read_text().splitlines()
        assert len(records) == len(POISON)
    finally:
        if eng.poll() is None:
            _stop(eng)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only: mount)."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)],
                       capture_output=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_disk_is_backpressure_and_sigterm_still_stops(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str, publisher: Publisher,
    small_disk: Path,
) -> None:  # fmt: skip
    root, db = unique("rwd"), unique("t_")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: InfluxDB is down
    cid = unique("rw-")  # the same client id (persistent session) across both runs
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root, client_id=cid,
                      influx=f"{{url: '{down}', database: {db}}}")  # fmt: skip
    cfg.write_text(cfg.read_text().replace(f"spool_dir: {tmp_path}/spool", f"spool_dir: {small_disk}/spool"))
    log = tmp_path / "engine.log"
    eng = _run(cfg, log)
    topic = f"{root}/e/s/gw"
    t = now_ms() - 60_000
    n_msgs, per = 120, 50  # ~6000 points, ~0.5 MB of line protocol: twice the disk
    try:
        wait_for(lambda: "subscribed to" in log.read_text(), 30, "the engine to subscribe")
        for m in range(n_msgs):
            publisher.send(topic, [{"sensor": f"S{j}", "ts": t + m, "value": float(m)}
                                   for j in range(per)])  # fmt: skip
        wait_for(lambda: "SPOOL FULL" in log.read_text(), 60, "SPOOL FULL in the log")
        assert "disk full" in log.read_text()
        assert eng.poll() is None, "the engine died on a full disk"
        t0 = time.monotonic()
        assert _stop(eng, timeout=60) == 0
        assert time.monotonic() - t0 < 45
        assert "not durable and stays unacknowledged" in log.read_text()
        assert "Traceback" not in log.read_text()
        # InfluxDB back: the spool replays, the broker redelivers what was not acknowledged
        cfg.write_text(cfg.read_text().replace(down, influx_v1_url))
        eng = _run(cfg, log)
        wait_for(lambda: influx_count(influx_v1_url, db) >= n_msgs * per, 90,
                 "every reading stored after the restart")  # fmt: skip
        assert influx_count(influx_v1_url, db) == n_msgs * per
    finally:
        if eng.poll() is None:
            _stop(eng)
