"""The pipeline runs stages in order (a transform's batch is what later stages see),
collects decision signals, times each stage through its hook, ticks only the stages
that tick, and finds optional capabilities by Protocol."""

from __future__ import annotations

from pathlib import Path

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch
from riskwatch.pipeline import (
    DecisionStage,
    Pipeline,
    Reloadable,
    Stage,
    StageContext,
    Ticking,
    WatchesFiles,
)
from riskwatch.quality import QualityStage

CTX = StageContext(now_ns=42, registry=SensorRegistry())


class AddOne:
    name = "add_one"

    def process(self, batch: Batch, ctx: StageContext) -> Batch:
        return Batch(batch.time, batch.sensor, batch.value + 1, batch.flags, batch.received)


class Threshold:
    """Signals (as text) for values above ``level``; ticks; watches and reloads a file."""

    def __init__(self, name: str, level: float) -> None:
        self.name = name
        self.level = level
        self.reloaded: list[int] = []

    def process(self, batch: Batch, ctx: StageContext) -> list[str]:
        return [f"{self.name}: {v}" for v in batch.value.tolist() if v > self.level]

    def tick(self, ctx: StageContext) -> list[str]:
        return [f"{self.name} tick {ctx.now_ns}"]

    def watched_files(self) -> list[Path]:
        return [Path(f"{self.name}.yaml")]

    def reload(self, ctx: StageContext) -> None:
        self.reloaded.append(ctx.now_ns)


def test_transforms_feed_later_stages_and_signals_are_collected_in_order() -> None:
    p = Pipeline([Threshold("before", 1.5), AddOne(), Threshold("after", 1.5)])  # type: ignore[list-item]
    out, signals = p.run(Batch.from_arrays([1, 2], [0, 0], [1.0, 2.0]), CTX)
    assert out.value.tolist() == [2.0, 3.0]
    assert signals == ["before: 2.0", "after: 2.0", "after: 3.0"]


def test_on_stage_sees_every_stage_with_its_seconds() -> None:
    clock = iter([10.0, 10.5, 11.0, 13.0])
    p = Pipeline([AddOne(), Threshold("t", 0)], stopwatch=lambda: next(clock))  # type: ignore[list-item]
    seen: list[tuple[str, float]] = []
    p.run(Batch.from_arrays([1], [0], [1.0]), CTX, on_stage=lambda s, t: seen.append((s.name, t)))
    assert seen == [("add_one", 0.5), ("t", 2.0)]


def test_without_a_hook_the_stopwatch_is_never_read() -> None:
    def stopwatch() -> float:
        raise AssertionError("read")

    Pipeline([AddOne()], stopwatch=stopwatch).run(Batch.from_arrays([1], [0], [1.0]), CTX)


def test_tick_only_calls_ticking_stages() -> None:
    p = Pipeline([QualityStage(), Threshold("a", 0), AddOne(), Threshold("b", 0)])  # type: ignore[list-item]
    assert p.tick(CTX) == ["a tick 42", "b tick 42"]
    assert [s.name for s in p.ticking] == ["a", "b"]  # type: ignore[attr-defined]


def test_capabilities_are_protocols() -> None:
    t, q = Threshold("a", 0), QualityStage()
    assert isinstance(t, Stage) and isinstance(q, Stage)
    assert isinstance(t, Ticking) and not isinstance(q, Ticking)
    assert isinstance(t, Reloadable) and not isinstance(q, Reloadable)
    assert isinstance(t, WatchesFiles) and not isinstance(q, WatchesFiles)
    assert isinstance(t, DecisionStage) and not isinstance(q, DecisionStage)


def test_watched_files_and_names_in_pipeline_order() -> None:
    p = Pipeline([QualityStage(), Threshold("rules", 0), Threshold("detectors", 0)])  # type: ignore[list-item]
    assert p.watched_files() == [Path("rules.yaml"), Path("detectors.yaml")]
    assert p.names() == ["quality", "rules", "detectors"]
