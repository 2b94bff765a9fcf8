"""Health of the sensor limits: an alert while an enterprise's new sensors are refused.

:class:`~riskwatch.ingest.limits.SensorLimits` refuses new sensor ids beyond
``ingest.max_sensors_per_enterprise`` or ``ingest.max_new_sensors_per_minute`` (dead letter
``sensor_limit``). A refusal means readings are not evaluated, so it must not stay a log
line: this stage raises the group signal ``sensor_limit`` (yellow, ``group = enterprise``)
on the first batch after an enterprise had sensors refused, and resolves it once none was
refused for ``quiet`` (10 minutes), on a batch or a tick. It counts refusals in
``riskwatch_sensors_refused_total{limit}``. It reads the limiter the engine wires it with;
time comes from the batch and the tick, never from a clock.

>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.ingest.limits import SensorLimits
>>> from riskwatch.pipeline import StageContext
>>> lim = SensorLimits(per_enterprise=1, per_minute=100)
>>> st = SensorLimitStage(lim, CollectorRegistry())
>>> _ = lim.admit("entA", 3, now_ns=0)  # 2 refused
>>> ctx = StageContext(now_ns=10**9, registry=SensorRegistry())
>>> [s.message.split(";")[0] for s in st.process(Batch.empty(), ctx)]
['entA: 2 new sensors refused (sensor limits)']
>>> st.tick(StageContext(now_ns=11 * 60 * 10**9, registry=ctx.registry))[0].state.value
'resolved'
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from riskwatch.ingest.limits import SensorLimits
from riskwatch.model import Batch, Level, Signal, SignalSource, SignalState
from riskwatch.pipeline import StageContext
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["RULE", "SensorLimitStage"]

#: the name of the sensor-limit signal (alert configs route and silence by it)
RULE = "sensor_limit"
_MINUTE_NS = 60 * 10**9


class SensorLimitStage:
    """Raises ``sensor_limit`` per enterprise while its new sensors are being refused."""

    name = "sensor_limit"

    def __init__(
        self, limits: SensorLimits, metrics: CollectorRegistry, *, quiet_ns: int = 10 * _MINUTE_NS
    ) -> None:
        self.limits = limits
        self.quiet_ns = quiet_ns
        self.level = Level.YELLOW
        self.raised: set[str] = set()
        self._seen: dict[str, int] = {}  # refused count already signalled, by enterprise
        self._counted: dict[str, int] = {}
        self._refused = Counter(
            "riskwatch_sensors_refused", "New sensors refused by the sensor limits (their "
            "readings are dead-lettered as sensor_limit)", ["limit"], registry=metrics,
        )  # fmt: skip

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]:
        return self._check(ctx.now_ns)

    def tick(self, ctx: StageContext) -> list[Signal]:
        return self._check(ctx.now_ns)

    def _check(self, now_ns: int) -> list[Signal]:
        lim = self.limits
        for limit, n in lim.refused.items():
            done = self._counted.get(limit, 0)
            if n > done:
                self._refused.labels(limit).inc(n - done)
                self._counted[limit] = n
        out: list[Signal] = []
        for ent, n in lim.refused_by_enterprise.items():
            if n > self._seen.get(ent, 0):
                if ent not in self.raised:
                    self.raised.add(ent)
                    out.append(
                        self._signal(ent, SignalState.FIRING, now_ns, n - self._seen.get(ent, 0))
                    )
                self._seen[ent] = n
        for ent in sorted(self.raised):
            last = lim.last_refused_ns.get(ent)
            if last is None or now_ns - last >= self.quiet_ns:
                self.raised.discard(ent)
                out.append(self._signal(ent, SignalState.RESOLVED, now_ns, 0))
        return out

    def _signal(self, ent: str, state: SignalState, now_ns: int, n: int) -> Signal:
        body = (f"{n} new sensors refused (sensor limits); their readings are dead-lettered"
                if state == SignalState.FIRING
                else f"no new sensor refused for {self.quiet_ns // _MINUTE_NS} min")  # fmt: skip
        return Signal(
            rule=RULE, sensor=-1, time=now_ns, state=state,
            level=self.level if state == SignalState.FIRING else None, value=float(n),
            threshold=float(self.limits.per_enterprise), message=f"{ent}: {body} [{RULE}, {state}]",
            source=SignalSource.RULE, group=ent, extra={"enterprise": ent, "site": ""},
        )  # fmt: skip

    # -- durable state (riskwatch.state.Durable) -------------------------------------------
    def dump_state(self) -> StateTree:
        """The enterprises whose alert is raised (so that it can resolve after a restart)."""
        return {"v": 1, "raised": sorted(self.raised)}

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        self.raised = set(tree.get("raised") or [])
        return Restored({"sensor limit alerts raised": len(self.raised)})
