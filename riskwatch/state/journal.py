"""The write-ahead journal: decoded batches and timer ticks since the last snapshot.

Why a journal: a message acknowledged to the broker is never delivered again, so the
state its readings changed (a latch, a ``for`` start, a sensor's last-seen time) must be
on disk by the time it is acknowledged. Writing a snapshot of 100k sensors per batch is
far too slow; appending the batch itself (29 bytes a reading) is cheap, and replaying
it through the same stages after the last snapshot rebuilds the same state, because the
stages are deterministic given the batch and the ``now`` it ran at.

Layout: ``journal-00000007.wal`` segments in the state folder, one per snapshot
interval. A segment starts with ``RWJ`` and a version byte, then records::

    u32 length | u32 crc32(kind + payload) | u8 kind | payload

- ``KEYS``: a :class:`~riskwatch.state.tree.SensorTable` (JSON) for ids from ``start``:
  the first record of every segment holds the whole registry, later ones the sensors
  registered since, so a segment is read without anything else;
- ``BATCH``: ``now_ns``, the row count, then the columns ``time`` int64, ``sensor``
  int32 (this segment's ids), ``value`` float64, ``flags`` uint8, ``received`` int64;
- ``TICK``: ``now_ns`` of a timer tick that changed some state;
- ``ALIVE``: ``now_ns`` of a tick that changed nothing (not replayed): after a crash it
  says until when the engine ran (its downtime is not the sensors' silence).

Appends happen on the engine thread (one ``write`` per record); :meth:`Journal.sync`
runs on the storage thread before a batch's acks and fsyncs everything appended so far
(group commit: one fsync covers every batch waiting). A process killed at any point
leaves whole records and at most one torn one at the end, which :func:`read_segment`
stops at (its CRC or length does not match).

>>> import tempfile, pathlib
>>> from riskwatch.model import Batch
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()))
>>> j.open_segment(1, SensorTable(["m/s/A"]))
>>> seq = j.append_batch(5, Batch.from_arrays([1, 2], [0, 0], [0.5, 1.6]))
>>> _ = j.append_tick(6)
>>> j.sync(seq)
>>> [(r.kind.name, r.now_ns) for r in read_segment(j.segment_path(1)).records]
[('KEYS', 0), ('BATCH', 5), ('TICK', 6)]
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from riskwatch.model import Batch
from riskwatch.state.snapshot import fsync_dir
from riskwatch.state.tree import SensorTable

__all__ = ["Journal", "JournalRecord", "RecordKind", "SegmentRead", "read_segment"]

_MAGIC = b"RWJ\x01"
_HEAD = struct.Struct("<IIB")  # length of kind + payload, crc32, kind
_BATCH = struct.Struct("<qI")  # now_ns, rows
_TICK = struct.Struct("<q")
_NAME = re.compile(r"journal-(\d{8})\.wal$")


class RecordKind(IntEnum):
    KEYS = 1
    BATCH = 2
    TICK = 3
    ALIVE = 4  # the engine ran at now_ns (no state changed): bounds the downtime


@dataclass(frozen=True)
class JournalRecord:
    kind: RecordKind
    now_ns: int = 0
    batch: Batch | None = None  # BATCH: sensor ids are the segment's own
    keys: SensorTable | None = None  # KEYS


@dataclass
class SegmentRead:
    """The whole records of a segment, and why reading stopped early (a torn tail)."""

    records: list[JournalRecord] = field(default_factory=list)
    stopped: str | None = None


def _record(kind: RecordKind, payload: bytes) -> bytes:
    body = bytes([kind]) + payload
    return _HEAD.pack(len(body), zlib.crc32(body), kind) + payload


def _batch_payload(now_ns: int, b: Batch) -> bytes:
    n = len(b)
    received = b.received if len(b.received) == n else b.time
    return b"".join((
        _BATCH.pack(now_ns, n),
        np.ascontiguousarray(b.time, np.int64).tobytes(),
        np.ascontiguousarray(b.sensor, np.int32).tobytes(),
        np.ascontiguousarray(b.value, np.float64).tobytes(),
        np.ascontiguousarray(b.flags, np.uint8).tobytes(),
        np.ascontiguousarray(received, np.int64).tobytes(),
    ))  # fmt: skip


def _parse_batch(payload: bytes) -> JournalRecord:
    now, n = _BATCH.unpack_from(payload)
    if len(payload) != _BATCH.size + 29 * n:
        raise ValueError(f"batch of {n} rows in {len(payload)} bytes")
    o = _BATCH.size
    cols = []
    for dtype, width in ((np.int64, 8), (np.int32, 4), (np.float64, 8), (np.uint8, 1),
                         (np.int64, 8)):  # fmt: skip
        cols.append(np.frombuffer(payload, dtype, n, o).copy())
        o += width * n
    return JournalRecord(RecordKind.BATCH, now, batch=Batch(*cols))


def read_segment(path: Path) -> SegmentRead:
    """The records of one segment up to the first torn or corrupt one."""
    out = SegmentRead()
    try:
        data = path.read_bytes()
    except OSError as exc:
        out.stopped = f"cannot read: {exc.strerror or exc}"
        return out
    if data[: len(_MAGIC)] != _MAGIC:
        out.stopped = "not a riskwatch journal (or another version)"
        return out
    o = len(_MAGIC)
    while o < len(data):
        if o + _HEAD.size > len(data):
            out.stopped = f"torn record header at byte {o}"
            break
        length, crc, kind = _HEAD.unpack_from(data, o)
        body = data[o + _HEAD.size - 1 : o + _HEAD.size - 1 + length]
        if length < 1 or len(body) < length or zlib.crc32(body) != crc:
            out.stopped = f"torn or corrupt record at byte {o}"
            break
        payload = body[1:]
        try:
            if kind == RecordKind.BATCH:
                out.records.append(_parse_batch(payload))
            elif kind in (RecordKind.TICK, RecordKind.ALIVE):
                out.records.append(JournalRecord(RecordKind(kind), _TICK.unpack(payload)[0]))
            elif kind == RecordKind.KEYS:
                table = SensorTable.from_json(json.loads(payload))
                out.records.append(JournalRecord(RecordKind.KEYS, keys=table))
            else:
                raise ValueError(f"unknown record kind {kind}")
        except Exception as exc:  # a record that passed its CRC but does not parse
            out.stopped = f"bad record at byte {o}: {exc}"
            break
        o += _HEAD.size - 1 + length
    return out


class Journal:
    """The segments of one state folder; appends on one thread, :meth:`sync` on another.

    ``fsync`` False leaves durability to the page cache (survives a killed process, not
    a power cut); tests and benchmarks compare both.
    """

    def __init__(self, folder: Path, *, fsync: bool = True) -> None:
        self.folder = folder
        self.fsync = fsync
        self._fd: int | None = None
        self._segment = 0
        self._declared = 0  # ids of the registry this segment's KEYS records cover
        self._written = 0  # bytes appended since this Journal opened (all segments)
        self._synced = 0  # of those, how many are known durable
        self._lock = threading.Lock()  # the fd and the synced mark (sync vs rotate)

    # -- segments ------------------------------------------------------------------------
    def segment_path(self, n: int) -> Path:
        return self.folder / f"journal-{n:08d}.wal"

    def segments(self) -> list[int]:
        """The segment numbers on disk, in order."""
        if not self.folder.is_dir():
            return []
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    @property
    def segment(self) -> int:
        return self._segment

    @property
    def declared(self) -> int:
        return self._declared

    def open_segment(self, n: int, sensors: SensorTable) -> None:
        """Close the current segment (fsynced) and start segment ``n`` with the sensor
        table of every id so far."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.segment_path(n), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                     0o644)  # fmt: skip
        with self._lock:
            old = self._fd
            if old is not None:
                if self.fsync:
                    os.fsync(old)
                os.close(old)
                self._synced = self._written
            self._fd, self._segment, self._declared = fd, n, 0
        self._write(_MAGIC)
        self.append_keys(sensors)
        if self.fsync:
            fsync_dir(self.folder)

    def drop_before(self, n: int) -> list[int]:
        """Delete the segments before ``n`` (a durable snapshot holds their effect)."""
        gone = [s for s in self.segments() if s < n]
        for s in gone:
            try:
                self.segment_path(s).unlink()
            except OSError:
                pass
        if gone and self.fsync:
            fsync_dir(self.folder)
        return gone

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                if self.fsync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
                self._synced = self._written

    # -- appends (engine thread) -----------------------------------------------------------
    def _write(self, data: bytes) -> int:
        assert self._fd is not None, "no open segment"
        view = memoryview(data)
        while view:
            done = os.write(self._fd, view)
            view = view[done:]
        self._written += len(data)
        return self._written

    def append_keys(self, sensors: SensorTable) -> int:
        """Declare the sensors of ids ``sensors.start ..`` for the records after it."""
        payload = json.dumps(sensors.to_json(), separators=(",", ":")).encode()
        self._declared = max(self._declared, sensors.end)
        return self._write(_record(RecordKind.KEYS, payload))

    def append_batch(self, now_ns: int, batch: Batch) -> int:
        """Append a decoded batch; returns the mark to :meth:`sync` before its acks."""
        return self._write(_record(RecordKind.BATCH, _batch_payload(now_ns, batch)))

    def append_tick(self, now_ns: int, *, changed: bool = True) -> int:
        """A tick that changed state (replayed), or else an ``ALIVE`` mark (not replayed)."""
        kind = RecordKind.TICK if changed else RecordKind.ALIVE
        return self._write(_record(kind, _TICK.pack(now_ns)))

    # -- durability (storage thread) -------------------------------------------------------
    def sync(self, mark: int) -> None:
        """Return once everything appended up to ``mark`` is on disk."""
        if not self.fsync or mark <= self._synced:
            return
        with self._lock:
            if mark <= self._synced or self._fd is None:
                return  # a rotation or another sync got there first
            target = self._written
            os.fsync(self._fd)
            self._synced = max(self._synced, target)
