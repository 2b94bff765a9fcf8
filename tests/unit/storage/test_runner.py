"""The storage runner with a scripted writer (a fake of the writer, not of the runner)."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import StorageError
from riskwatch.metrics import StorageMetrics
from riskwatch.model import Batch
from riskwatch.storage.lineproto import LineEncoder
from riskwatch.storage.runner import StorageRunner
from riskwatch.storage.spool import Spool


class ScriptedWriter:
    url = "scripted://"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail: StorageError | None = None
        self.lock = threading.Lock()

    def write(self, body: bytes, n_points: int) -> None:
        with self.lock:
            if self.fail is not None:
                raise self.fail
            self.bodies.append(body)

    def close(self) -> None:
        pass

    def values(self) -> list[float]:
        out = []
        for b in self.bodies:
            for line in b.decode().splitlines():
                out.append(float(line.split(" ")[1].split(",")[0].split("=")[1]))
        return out


def make(
    tmp_path: Path, writer: ScriptedWriter, max_bytes: int = 10_000_000
) -> tuple[StorageRunner, Spool, SensorRegistry]:
    reg = SensorRegistry()
    reg.intern("e", "s", ["a"])
    spool = Spool(tmp_path / "spool", max_bytes)
    r = StorageRunner(
        writer,
        LineEncoder(reg),
        spool,
        StorageMetrics(CollectorRegistry()),
        retry_initial_s=0.05,
        retry_max_s=0.1,
    )
    return r, spool, reg


def batch(v: float, t: int) -> Batch:
    return Batch.from_arrays([t], [0], [v])


def test_written_then_acked_in_order(tmp_path: Path) -> None:
    w = ScriptedWriter()
    r, _, _ = make(tmp_path, w)
    acks: list[int] = []
    r.start()
    for i in range(5):
        r.submit(batch(float(i), i + 1), lambda i=i: acks.append(i))
    r.stop()
    assert acks == [0, 1, 2, 3, 4]
    assert w.values() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_outage_spools_then_replays_in_order(tmp_path: Path) -> None:
    w = ScriptedWriter()
    r, spool, _ = make(tmp_path, w)
    acks: list[int] = []
    r.start()
    w.fail = StorageError("down", retryable=True)
    for i in range(3):
        r.submit(batch(float(i), i + 1), lambda i=i: acks.append(i))
    assert r.idle.wait(5)
    assert acks == [0, 1, 2]  # durable on disk, so acknowledged
    assert len(spool) == 3 and w.bodies == []
    w.fail = None
    r.submit(batch(3.0, 4), lambda: acks.append(3))
    r.stop()
    assert w.values() == [0.0, 1.0, 2.0, 3.0]
    assert len(spool) == 0


def test_rejected_batch_goes_to_dead_letter_not_retried(tmp_path: Path) -> None:
    w = ScriptedWriter()
    rejected: list[bytes] = []
    reg = SensorRegistry()
    reg.intern("e", "s", ["a"])
    r = StorageRunner(
        w,
        LineEncoder(reg),
        Spool(tmp_path, 10**6),
        StorageMetrics(CollectorRegistry()),
        on_reject=lambda body, exc: rejected.append(body),
    )
    w.fail = StorageError("bad", retryable=False, status=400)
    acks: list[int] = []
    r.start()
    r.submit(batch(1.0, 1), lambda: acks.append(1))
    r.stop()
    assert acks == [1]
    assert len(rejected) == 1 and b"value=1.0" in rejected[0]


def test_spool_survives_restart(tmp_path: Path) -> None:
    w = ScriptedWriter()
    w.fail = StorageError("down", retryable=True)
    r, _, _ = make(tmp_path, w)
    r.start()
    r.submit(batch(9.0, 1))
    assert r.idle.wait(5)
    r.stop()
    w2 = ScriptedWriter()
    r2, spool2, _ = make(tmp_path, w2)
    r2.start()
    r2.stop()
    assert w2.values() == [9.0]
    assert len(spool2) == 0


def test_large_batches_are_chunked(tmp_path: Path) -> None:
    w = ScriptedWriter()
    reg = SensorRegistry()
    reg.intern("e", "s", ["a"])
    r = StorageRunner(
        w, LineEncoder(reg), None, StorageMetrics(CollectorRegistry()), write_max_points=4
    )
    r.start()
    r.submit(Batch.from_arrays(list(range(1, 11)), [0] * 10, [float(i) for i in range(10)]))
    r.stop()
    assert [len(b.splitlines()) for b in w.bodies] == [4, 4, 2]
