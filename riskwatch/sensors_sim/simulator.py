"""The simulator: all plants of a scenario stepped together, faults injected, labels kept.

Per tick (``scenario.tick``, 1 s by default) the sensors whose reporting time falls in
the tick are picked with one mask over the whole table; their values are the plant
shape (:func:`~riskwatch.sensors_sim.signals.baseline`) plus per-sensor AR(1) noise,
then the active value events change them (a loop over the few active events, each a
whole-array operation), then the feed interlock follows the methane points, then the
transport events decide what reaches the broker and when (dropped, held back, doubled,
damaged). Nothing loops over readings or sensors in Python.

Determinism: the readings depend only on the scenario, the seed and the start time —
not on ``--speed``, wall-clock time or how often the caller steps (empty ticks can be
skipped with :meth:`Simulator.skip_idle`).

>>> from riskwatch.sensors_sim.scenario import load_scenario_text
>>> sc = load_scenario_text('''
... name: t
... duration: 2m
... plants: [{type: coal_mine, enterprise: m1}]
... events:
...   - {type: ch4_buildup, at: 20s, duration: 60s, target: {site: face1, location: working_face}}
... ''')
>>> sim = Simulator(sc, start_ns=1_780_000_000_000_000_000)
>>> r = sim.run_all()
>>> len(r) == 12 * len(sim.table)   # every sensor reports every 10 s
True
>>> [(lb["type"], lb["sensor"]) for lb in sim.labels]
[('ch4_buildup', 'CH4-F1-T1')]
>>> bool(r.value[sim.table.sensor[r.idx] == "CH4-F1-T1"].max() >= 1.5)
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.sensors_sim.plants import BUILDERS, Pattern, SensorTable, TableBuilder
from riskwatch.sensors_sim.plants.electricity import IDLE_SHARE
from riskwatch.sensors_sim.scenario import TRANSPORT_EVENTS, EventSpec, Scenario
from riskwatch.sensors_sim.signals import ar1_step, baseline

__all__ = ["DAMAGE", "EventInstance", "Readings", "Simulator", "resolve_start"]

_MS = 1_000_000
_S = 1_000_000_000

#: malformed-payload kinds (``Readings.damage``): 1 truncated JSON, 2 value as text,
#: 3 value missing, 4 unparseable timestamp
DAMAGE = {1: "truncated_json", 2: "text_value", 3: "missing_value", 4: "bad_timestamp"}

# which kinds an event hits when its target names no kind
DEFAULT_KINDS = {
    "ch4_buildup": ["ch4"],
    "outburst": ["ch4"],
    "gas_leak": ["lel", "toxic"],
    "tank_overfill": ["level"],
    "slope_acceleration": ["displacement"],
    "shutdown_production": ["load_kw"],
    "feed_failure": ["feed"],
}
# default fault size by event type and kind (sensor units)
DEFAULT_PEAK = {
    ("ch4_buildup", "ch4"): 1.8,
    ("outburst", "ch4"): 6.0,
    ("gas_leak", "lel"): 65.0,
    ("gas_leak", "toxic"): 260.0,
    ("tank_overfill", "level"): 97.0,
    ("drift", "ch4"): 1.2,
    ("calibration", "ch4"): 2.0,
}


@dataclass(slots=True)
class Readings:
    """Columns of readings to publish: sensor row, time (epoch ms), value, quality
    (0 ok, 1 calibrating, 2 fault) and damage (0, or a :data:`DAMAGE` code)."""

    idx: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    damage: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)

    @classmethod
    def empty(cls) -> Readings:
        return cls(
            np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0), np.empty(0, np.uint8),
            np.empty(0, np.uint8),
        )  # fmt: skip

    def take(self, sel: np.ndarray) -> Readings:
        return Readings(
            self.idx[sel], self.ts_ms[sel], self.value[sel], self.quality[sel], self.damage[sel]
        )

    @classmethod
    def concat(cls, parts: list[Readings]) -> Readings:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__slots__))


@dataclass
class EventInstance:
    """One injected fault over a set of sensors (or gateways) and a time window."""

    id: str
    type: str
    label: str
    start_ns: int
    end_ns: int
    targets: np.ndarray  # sorted sensor rows
    peak: np.ndarray  # per target (NaN: type default)
    p: float
    delay_ns: int
    gateways: list[str] = field(default_factory=list)
    frozen: np.ndarray | None = None


def resolve_start(scenario: Scenario, *, live: bool, now_ns: int, duration_s: float) -> int:
    """Start time of a run: the scenario's ``start``, else now (live, aligned to the
    second) or ``now - duration`` (replay faster than real time, ending about now)."""
    if scenario.start is not None:
        return int(datetime.fromisoformat(scenario.start).timestamp() * _S)
    t = now_ns - (0 if live else int(duration_s * _S))
    return (t // _S) * _S


class Simulator:
    """Steps every plant of a scenario; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        start_ns: int,
        seed: int | None = None,
        duration_s: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.t0_ns = int(start_ns)
        self.duration_s = scenario.duration_s if duration_s is None else float(duration_s)
        self.end_ns = self.t0_ns + int(self.duration_s * _S)
        self.tick_ns = int(scenario.tick_s * _S)
        b = TableBuilder()
        for p in scenario.plants:
            b.extend(BUILDERS[p.type](p))
        self.table: SensorTable = b.build()
        t = self.table
        n = len(t)
        if n == 0:
            raise ConfigErrors([ConfigError("plants", "no sensors", file=scenario.source)])
        self.period_ns = (t.period_s * _S).astype(np.int64)
        if int(self.period_ns.min()) < self.tick_ns:
            raise ConfigErrors(
                [ConfigError("tick", "must not exceed the shortest reporting period",
                             file=scenario.source)]
            )  # fmt: skip
        self.rng = np.random.default_rng(self.seed)
        # gateways: one (enterprise, site, gateway) triple each
        gw_keys = [f"{e}/{s}/{g}" for e, s, g in zip(t.enterprise, t.site, t.gateway, strict=True)]
        uniq: dict[str, int] = {}
        self.gw_of = np.array([uniq.setdefault(k, len(uniq)) for k in gw_keys], dtype=np.int32)
        self.gateway_keys = list(uniq)
        # a substation polls all its points in one cycle: one phase per gateway
        gw_phase = self.rng.random(len(uniq))
        self.next_due = (
            self.t0_ns + (gw_phase[self.gw_of] * (self.period_ns // _MS)).astype(np.int64) * _MS
        )
        self.noise = t.sd * self.rng.standard_normal(n)
        self.innov = t.sd * np.sqrt(1.0 - t.rho**2)
        self.last_value = np.full(n, math.nan)
        self.is_ch4 = t.kind == "ch4"
        self.is_feed = t.pattern == Pattern.FEED
        self.is_load = t.pattern == Pattern.LOAD
        self.scale = 10.0 ** t.decimals.astype(np.float64)
        self.tripped = np.zeros(n, dtype=bool)
        keys = {k: i for i, k in enumerate(t.keys())}
        ctrl = np.full(n, -1, dtype=np.int64)
        if "controls" in t.tags:
            for i in np.flatnonzero(self.is_feed):
                c = t.tags["controls"][i]
                ctrl[i] = keys.get(f"{t.enterprise[i]}/{t.site[i]}/{c}", -1)
        self.feed_ctrl = ctrl
        self.power_off = t.setpoints.get("power_off", np.full(n, math.nan))
        self.restore = t.setpoints.get("restore", np.full(n, math.nan))
        self.orders = self._resolve_orders()
        self.events = self._resolve_events()
        self.labels = self._labels()
        self._ev_start = np.array([e.start_ns for e in self.events], dtype=np.int64)
        self._ev_end = np.array([e.end_ns for e in self.events], dtype=np.int64)
        self._ev_transport = np.array([e.type in TRANSPORT_EVENTS for e in self.events], bool)
        self._has_prod = any(e.type == "shutdown_production" for e in self.events)
        self._pending: list[tuple[np.ndarray, Readings]] = []  # (release_ns per row, rows)
        self.t_ns = self.t0_ns

    # ------------------------------------------------------------------ set-up
    def _select(self, i: int, ev: EventSpec) -> np.ndarray:
        t = self.table
        mask = np.ones(len(t), dtype=bool)
        items = ev.target.items()
        if ev.type in DEFAULT_KINDS and not any(k == "kind" for k, _ in items):
            items.append(("kind", DEFAULT_KINDS[ev.type]))
        for col, vals in items:
            mask &= np.isin(t.column(col), np.array(vals, dtype=object))
        rows = np.flatnonzero(mask)
        if not len(rows):
            raise ConfigErrors(
                [ConfigError(f"events[{i}].target", "matches no simulated sensor",
                             file=self.scenario.source)]
            )  # fmt: skip
        return rows

    def _resolve_events(self) -> list[EventInstance]:
        out: list[EventInstance] = []
        t = self.table
        for i, ev in enumerate(self.scenario.events):
            rows = self._select(i, ev)
            gws = (
                sorted({self.gateway_keys[g] for g in self.gw_of[rows]})
                if ev.type == "gateway_dropout"
                else []
            )
            for k in range(ev.repeat):
                start = self.t0_ns + int((ev.start_s + k * ev.every_s) * _S)
                end = start + int(ev.duration_s * _S)
                if ev.type == "gateway_dropout":
                    pick_gw = gws
                    if ev.count is not None:
                        pick_gw = [gws[(k * ev.count + j) % len(gws)] for j in range(ev.count)]
                        pick_gw = sorted(set(pick_gw))
                    gsel = np.isin(
                        np.array(self.gateway_keys, dtype=object)[self.gw_of],
                        np.array(pick_gw, dtype=object),
                    )
                    targets = np.flatnonzero(gsel)
                else:
                    pick_gw = []
                    targets = rows
                    if ev.count is not None:
                        targets = np.unique(rows[(k * ev.count + np.arange(ev.count)) % len(rows)])
                peak = np.full(len(targets), math.nan)
                if ev.peak is not None:
                    peak[:] = ev.peak
                else:
                    for j, kind in enumerate(t.kind[targets]):
                        peak[j] = DEFAULT_PEAK.get((ev.type, kind), math.nan)
                out.append(
                    EventInstance(
                        id=f"{i}.{k}", type=ev.type, label=ev.label or ev.type,
                        start_ns=start, end_ns=end, targets=targets.astype(np.int64),
                        peak=peak, p=ev.p, delay_ns=int(ev.delay_s * _S), gateways=pick_gw,
                    )
                )  # fmt: skip
        return out

    def _resolve_orders(self) -> list[tuple[str, int, int, str, np.ndarray]]:
        out = []
        ents = self.table.enterprise
        for p in self.scenario.plants:
            for o in p.shutdown_orders:
                start = self.t0_ns + int(o.at)
                end = start + int(o.duration)
                out.append(
                    (o.enterprise, start, end, o.reason, (ents == o.enterprise) & self.is_load)
                )
        return out

    def _labels(self) -> list[dict[str, Any]]:
        """Ground truth: one record per (event instance, sensor), or per gateway for a
        gateway dropout; only events that start before the run ends, clipped to it."""
        t = self.table
        out: list[dict[str, Any]] = []
        for ev in self.events:
            if ev.start_ns >= self.end_ns:
                continue
            base = {
                "event": ev.id, "type": ev.type, "label": ev.label,
                "start": ev.start_ns // _MS, "end": min(ev.end_ns, self.end_ns) // _MS,
            }  # fmt: skip
            if ev.type == "gateway_dropout":
                for g in ev.gateways:
                    e, s, gw = g.split("/", 2)
                    out.append({**base, "enterprise": e, "site": s, "sensor": "", "gateway": gw})
            else:
                for r in ev.targets:
                    out.append(
                        {**base, "enterprise": t.enterprise[r], "site": t.site[r],
                         "sensor": t.sensor[r], "gateway": t.gateway[r]}
                    )  # fmt: skip
        return out

    def shutdown_calendar(self) -> list[dict[str, str]]:
        """The scenario's shutdown orders as rows of a rules calendar CSV
        (``enterprise, site, start, end, reason``)."""
        rows = []
        for ent, start, end, reason, _ in self.orders:
            rows.append(
                {"enterprise": ent, "site": "", "start": _iso(start), "end": _iso(end),
                 "reason": reason}
            )  # fmt: skip
        return rows

    # ------------------------------------------------------------------ stepping
    def done(self) -> bool:
        return self.t_ns >= self.end_ns and not self._pending

    def skip_idle(self) -> None:
        """Jump over ticks in which nothing is due (fast-forward); output is unchanged."""
        nxt = int(self.next_due.min())
        if self._pending:
            nxt = min(nxt, min(int(r.min()) for r, _ in self._pending))
        if nxt > self.t_ns + self.tick_ns:
            k = (nxt - self.t_ns) // self.tick_ns
            self.t_ns = min(self.t_ns + k * self.tick_ns, max(self.end_ns, self.t_ns))

    def step(self) -> Readings:
        """Readings of the tick ``[t, t + tick)`` (plus held-back ones released in it)."""
        t_lo = self.t_ns
        t_hi = t_lo + self.tick_ns
        self.t_ns = t_hi
        if t_lo >= self.end_ns:
            return self._release(t_hi)
        due = np.flatnonzero(self.next_due < min(t_hi, self.end_ns))
        if not len(due):
            return self._release(t_hi)
        ts_ns = self.next_due[due]
        self.next_due[due] += self.period_ns[due]
        tb = self.table
        t_s = ts_ns / 1e9
        z = self.rng.standard_normal(len(due))
        u = self.rng.random(len(due))  # for spike / malformed / hold-back draws
        v = baseline(
            tb.pattern[due], tb.base[due], tb.amp[due], tb.phase[due], t_s, t0_s=self.t0_ns / 1e9
        )
        self._orders(due, ts_ns, v)
        noise = ar1_step(self.noise, due, self.innov, tb.rho, z)
        load = self.is_load[due]
        if load.any():  # meter noise scales with the load
            noise[load] *= v[load] / tb.base[due[load]]
        v += noise
        v = np.clip(v, tb.range_low[due], tb.range_high[due])
        quality = np.zeros(len(due), dtype=np.uint8)
        feed_forced = np.zeros(len(due), dtype=bool)
        for ev in self._active(t_lo, t_hi, transport=False):
            sel, pos = self._hits(ev, due, ts_ns)
            if sel.size:
                self._apply(ev, sel, pos, due, ts_ns, v, u, quality, feed_forced)
        v = np.where(tb.pattern[due] == Pattern.RAIN, np.maximum(v, 0.0), v)
        self._interlock(due, v, feed_forced)
        v = np.round(v * self.scale[due]) / self.scale[due]
        self.last_value[due] = v
        r = Readings(
            due.astype(np.int32), ts_ns // _MS, v, quality, np.zeros(len(due), dtype=np.uint8)
        )
        r = self._transport(r, ts_ns, u, t_lo, t_hi)
        return Readings.concat([r, self._release(t_hi)])

    def run_all(self, *, fast: bool = True) -> Readings:
        """Every reading of the run (for tests and in-process replay)."""
        return Readings.concat(list(self.iter_ticks(fast=fast)))

    def iter_ticks(self, *, fast: bool = True) -> Iterator[Readings]:
        while not self.done():
            if fast:
                self.skip_idle()
            yield self.step()

    # ------------------------------------------------------------------ helpers
    def _active(self, t_lo: int, t_hi: int, *, transport: bool) -> list[EventInstance]:
        if not self.events:
            return []
        m = (self._ev_start < t_hi) & (self._ev_end > t_lo) & (self._ev_transport == transport)
        return [self.events[i] for i in np.flatnonzero(m)]

    @staticmethod
    def _hits(
        ev: EventInstance, due: np.ndarray, ts_ns: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``due`` hit by ``ev`` and their position in ``ev.targets``."""
        pos = np.searchsorted(ev.targets, due)
        pos_c = np.minimum(pos, len(ev.targets) - 1)
        hit = (ev.targets[pos_c] == due) & (ts_ns >= ev.start_ns) & (ts_ns < ev.end_ns)
        sel = np.flatnonzero(hit)
        return sel, pos_c[sel]

    def _orders(self, due: np.ndarray, ts_ns: np.ndarray, v: np.ndarray) -> None:
        if not self.orders:
            return
        for _, start, end, _, mask in self.orders:
            m = mask[due] & (ts_ns >= start) & (ts_ns < end)
            if m.any():
                keep = np.zeros(len(due), dtype=bool)
                t_lo, t_hi = int(ts_ns.min()), int(ts_ns.max()) + 1
                for ev in self._active(t_lo, t_hi, transport=False) if self._has_prod else []:
                    if ev.type == "shutdown_production":
                        sel, _ = self._hits(ev, due, ts_ns)
                        keep[sel] = True
                m &= ~keep
                v[m] = self.table.base[due[m]] * IDLE_SHARE

    def _apply(
        self,
        ev: EventInstance,
        sel: np.ndarray,
        pos: np.ndarray,
        due: np.ndarray,
        ts_ns: np.ndarray,
        v: np.ndarray,
        u: np.ndarray,
        quality: np.ndarray,
        feed_forced: np.ndarray,
    ) -> None:
        tb = self.table
        rows = due[sel]
        frac = (ts_ns[sel] - ev.start_ns) / max(1, ev.end_ns - ev.start_ns)
        peak = ev.peak[pos]
        span = tb.range_high[rows] - tb.range_low[rows]
        cur = v[sel]
        typ = ev.type
        if typ in ("ch4_buildup", "gas_leak"):
            # rise over the first 60 %, hold, fall back over the last 10 %
            s = np.clip(frac / 0.6, 0, 1) * np.clip((1 - frac) / 0.1, 0, 1)
            pk = np.where(np.isnan(peak), tb.range_high[rows] * 0.5, peak)
            v[sel] = cur + (pk - cur) * s
        elif typ == "outburst":
            el = (ts_ns[sel] - ev.start_ns) / 1e9
            tau = max(1.0, (ev.end_ns - ev.start_ns) / 1e9 / 3)
            s = np.clip(el / 10.0, 0, 1) * np.exp(-np.maximum(el - 10.0, 0) / tau)
            pk = np.where(np.isnan(peak), 6.0, peak)
            v[sel] = np.maximum(cur, cur + (pk - cur) * s)
        elif typ == "tank_overfill":
            pk = np.where(np.isnan(peak), tb.range_high[rows] * 0.97, peak)
            v[sel] = cur + (pk - cur) * np.clip(frac / 0.8, 0, 1)
        elif typ == "slope_acceleration":
            red = tb.setpoints.get("red", np.full(len(tb), math.nan))[rows]
            pk = np.where(np.isnan(peak), np.where(np.isnan(red), span * 0.3, red * 1.3), peak)
            v[sel] = cur + (pk - cur) * frac**2
        elif typ == "shutdown_production":
            pass  # handled by _orders: the load keeps its production shape
        elif typ == "drift":
            pk = np.where(np.isnan(peak), span * 0.15, peak)
            v[sel] = cur + pk * frac
        elif typ == "stuck":
            if ev.frozen is None:
                ev.frozen = np.full(len(ev.targets), math.nan)
            fz = ev.frozen[pos]
            first = np.isnan(fz)
            fz[first] = self.last_value[rows[first]]
            fz = np.where(np.isnan(fz), cur, fz)
            ev.frozen[pos] = fz
            v[sel] = fz
        elif typ == "spike":
            hit = u[sel] < ev.p
            pk = np.where(np.isnan(peak), tb.range_high[rows] + 0.2 * span, peak)
            v[sel] = np.where(hit, pk, cur)
        elif typ == "calibration":
            pk = np.where(np.isnan(peak), tb.range_low[rows] + 0.5 * span, peak)
            v[sel] = pk
            quality[sel] = 1
        elif typ == "feed_failure":
            feed_forced[sel] = True

    def _interlock(self, due: np.ndarray, v: np.ndarray, feed_forced: np.ndarray) -> None:
        """Methane-electric interlock (甲烷电闭锁): a CH4 point trips at its power-off
        value and stays tripped until it falls below restore; a feed sensor reads 0 while
        its controlled point is tripped (1 otherwise) unless a feed failure is injected."""
        c = self.is_ch4[due]
        if c.any():
            rows = due[c]
            val = v[c]
            tr = self.tripped[rows]
            tr = np.where(val >= self.power_off[rows], True, tr)
            tr = np.where(val < self.restore[rows], False, tr)
            self.tripped[rows] = tr
        f = self.is_feed[due]
        if f.any():
            ctrl = self.feed_ctrl[due[f]]
            off = np.where(ctrl >= 0, self.tripped[np.maximum(ctrl, 0)], False)
            v[f] = np.where(off & ~feed_forced[f], 0.0, 1.0)

    def _transport(
        self, r: Readings, ts_ns: np.ndarray, u: np.ndarray, t_lo: int, t_hi: int
    ) -> Readings:
        keep = np.ones(len(r), dtype=bool)
        due = r.idx.astype(np.int64)
        for ev in self._active(t_lo, t_hi, transport=True):
            sel, _ = self._hits(ev, due, ts_ns)
            sel = sel[keep[sel]]
            if not sel.size:
                continue
            typ = ev.type
            if typ in ("dropout", "gateway_dropout"):
                keep[sel] = False
            elif typ == "late":
                keep[sel] = False
                self._pending.append((ts_ns[sel] + ev.delay_ns, r.take(sel)))
            elif typ == "out_of_order":
                # held back 1.5-2.5 reporting periods: newer readings overtake them
                hold = (self.period_ns[due[sel]] * (1.5 + u[sel])).astype(np.int64)
                keep[sel] = False
                self._pending.append((ts_ns[sel] + hold, r.take(sel)))
            elif typ == "duplicate":
                self._pending.append((np.full(len(sel), t_hi, dtype=np.int64), r.take(sel)))
            elif typ == "malformed":
                hit = sel[u[sel] < ev.p]
                r.damage[hit] = 1 + (np.arange(len(hit)) + t_lo // self.tick_ns) % 4
        return r.take(keep) if not keep.all() else r

    def _release(self, t_hi: int) -> Readings:
        if not self._pending:
            return Readings.empty()
        out: list[Readings] = []
        rest: list[tuple[np.ndarray, Readings]] = []
        for rel, rows in self._pending:
            m = rel < t_hi
            if m.any():
                out.append(rows.take(m))
            if not m.all():
                rest.append((rel[~m], rows.take(~m)))
        self._pending = rest
        return Readings.concat(out)


def _iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")
