"""Durable engine state: snapshots, the journal between them, and the restore at start.

What survives a clean stop and a ``kill -9``: the state of every stage that implements
:class:`~riskwatch.state.tree.Durable` (the quality watermarks, the rules' slots,
latches, ``for`` and ``keep_firing_for`` runs, N-of-M histories, change windows, no-data
clocks and compound groups, the detectors' baselines, calibrators and windows).

How (one design, chosen for the ack rule: a message acknowledged to the broker is never
redelivered, so the state its readings changed must be on disk before its ack):

1. *Journal*: every decoded batch is appended to the journal (with the ``now`` it ran
   at) before the stages see it, and every timer tick that changed something after it
   ran. The storage thread fsyncs the journal up to a batch's record before it sends
   that batch's acks (:meth:`EngineState.durable`), one fsync for every batch waiting,
   so the engine thread never waits for the disk.
2. *Snapshot*: every ``state.snapshot_every`` (and after a reload, and at a clean stop)
   the stages' state is copied on the engine thread, a new journal segment starts, and
   a background thread writes the snapshot (atomically) and then deletes the segments
   it covers.
3. *Restore*: at start the snapshot is loaded (sensors by key, rules by name and
   fingerprint, see :class:`~riskwatch.state.tree.SensorMap`) and the journal after it is
   replayed through the same stages at the recorded ``now``; the signals of the replay
   go to the sink's ``replay`` (an alert that already moved past a signal ignores it),
   so a transition lost in the crash is recorded and a stored one is not notified twice.

Readings the broker redelivers after the crash (processed but not yet acknowledged) come
in as duplicates of the restored watermarks and change nothing, as in an uninterrupted
run where a gateway repeats itself.

>>> import tempfile, pathlib
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.model import Batch
>>> from riskwatch.pipeline import Pipeline, StageContext
>>> from riskwatch.quality import QualityStage
>>> d, reg = pathlib.Path(tempfile.mkdtemp()), SensorRegistry()
>>> _ = reg.intern("m", "s", ["A"])
>>> state = EngineState(d, Pipeline([QualityStage()]), reg, snapshot_every_ns=10**12)
>>> _ = state.restore(0, sink=None)
>>> mark = state.record_batch(5, Batch.from_arrays([7], [0], [1.0]))
>>> state.durable(mark)  # the process dies here: the journal holds the batch
>>> q = QualityStage()
>>> again = EngineState(d, Pipeline([q]), SensorRegistry(), snapshot_every_ns=10**12)
>>> again.restore(9, sink=None).batches, q.watermark.tolist()
(1, [7])
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import SnapshotError
from riskwatch.model import Batch, Signal
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.state.journal import Journal, RecordKind, read_segment
from riskwatch.state.snapshot import Snapshot, read_snapshot, write_snapshot
from riskwatch.state.tree import Durable, Restored, Resumes, SensorTable, StateTree

__all__ = ["EngineState", "ReplaysSignals", "RestoreReport"]

log = logging.getLogger("riskwatch.state")

SNAPSHOT_NAME = "state.snap"


@runtime_checkable
class ReplaysSignals(Protocol):
    """A sink that can tell replayed signals it already recorded (the alert sink)."""

    def replay(self, signals: Sequence[Signal], ctx: StageContext) -> int:
        """Apply the signals it has not seen; returns how many it skipped."""
        ...


@dataclass
class RestoreReport:
    """What the start found and did (the log line, and tests)."""

    snapshot: str | None = None  # why there was none, or the file
    age_s: float | None = None
    size_bytes: int = 0
    restored: Restored = field(default_factory=Restored)
    segments: int = 0
    batches: int = 0
    readings: int = 0
    ticks: int = 0
    signals: int = 0
    signals_skipped: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part of the start
    problems: list[str] = field(default_factory=list)


class _Sink(Protocol):
    def handle(self, signals: list[Signal], ctx: StageContext) -> None: ...


class EngineState:
    """The state folder of one engine: restore at start, journal and snapshots after.

    ``background`` writes periodic snapshots on a thread of their own (the engine thread
    only copies the arrays); tests pass False to write them in line.
    """

    def __init__(
        self,
        folder: Path,
        pipeline: Pipeline,
        registry: SensorRegistry,
        *,
        snapshot_every_ns: int,
        fsync: bool = True,
        background: bool = True,
        stopwatch: Any = time.perf_counter,
    ) -> None:
        self.folder = folder
        self.pipeline = pipeline
        self.registry = registry
        self.snapshot_every_ns = snapshot_every_ns
        self.fsync = fsync
        self.journal = Journal(folder, fsync=fsync)
        self._table = SensorTable([])
        self._last_snapshot_ns: int | None = None
        self._tick_recorded = False  # the first tick of a segment is always recorded
        self._last_record_ns: int | None = None  # now of the last journal record
        self._stopped_ns: int | None = None  # at restore: the engine's last known now
        self._background = background
        self._jobs: queue.Queue[tuple[dict[str, StateTree], SensorTable, int, int] | None] = (
            queue.Queue(maxsize=1)
        )
        self._writer: threading.Thread | None = None
        self._stopwatch = stopwatch
        self._lock_fd: int | None = None
        self.snapshots_written = 0
        self.last_snapshot_bytes = 0
        self.last_snapshot_seconds = 0.0

    @property
    def snapshot_path(self) -> Path:
        return self.folder / SNAPSHOT_NAME

    def _lock(self) -> None:
        """One engine per state folder: a second process on the same folder would write
        over the first's journal. A POSIX lock on ``state.lock`` (released when the
        process dies, even by kill -9) refuses it with :class:`SnapshotError`."""
        fd = os.open(self.folder / "state.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise SnapshotError(str(self.folder), "in use by another running engine") from exc
        self._lock_fd = fd

    def _durable_stages(self) -> list[Durable]:
        return [s for s in self.pipeline.stages if isinstance(s, Durable)]

    def _table_now(self) -> SensorTable:
        """The sensor table of every id so far (extended as the registry grows)."""
        if len(self.registry) > self._table.end:
            self._table.extend(SensorTable.capture(self.registry, self._table.end))
        return self._table

    # ------------------------------------------------------------------ start
    def restore(self, now_ns: int, sink: _Sink | None) -> RestoreReport:
        """Load the snapshot, replay the journal after it, open a new journal segment."""
        started = self._stopwatch()
        rep = RestoreReport()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock()
        snap: Snapshot | None = None
        if self.snapshot_path.exists():
            try:
                t = self._stopwatch()
                snap = read_snapshot(self.snapshot_path)
                rep.timings["read"] = self._stopwatch() - t
            except SnapshotError as exc:
                rep.problems.append(f"snapshot ignored: {exc}")
                self._set_aside(self.snapshot_path)
        else:
            rep.snapshot = "none"
        if snap is not None:
            rep.snapshot = str(self.snapshot_path)
            rep.age_s = (now_ns - snap.written_ns) / 1e9
            self._stopped_ns = snap.written_ns
            rep.size_bytes = snap.size_bytes
            t = self._stopwatch()
            sensors = snap.sensors.bind(self.registry)
            rep.timings["sensors"] = self._stopwatch() - t
            if sensors.gone:
                rep.restored.dropped.append(
                    f"{sensors.gone} sensor(s) of the snapshot no longer exist: their state dropped"
                )
            for stage in self._durable_stages():
                tree = snap.stages.get(stage.name)
                if not isinstance(tree, dict):
                    rep.restored.dropped.append(f"{stage.name}: not in the snapshot (fresh)")
                    continue
                try:
                    t = self._stopwatch()
                    rep.restored.merge(stage.load_state(tree, sensors), f"{stage.name}: ")
                    rep.timings[stage.name] = self._stopwatch() - t
                except Exception as exc:  # a stage's bug must not stop the engine starting
                    log.exception("state: %s could not load its snapshot", stage.name)
                    rep.problems.append(f"{stage.name}: snapshot not loaded ({exc!r})")
        first = snap.journal_from if snap is not None else 0
        segments = [n for n in self.journal.segments() if n >= first]
        t = self._stopwatch()
        for n in segments:
            self._replay_segment(n, rep, sink)
        rep.timings["journal"] = self._stopwatch() - t
        if self._stopped_ns is not None:
            for stage in self._durable_stages():
                if isinstance(stage, Resumes):
                    stage.resume(self._stopped_ns, now_ns)
        rep.segments = len(segments)
        nxt = max([first - 1, *self.journal.segments()]) + 1
        self._tick_recorded = False
        self.journal.open_segment(nxt, self._table_now())
        self._last_snapshot_ns = now_ns
        rep.seconds = self._stopwatch() - started
        self._log(rep)
        if self._background:
            self._writer = threading.Thread(target=self._write_loop, name="riskwatch-state",
                                            daemon=True)  # fmt: skip
            self._writer.start()
        return rep

    def _set_aside(self, path: Path) -> None:
        try:
            path.replace(path.with_name(path.name + ".bad"))
        except OSError:
            pass

    def _replay_segment(self, n: int, rep: RestoreReport, sink: _Sink | None) -> None:
        got = read_segment(self.journal.segment_path(n))
        if got.stopped is not None:
            rep.problems.append(f"journal segment {n}: {got.stopped}; replayed up to there")
        id_map = np.zeros(0, np.int64)
        for rec in got.records:
            if rec.kind is RecordKind.KEYS:
                assert rec.keys is not None
                id_map = rec.keys.bind(self.registry, into=id_map).new_id
                continue
            self._stopped_ns = max(self._stopped_ns or rec.now_ns, rec.now_ns)
            if rec.kind is RecordKind.ALIVE:
                continue
            ctx = StageContext(now_ns=rec.now_ns, registry=self.registry)
            if rec.kind is RecordKind.BATCH:
                assert rec.batch is not None
                b = rec.batch
                ok = (b.sensor >= 0) & (b.sensor < len(id_map))
                sid = np.full(len(b), -1, np.int64)
                sid[ok] = id_map[b.sensor[ok]]
                keep = np.flatnonzero(sid >= 0)
                b = Batch(b.time[keep], sid[keep].astype(np.int32), b.value[keep], b.flags[keep],
                          b.received[keep])  # fmt: skip
                rep.batches += 1
                rep.readings += len(b)
                if not len(b):
                    continue
                _, signals = self.pipeline.run(b, ctx)
            else:
                rep.ticks += 1
                signals = self.pipeline.tick(ctx)
            if signals and sink is not None:
                rep.signals += len(signals)
                if isinstance(sink, ReplaysSignals):
                    rep.signals_skipped += sink.replay(signals, ctx)
                else:
                    sink.handle(signals, ctx)

    def _log(self, rep: RestoreReport) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in rep.restored.counts.items()) or "nothing"
        if rep.age_s is not None:
            log.info(
                "state: restored from %s (age %.1f s, %.1f MB): %s",
                rep.snapshot, rep.age_s, rep.size_bytes / 1e6, counts,
            )  # fmt: skip
        else:
            log.info("state: no snapshot in %s, starting fresh", self.folder)
        if rep.segments:
            log.info(
                "state: journal replayed: %d segment(s), %d batch(es) (%d readings), %d tick(s),"
                " %d signal(s) (%d already recorded)",
                rep.segments, rep.batches, rep.readings, rep.ticks, rep.signals,
                rep.signals_skipped,
            )  # fmt: skip
        for d in rep.restored.dropped:
            log.warning("state: %s", d)
        for p in rep.problems:
            log.warning("state: %s", p)
        parts = ", ".join(f"{k} {v:.3f}" for k, v in rep.timings.items())
        log.info("state: start took %.3f s (%s); snapshots every %.0f s in %s", rep.seconds,
                 parts, self.snapshot_every_ns / 1e9, self.folder)  # fmt: skip

    # ------------------------------------------------------------------ engine thread
    def record_batch(self, now_ns: int, batch: Batch) -> int:
        """Journal a decoded batch before the stages see it; the mark for :meth:`durable`."""
        start = self.journal.declared
        if len(self.registry) > start:
            table = self._table_now()
            extra = {i: m for i, m in table.extra.items() if i >= start}
            self.journal.append_keys(SensorTable(table.keys[start:], extra, start))
        self._last_record_ns = now_ns
        return self.journal.append_batch(now_ns, batch)

    def record_tick(self, now_ns: int, changed: bool) -> None:
        """Journal a timer tick that changed state (its signals; replayed at start), else a
        mark that the engine was alive at ``now_ns`` (a restart then knows its downtime to
        the tick: 17 bytes, one ``write``); snapshot when due."""
        if changed or not self._tick_recorded:
            self.journal.append_tick(now_ns)
            self._tick_recorded = True
            self._last_record_ns = now_ns
        elif self._last_record_ns is None or now_ns > self._last_record_ns:
            self.journal.append_tick(now_ns, changed=False)
            self._last_record_ns = now_ns
        last = self._last_snapshot_ns
        if last is None or now_ns - last >= self.snapshot_every_ns:
            self.checkpoint(now_ns)

    def checkpoint(self, now_ns: int, *, wait: bool = False) -> bool:
        """Take a snapshot now (engine thread): copy the state, start a new journal
        segment, write it (on the writer thread unless ``wait`` or in line). False when
        the previous one is still being written (the next tick tries again)."""
        if self._background and not wait and self._jobs.full():
            return False
        stages = {s.name: s.dump_state() for s in self._durable_stages()}
        src = self._table_now()
        table = SensorTable(list(src.keys), dict(src.extra))
        seg = self.journal.segment + 1
        self.journal.open_segment(seg, table)
        self._tick_recorded = False
        self._last_snapshot_ns = now_ns
        job = (stages, table, now_ns, seg)
        if self._background and not wait and self._writer is not None:
            self._jobs.put(job)
        else:
            if self._writer is not None:
                self._jobs.join()
            self._write(job)
        return True

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._write(job)
            finally:
                self._jobs.task_done()

    def _write(self, job: tuple[dict[str, StateTree], SensorTable, int, int]) -> None:
        stages, table, now_ns, seg = job
        started = self._stopwatch()
        try:
            size = write_snapshot(self.snapshot_path, stages, table, written_ns=now_ns,
                                  journal_from=seg, fsync=self.fsync)  # fmt: skip
        except OSError as exc:
            log.error("state: snapshot not written (journal kept, replayed at start): %s", exc)
            return
        self.journal.drop_before(seg)
        self.snapshots_written += 1
        self.last_snapshot_bytes = size
        self.last_snapshot_seconds = self._stopwatch() - started
        log.debug("state: snapshot of %.1f MB written in %.3f s", size / 1e6,
                  self.last_snapshot_seconds)  # fmt: skip

    # ------------------------------------------------------------------ storage thread
    def durable(self, mark: int) -> None:
        """Before a batch's acks: the journal up to its record is on disk."""
        self.journal.sync(mark)

    # ------------------------------------------------------------------ stop
    def close(self, now_ns: int) -> None:
        """Clean stop (after the engine thread and storage stopped): a last snapshot,
        and the journal it covers removed."""
        if self._writer is not None:
            self._jobs.join()
        self._write_final(now_ns)
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join(10)
            self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _write_final(self, now_ns: int) -> None:
        stages = {s.name: s.dump_state() for s in self._durable_stages()}
        src = self._table_now()
        seg = self.journal.segment + 1
        self.journal.close()
        self._write((stages, SensorTable(list(src.keys), dict(src.extra)), now_ns, seg))
        log.info("state: snapshot written at stop (%.1f MB) to %s",
                 self.last_snapshot_bytes / 1e6, self.snapshot_path)  # fmt: skip
