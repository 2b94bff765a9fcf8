"""The storage runner: one thread that makes batches durable, then says so.

It owns everything around the writer (Telegraf's ``RunningOutput`` idea): a bounded queue
(``submit`` blocks when it is full, so a slow database slows ingest instead of growing
memory), line-protocol encoding, chunking, retry with exponential backoff, the on-disk
spool during outages, in-order replay on recovery, dead-lettering of batches the database
rejects as bad data (4xx), and metrics.

Ordering: while the spool holds anything, new batches are appended to it too, so points
reach the database in arrival order. The ``on_durable`` callback of each batch (the MQTT
acks of its messages) runs in submission order, after the batch was written or spooled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import StorageConfig
from riskwatch.errors import SpoolFullError, StorageError
from riskwatch.metrics import StorageMetrics
from riskwatch.model import Batch
from riskwatch.storage.influx import Writer
from riskwatch.storage.lineproto import LineEncoder
from riskwatch.storage.spool import Spool
from riskwatch.threads import guarded

__all__ = ["StorageRunner"]

log = logging.getLogger(__name__)

Callback = Callable[[], None]
RejectHandler = Callable[[bytes, StorageError], None]


@dataclass(slots=True)
class _Item:
    batch: Batch | None
    body: bytes | None
    n_points: int
    on_durable: Callback | None
    bodies: list[tuple[bytes, int]] | None = None  # encoded at submit time


_STOP = object()


def _lines_in(body: bytes) -> int:
    """Points in a line-protocol body (one per line)."""
    return body.count(b"\n") + 1 if body else 0


class _NotDurable(Exception):
    """Stopping while the spool is full and the database down: the batch stays
    unacknowledged (the broker redelivers it), so stopping never waits on the disk."""


class StorageRunner:
    def __init__(
        self,
        writer: Writer | None,
        encoder: LineEncoder,
        spool: Spool | None,
        metrics: StorageMetrics,
        *,
        queue_max_batches: int = 8,
        write_max_points: int = 50_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        on_reject: RejectHandler | None = None,
        on_fatal: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.encoder = encoder
        self.spool = spool
        self.metrics = metrics
        self.write_max_points = write_max_points
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.on_reject = on_reject
        self.on_fatal = on_fatal
        self._mono = monotonic
        self._stopping = threading.Event()
        self.not_durable_points = 0  # left unacknowledged at a stop with the spool full
        self._q: queue.Queue[object] = queue.Queue(maxsize=queue_max_batches)
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._next_try = 0.0
        self._down_since: float | None = None
        self.idle = threading.Event()
        if spool is not None:
            metrics.spool_bytes.set(spool.bytes)
            if len(spool):
                log.warning(
                    "spool %s holds %d segments (%d bytes) from before; replaying",
                    spool.dir, len(spool), spool.bytes,
                )  # fmt: skip

    @classmethod
    def from_config(
        cls,
        cfg: StorageConfig,
        writer: Writer | None,
        registry: SensorRegistry,
        metrics: StorageMetrics,
        *,
        spool_dir: Path,
        on_reject: RejectHandler | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> StorageRunner:
        """The runner the ``storage:`` section describes, spooling to ``spool_dir``."""
        return cls(
            writer, LineEncoder(registry), Spool(spool_dir, cfg.spool_max_bytes), metrics,
            queue_max_batches=cfg.queue_max_batches, write_max_points=cfg.write_max_points,
            retry_initial_s=cfg.retry_initial_s, retry_max_s=cfg.retry_max_s,
            on_reject=on_reject, on_fatal=on_fatal,
        )  # fmt: skip

    # ------------------------------------------------------------------ API
    def start(self) -> None:
        target = self._run
        if self.on_fatal is not None:
            target = guarded(self._run, name="riskwatch-storage", on_fatal=self.on_fatal)
        self._thread = threading.Thread(target=target, name="riskwatch-storage", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch, on_durable: Callback | None = None) -> None:
        """Queue a batch; blocks while the queue is full (backpressure).

        The batch is encoded to line protocol here, in the caller's thread, so that the
        storage thread only posts: the next batch is encoded while the database ingests
        the previous one, instead of the database idling while one thread does both.
        """
        self.idle.clear()
        item = _Item(batch, None, len(batch), on_durable)
        if self.writer is not None and len(batch):
            try:
                item.bodies = self._encode(batch)
                item.batch = None
            except Exception:
                log.exception("encoding %d points failed; the storage thread retries", len(batch))
        self._q.put(item)
        self.metrics.queue_depth.set(self._q.qsize())

    def submit_lines(self, body: bytes, n_points: int, on_durable: Callback | None = None) -> None:
        """Queue ready-made line protocol (e.g. the ``alert`` measurement)."""
        self.idle.clear()
        self._q.put(_Item(None, body, n_points, on_durable))

    def begin_stop(self) -> None:
        """From now on a batch that cannot be written or spooled is left unacknowledged
        instead of waited for, so that a stop never hangs on a full disk."""
        self._stopping.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Write or spool everything queued, then stop the thread."""
        if self._thread is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():  # a dead thread empties no queue: do not block on it
            try:
                self._q.put(_STOP, timeout=0.2)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("storage thread did not stop within %.0fs", timeout)
        if self.writer is not None:
            self.writer.close()

    @property
    def pending(self) -> int:
        return self._q.qsize()

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                self.idle.set()
                self._replay(budget_s=0.5)
                continue
            if item is _STOP:
                self._replay(budget_s=2.0, force=True)  # one last try; the rest stays spooled
                return
            assert isinstance(item, _Item)
            self.metrics.queue_depth.set(self._q.qsize())
            try:
                try:
                    self._handle(item)
                except _NotDurable:
                    raise
                except Exception:
                    log.exception(
                        "storage runner error; batch of %d points kept for retry", item.n_points
                    )
                    self._handle_fallback(item)
            except _NotDurable:
                self._abandon(item)
            if self.spool is not None and len(self.spool):
                self._replay(budget_s=0.2)

    def _bodies(self, item: _Item) -> list[tuple[bytes, int]]:
        if item.body is not None:
            return [(item.body, item.n_points)]
        if item.bodies is not None:
            return item.bodies
        assert item.batch is not None
        return self._encode(item.batch)

    def _encode(self, b: Batch) -> list[tuple[bytes, int]]:
        n = len(b)
        if n == 0:
            return []
        step = self.write_max_points
        if n <= step:
            return [(self.encoder.encode(b), n)]
        return [
            (self.encoder.encode(b.take(slice(i, min(i + step, n)))), min(step, n - i))
            for i in range(0, n, step)
        ]

    def _handle(self, item: _Item) -> None:
        if self.writer is None:
            # storage is off: nothing will be written, so do not spend the interpreter
            # lock (shared with decoding) on encoding line protocol nobody reads
            if item.on_durable is not None:
                item.on_durable()
            return
        for body, n in self._bodies(item):
            self._store(body, n)
        if item.on_durable is not None:
            item.on_durable()

    def _handle_fallback(self, item: _Item) -> None:
        # last resort: spool without trying the writer; block until it fits
        try:
            bodies = self._bodies(item)
        except Exception as exc:  # cannot be encoded at all: poison, dead-lettered
            log.exception("a batch of %d points cannot be encoded; dead-lettered", item.n_points)
            self._reject(
                f"# unencodable batch of {item.n_points} points: {exc!r}".encode(),
                StorageError(f"cannot encode: {exc!r}", retryable=False),
            )
            bodies = []
        for body, n in bodies:
            if self.spool is None:
                self._retry_inline(body, n)
            else:
                self._spool(body, n)
        if item.on_durable is not None:
            item.on_durable()

    def _abandon(self, item: _Item) -> None:
        self.not_durable_points += item.n_points
        log.error(
            "stopping with the spool full and InfluxDB down: a batch of %d points is not "
            "durable and stays unacknowledged (the broker redelivers it after a restart)",
            item.n_points,
        )  # fmt: skip

    def _store(self, body: bytes, n: int) -> None:
        if self.writer is None:
            return
        must_spool = self.spool is not None and (
            len(self.spool) > 0 or self._mono() < self._next_try
        )
        if not must_spool:
            try:
                t0 = time.perf_counter()
                self.writer.write(body, n)
                self.metrics.write_latency.observe(time.perf_counter() - t0)
                self.metrics.points_written.inc(n)
                self._recovered()
                return
            except StorageError as exc:
                if not exc.retryable:
                    self._reject(body, exc)
                    return
                self._failed(exc)
                if self.spool is None:
                    self._retry_inline(body, n)
                    return
        self._spool(body, n)

    def _retry_inline(self, body: bytes, n: int) -> None:
        """Without a spool: keep retrying (ingest waits; nothing is dropped)."""
        assert self.writer is not None
        while True:
            if self._stopping.is_set():
                raise _NotDurable
            time.sleep(max(0.05, self._next_try - self._mono()))
            try:
                self.writer.write(body, n)
                self.metrics.points_written.inc(n)
                self._recovered()
                return
            except StorageError as exc:
                if not exc.retryable:
                    self._reject(body, exc)
                    return
                self._failed(exc)

    def _spool(self, body: bytes, n: int) -> None:
        assert self.spool is not None
        warned = False
        while True:
            try:
                self.spool.append(body, n)
                self.metrics.spooled_points.inc(n)
                self.metrics.spool_bytes.set(self.spool.bytes)
                return
            except SpoolFullError as exc:
                self.metrics.spool_full.inc()
                if not warned:
                    log.error("SPOOL FULL: %s; ingest is paused until InfluxDB accepts writes", exc)
                    warned = True
                if self._stopping.is_set():
                    raise _NotDurable from exc
                if not self._replay(budget_s=1.0, force=True):
                    time.sleep(0.5)

    def _reject(self, body: bytes, exc: StorageError) -> None:
        self.metrics.write_errors.labels("rejected").inc()
        if exc.dropped is not None:  # a partial write: the rest of the batch is stored
            self.metrics.points_written.inc(max(0, _lines_in(body) - exc.dropped))
            log.error("InfluxDB dropped %d points of a batch as bad data; the error sent to "
                      "dead-letter: %s", exc.dropped, exc)  # fmt: skip
            if self.on_reject is not None:
                self.on_reject(b"", exc)  # the batch itself is written: keep the error only
            return
        log.error("InfluxDB rejected a batch as bad data; sent to dead-letter: %s", exc)
        if self.on_reject is not None:
            self.on_reject(body, exc)

    def _failed(self, exc: StorageError) -> None:
        self.metrics.write_errors.labels("unavailable").inc()
        now = self._mono()
        if self._down_since is None:
            self._down_since = now
            log.error("InfluxDB write failed (%s); spooling to disk and retrying with backoff", exc)
        self._backoff = min(
            self.retry_max_s, self._backoff * 2 if self._backoff else self.retry_initial_s
        )
        self._next_try = now + self._backoff

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.info("InfluxDB writes succeed again after %.1fs", self._mono() - self._down_since)
        self._down_since = None
        self._backoff = 0.0
        self._next_try = 0.0

    def _replay(self, budget_s: float, force: bool = False) -> bool:
        """Write spooled segments oldest first within a time budget; True if any went."""
        if self.writer is None or self.spool is None or not len(self.spool):
            return False
        if not force and self._mono() < self._next_try:
            return False
        deadline = self._mono() + budget_s
        done = False
        for seg in self.spool.segments():
            n = Spool.points(seg)
            body = self.spool.read(seg)
            try:
                self.writer.write(body, n)
            except StorageError as exc:
                if not exc.retryable:
                    self._reject(body, exc)
                    self.spool.remove(seg)
                    continue
                self._failed(exc)
                return done
            self.spool.remove(seg)
            self.metrics.replayed_points.inc(n)
            self.metrics.points_written.inc(n)
            self.metrics.spool_bytes.set(self.spool.bytes)
            self._recovered()
            done = True
            if self._mono() > deadline:
                break
        if not len(self.spool):
            log.info("spool drained")
        return done
