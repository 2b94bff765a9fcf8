"""Vectorised evaluation of a compiled rule set over micro-batches.

How it works (the hot path has no Python loop over readings or sensors):

1. Every per-reading rule (threshold on value / rate / windowed change, N-of-M,
   frozen, out of range, calibration overrun) is compiled into *slots*: one slot per
   (rule, matched sensor), with its numbers in per-slot parameter arrays (trigger,
   clear, strict, ``for``, ``keep_firing_for`` per colour column) and its state in
   per-slot arrays (latch, run starts, status, last value). Slots are ordered by sensor,
   so a sensor's slots are one contiguous range (CSR). Per condition kind, *rank tables*
   over sensor ids give the slot of a sensor's r-th rule of that kind (or -1).
2. A batch is sorted by sensor (stably) only if a sensor repeats in it; then each kind's
   rank tables turn the readings into that kind's *rows* (reading × slot), grouped by
   slot and in time order within a slot, and the kind's input (value, rate, |Δ|, ...) is
   computed over its own rows only. Rows of idle slots inside their quiet band stop
   there; the active rows of all kinds go through the level logic together. Sequential
   semantics (hysteresis latches, ``for`` runs, N-of-M windows) use segmented forward
   fills (``np.maximum.accumulate`` over marker indices), so a batch gives exactly the
   signals that the same readings fed one at a time would give.
3. Only rows whose status changed become :class:`~riskwatch.model.Signal` objects.

Level semantics: each colour of a rule is an independent latch, set when its trigger
held (continuously for ``for``) and reset only when its clear condition held
(continuously for ``keep_firing_for``); the rule's level is the most severe latched
colour. Losing data never clears a latch: only real readings do.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CH4-1", "ch4", unit="%")])
>>> rf = load_rules_text('''
... rules:
...   - name: ch4
...     match: {kind: ch4}
...     levels:
...       - {level: orange, above: 1.0, label: alarm}
...       - {level: red, above: 1.5, clear_below: 1.0, label: power-off}
... ''')
>>> rs = RuleSet([rf], reg)
>>> sig = rs.process(Batch.from_arrays([1, 2, 3, 4], [0, 0, 0, 0], [0.5, 1.6, 1.2, 0.9]), 5)
>>> [(s.time, s.state.value, s.level and s.level.colour) for s in sig]
[(2, 'firing', 'red'), (4, 'resolved', None)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import PROCESS_SKIP, Batch, Flags, Level, Signal, SignalSource, SignalState
from riskwatch.rules.calendars import Calendar, build_calendars
from riskwatch.rules.compile import resolve_number, select
from riskwatch.rules.parse import (
    LevelSpec,
    RuleFile,
    RuleSpec,
    Setpoint,
    as_setpoint,
    parse_duration,
)

__all__ = ["RuleSet", "rule_fingerprint"]

log = logging.getLogger("riskwatch.rules")

# slot kinds
K_VALUE, K_RATE, K_CHANGE, K_FROZEN, K_RANGE, K_CALIB = range(6)
_OF = {"value": K_VALUE, "rate": K_RATE, "change": K_CHANGE}
NLEV = 4  # colour columns: red, orange, yellow, blue (Level - 1)
_NEVER = np.iinfo(np.int64).min // 4
# calibrating and faulty readings never raise process alerts; duplicates and out-of-order
# readings (flagged by the quality stage) were already accounted for
_PROCESS_SKIP = int(PROCESS_SKIP)
# lowest set bit (1-based) of a 4-bit level mask: the most severe level present
_LEVELS = [Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE]
_STATES = (SignalState.RESOLVED, SignalState.PENDING, SignalState.FIRING)
_LOWBIT = np.array([0] + [(i & -i).bit_length() for i in range(1, 16)], np.uint8)
CHANGE_SAMPLES = 64  # readings kept per slot for `of: change`


def rule_fingerprint(rule: RuleSpec, calendars: dict[str, Any]) -> str:
    """Identity of a rule's behaviour: unchanged rules keep their state on reload."""
    cals = ""
    if rule.calendar is not None:
        cals = repr(
            sorted(
                (n, repr(calendars.get(n))) for n in rule.calendar.inside + rule.calendar.outside
            )
        )
    return repr(rule) + cals


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}"


class _SafeDict(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class _Rule:
    """A compiled per-reading rule."""

    idx: int
    spec: RuleSpec
    kind: int
    levels: list[LevelSpec]
    file: str
    calendar_in: list[Calendar] = field(default_factory=list)
    calendar_out: list[Calendar] = field(default_factory=list)
    count_n: int = 0
    count_m: int = 0
    per_ns: int = 10**9
    window_ns: int = 0
    labels: dict[int, str] = field(default_factory=dict)
    level_by_col: dict[int, LevelSpec] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


class _Slots:
    """Parameter and state arrays over (rule, sensor) slots."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sensor = np.zeros(n, np.int32)
        self.rule = np.zeros(n, np.int32)
        self.kind = np.zeros(n, np.int8)
        # parameters per colour column (signed so that every trigger reads x >= T)
        self.sign = np.ones((n, NLEV))
        self.T = np.full((n, NLEV), np.inf)
        self.C = np.full((n, NLEV), -np.inf)
        self.strict = np.zeros((n, NLEV), bool)
        self.cincl = np.zeros((n, NLEV), bool)
        self.for_ns = np.zeros((n, NLEV), np.int64)
        self.keep_ns = np.zeros((n, NLEV), np.int64)
        self.enabled = np.zeros((n, NLEV), bool)
        self.low = np.full(n, np.nan)
        self.high = np.full(n, np.nan)
        self.per_ns = np.ones(n)
        self.window_ns = np.zeros(n, np.int64)
        self.count_n = np.zeros(n, np.int16)
        self.count_m = np.zeros(n, np.int16)
        # state
        self.latch = np.zeros((n, NLEV), bool)
        self.trun = np.zeros((n, NLEV), bool)
        self.tsince = np.zeros((n, NLEV), np.int64)
        self.crun = np.zeros((n, NLEV), bool)
        self.csince = np.zeros((n, NLEV), np.int64)
        self.hist = np.zeros((n, NLEV), np.uint64)
        self.status = np.zeros(n, np.uint8)
        self.last_t = np.full(n, _NEVER, np.int64)
        self.last_v = np.full(n, np.nan)
        # of: change ring buffers (only slots of change rules have rows here)
        self.q_lo = np.full(n, -np.inf)
        self.q_hi = np.full(n, np.inf)
        self.busy = np.zeros(n, bool)
        # quiet band's lower end as used per row: +inf while the slot is busy
        self.q_lo_eff = np.full(n, -np.inf)
        self.lcount = np.zeros(n, np.int64)
        self.lstart = np.zeros(n, np.int64)
        self.lk = np.zeros(0, np.uint8)
        self.lflat = np.zeros(0, np.int64)
        self.any_sign = self.any_strict = self.any_cincl = False
        self.any_for = self.any_keep = self.any_count = False
        self.ring_row = np.full(n, -1, np.int32)
        self.ring_t = np.zeros((0, CHANGE_SAMPLES), np.int64)
        self.ring_v = np.zeros((0, CHANGE_SAMPLES))
        self.ring_n = np.zeros(0, np.int32)

    def refresh_band(self, idx: np.ndarray | slice = slice(None)) -> None:
        """Recompute the effective quiet band (after a rebuild, reload or busy change)."""
        self.q_lo_eff[idx] = np.where(self.busy[idx], np.inf, self.q_lo[idx])

    STATE = ("latch", "trun", "tsince", "crun", "csince", "hist", "status", "last_t", "last_v",
             "busy")  # fmt: skip

    def nbytes_state(self) -> int:
        return sum(getattr(self, a).nbytes for a in self.STATE) + (
            self.ring_t.nbytes + self.ring_v.nbytes + self.ring_n.nbytes
        )

    def nbytes_params(self) -> int:
        names = ("sensor", "rule", "kind", "sign", "T", "C", "strict", "cincl", "for_ns",
                 "keep_ns", "enabled", "low", "high", "per_ns", "window_ns", "count_n", "count_m",
                 "ring_row", "q_lo", "q_hi", "q_lo_eff", "lcount", "lstart", "lk",
                 "lflat")  # fmt: skip
        return sum(getattr(self, a).nbytes for a in names)


def _ffill_idx(marker: np.ndarray, all_first: bool) -> np.ndarray:
    if all_first:
        return np.arange(len(marker))
    idx = np.where(marker, np.arange(len(marker)), 0)
    return np.maximum.accumulate(idx)


def _opens(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values starts (``np.r_`` costs more than the work here)."""
    out = np.empty(len(a), bool)
    if len(a):
        out[0] = True
        np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def _close(first: np.ndarray) -> np.ndarray:
    """Run ends from run starts: True where the next element opens a run, and at the end."""
    out = np.empty(len(first), bool)
    if len(first):
        out[:-1] = first[1:]
        out[-1] = True
    return out


def _shift(a: np.ndarray, first: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Previous row's value within the segment; ``fill`` (per row) at segment starts."""
    out = np.empty_like(a)
    out[1:] = a[:-1]
    if len(a):
        out[0] = fill[0]
    out[first] = fill[first]
    return out


class RuleSet:
    """A compiled rule set with its per-sensor state; :meth:`process` and :meth:`tick`.

    ``files`` are parsed :class:`RuleFile` s; ``base_dirs`` locate calendar files.
    Raises :class:`ConfigErrors` if calendars or references are invalid.
    """

    def __init__(
        self,
        files: Sequence[RuleFile],
        registry: SensorRegistry,
        *,
        base_dirs: Sequence[Path | None] | None = None,
        docs: Sequence[Any] | None = None,
    ) -> None:
        self.registry = registry
        self.files = list(files)
        self.calendars: dict[str, Calendar] = {}
        errors: list[ConfigError] = []
        bases = list(base_dirs) if base_dirs is not None else [None] * len(self.files)
        for i, rf in enumerate(self.files):
            try:
                cals = build_calendars(rf.calendars, bases[i], docs[i] if docs else None)
            except ConfigErrors as exc:
                errors += exc.errors
                continue
            for k, c in cals.items():
                if k in self.calendars:
                    errors.append(
                        ConfigError(f"calendars.{k}", "calendar defined twice", file=rf.file)
                    )
                self.calendars[k] = c
        self.specs: list[RuleSpec] = [r for rf in self.files for r in rf.rules if r.enabled]
        self.rule_file: dict[str, str] = {r.name: rf.file for rf in self.files for r in rf.rules}
        self.rules: list[_Rule] = []
        self.nodata: list[_NoData] = []
        self.compounds: list[_Compound] = []
        names = {r.name for r in self.specs}
        for r in self.specs:
            if r.calendar is not None:
                for n in r.calendar.inside + r.calendar.outside:
                    if n not in self.calendars:
                        errors.append(
                            ConfigError(
                                f"{r.name}.calendar",
                                f"unknown calendar {n!r}",
                                file=self.rule_file[r.name],
                            )
                        )
            if r.kind == "compound":
                assert r.compound is not None
                for t in r.compound.terms:
                    if t.rule is not None and t.rule not in names:
                        errors.append(
                            ConfigError(
                                f"{r.name}.compound",
                                f"unknown rule {t.rule!r}",
                                file=self.rule_file[r.name],
                            )
                        )
        ConfigErrors.raise_if(errors)
        for r in self.specs:
            if r.kind == "no_data":
                self.nodata.append(_NoData(r))
            elif r.kind == "compound":
                self.compounds.append(_Compound(r))
            else:
                self.rules.append(self._compile_rule(len(self.rules), r))
        self.rule_index = {r.name: r for r in self.rules}
        self._templates: dict[tuple[Any, ...], str] = {}  # message templates (_signals)
        self._rule_names = [r.name for r in self.rules]
        self.has_calendars = any(r.calendar_in or r.calendar_out for r in self.rules)
        self.generation = -1
        self.slots = _Slots(0)
        self.slot_start = np.zeros(1, np.int64)
        self.slot_count = np.zeros(0, np.int64)
        self.n_sensors = 0
        # per-sensor arrays shared by no-data and compound rules
        self.seen_event = np.full(0, _NEVER, np.int64)
        self.seen_arrival = np.full(0, _NEVER, np.int64)
        self.sensor_last_v = np.full(0, np.nan)
        self.start_ns: int | None = None
        self._rebuild()

    # ------------------------------------------------------------------ compile
    def _compile_rule(self, idx: int, r: RuleSpec) -> _Rule:
        if r.kind == "frozen":
            kind = K_FROZEN
        elif r.kind == "out_of_range":
            kind = K_RANGE
        elif r.kind == "calibration":
            kind = K_CALIB
        else:
            kind = _OF[r.of]
        cr = _Rule(idx, r, kind, r.all_levels(), self.rule_file.get(r.name, ""))
        if r.calendar is not None:
            cr.calendar_in = [self.calendars[n] for n in r.calendar.inside]
            cr.calendar_out = [self.calendars[n] for n in r.calendar.outside]
        if r.count is not None:
            cr.count_n, cr.count_m = r.count.n, r.count.m
        cr.per_ns = parse_duration(r.per) or 10**9
        cr.window_ns = parse_duration(r.window)
        for lv in cr.levels:
            cr.labels[int(lv.level) - 1] = lv.label or lv.level.colour
            cr.level_by_col[int(lv.level) - 1] = lv
        if kind in (K_FROZEN, K_RANGE, K_CALIB):
            cr.labels = {int(r.out_level) - 1: r.kind.replace("_", " ")}
        return cr

    def _rebuild(self) -> None:
        """(Re)build slot arrays for the registry's current sensors, keeping state."""
        reg = self.registry
        n_sens = len(reg)
        old = self.slots
        parts_sensor: list[np.ndarray] = []
        parts_rule: list[np.ndarray] = []
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._select_cache = cache
        self.rule_slots: dict[int, np.ndarray] = {}  # slots of a rule, filled on demand
        for r in self.rules:
            ids = np.flatnonzero(select(reg, r.spec.match, r.spec.exclude, cache)).astype(np.int32)
            parts_sensor.append(ids)
            parts_rule.append(np.full(len(ids), r.idx, np.int32))
        sensor = np.concatenate(parts_sensor) if parts_sensor else np.zeros(0, np.int32)
        rule = np.concatenate(parts_rule) if parts_rule else np.zeros(0, np.int32)
        order = np.lexsort((rule, sensor))
        sensor, rule = sensor[order], rule[order]
        s = _Slots(len(sensor))
        s.sensor, s.rule = sensor, rule
        for r in self.rules:
            sel = np.flatnonzero(rule == r.idx)
            if not len(sel):
                continue
            self._fill_params(s, r, sel, sensor[sel])
        en = s.enabled  # (slot, level)
        s.lcount = en.sum(axis=1).astype(np.int64)
        s.lstart = (
            np.concatenate([[0], np.cumsum(s.lcount)[:-1]]).astype(np.int64)
            if s.n
            else np.zeros(0, np.int64)
        )
        ls, lk = np.nonzero(en)  # row-major: by slot, then level ascending
        s.lk = lk.astype(np.uint8)
        s.lflat = ls.astype(np.int64) * NLEV + lk
        s.any_sign = bool((s.sign[s.enabled] < 0).any())
        s.any_strict = bool(s.strict[s.enabled].any())
        s.any_cincl = bool(s.cincl[s.enabled].any())
        s.any_for = bool((s.for_ns[s.enabled] > 0).any())
        s.any_keep = bool((s.keep_ns[s.enabled] > 0).any())
        s.any_count = bool((s.count_m > 0).any())
        with np.errstate(invalid="ignore"):
            up = s.enabled & (s.sign > 0)
            down = s.enabled & (s.sign < 0)
            s.q_hi = np.where(up, s.T, np.inf).min(axis=1) if s.n else np.zeros(0)
            s.q_lo = np.where(down, -s.T, -np.inf).max(axis=1) if s.n else np.zeros(0)
        # change ring rows
        ch = np.flatnonzero(s.kind == K_CHANGE)
        s.ring_row[ch] = np.arange(len(ch), dtype=np.int32)
        s.ring_t = np.zeros((len(ch), CHANGE_SAMPLES), np.int64)
        s.ring_v = np.zeros((len(ch), CHANGE_SAMPLES))
        s.ring_n = np.zeros(len(ch), np.int32)
        # carry state of slots that existed before (same rule index and sensor)
        if old.n and s.n:
            okey = old.rule.astype(np.int64) << 32 | old.sensor.astype(np.int64)
            nkey = s.rule.astype(np.int64) << 32 | s.sensor.astype(np.int64)
            o = np.argsort(okey)
            pos = np.searchsorted(okey[o], nkey)
            pos = np.minimum(pos, len(o) - 1)
            hit = okey[o][pos] == nkey
            src = o[pos[hit]]
            dst = np.flatnonzero(hit)
            self._copy_state(old, src, s, dst)
        s.refresh_band()
        self.slots = s
        self._build_kind_tables(n_sens)
        self._mark = np.zeros(n_sens, np.intp)  # scratch for _order
        counts = np.bincount(sensor, minlength=n_sens).astype(np.int64)
        self.slot_count = counts
        self.slot_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # per-sensor arrays grow with the registry
        grow = n_sens - len(self.seen_event)
        if grow > 0:
            self.seen_event = np.concatenate([self.seen_event, np.full(grow, _NEVER, np.int64)])
            self.seen_arrival = np.concatenate([self.seen_arrival, np.full(grow, _NEVER, np.int64)])
            self.sensor_last_v = np.concatenate([self.sensor_last_v, np.full(grow, np.nan)])
        self.n_sensors = n_sens
        for nd in self.nodata:
            nd.rebuild(reg, cache)
        for c in self.compounds:
            c.rebuild(self, reg)
        self.generation = reg.generation

    def _build_kind_tables(self, n_sens: int) -> None:
        """Per condition kind, rank tables over sensor ids: ``tab[sensor]`` is the slot of
        the sensor's r-th rule of that kind (-1 if none), so a batch finds each kind's rows
        with one gather per rank instead of expanding every reading into all its slots."""
        s = self.slots
        self._ktab: list[tuple[int, list[tuple[np.ndarray, bool]]]] = []
        for kind in range(6):
            sel = np.flatnonzero(s.kind == kind)
            if not len(sel):
                continue
            sens = s.sensor[sel]  # slots are ordered by sensor: a sensor's run is contiguous
            runs = np.flatnonzero(np.r_[True, sens[1:] != sens[:-1]])
            rank = np.arange(len(sel)) - np.repeat(runs, np.diff(np.r_[runs, len(sel)]))
            tabs = []
            for r in range(int(rank.max()) + 1):
                m = rank == r
                tab = np.full(n_sens, -1, np.intp)  # intp: take() casts other index types
                tab[sens[m]] = sel[m]
                tabs.append((tab, bool(m.sum() == n_sens)))
            self._ktab.append((kind, tabs))

    @staticmethod
    def _copy_state(old: _Slots, src: np.ndarray, new: _Slots, dst: np.ndarray) -> None:
        for a in _Slots.STATE:
            arr = getattr(new, a)
            arr[dst] = getattr(old, a)[src]
        orr = old.ring_row[src]
        nrr = new.ring_row[dst]
        ok = (orr >= 0) & (nrr >= 0)
        if ok.any():
            new.ring_t[nrr[ok]] = old.ring_t[orr[ok]]
            new.ring_v[nrr[ok]] = old.ring_v[orr[ok]]
            new.ring_n[nrr[ok]] = old.ring_n[orr[ok]]

    def _fill_params(self, s: _Slots, r: _Rule, sel: np.ndarray, ids: np.ndarray) -> None:
        reg = self.registry
        s.kind[sel] = r.kind
        s.per_ns[sel] = float(r.per_ns)
        s.window_ns[sel] = r.window_ns
        s.count_n[sel] = r.count_n
        s.count_m[sel] = r.count_m
        if r.kind == K_FROZEN:
            assert r.spec.frozen is not None
            k = int(r.spec.out_level) - 1
            s.sign[sel, k] = -1.0
            s.T[sel, k] = -r.spec.frozen.tolerance
            s.C[sel, k] = -r.spec.frozen.tolerance
            s.for_ns[sel, k] = parse_duration(r.spec.frozen.for_)
            s.enabled[sel, k] = True
            return
        if r.kind == K_RANGE:
            assert r.spec.out_of_range is not None
            k = int(r.spec.out_level) - 1
            lo = resolve_number(reg, as_setpoint(r.spec.out_of_range.low), ids, -1)
            hi = resolve_number(reg, as_setpoint(r.spec.out_of_range.high), ids, 1)
            s.low[sel], s.high[sel] = lo, hi
            s.T[sel, k] = 0.0
            s.strict[sel, k] = True
            s.C[sel, k] = 0.0
            s.cincl[sel, k] = True
            s.for_ns[sel, k] = parse_duration(r.spec.out_of_range.for_)
            s.enabled[sel, k] = ~(np.isnan(lo) & np.isnan(hi))
            return
        if r.kind == K_CALIB:
            assert r.spec.calibration is not None
            k = int(r.spec.out_level) - 1
            s.T[sel, k] = 0.5
            s.C[sel, k] = 0.5
            s.for_ns[sel, k] = parse_duration(r.spec.calibration.max)
            s.enabled[sel, k] = True
            return
        for lv in r.levels:
            k = int(lv.level) - 1
            d = lv.direction
            trig = resolve_number(reg, lv.trigger, ids, d)
            clear_sp = lv.clear
            clr = resolve_number(reg, clear_sp, ids, d) if clear_sp is not None else trig
            clr = np.where(np.isnan(clr), trig, clr)
            s.sign[sel, k] = d
            s.T[sel, k] = np.where(np.isnan(trig), np.inf, trig * d)
            s.C[sel, k] = np.where(np.isnan(clr), -np.inf, clr * d)
            s.strict[sel, k] = lv.strict
            s.cincl[sel, k] = bool(lv.strict) and clear_sp is None
            s.for_ns[sel, k] = parse_duration(lv.for_)
            s.keep_ns[sel, k] = parse_duration(lv.keep_firing_for)
            s.enabled[sel, k] = ~np.isnan(trig)

    def memory(self) -> dict[str, int]:
        """Bytes of rule state and parameters (for the benchmark's memory per sensor)."""
        s = self.slots
        per_sensor = self.seen_event.nbytes + self.seen_arrival.nbytes + self.sensor_last_v.nbytes
        per_sensor += sum(nd.nbytes() for nd in self.nodata)
        return {
            "slots": s.n,
            "state_bytes": s.nbytes_state() + per_sensor,
            "param_bytes": s.nbytes_params()
            + self.slot_start.nbytes
            + self.slot_count.nbytes
            + sum(tab.nbytes for _, tabs in self._ktab for tab, _ in tabs),
        }

    # ------------------------------------------------------------------ evaluation
    def process(self, batch: Batch, now_ns: int) -> list[Signal]:
        """Evaluate a batch; returns the transitions it caused, in time order."""
        if self.registry.generation != self.generation:
            self._rebuild()
        if self.start_ns is None:
            self.start_ns = now_ns
        if not len(batch):
            return []
        batch = batch.sorted_by_time()  # a no-op check when it already is
        sensor = batch.sensor
        # per-sensor last seen (event/arrival), for no-data rules and compound terms
        if self.nodata:
            np.maximum.at(self.seen_event, sensor, batch.time)
            np.maximum.at(self.seen_arrival, sensor, batch.received)
        out = self._eval_slots(batch) if self.slots.n else []
        if self.compounds:
            ok = (batch.flags & _PROCESS_SKIP) == 0
            self.sensor_last_v[sensor[ok]] = batch.value[ok]  # time-sorted: the last one wins
        for nd in self.nodata:
            out += nd.on_data(self, batch, now_ns)
        if self.compounds:
            t_eval = int(batch.time.max())
            for c in self.compounds:
                out += c.evaluate(self, t_eval)
        return out

    def tick(self, now_ns: int) -> list[Signal]:
        """Timers that fire without data: no-data (deadman) rules and compound rules."""
        if self.registry.generation != self.generation:
            self._rebuild()
        if self.start_ns is None:
            self.start_ns = now_ns
        out: list[Signal] = []
        for nd in self.nodata:
            out += nd.on_tick(self, now_ns)
        for c in self.compounds:
            out += c.evaluate(self, now_ns)
        return out

    def _order(self, sensor: np.ndarray) -> np.ndarray | None:
        """Reading order that groups a sensor's readings (time order kept), or None when
        no sensor repeats in the batch (then every reading is its own group)."""
        n = len(sensor)
        mark = self._mark
        ar = np.arange(n, dtype=np.intp)
        mark[sensor] = ar
        if np.array_equal(mark.take(sensor), ar):
            return None
        # stable order by sensor: an unstable sort of (sensor, position) keys is faster
        pos_bits = max(1, n.bit_length())
        key = (sensor.astype(np.int64) << pos_bits) | np.arange(n, dtype=np.int64)
        return np.sort(key) & ((1 << pos_bits) - 1)

    def _eval_slots(self, batch: Batch) -> list[Signal]:
        """Evaluate every slot kind once over its rows, then the levels of active rows.

        Rows of one kind come from its per-sensor rank tables (``_ktab``): reading
        order (grouped by sensor when a sensor repeats) keeps a slot's rows contiguous
        and in time order. Each kind computes its compared quantity only on its own rows;
        rows of idle slots inside their quiet band stop there, and only the remaining
        (active) rows of all kinds go through the sequential level logic together.
        """
        s = self.slots
        sensor = batch.sensor.astype(np.intp)  # once, not in every take
        order = self._order(sensor)
        dup = order is not None
        sensor_o = sensor if order is None else sensor.take(order)
        any_flags = bool(batch.flags.any())
        act_parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for kind, tabs in self._ktab:
            for tab, dense in tabs:  # each rank's rows are grouped by slot by themselves
                slot = tab.take(sensor_o)
                ridx: np.ndarray | None = order  # None: row i is reading i
                if not dense:
                    keep = np.flatnonzero(slot >= 0)
                    if not len(keep):
                        continue
                    slot = slot.take(keep)
                    ridx = keep if order is None else order.take(keep)
                f = None
                if any_flags:
                    f = batch.flags if ridx is None else batch.flags.take(ridx)
                if f is not None and kind != K_CALIB:
                    # calibrating / faulted readings never reach process rules; health kinds
                    # (range, frozen) still see readings a gateway marked faulty
                    skip_bits = int(Flags.CALIBRATING) if kind >= K_FROZEN else _PROCESS_SKIP
                    skip = (f & skip_bits) != 0
                    if skip.any():
                        keep = np.flatnonzero(~skip)
                        if not len(keep):
                            continue
                        ridx = keep if ridx is None else ridx.take(keep)
                        slot, f = slot.take(keep), f.take(keep)
                part = self._eval_kind(kind, slot, ridx, f, batch, dup)
                if part is not None:
                    act_parts.append(part)
        if not act_parts:
            return []
        a_kind = np.concatenate([np.full(len(p[1]), p[0], np.int8) for p in act_parts])
        a_slot, a_r, a_x, a_anchor, a_first = (
            np.concatenate([p[i] for p in act_parts]) for i in range(1, 6)
        )
        all_first = bool(a_first.all())
        a_t = batch.time.take(a_r)
        off = self._calendar_off(a_slot, a_t)
        status, newstate = self._levels(a_slot, a_x, a_t, a_anchor, a_first, all_first, a_kind, off)
        for name, (flat, vals) in newstate.items():
            getattr(s, name).reshape(-1)[flat] = vals
        if all_first:
            prev = s.status[a_slot]
            touched = a_slot
            s.status[touched] = status
        else:
            prev = _shift(status, a_first, s.status[a_slot])
            a_last = _close(a_first)
            touched = a_slot[a_last]
            s.status[touched] = status[a_last]
        s.busy[touched] = (
            (s.status[touched] > 0)
            | s.trun.take(touched, axis=0).any(axis=1)
            | (s.hist.take(touched, axis=0) != 0).any(axis=1)
        )
        s.refresh_band(touched)
        changed = np.flatnonzero(status != prev)
        if not len(changed):
            return []
        # signals in reading order (the batch is time-sorted), then slot order: the order
        # in which the same readings fed one at a time would give them
        changed = changed[np.lexsort((a_slot[changed], a_r[changed]))]
        return self._signals(changed, a_slot, a_t, batch.value.take(a_r), a_x, status, prev)

    def _eval_kind(
        self, kind: int, slot: np.ndarray, ridx: np.ndarray | None, f: np.ndarray | None,
        batch: Batch, dup: bool,
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
        """Compared quantity of one kind's rows; returns its active rows (kind, slot,
        reading index, x, ``for`` anchor time, segment start) or None if all are quiet."""
        s = self.slots
        n = len(slot)
        if dup:
            first = np.empty(n, bool)
            first[0] = True
            np.not_equal(slot[1:], slot[:-1], out=first[1:])
            all_first = bool(first.all())
        else:
            first, all_first = None, True
        if ridx is None:  # every reading of the batch, in batch order
            t, v = batch.time, batch.value
        else:
            t, v = batch.time.take(ridx), batch.value.take(ridx)
        anchor = t
        if kind == K_VALUE:
            x = v
        elif kind in (K_RATE, K_FROZEN):
            if all_first:
                tp, vp = s.last_t.take(slot), s.last_v.take(slot)
            else:
                assert first is not None
                tp = _shift(t, first, s.last_t.take(slot))
                vp = _shift(v, first, s.last_v.take(slot))
            if kind == K_RATE:
                with np.errstate(divide="ignore", invalid="ignore"):
                    dt = (t - tp).astype(np.float64)
                    x = (v - vp) / dt * s.per_ns.take(slot)
                x[(tp == _NEVER) | (dt <= 0)] = np.nan
            else:
                x = np.abs(v - vp)
                anchor = np.where(tp != _NEVER, tp, t)
            if all_first:
                s.last_t[slot] = t
                s.last_v[slot] = v
            else:
                assert first is not None
                lm = np.flatnonzero(_close(first))
                s.last_t[slot[lm]] = t[lm]
                s.last_v[slot[lm]] = v[lm]
        elif kind == K_RANGE:
            with np.errstate(invalid="ignore"):
                x = np.fmax(s.low.take(slot) - v, v - s.high.take(slot))
        elif kind == K_CALIB:
            if f is None:
                x = np.zeros(n)
            else:
                x = ((f & int(Flags.CALIBRATING)) != 0).astype(np.float64)
        else:  # K_CHANGE
            x = self._change(v.copy(), np.full(n, K_CHANGE, np.int8), slot, t, v,
                             first if first is not None else np.ones(n, bool))  # fmt: skip
        # Quiet rows: an idle slot (inactive, no `for` run, no N-of-M history) whose value
        # is strictly inside its quiet band (no level can trigger) changes nothing but its
        # last value. Whole slot segments are skipped, so sequential semantics hold.
        lo = s.q_lo_eff.take(slot)
        quiet = x > lo
        quiet &= x < s.q_hi.take(slot)
        nan = np.isnan(x)  # (NaN — e.g. a rate without a previous reading — neither
        if nan.any():  # triggers nor clears: quiet unless the slot is busy)
            quiet |= nan & (lo != np.inf)
        if first is not None and not all_first:
            seg = np.flatnonzero(first)
            quiet = np.repeat(np.logical_and.reduceat(quiet, seg), np.diff(np.append(seg, n)))
        act = np.flatnonzero(~quiet)
        if not len(act):
            return None
        a_first = np.ones(len(act), bool) if first is None else first.take(act)
        a_anchor = t.take(act) if anchor is t else anchor.take(act)
        a_r = act if ridx is None else ridx.take(act)
        return kind, slot.take(act), a_r, x.take(act), a_anchor, a_first

    def _calendar_off(self, slot: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        """Rows outside their rule's calendar (None when no rule has a calendar)."""
        if not self.has_calendars:
            return None
        s = self.slots
        off = None
        rule = s.rule[slot]
        for r in self.rules:
            if not (r.calendar_in or r.calendar_out):
                continue
            m = np.flatnonzero(rule == r.idx)
            if not len(m):
                continue
            sens = s.sensor[slot[m]]
            ent = self.registry.column("enterprise")[sens]
            site = self.registry.column("site")[sens]
            act = np.ones(len(m), bool)
            if r.calendar_in:
                act = np.zeros(len(m), bool)
                for c in r.calendar_in:
                    act |= c.active(t[m], ent, site)
            for c in r.calendar_out:
                act &= ~c.active(t[m], ent, site)
            if off is None:
                off = np.zeros(len(slot), bool)
            off[m] = ~act
        return off

    def _levels(
        self,
        slot: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
        anchor: np.ndarray,
        first: np.ndarray,
        all_first: bool,
        kind: np.ndarray,
        off: np.ndarray | None,
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Evaluate every enabled level of every row at once.

        Rows expand into (row, level) entries indexing the flattened ``[level, slot]``
        arrays; entries of one (slot, level) are contiguous and in time order, so the
        segmented run/latch logic applies unchanged. Returns the per-row status and the
        state to write back (flat index, values).
        """
        s = self.slots
        n = len(slot)
        lcnt = s.lcount[slot]
        if all_first:
            total = int(lcnt.sum())
            row = np.repeat(np.arange(n), lcnt)
            lidx = np.repeat(s.lstart[slot] - (np.cumsum(lcnt) - lcnt), lcnt) + np.arange(total)
            lfirst = None
        else:
            seg = np.flatnonzero(first)
            c_s = np.diff(np.append(seg, n))
            L_s = lcnt[seg]
            tot_s = c_s * L_s
            total = int(tot_s.sum())
            g = np.repeat(np.arange(len(seg)), tot_s)
            local = np.arange(total) - np.repeat(np.cumsum(tot_s) - tot_s, tot_s)
            c_r = c_s[g]
            j = local // c_r
            i = local - j * c_r
            row = seg[g] + i
            lidx = s.lstart[slot[seg]][g] + j
            lfirst = i == 0
        k = s.lk[lidx]
        flat = s.lflat[lidx]
        xl = x[row]
        tl = t[row]
        if s.any_sign:
            xl = xl * s.sign.reshape(-1)[flat]
        T = s.T.reshape(-1)[flat]
        C = s.C.reshape(-1)[flat]
        with np.errstate(invalid="ignore"):
            if s.any_strict:
                trig = (xl > T) | (~s.strict.reshape(-1)[flat] & (xl == T))
            else:
                trig = xl >= T
            if s.any_cincl:
                clr = (xl < C) | (s.cincl.reshape(-1)[flat] & (xl == C))
            else:
                clr = xl < C
        offl = None
        if off is not None:  # outside its calendar a reading counts as not triggered
            offl = off[row]
            trig &= ~offl
        newstate: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if all_first:
            lastf = flat
        else:
            assert lfirst is not None
            llast = _close(lfirst)
            lastf = flat[llast]
        if s.any_count:
            ck = s.count_m[slot[row]] > 0
            if ck.any():
                lf = lfirst if lfirst is not None else np.ones(total, bool)
                trig, clr, newstate["hist"] = self._count(trig, clr, ck, flat, lf, slot[row])
        if offl is not None:
            clr |= offl
        # trigger runs (for)
        trun = s.trun.reshape(-1)[flat]
        if s.any_for:
            al = anchor[row]
            tsince = s.tsince.reshape(-1)[flat]
            if lfirst is None:
                start = np.where(trun, tsince, al)
            else:
                prev_trig = _shift(trig, lfirst, trun)
                startval = np.where(lfirst & prev_trig, tsince, al)
                start = startval[_ffill_idx((trig & ~prev_trig) | lfirst, False)]
            set_evt = trig & (tl - start >= s.for_ns.reshape(-1)[flat])
        else:
            start = tl
            set_evt = trig
        # clear runs (keep_firing_for)
        if s.any_keep:
            crun = s.crun.reshape(-1)[flat]
            csince = s.csince.reshape(-1)[flat]
            if lfirst is None:
                cstart = np.where(crun, csince, tl)
            else:
                prev_clr = _shift(clr, lfirst, crun)
                cval = np.where(lfirst & prev_clr, csince, tl)
                cstart = cval[_ffill_idx((clr & ~prev_clr) | lfirst, False)]
            reset_evt = clr & ~trig & (tl - cstart >= s.keep_ns.reshape(-1)[flat])
        else:
            cstart = tl
            reset_evt = clr & ~trig
        # latch: last set/reset event, else the carried state
        latch0 = s.latch.reshape(-1)[flat]
        if lfirst is None:
            latch = (latch0 | set_evt) & ~reset_evt
        else:
            val = np.where(set_evt, True, np.where(reset_evt, False, latch0))
            latch = val[_ffill_idx(set_evt | reset_evt | lfirst, False)]
        # per row: most severe latched level, else most severe pending (process kinds)
        one = np.uint8(1)
        fbits = latch.astype(np.uint8) << k
        pbits = (trig & ~latch & (kind[row] < K_FROZEN)).astype(np.uint8) << k
        fire = np.zeros(n, np.uint8)
        pend = np.zeros(n, np.uint8)
        if lfirst is None:
            has = np.flatnonzero(lcnt)
            if len(has):
                starts = (np.cumsum(lcnt) - lcnt)[has]
                fire[has] = np.bitwise_or.reduceat(fbits, starts)
                pend[has] = np.bitwise_or.reduceat(pbits, starts)
        else:
            np.bitwise_or.at(fire, row, fbits)
            np.bitwise_or.at(pend, row, pbits)
        del one
        status = np.where(fire > 0, _LOWBIT[fire], np.where(pend > 0, _LOWBIT[pend] + 10, 0))
        status = status.astype(np.uint8)
        if lfirst is None:
            newstate["latch"] = (flat, latch)
            newstate["trun"] = (flat, trig)
            if s.any_for:
                newstate["tsince"] = (flat, start)
            if s.any_keep:
                newstate["crun"] = (flat, clr)
                newstate["csince"] = (flat, cstart)
        else:
            newstate["latch"] = (lastf, latch[llast])
            newstate["trun"] = (lastf, trig[llast])
            if s.any_for:
                newstate["tsince"] = (lastf, start[llast])
            if s.any_keep:
                newstate["crun"] = (lastf, clr[llast])
                newstate["csince"] = (lastf, cstart[llast])
        return status, newstate

    def _count(
        self,
        trig: np.ndarray,
        clr: np.ndarray,
        counted: np.ndarray,
        flat: np.ndarray,
        first: np.ndarray,
        slot: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """N-of-M: replace trig/clr on counted entries by the windowed count.

        Returns the new trig, clr and the history bits to store (flat index, bits), one
        per counted (slot, level) segment.
        """
        s = self.slots
        hist = s.hist.reshape(-1)
        ci = np.flatnonzero(counted)
        b = trig[ci].astype(np.int64)
        cs_ = flat[ci]
        cf = _opens(cs_)
        seg = np.cumsum(cf) - 1
        seg_start = np.flatnonzero(cf)
        pos = np.arange(len(ci)) - seg_start[seg]
        seg_len = np.diff(np.append(seg_start, len(ci)))
        L = seg_len[seg]
        m = s.count_m[slot[ci]].astype(np.int64)
        nn = s.count_n[slot[ci]].astype(np.int64)
        h = hist[cs_]
        csum = np.cumsum(b)
        base = np.where(seg_start[seg] > 0, csum[seg_start[seg] - 1], 0)
        cs_in = csum - base  # inclusive count from segment start
        back = pos - m
        prior = np.where(back >= 0, csum[np.maximum(back + seg_start[seg], 0)] - base, 0)
        cnt = cs_in - prior
        need = np.minimum(np.maximum(m - 1 - pos, 0), 63).astype(np.uint64)
        mask = (np.uint64(1) << need) - np.uint64(1)
        cnt = cnt + np.bitwise_count(h & mask).astype(np.int64)
        newtrig = trig.copy()
        newclr = clr.copy()
        newtrig[ci] = cnt >= nn
        newclr[ci] = (cnt < nn) & clr[ci]
        # history after the segment: the last m-1 trigger bits, newest in bit 0
        sh = (L - 1 - pos).astype(np.uint64)
        contrib = np.where(sh < 63, b.astype(np.uint64) << np.minimum(sh, np.uint64(62)), 0)
        contrib = contrib.astype(np.uint64)
        bits = np.bitwise_or.reduceat(contrib, seg_start) if len(seg_start) else contrib
        Ls = seg_len.astype(np.uint64)
        h0 = hist[cs_[seg_start]]
        shifted = np.where(Ls < 63, h0 << np.minimum(Ls, np.uint64(62)), np.uint64(0))
        ms = s.count_m[slot[ci[seg_start]]].astype(np.uint64)
        keepmask = (np.uint64(1) << np.maximum(ms, np.uint64(1)) - np.uint64(1)) - np.uint64(1)
        newh_seg = (shifted | bits) & keepmask
        return newtrig, newclr, (cs_[seg_start], newh_seg)

    def _change(
        self, x: np.ndarray, kind: np.ndarray, slot: np.ndarray, t: np.ndarray, v: np.ndarray,
        first: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """``of: change``: value minus the oldest value within ``window`` (kept readings)."""
        s = self.slots
        ci = np.flatnonzero(kind == K_CHANGE)
        cs_ = slot[ci]
        rr = s.ring_row[cs_]
        win = s.window_ns[cs_]
        # history rows (ring) + batch rows, merged per ring row in time order
        ur = np.unique(rr)
        hn = s.ring_n[ur]
        h_rows = np.repeat(ur, hn)
        h_pos = np.arange(int(hn.sum())) - np.repeat(np.cumsum(hn) - hn, hn)
        h_t = s.ring_t[h_rows, h_pos]
        h_v = s.ring_v[h_rows, h_pos]
        all_r = np.concatenate((h_rows, rr))
        all_t = np.concatenate((h_t, t[ci]))
        all_v = np.concatenate((h_v, v[ci]))
        all_src = np.concatenate((np.zeros(len(h_rows), np.int8), np.ones(len(ci), np.int8)))
        all_ord = np.concatenate((np.arange(len(h_rows)), len(h_rows) + np.arange(len(ci))))
        o = np.lexsort((all_ord, all_t, all_r))
        all_r, all_t, all_v, all_src = all_r[o], all_t[o], all_v[o], all_src[o]
        # query: first merged row of the same ring row with time >= t - window
        q_r = rr
        q_t = t[ci] - win
        keys_r = np.concatenate((all_r, q_r))
        keys_t = np.concatenate((all_t, q_t))
        kind_ = np.concatenate((np.ones(len(all_r), np.int8), np.zeros(len(q_r), np.int8)))
        oo = np.lexsort((kind_, keys_t, keys_r))
        isq = kind_[oo] == 0
        data_before = np.cumsum(~isq) - (~isq)
        qpos = np.empty(len(q_r), np.int64)
        qpos[oo[isq] - len(all_r)] = data_before[isq]
        ref_v = all_v[np.minimum(qpos, len(all_v) - 1)]
        x = x.copy()
        x[ci] = v[ci] - ref_v
        # new rings: the last CHANGE_SAMPLES merged rows per ring row
        cap = CHANGE_SAMPLES
        bnd = _close(_opens(all_r))
        ends = np.flatnonzero(bnd)
        seg_id = np.cumsum(_opens(all_r)) - 1
        from_end = ends[seg_id] - np.arange(len(all_r))
        keep = from_end < cap
        seglen = np.diff(np.concatenate(([-1], ends)))
        nkeep = np.minimum(seglen, cap)
        posn = nkeep[seg_id] - 1 - from_end
        rows = all_r[keep]
        s.ring_t[rows, posn[keep]] = all_t[keep]
        s.ring_v[rows, posn[keep]] = all_v[keep]
        s.ring_n[all_r[ends]] = nkeep
        return x

    def _signals(
        self,
        changed: np.ndarray,
        slot: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        x: np.ndarray,
        status: np.ndarray,
        prev: np.ndarray,
    ) -> list[Signal]:
        s = self.slots
        order = changed  # already in output order
        sl = slot[order]
        st = status[order].astype(np.int64)
        pv = prev[order].astype(np.int64)
        k = np.where(st == 0, pv % 10 - 1, np.where(st > 10, st - 11, st - 1))
        vv = v[order]
        rk = s.kind[sl]
        with np.errstate(invalid="ignore"):
            thr = np.where(
                (st == 0) & (rk <= K_CHANGE), s.C[sl, k] * s.sign[sl, k], s.T[sl, k] * s.sign[sl, k]
            )
            thr = np.where(rk == K_RANGE, np.where(vv > s.high[sl], s.high[sl], s.low[sl]), thr)
        shown = np.where((rk == K_RATE) | (rk == K_CHANGE), x[order], vv)
        reg = self.registry
        cols = {c: reg.column(c) for c in ("unit", "kind", "location")}
        sens = s.sensor.take(sl)
        code = np.where(st == 0, 0, np.where(st > 10, 1, 2))  # resolved, pending, firing
        ent, site, name = (
            reg.column(c).take(sens).tolist() for c in ("enterprise", "site", "sensor")
        )
        tpls = self._templates
        rules = self.rules
        names = self._rule_names
        isfinite = math.isfinite
        out: list[Signal] = []
        append = out.append
        for c_, k_, t_, val, th, rule_i, sensor, unit, kind, e_, si_, n_ in zip(
            code.tolist(), k.tolist(), t[order].tolist(), shown.tolist(), thr.tolist(),
            s.rule.take(sl).tolist(), sens.tolist(), cols["unit"].take(sens).tolist(),
            cols["kind"].take(sens).tolist(), ent, site, name, strict=True,
        ):  # fmt: skip
            state = _STATES[c_]
            tk = (rule_i, c_, k_, unit, kind)
            tpl = tpls.get(tk)
            if tpl is None:
                r = rules[rule_i]
                tpl = tpls[tk] = (
                    "" if r.spec.message else self._template(r, state, k_, unit or "", kind)
                )
            if tpl:
                msg = tpl.format(
                    f"{e_}/{si_}/{n_}",  # the sensor key, as SensorRegistry.key
                    f"{val:.4g}" if isfinite(val) else "n/a",
                    f"{th:.4g}" if isfinite(th) else "n/a",
                ).replace("  ", " ")
            else:  # the rule's own message template
                msg = self._message(rules[rule_i], sensor, state, k_, val, th, cols)
            append(Signal(names[rule_i], sensor, t_, state, _LEVELS[k_] if c_ else None, val, th,
                          msg, SignalSource.RULE))  # fmt: skip
        return out

    def _message(
        self,
        r: _Rule,
        sensor: int,
        state: str,
        k: int,
        value: float,
        thr: float,
        cols: dict[str, np.ndarray] | None = None,
    ) -> str:
        reg = self.registry
        if cols is None:
            cols = {c: reg.column(c) for c in ("unit", "kind", "location")}
        key = reg.key(sensor)
        unit = cols["unit"][sensor] or ""
        if r.spec.message:
            label = r.labels.get(k, _LEVELS[k].colour)
            d = _SafeDict(
                sensor=key, rule=r.name, state=state, level=_LEVELS[k].colour, label=label,
                value=_fmt(value), threshold=_fmt(thr), unit=unit,
                kind=cols["kind"][sensor], location=cols["location"][sensor],
            )  # fmt: skip
            return r.spec.message.format_map(d)
        tpl = self._template(r, state, k, unit, cols["kind"][sensor])
        return tpl.format(key, _fmt(value), _fmt(thr)).replace("  ", " ")

    @staticmethod
    def _template(r: _Rule, state: str, k: int, unit: str, kind_col: str) -> str:
        """The built-in message of a rule as a ``str.format`` template over (sensor key,
        value, threshold): everything else depends only on the rule, state, level and the
        sensor's unit and kind, so :meth:`_signals` caches it per such combination."""
        V, T, KEY = "\x01", "\x02", "\x03"  # placeholders, made format fields below
        label = r.labels.get(k, _LEVELS[k].colour)
        if r.kind == K_FROZEN:
            assert r.spec.frozen is not None
            body = f"value {V} {unit} unchanged for >= {r.spec.frozen.for_}"
            if state == "resolved":
                body = f"value changed to {V} {unit}"
        elif r.kind == K_RANGE:
            body = f"value {V} {unit} outside measuring range"
            if state == "resolved":
                body = f"value {V} {unit} back inside measuring range"
        elif r.kind == K_CALIB:
            assert r.spec.calibration is not None
            body = f"in calibration longer than {r.spec.calibration.max}"
            if state == "resolved":
                body = "calibration ended"
        else:
            what = {K_RATE: "rate", K_CHANGE: "change"}.get(r.kind) or kind_col
            lv = r.level_by_col.get(k)
            up = lv is None or lv.direction > 0
            if state == "resolved":
                op = "<" if up else ">"
                body = f"{what or 'value'} {V} {unit} {op} clear {T} {unit}"
            else:
                op = (">" if up else "<") + ("" if lv is not None and lv.strict else "=")
                body = f"{what or 'value'} {V} {unit} {op} {label} {T} {unit}"
                if state == "pending":
                    body += f" (pending for {lv.for_ if lv else ''})"
        text = f"{KEY}: {body} [{r.name}, {state}]"
        text = text.replace("{", "{{").replace("}", "}}")
        return text.replace(KEY, "{0}").replace(V, "{1}").replace(T, "{2}")

    # ------------------------------------------------------------------ state views
    def active(self) -> list[tuple[str, int, str, Level]]:
        """Current (rule, sensor or -1, state, level) of every non-inactive slot/group."""
        s = self.slots
        out: list[tuple[str, int, str, Level]] = []
        for i in np.flatnonzero(s.status).tolist():
            st = int(s.status[i])
            state = "pending" if st > 10 else "firing"
            out.append((self.rules[int(s.rule[i])].name, int(s.sensor[i]), state, Level(st % 10)))
        for nd in self.nodata:
            out += nd.active()
        for c in self.compounds:
            out += c.active()
        return out

    def active_subjects(self) -> list[tuple[str, str, str, Level]]:
        """Like :meth:`active` with the subject as text: the sensor key, or the group name."""
        out: list[tuple[str, str, str, Level]] = []
        reg = self.registry
        s = self.slots
        for i in np.flatnonzero(s.status).tolist():
            st = int(s.status[i])
            state = "pending" if st > 10 else "firing"
            out.append((self.rules[int(s.rule[i])].name, reg.key(int(s.sensor[i])), state,
                        Level(st % 10)))  # fmt: skip
        for nd in self.nodata:
            if nd.nd.per == "sensor":
                out += [(nd.spec.name, reg.key(int(i)), "firing", nd.level)
                        for i in np.flatnonzero(nd.fired)]  # fmt: skip
            else:
                out += [(nd.spec.name, nd.group_names[g], "firing", nd.level)
                        for g in np.flatnonzero(nd.gfired)]  # fmt: skip
        for c in self.compounds:
            out += [(c.spec.name, c.names[g], "pending" if c.status[g] == 1 else "firing", c.level)
                    for g in np.flatnonzero(c.status)]  # fmt: skip
        return out

    def firing_level(self, rule_name: str) -> np.ndarray:
        """Per sensor id: most severe firing level (1..4) of a rule, 0 if not firing."""
        out = np.zeros(self.n_sensors, np.uint8)
        r = self.rule_index.get(rule_name)
        if r is not None:
            sl = self.rule_slots.get(r.idx)
            if sl is None:
                sl = self.rule_slots[r.idx] = np.flatnonzero(self.slots.rule == r.idx)
            st = self.slots.status[sl]
            m = sl[(st > 0) & (st < 10)]
            out[self.slots.sensor[m]] = self.slots.status[m]
            return out
        for nd in self.nodata:
            if nd.spec.name == rule_name and nd.fired.shape[0] == self.n_sensors:
                out[nd.fired] = int(nd.spec.out_level)
        return out

    def export_state(self) -> dict[str, Any]:
        """State of each rule keyed by rule name (to carry unchanged rules over a reload)."""
        return {"slots": self.slots, "rules": {r.name: r.idx for r in self.rules},
                "nodata": {nd.spec.name: nd for nd in self.nodata},
                "compounds": {c.spec.name: c for c in self.compounds},
                "seen": (self.seen_event, self.seen_arrival, self.sensor_last_v,
                         self.start_ns)}  # fmt: skip

    def import_state(self, st: dict[str, Any], keep: set[str]) -> None:
        """Take over the state of the rules named in ``keep`` from an exported state."""
        old: _Slots = st["slots"]
        old_idx: dict[str, int] = st["rules"]
        se, sa, lv, start = st["seen"]
        n = min(len(se), self.n_sensors)
        self.seen_event[:n], self.seen_arrival[:n], self.sensor_last_v[:n] = se[:n], sa[:n], lv[:n]
        self.start_ns = start
        s = self.slots
        for r in self.rules:
            if r.name not in keep or r.name not in old_idx:
                continue
            src = np.flatnonzero(old.rule == old_idx[r.name])
            dst = np.flatnonzero(s.rule == r.idx)
            okey, nkey = old.sensor[src], s.sensor[dst]
            _, oi, ni = np.intersect1d(okey, nkey, assume_unique=True, return_indices=True)
            self._copy_state(old, src[oi], s, dst[ni])
        s.refresh_band()
        for nd in self.nodata:
            o = st["nodata"].get(nd.spec.name)
            if nd.spec.name in keep and o is not None:
                nd.take_state(o)
        for c in self.compounds:
            o = st["compounds"].get(c.spec.name)
            if c.spec.name in keep and o is not None:
                c.take_state(o)


class _NoData:
    """Deadman per sensor, or per site / gateway (no sensor of the group reported)."""

    def __init__(self, spec: RuleSpec) -> None:
        assert spec.no_data is not None
        self.spec = spec
        self.nd = spec.no_data
        self.level = spec.out_level
        self.mask = np.zeros(0, bool)
        self.after = np.zeros(0, np.int64)
        self.fired = np.zeros(0, bool)
        self.group = np.zeros(0, np.int64)
        self.group_names: list[str] = []
        self.gfired = np.zeros(0, bool)

    def nbytes(self) -> int:
        return self.mask.nbytes + self.after.nbytes + self.fired.nbytes + self.group.nbytes

    def rebuild(
        self, reg: SensorRegistry, cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    ) -> None:
        n = len(reg)
        self.mask = select(reg, self.spec.match, self.spec.exclude, cache)
        after = self.nd.after
        if isinstance(after, str) and "catalog." in after:
            sp = as_setpoint(after)
            assert sp is not None
            sec = resolve_number(
                reg, Setpoint(setpoint=sp.setpoint, factor=sp.factor), np.arange(n), 1
            )
            dflt = parse_duration(self.nd.default)
            ns = np.where(np.isnan(sec), dflt, np.nan_to_num(sec) * 1e9)
            self.after = ns.astype(np.int64)
        else:
            self.after = np.full(n, parse_duration(after), np.int64)
        fired = np.zeros(n, bool)
        fired[: len(self.fired)] = self.fired[:n]
        self.fired = fired
        if self.nd.per != "sensor":
            cols = ["enterprise", "site"] + (["gateway"] if self.nd.per == "gateway" else [])
            keys = reg.column(cols[0]).astype(str)
            for c in cols[1:]:
                keys = np.char.add(np.char.add(keys, "/"), reg.column(c).astype(str))
            keys = np.char.rstrip(keys, "/")  # no gateway column: the site is the group
            names, inv = (
                np.unique(keys, return_inverse=True)
                if n
                else (np.zeros(0, str), np.zeros(0, np.int64))
            )
            old = dict(zip(self.group_names, self.gfired.tolist(), strict=False))
            self.group_names = names.tolist()
            self.group = inv.astype(np.int64)
            self.gfired = np.array([old.get(g, False) for g in self.group_names], bool)

    def take_state(self, other: _NoData) -> None:
        n = min(len(other.fired), len(self.fired))
        self.fired[:n] = other.fired[:n]
        old = dict(zip(other.group_names, other.gfired.tolist(), strict=False))
        self.gfired = np.array([old.get(g, False) for g in self.group_names], bool)

    def _seen(self, rs: RuleSet) -> np.ndarray:
        seen = rs.seen_arrival if self.nd.clock == "arrival" else rs.seen_event
        if self.nd.never_reported:
            seen = np.where(seen == _NEVER, rs.start_ns or 0, seen)
        return seen

    def _sig(self, rs: RuleSet, sensor: int, t: int, state: SignalState, age: int,
             group: str | None,
             after: int) -> Signal:  # fmt: skip
        who = group if group is not None else rs.registry.key(sensor)
        if state == "firing":
            msg = (
                f"{who}: no data for {age / 1e9:.0f} s "
                f"(limit {after / 1e9:.0f} s, {self.nd.clock} time)"
            )
        else:
            msg = f"{who}: data again after {age / 1e9:.0f} s"
        extra = None
        if group is not None:
            parts = group.split("/")
            extra = {"enterprise": parts[0], "site": parts[1] if len(parts) > 1 else ""}
        return Signal(
            rule=self.spec.name, sensor=sensor, time=t, state=state,
            level=self.level if state == "firing" else None, value=age / 1e9,
            threshold=after / 1e9, message=msg + f" [{self.spec.name}, {state}]",
            group=group, extra=extra,
        )  # fmt: skip

    def on_tick(self, rs: RuleSet, now: int) -> list[Signal]:
        if not len(self.mask):
            return []
        seen = self._seen(rs)
        age = now - seen
        out: list[Signal] = []
        if self.nd.per == "sensor":
            bad = self.mask & (age >= self.after) & (seen != _NEVER)
            new = np.flatnonzero(bad & ~self.fired)
            self.fired |= bad
            for i in new.tolist():
                out.append(self._sig(rs, i, now, SignalState.FIRING, int(age[i]), None,
                                    int(self.after[i])))  # fmt: skip
            return out
        G = len(self.group_names)
        m = np.flatnonzero(self.mask)
        gseen = np.full(G, _NEVER, np.int64)
        np.maximum.at(gseen, self.group[m], seen[m])
        gafter = np.zeros(G, np.int64)
        np.maximum.at(gafter, self.group[m], self.after[m])
        has = np.zeros(G, bool)
        has[self.group[m]] = True
        bad = has & (now - gseen >= gafter) & (gseen != _NEVER)
        for g in np.flatnonzero(bad & ~self.gfired).tolist():
            out.append(
                self._sig(
                    rs, -1, now, SignalState.FIRING, int(now - gseen[g]), self.group_names[g],
                    int(gafter[g]),
                )
            )
        self.gfired |= bad
        return out

    def on_data(self, rs: RuleSet, batch: Batch, now: int) -> list[Signal]:
        out: list[Signal] = []
        if self.nd.per == "sensor":
            if not self.fired.any():
                return out
            hit = self.fired[batch.sensor]
            if self.nd.clock == "event":
                hit &= (now - batch.time) < self.after[batch.sensor]
            if not hit.any():
                return out
            idx = np.flatnonzero(hit)
            sens, firsti = np.unique(batch.sensor[idx], return_index=True)
            for sid, i in zip(sens.tolist(), idx[firsti].tolist(), strict=True):
                self.fired[sid] = False
                out.append(
                    self._sig(
                        rs, sid, int(batch.time[i]), SignalState.RESOLVED, 0, None,
                        int(self.after[sid]),
                    )
                )
            return out
        if not self.gfired.any():
            return out
        ok = self.mask[batch.sensor]
        g = self.group[batch.sensor]
        hit = ok & self.gfired[g]
        if not hit.any():
            return out
        idx = np.flatnonzero(hit)
        gs, firsti = np.unique(g[idx], return_index=True)
        for gi, i in zip(gs.tolist(), idx[firsti].tolist(), strict=True):
            self.gfired[gi] = False
            out.append(
                self._sig(rs, -1, int(batch.time[i]), SignalState.RESOLVED, 0,
                          self.group_names[gi], 0)
            )
        return out

    def active(self) -> list[tuple[str, int, str, Level]]:
        if self.nd.per == "sensor":
            return [
                (self.spec.name, int(i), "firing", self.level) for i in np.flatnonzero(self.fired)
            ]
        return [(self.spec.name, -1, "firing", self.level) for _ in np.flatnonzero(self.gfired)]


class _Compound:
    """all / any / at_least-N over other rules' states or sensors' last values, per group."""

    def __init__(self, spec: RuleSpec) -> None:
        assert spec.compound is not None
        self.spec = spec
        self.c = spec.compound
        self.level = spec.out_level
        self.for_ns = parse_duration(spec.for_)
        self.group = np.zeros(0, np.int64)
        self.names: list[str] = []
        self.term_masks: list[np.ndarray] = []
        self.status = np.zeros(0, np.uint8)  # 0 inactive, 1 pending, 2 firing
        self.since = np.zeros(0, np.int64)

    def rebuild(self, rs: RuleSet, reg: SensorRegistry) -> None:
        n = len(reg)
        cols = list(self.c.by)
        key = None
        for c in cols:
            col = (
                reg.column(c).astype(str)
                if reg.has_column(c)
                else np.full(n, "", dtype=object).astype(str)
            )
            if c == "sensor" and self.c.link and reg.has_column(self.c.link):
                link = reg.column(self.c.link).astype(str)
                col = np.where(link != "", link, col)
            key = col if key is None else np.char.add(np.char.add(key, "/"), col)
        self.term_masks = []
        for t in self.c.terms:
            if t.rule is not None:
                r = rs.rule_index.get(t.rule)
                if r is not None:
                    m = np.zeros(n, bool)
                    m[rs.slots.sensor[rs.slots.rule == r.idx]] = True
                else:
                    nd = next((x for x in rs.nodata if x.spec.name == t.rule), None)
                    m = nd.mask.copy() if nd is not None else np.zeros(n, bool)
            else:
                m = select(reg, t.match, None, rs._select_cache)
            self.term_masks.append(m)
        inany = np.zeros(n, bool)
        for m in self.term_masks:
            inany |= m
        old = {
            nm: (st, si)
            for nm, st, si in zip(
                self.names, self.status.tolist(), self.since.tolist(), strict=False
            )
        }
        if key is None or not n:
            self.names, self.group = [], np.full(n, -1, np.int64)
        else:
            names, inv = np.unique(key[inany], return_inverse=True)
            self.names = names.tolist()
            self.group = np.full(n, -1, np.int64)
            self.group[inany] = inv
        G = len(self.names)
        self.status = np.array([old.get(g, (0, 0))[0] for g in self.names], np.uint8).reshape(G)
        self.since = np.array([old.get(g, (0, 0))[1] for g in self.names], np.int64).reshape(G)

    def take_state(self, other: _Compound) -> None:
        old = {
            nm: (st, si)
            for nm, st, si in zip(
                other.names, other.status.tolist(), other.since.tolist(), strict=False
            )
        }
        for i, g in enumerate(self.names):
            if g in old:
                self.status[i], self.since[i] = old[g]

    def _term_true(self, rs: RuleSet, i: int) -> np.ndarray:
        t = self.c.terms[i]
        m = self.term_masks[i]
        if t.rule is not None:
            lv = rs.firing_level(t.rule)
            want = int(t.level) if t.level is not None else 4
            return m & (lv > 0) & (lv <= want)
        vals = rs.sensor_last_v
        with np.errstate(invalid="ignore"):
            return m & ((vals >= t.above) if t.above is not None else (vals <= t.below))

    def evaluate(self, rs: RuleSet, t_eval: int) -> list[Signal]:
        G = len(self.names)
        if not G:
            return []
        counts = []
        for i in range(len(self.c.terms)):
            tt = self._term_true(rs, i)
            g = self.group[tt]
            counts.append(np.bincount(g[g >= 0], minlength=G))
        cm = np.stack(counts)
        if self.c.all:
            cond = (cm >= 1).all(axis=0)
        elif self.c.any:
            cond = (cm >= 1).any(axis=0)
        else:
            assert self.c.at_least is not None
            cond = (
                (cm[0] >= self.c.at_least)
                if len(counts) == 1
                else ((cm >= 1).sum(axis=0) >= self.c.at_least)
            )
        new_status = self.status.copy()
        starting = cond & (self.status == 0)
        self.since[starting] = t_eval
        ready = cond & (t_eval - self.since >= self.for_ns)
        new_status[cond & ~ready & (self.status != 2)] = 1
        new_status[ready] = 2
        new_status[cond & (self.status == 2)] = 2
        new_status[~cond] = 0
        changed = np.flatnonzero(new_status != self.status)
        out: list[Signal] = []
        for g in changed.tolist():
            st = int(new_status[g])
            state = _STATES[st]
            members = np.flatnonzero((self.group == g) & self.term_masks[0])
            rep = int(members[0]) if len(members) else -1
            desc = self.spec.description or self.spec.name
            n_true = int(cm[:, g].sum())
            msg = f"{self.names[g]}: {desc} ({n_true} input(s) true) [{self.spec.name}, {state}]"
            out.append(
                Signal(
                    rule=self.spec.name, sensor=rep, time=int(t_eval), state=state,
                    level=self.level if st else None, value=float(n_true),
                    threshold=float(self.c.at_least or len(self.c.terms)), message=msg,
                    group=self.names[g],
                )
            )  # fmt: skip
        self.status = new_status
        return out

    def active(self) -> list[tuple[str, int, str, Level]]:
        out = []
        for g in np.flatnonzero(self.status).tolist():
            members = np.flatnonzero((self.group == g) & self.term_masks[0])
            rep = int(members[0]) if len(members) else -1
            out.append(
                (self.spec.name, rep, "pending" if self.status[g] == 1 else "firing", self.level)
            )
        return out
