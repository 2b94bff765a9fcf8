"""Gateway clock health: per gateway, how far its readings' event times run ahead of arrival.

The quality stage flags each reading whose event time is ahead of its arrival by more
than ``ingest.max_clock_skew_s`` (``Flags.CLOCK_SKEW``). A fast clock is a gateway's
fault, not a sensor's, so this stage, right after it, follows each gateway:

- ``riskwatch_gateway_clock_skew_seconds{gateway}``: the skew (event time minus
  arrival, seconds; negative is the normal transit delay) of the gateway's latest
  arrived reading;
- ``riskwatch_clock_skew_readings_total{gateway}``: readings flagged ``clock_skew``;
- the signal ``gateway_clock_skew`` (yellow, a group signal like the gateway no-data
  rules': ``sensor = -1``, ``group = "enterprise/site/gateway"``): raised on a batch in
  which the gateway sent a skewed reading, resolved on the next batch in which it sent
  readings and none was skewed.

The gateway of a reading is its sensor's ``gateway`` column (the catalogue's, else the
topic's or envelope's gateway when the sensor was first seen); sensors without one
count under their site (``enterprise/site``).

It lives here, in the engine's layer, beside the quality stage, rather than in the rule
packs: it is a fact about the transport, every deployment needs it, and its limit is
the engine's own ``ingest.max_clock_skew_s``.

>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.model import Flags
>>> from riskwatch.pipeline import StageContext
>>> reg = SensorRegistry()
>>> _ = reg.intern("m1", "f2", ["CH4-T0"], gateway="gw1")
>>> st = GatewayClockStage(2.0, CollectorRegistry())
>>> ctx = StageContext(now_ns=0, registry=reg)
>>> S = 10**9
>>> fast = Batch.from_arrays([300 * S], [0], [0.3], [int(Flags.CLOCK_SKEW)], [10 * S])
>>> [s.message for s in st.process(fast, ctx)]
['m1/f2/gw1: gateway clock 290 s ahead of arrival (limit 2 s) [gateway_clock_skew, firing]']
>>> ok = Batch.from_arrays([11 * S], [0], [2.0], [0], [11 * S])
>>> [s.message for s in st.process(ok, ctx)]
['m1/f2/gw1: gateway clock back within 2 s (latest +0.0 s) [gateway_clock_skew, resolved]']
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch, Flags, Level, Signal, SignalSource, SignalState
from riskwatch.pipeline import StageContext
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["RULE", "GatewayClockStage"]

#: the name of the gateway clock signal (alert configs route and silence by it)
RULE = "gateway_clock_skew"
_SKEW = int(Flags.CLOCK_SKEW)


class GatewayClockStage:
    """Per-gateway clock skew: metrics and the ``gateway_clock_skew`` signal.

    Parameters
    ----------
    max_clock_skew_s:
        The limit the quality stage flags against (quoted in messages as the threshold).
    metrics_registry:
        Where the gauge and the counter are created.
    level:
        The level of the signal (yellow: a health alert, like the packs' no-data rules).

    State: ``skewed`` (bool per gateway, in the order of ``gateways``).
    """

    name = "gateway_clock"

    def __init__(
        self,
        max_clock_skew_s: float,
        metrics_registry: CollectorRegistry,
        *,
        level: Level = Level.YELLOW,
    ) -> None:
        self.max_clock_skew_s = float(max_clock_skew_s)
        self.level = level
        self.skew_gauge = Gauge(
            "riskwatch_gateway_clock_skew_seconds",
            "Event time minus arrival time of the gateway's latest reading",
            ["gateway"],
            registry=metrics_registry,
        )
        self.skewed_readings = Counter(
            "riskwatch_clock_skew_readings",
            "Readings flagged clock_skew (ahead of arrival by more than ingest.max_clock_skew_s)",
            ["gateway"],
            registry=metrics_registry,
        )
        self.gateways: list[str] = []  # "enterprise/site[/gateway]" per gateway index
        self.skewed = np.zeros(0, bool)
        self._of_sensor = np.zeros(0, np.int64)  # gateway index per sensor id
        self._generation = -1

    def _rebuild(self, reg: SensorRegistry) -> None:
        """Gateway index per sensor for this registry generation (skewed flags kept)."""
        n = len(reg)
        if n:
            keys = np.char.add(np.char.add(reg.column("enterprise").astype(str), "/"),
                               reg.column("site").astype(str))  # fmt: skip
            keys = np.char.add(np.char.add(keys, "/"), reg.column("gateway").astype(str))
            keys = np.char.rstrip(keys, "/")
            names, inv = np.unique(keys, return_inverse=True)
        else:
            names, inv = np.zeros(0, str), np.zeros(0, np.int64)
        old = dict(zip(self.gateways, self.skewed.tolist(), strict=True))
        self.gateways = names.tolist()
        self.skewed = np.array([old.get(g, False) for g in self.gateways], bool)
        self._of_sensor = inv.astype(np.int64)
        self._generation = reg.generation

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]:
        if not len(batch):
            return []
        if ctx.registry.generation != self._generation:
            self._rebuild(ctx.registry)
        gw = self._of_sensor[batch.sensor]
        skew = batch.time - batch.received
        is_skewed = (batch.flags & _SKEW) != 0
        # per gateway of the batch: its latest arrived reading (the last in batch order
        # among those with the newest arrival), and whether any reading was skewed
        order = np.lexsort((np.arange(len(batch)), batch.received, gw))
        g_sorted = gw[order]
        last = np.ones(len(order), bool)
        last[:-1] = g_sorted[1:] != g_sorted[:-1]
        latest = order[last]
        seen = gw[latest]
        n_skewed = np.bincount(gw[is_skewed], minlength=len(self.gateways))
        out: list[Signal] = []
        for g, row in zip(seen.tolist(), latest.tolist(), strict=True):  # per gateway
            name = self.gateways[g]
            self.skew_gauge.labels(name).set(float(skew[row]) / 1e9)
            count = int(n_skewed[g])
            if count:
                self.skewed_readings.labels(name).inc(count)
            now_skewed = count > 0
            if now_skewed == bool(self.skewed[g]):
                continue
            self.skewed[g] = now_skewed
            if now_skewed:  # quote the worst skew of the batch
                rows = np.flatnonzero(is_skewed & (gw == g))
                worst = int(rows[np.argmax(skew[rows])])
                out.append(self._signal(name, SignalState.FIRING, worst, batch))
            else:
                out.append(self._signal(name, SignalState.RESOLVED, row, batch))
        return out

    def _signal(self, group: str, state: SignalState, row: int, batch: Batch) -> Signal:
        skew_s = float(batch.time[row] - batch.received[row]) / 1e9
        limit = self.max_clock_skew_s
        if state == SignalState.FIRING:
            body = f"gateway clock {skew_s:.0f} s ahead of arrival (limit {limit:g} s)"
        else:
            body = f"gateway clock back within {limit:g} s (latest {skew_s:+.1f} s)"
        parts = group.split("/")
        return Signal(
            rule=RULE,
            sensor=-1,
            time=int(batch.received[row]),  # arrival: the skewed event time is wrong
            state=state,
            level=self.level if state == SignalState.FIRING else None,
            value=skew_s,
            threshold=limit,
            message=f"{group}: {body} [{RULE}, {state}]",
            source=SignalSource.RULE,
            group=group,
            extra={"enterprise": parts[0], "site": parts[1] if len(parts) > 1 else ""},
        )

    # -- durable state (riskwatch.state.Durable) -------------------------------------------
    def dump_state(self) -> StateTree:
        """The gateways whose clock alert is raised, by name."""
        return {"v": 1, "skewed": [g for g, f in zip(self.gateways, self.skewed.tolist(),
                                                      strict=True) if f]}  # fmt: skip

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        names = set(tree.get("skewed") or [])
        old = dict.fromkeys(names, True)
        self.gateways = sorted(set(self.gateways) | names)
        self.skewed = np.array([old.get(g, False) for g in self.gateways], bool)
        self._generation = -1  # the registry's gateways are laid out again on the next batch
        return Restored({"gateways skewed": len(names)})
