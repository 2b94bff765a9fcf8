"""The engine's spine: what happens to one micro-batch, and on each timer tick.

A cut batch goes through the :class:`~riskwatch.pipeline.Pipeline` (each stage timed
into ``riskwatch_stage_seconds``), its signals to the signal sink (the alert lifecycle),
its readings into the console's window when there is one, and the batch to storage with
a callback that acknowledges its messages once they are durable. A tick runs the stages'
timers and the sink's. What a reload changed (:class:`~riskwatch.pipeline.StageReload`)
goes to the sink too, when it follows reloads (the alert sink ends the alerts of removed
rules: :class:`~riskwatch.pipeline.ReloadListener`). ``now`` comes from the engine's
clock, read once per batch and once per tick; a failing stage, sink or stage timer is
logged and never stops the spine (the batch is still stored and acknowledged). With a
``journal`` (durable engine state), each batch is journaled before the stages see it and
its acks wait until the journal is on disk.

>>> from types import SimpleNamespace
>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.ingest.acks import AckLedger
>>> from riskwatch.ingest.batcher import MicroBatch
>>> from riskwatch.metrics import IngestMetrics
>>> from riskwatch.model import Batch
>>> from riskwatch.pipeline import Pipeline
>>> class Sink:
...     def handle(self, signals, ctx):
...         print("signals", [s.text for s in signals], "at", ctx.now_ns)
...     def tick(self, ctx): print("sink tick at", ctx.now_ns)
>>> class Above:
...     name = "above"
...     def process(self, batch, ctx):
...         return [SimpleNamespace(source="rule", text=f"{v} > 1") for v in batch.value if v > 1]
>>> class Storage:  # durable at once
...     def submit(self, batch, on_durable): print("stored", len(batch)); on_durable()
>>> class Receiver:
...     def ack_many(self, acks): print("acked", acks)
...     def backlog(self): return 0
>>> metrics, clock = IngestMetrics(CollectorRegistry()), ManualClock(9)
>>> spine = Spine(Pipeline([Above()]), Sink(), Storage(), Receiver(), AckLedger(metrics, clock),
...               metrics, SensorRegistry(), clock)
>>> spine.handle(MicroBatch(Batch.from_arrays([1, 2], [0, 0], [0.5, 2.0]), [(7, 1)]))
signals ['2.0 > 1'] at 9
stored 2
acked [(7, 1)]
>>> spine.readings_total
2
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock
from riskwatch.ingest.acks import AckLedger
from riskwatch.ingest.batcher import MicroBatch
from riskwatch.ingest.receiver import Ack
from riskwatch.metrics import IngestMetrics
from riskwatch.model import Batch, Signal
from riskwatch.pipeline import Pipeline, ReloadListener, Stage, StageContext, StageReload

__all__ = ["Spine"]

# the engine's own log: operators read sink and timer failures there, as they always have
log = logging.getLogger("riskwatch.engine")


class _Sink(Protocol):
    def handle(self, signals: list[Signal], ctx: StageContext) -> None: ...

    def tick(self, ctx: StageContext) -> None: ...


class _Storage(Protocol):
    def submit(self, batch: Batch, on_durable: Any = None) -> None: ...


class _Window(Protocol):
    def add(self, batch: Batch) -> None: ...


class _Journal(Protocol):
    """Durable engine state (:class:`~riskwatch.durability.EngineState`)."""

    def record_batch(self, now_ns: int, batch: Batch) -> int: ...

    def record_tick(self, now_ns: int, changed: bool) -> None: ...

    def durable(self, mark: int) -> None: ...


class _Acknowledger(Protocol):
    def ack_many(self, acks: list[Ack]) -> None: ...

    def backlog(self) -> int: ...


class Spine:
    """One micro-batch from the batcher to the sink, the window and storage; the ticks."""

    def __init__(
        self,
        pipeline: Pipeline,
        sink: _Sink,
        storage: _Storage,
        receiver: _Acknowledger,
        acks: AckLedger,
        metrics: IngestMetrics,
        registry: SensorRegistry,
        clock: Clock,
        window: _Window | None = None,
        journal: _Journal | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.storage = storage
        self.receiver = receiver
        self.acks = acks
        self.metrics = metrics
        self.registry = registry
        self.clock = clock
        self.window = window
        self.journal = journal
        self.readings_total = 0

    def handle(self, cut: MicroBatch) -> None:
        """Run the pipeline on ``cut``, hand on its signals and readings, store it."""
        batch = cut.batch
        now = self.clock.now_ns()
        ctx = StageContext(now_ns=now, registry=self.registry)
        signals: list[Signal] = []
        # the journal first: whatever the stages do with this batch is replayed after a
        # crash, and its acks wait for the journal to be on disk (_durable)
        mark = self._journal(now, batch) if self.journal is not None and len(batch) else 0
        if len(batch):
            self.metrics.readings_in.inc(len(batch))
            self.metrics.batch_size.observe(len(batch))
            self.metrics.sensors.set(len(self.registry))
            self.readings_total += len(batch)
            try:
                batch, signals = self.pipeline.run(batch, ctx, on_stage=self._stage_took)
            except Exception:  # one bad batch must not stop the engine: store it, say so
                self.metrics.batch_errors.inc()
                log.exception(
                    "a stage failed on a batch of %d readings; they are stored, but rules and "
                    "detectors did not see them", len(batch),
                )  # fmt: skip
        if signals:
            self._emit(signals, ctx)
        if self.window is not None and len(batch):
            self.window.add(batch)  # recent series for the console's sensor view
        oldest = int(batch.received.min()) if len(batch) else now
        self.storage.submit(batch, lambda: self._durable(cut.acks, oldest, mark))
        self.metrics.queue_depth.set(self.receiver.backlog())

    def tick(self) -> None:
        """The stages' timers, then the sink's, at the clock's ``now``."""
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        try:
            signals = self.pipeline.tick(ctx)
        except Exception:
            log.exception("stage tick failed")
            signals = []
        if signals:
            self._emit(signals, ctx)
        if self.journal is not None:
            try:
                self.journal.record_tick(ctx.now_ns, bool(signals))
            except Exception:
                log.exception("engine state: tick not journaled")
        try:
            self.sink.tick(ctx)
        except Exception:
            log.exception("alert sink tick failed")

    def _journal(self, now: int, batch: Batch) -> int:
        """Journal the batch; a failing journal (a full disk) is logged and the batch goes
        on: its alarms matter more than surviving a crash after it."""
        assert self.journal is not None
        try:
            return self.journal.record_batch(now, batch)
        except Exception:
            log.exception("engine state: batch not journaled (its state may not survive a crash)")
            return 0

    def reloaded(self, reloads: list[StageReload]) -> None:
        """Hand what a reload changed to the sink (if it follows reloads), at ``now``."""
        if not reloads or not isinstance(self.sink, ReloadListener):
            return
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        try:
            self.sink.reloaded(reloads, ctx)
        except Exception:
            log.exception("alert sink failed on a reload")

    def _stage_took(self, stage: Stage, seconds: float) -> None:
        self.metrics.stage_seconds.labels(stage.name).observe(seconds)

    def _emit(self, signals: list[Signal], ctx: StageContext) -> None:
        for s in signals:
            self.metrics.signals.labels(s.source).inc()
        try:
            self.sink.handle(signals, ctx)
        except Exception:
            log.exception("alert sink failed on %d signals", len(signals))

    def _durable(self, acks: list[Ack], oldest_received_ns: int, mark: int = 0) -> None:
        """The storage thread made the batch durable: once the journal holds it too (the
        state it changed), acknowledge its messages."""
        if self.journal is not None and mark:
            self.journal.durable(mark)
        self.receiver.ack_many(acks)
        self.acks.settled(len(acks), oldest_received_ns)
