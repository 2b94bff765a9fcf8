"""Stages of the data path and how they compose.

A stage is one small object with one method over a batch::

    process(batch, ctx) -> Batch | list[Signal]

A *transform* stage (data quality, flagging) returns a new :class:`Batch`; a *decision*
stage (rules, detectors) returns the :class:`Signal` s it emitted. :class:`Pipeline`
runs transforms in order, then fans the resulting batch out to every decision stage,
and hands all signals to the signal sinks (alerts). Decision stages also get
:meth:`tick` calls driven by the engine clock, for timers that must fire without data
(``for`` durations, no-data deadman).

>>> import numpy as np
>>> from riskwatch.catalog import SensorRegistry
>>> class Doubler:
...     name = "double"
...     def process(self, batch, ctx):
...         return Batch(batch.time, batch.sensor, batch.value * 2, batch.flags, batch.received)
>>> p = Pipeline([Doubler()])
>>> ctx = StageContext(now_ns=5, registry=SensorRegistry())
>>> out, signals = p.run(Batch.from_arrays([1], [0], [2.0]), ctx)
>>> out.value.tolist(), signals
([4.0], [])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch, Signal

__all__ = ["DecisionStage", "Pipeline", "SignalSink", "Stage", "StageContext"]


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stage may know besides the batch: the engine's ``now`` and the registry."""

    now_ns: int
    registry: SensorRegistry


@runtime_checkable
class Stage(Protocol):
    name: str

    def process(self, batch: Batch, ctx: StageContext) -> Batch | list[Signal]: ...


@runtime_checkable
class DecisionStage(Protocol):
    name: str

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]: ...

    def tick(self, ctx: StageContext) -> list[Signal]: ...


class SignalSink(Protocol):
    def handle(self, signals: Sequence[Signal], ctx: StageContext) -> None: ...


class Pipeline:
    """Transforms in order, then every decision stage over the transformed batch."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def run(self, batch: Batch, ctx: StageContext) -> tuple[Batch, list[Signal]]:
        signals: list[Signal] = []
        for st in self.stages:
            out = st.process(batch, ctx)
            if isinstance(out, Batch):
                batch = out
            else:
                signals.extend(out)
        return batch, signals

    def tick(self, ctx: StageContext) -> list[Signal]:
        signals: list[Signal] = []
        for st in self.stages:
            tick = getattr(st, "tick", None)
            if tick is not None:
                signals.extend(tick(ctx))
        return signals
