"""The spine hands each micro-batch on in a fixed order — pipeline, sink, window, storage —
acknowledges its messages only from storage's callback, keeps going when the sink fails,
and times every stage into the per-stage metric."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from riskwatch.catalog import SensorRegistry
from riskwatch.clock import ManualClock
from riskwatch.ingest.acks import AckLedger
from riskwatch.ingest.batcher import MicroBatch
from riskwatch.metrics import IngestMetrics
from riskwatch.model import Batch
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.spine import Spine

NOW = 1_795_880_000 * 10**9


class Above:
    name = "above"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def process(self, batch: Batch, ctx: StageContext) -> list[Any]:
        self.log.append(f"pipeline at {ctx.now_ns}")
        return [SimpleNamespace(source="rule", value=v) for v in batch.value.tolist() if v > 1]

    def tick(self, ctx: StageContext) -> list[Any]:
        self.log.append(f"stage tick at {ctx.now_ns}")
        return [SimpleNamespace(source="rule", value=-1.0)]


class Rig:
    def __init__(self, fail_sink: bool = False) -> None:
        self.log: list[str] = []
        self.clock = ManualClock(NOW)
        self.registry = CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.acks = AckLedger(self.metrics, self.clock)
        self.durable: list[Callable[[], None]] = []
        self.fail_sink = fail_sink
        self.spine = Spine(Pipeline([QualityStage(), Above(self.log)]), self, self, self,
                           self.acks, self.metrics, SensorRegistry(), self.clock,
                           window=self)  # fmt: skip

    # the sink
    def handle(self, signals: list[Any], ctx: StageContext) -> None:
        self.log.append(f"sink {[s.value for s in signals]}")
        if self.fail_sink:
            raise RuntimeError("sink down")

    def tick(self, ctx: StageContext) -> None:
        self.log.append(f"sink tick at {ctx.now_ns}")

    # the window
    def add(self, batch: Batch) -> None:
        self.log.append(f"window {len(batch)}")

    # storage: durable when the test says
    def submit(self, batch: Batch, on_durable: Callable[[], None]) -> None:
        self.log.append(f"storage {batch.time.tolist()}")
        self.durable.append(on_durable)

    # the receiver
    def ack_many(self, acks: list[tuple[int, int]]) -> None:
        self.log.append(f"ack {acks}")

    def backlog(self) -> int:
        return 3

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def cut(times: list[int], values: list[float], acks: list[tuple[int, int]]) -> MicroBatch:
    n = len(times)
    return MicroBatch(Batch.from_arrays(times, [0] * n, values, received=[NOW - 10**9] * n), acks)


def test_order_and_acks_only_once_durable() -> None:
    rig = Rig()
    rig.acks.arrived(2)
    rig.spine.handle(cut([1, 2], [0.5, 2.5], [(4, 1), (5, 1)]))
    assert rig.log == [f"pipeline at {NOW}", "sink [2.5]", "window 2", "storage [1, 2]"]
    assert rig.acks.unacked == 2
    rig.clock.advance(0.5)
    rig.durable[0]()
    assert rig.log[-1] == "ack [(4, 1), (5, 1)]"
    assert rig.acks.unacked == 0 and rig.acks.last_acked_ns == NOW + 500_000_000
    # the oldest reading arrived 1 s before the batch was cut, acked 0.5 s after: 1.5 s
    assert rig.metric("riskwatch_pipeline_latency_seconds_sum") == pytest.approx(1.5)
    assert rig.metric("riskwatch_readings_received_total") == 2
    assert rig.metric("riskwatch_signals_total", source="rule") == 1
    assert rig.metric("riskwatch_ingest_queue_messages") == 3
    assert rig.metric("riskwatch_stage_seconds_count", stage="quality") == 1
    assert rig.metric("riskwatch_stage_seconds_count", stage="above") == 1
    assert rig.spine.readings_total == 2


def test_a_batch_of_dead_letters_only_skips_the_pipeline_but_is_stored_and_acked() -> None:
    rig = Rig()
    rig.acks.arrived(1)
    rig.spine.handle(cut([], [], [(9, 1)]))
    assert rig.log == ["storage []"]
    rig.durable[0]()
    assert rig.log[-1] == "ack [(9, 1)]" and rig.acks.unacked == 0
    assert rig.metric("riskwatch_pipeline_latency_seconds_sum") == 0.0  # from now, not stale
    assert rig.spine.readings_total == 0


def test_a_failing_sink_is_logged_and_the_batch_still_stored(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(fail_sink=True)
    rig.spine.handle(cut([1], [3.0], [(1, 1)]))
    assert rig.log[-2:] == ["window 1", "storage [1]"]
    assert "alert sink failed on 1 signals" in caplog.text


def test_tick_runs_stage_timers_then_the_sinks() -> None:
    rig = Rig()
    rig.clock.set(NOW + 7)
    rig.spine.tick()
    assert rig.log == [f"stage tick at {NOW + 7}", "sink [-1.0]", f"sink tick at {NOW + 7}"]


def test_a_failing_stage_timer_still_ticks_the_sink(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    rig = Rig()

    def broken(ctx: StageContext) -> list[Any]:
        raise RuntimeError("timer")

    rig.spine.pipeline.ticking[0].tick = broken  # type: ignore[method-assign]
    rig.spine.tick()
    assert rig.log == [f"sink tick at {NOW}"]
    assert "stage tick failed" in caplog.text


def test_with_engine_state_the_batch_is_journaled_first_and_acked_after_its_fsync(
    tmp_path: Any,
) -> None:
    """Durable state: the journal holds the batch before any stage sees it, and the acks
    go out only after the journal was synced up to it (the ack rule)."""
    from riskwatch.durability import EngineState
    from riskwatch.state import read_segment

    rig = Rig()
    state = EngineState(tmp_path, rig.spine.pipeline, SensorRegistry(), snapshot_every_ns=10**15,
                        background=False)  # fmt: skip
    state.restore(NOW, sink=None)

    class Spy:  # the real EngineState, its calls written into the rig's log
        def record_batch(self, now: int, batch: Batch) -> int:
            rig.log.append(f"journal {batch.time.tolist()}")
            return state.record_batch(now, batch)

        def record_tick(self, now: int, changed: bool) -> None:
            rig.log.append(f"journal tick {changed}")
            state.record_tick(now, changed)

        def durable(self, mark: int) -> None:
            rig.log.append("journal synced")
            state.durable(mark)

    rig.spine.journal = Spy()
    rig.acks.arrived(1)
    rig.spine.handle(cut([1, 2], [0.5, 2.5], [(4, 1)]))
    assert rig.log == ["journal [1, 2]", f"pipeline at {NOW}", "sink [2.5]", "window 2",
                       "storage [1, 2]"]  # fmt: skip
    got = [r.batch.time.tolist() for r in read_segment(state.journal.segment_path(0)).records
           if r.batch is not None]  # fmt: skip
    assert got == [[1, 2]]
    rig.durable[0]()
    assert rig.log[-2:] == ["journal synced", "ack [(4, 1)]"]
    assert state.journal._synced >= state.journal._written
    rig.spine.tick()
    assert rig.log[-4:] == [f"stage tick at {NOW}", "sink [-1.0]", "journal tick True",
                            f"sink tick at {NOW}"]  # fmt: skip
