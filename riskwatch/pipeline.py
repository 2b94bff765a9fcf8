"""Stages of the data path, what else a stage may offer, and how stages compose.

A stage is one small object with one method over a batch::

    process(batch, ctx) -> Batch | list[Signal]

A *transform* stage (data quality, flagging) returns a new :class:`Batch`; a *decision*
stage (rules, detectors) returns the :class:`Signal` s it emitted. :class:`Pipeline`
runs the stages in order: each transform's batch is what the stages after it see, and the
signals of every decision stage are collected for the signal sink (alerts).

A stage may offer more, each an optional capability with its own Protocol, so that the
engine asks ``isinstance(stage, Ticking)`` instead of looking methods up by name:

- :class:`Ticking`: ``tick(ctx)`` is called on the engine's timer, for conditions that
  must fire without data (``for`` durations, no-data deadman);
- :class:`Reloadable`: ``reload(ctx)`` swaps in its files' current content (SIGHUP, a
  changed file, the console) and returns a :class:`StageReload` saying which rules were
  added, changed and removed; it raises :class:`~riskwatch.errors.ConfigErrors` to keep
  the running set;
- :class:`Reconfigurable`: ``reconfigure(cfg)`` takes the file list of a re-read engine
  config (applied by the next ``reload``);
- :class:`WatchesFiles`: ``watched_files()`` names the files whose change means reload.

>>> import numpy as np
>>> from riskwatch.catalog import SensorRegistry
>>> class Doubler:
...     name = "double"
...     def process(self, batch, ctx):
...         return Batch(batch.time, batch.sensor, batch.value * 2, batch.flags, batch.received)
>>> class Above3:
...     name = "above3"
...     def process(self, batch, ctx):
...         return [f"{v} > 3" for v in batch.value if v > 3]
...     def tick(self, ctx):
...         return [f"tick at {ctx.now_ns}"]
>>> p = Pipeline([Doubler(), Above3()])
>>> ctx = StageContext(now_ns=5, registry=SensorRegistry())
>>> out, signals = p.run(Batch.from_arrays([1, 2], [0, 0], [1.0, 2.0]), ctx)
>>> out.value.tolist(), signals
([2.0, 4.0], ['4.0 > 3'])
>>> p.tick(ctx)
['tick at 5']

``on_stage`` sees each stage with the seconds it took (the engine's per-stage metric),
measured with the pipeline's stopwatch:

>>> ticks = iter([0.0, 0.25, 1.0, 1.5])
>>> timed = Pipeline([Doubler(), Above3()], stopwatch=lambda: next(ticks))
>>> seen = []
>>> def on_stage(stage, seconds):
...     seen.append((stage.name, seconds))
>>> _ = timed.run(Batch.from_arrays([1], [0], [2.0]), ctx, on_stage=on_stage)
>>> seen
[('double', 0.25), ('above3', 0.5)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch, Signal, SignalSource

if TYPE_CHECKING:
    from riskwatch.config.engine import EngineConfig

__all__ = [
    "DecisionStage",
    "Pipeline",
    "Reconfigurable",
    "ReloadListener",
    "Reloadable",
    "SignalSink",
    "Stage",
    "StageContext",
    "StageReload",
    "StageTimer",
    "Ticking",
    "WatchesFiles",
]


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stage may know besides the batch: the engine's ``now`` and the registry."""

    now_ns: int
    registry: SensorRegistry


@runtime_checkable
class Stage(Protocol):
    """One step of the data path: a new batch (transform) or the signals it decided."""

    name: str

    def process(self, batch: Batch, ctx: StageContext) -> Batch | list[Signal]: ...


@runtime_checkable
class Ticking(Protocol):
    """A stage with timers: the engine calls ``tick`` every ``ingest.tick_ms``."""

    def tick(self, ctx: StageContext) -> list[Signal]: ...


@dataclass(frozen=True, slots=True)
class StageReload:
    """What one stage's reload changed, for the log and for the alerts of its rules.

    ``removed`` names the rules (detector entries) that are gone: their open alerts can
    never resolve from a reading, so the signal sink ends them (``rule_removed``).
    ``ended`` are ``resolved`` signals, each with its :class:`~riskwatch.model.EndReason`,
    for subjects a changed rule no longer watches. ``changed`` rules took over the
    state of their predecessors' active subjects, so the next reading resolves them if
    the new condition no longer holds; they need nothing from the sink.

    >>> r = StageReload("rules", SignalSource.RULE, added=("new",), removed=("gone",))
    >>> r.changes_anything, r.changed
    (True, ())
    """

    stage: str
    source: SignalSource
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: int = 0  # rules whose definition did not change (state kept)
    ended: tuple[Signal, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.ended)


@runtime_checkable
class Reloadable(Protocol):
    """A stage that can swap in its files' current content, keeping state where it can."""

    def reload(self, ctx: StageContext) -> StageReload: ...


@runtime_checkable
class Reconfigurable(Protocol):
    """A stage whose file list comes from the engine config: ``reconfigure`` takes the
    list of a re-read ``engine.yaml``; the next :meth:`Reloadable.reload` loads it."""

    def reconfigure(self, cfg: EngineConfig) -> None: ...


@runtime_checkable
class WatchesFiles(Protocol):
    """A stage whose files, when changed on disk, call for a reload."""

    def watched_files(self) -> list[Path]: ...


@runtime_checkable
class DecisionStage(Protocol):
    """A stage that decides (rules, detectors): signals per batch and per tick."""

    name: str

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]: ...

    def tick(self, ctx: StageContext) -> list[Signal]: ...


class SignalSink(Protocol):
    def handle(self, signals: Sequence[Signal], ctx: StageContext) -> None: ...


@runtime_checkable
class ReloadListener(Protocol):
    """A signal sink that follows reloads: the alert sink ends the open alerts of removed
    rules and of subjects a changed rule no longer watches (``StageReload``)."""

    def reloaded(self, reloads: Sequence[StageReload], ctx: StageContext) -> None: ...


#: Called after each stage of :meth:`Pipeline.run` with the stage and the seconds it took.
StageTimer = Callable[[Stage, float], None]


class Pipeline:
    """The stages in order; which of them tick, reload and watch files is found once here.

    ``stopwatch`` (seconds, monotonic) times the stages when :meth:`run` is given an
    ``on_stage`` hook; it is only read then.
    """

    def __init__(
        self, stages: Sequence[Stage], *, stopwatch: Callable[[], float] = time.perf_counter
    ) -> None:
        self.stages: tuple[Stage, ...] = ()
        self.ticking: tuple[Ticking, ...] = ()
        self._set(stages)
        self._stopwatch = stopwatch

    def _set(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self.ticking = tuple(s for s in self.stages if isinstance(s, Ticking))

    def add(self, stage: Stage) -> None:
        """Append a stage (a re-read engine config named files for a stage that had none);
        called on the engine thread between batches, like every reload."""
        self._set([*self.stages, stage])

    def run(
        self,
        batch: Batch,
        ctx: StageContext,
        on_stage: StageTimer | None = None,
    ) -> tuple[Batch, list[Signal]]:
        """The batch after the last transform, and every decision stage's signals."""
        signals: list[Signal] = []
        for stage in self.stages:
            if on_stage is None:
                out = stage.process(batch, ctx)
            else:
                started = self._stopwatch()
                out = stage.process(batch, ctx)
                on_stage(stage, self._stopwatch() - started)
            if isinstance(out, Batch):
                batch = out
            else:
                signals.extend(out)
        return batch, signals

    def tick(self, ctx: StageContext) -> list[Signal]:
        """The signals of every :class:`Ticking` stage's timers at ``ctx.now_ns``."""
        signals: list[Signal] = []
        for stage in self.ticking:
            signals.extend(stage.tick(ctx))
        return signals

    def watched_files(self) -> list[Path]:
        """Every file a :class:`WatchesFiles` stage names, in pipeline order."""
        return [f for s in self.stages if isinstance(s, WatchesFiles) for f in s.watched_files()]

    def names(self) -> list[str]:
        """The stages' names, in order (``riskwatch run --check`` prints them)."""
        return [s.name for s in self.stages]
