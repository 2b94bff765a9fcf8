"""The ``adapter_health`` stage: hands the ingest adapters' health signals
(:class:`~riskwatch.ingest.health.AdapterSignals`: ``sparkplug_offline``,
``kj_power_off_mismatch``, ``kj_record``) to the alert lifecycle, on the batch that
carried them or, when no reading came with them (an NDEATH), on the next tick.

It sits in the engine's layer beside the quality and gateway-clock stages: a fact about
the transport that every deployment of an adapter needs; the engine adds it only when an
adapter is configured.

>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.model import Level, SignalState
>>> from riskwatch.pipeline import StageContext
>>> q = AdapterSignals()
>>> st = AdapterHealthStage(q)
>>> q.emit("sparkplug_offline", "g/n", 1, SignalState.FIRING, Level.ORANGE, "offline")
>>> [s.rule for s in st.tick(StageContext(now_ns=2, registry=SensorRegistry()))]
['sparkplug_offline']
"""

from __future__ import annotations

from riskwatch.ingest.health import AdapterSignals
from riskwatch.model import Batch, Signal
from riskwatch.pipeline import StageContext

__all__ = ["RULES", "AdapterHealthStage", "AdapterSignals"]

#: the rule names this stage may emit (alert configs route and silence by them)
RULES = ("sparkplug_offline", "kj_power_off_mismatch", "kj_record")


class AdapterHealthStage:
    """Drains the adapters' signals on every batch and every tick."""

    name = "adapter_health"

    def __init__(self, signals: AdapterSignals) -> None:
        self.signals = signals

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]:
        return self.signals.drain()

    def tick(self, ctx: StageContext) -> list[Signal]:
        return self.signals.drain()
