"""The per-reading rules of a rule set, evaluated together over each batch.

Every per-reading rule (threshold on value / rate / change, frozen, out of range,
calibration) is compiled into slots (:mod:`~riskwatch.rules.slots`), one per (rule,
matched sensor). A batch goes through these steps, with no Python loop over readings or
sensors (comments ``# n.`` in :meth:`ReadingRules.on_batch` follow them):

1. Order: if a sensor repeats in the batch, sort the readings by sensor once (stable, so
   time order is kept within a sensor); all kinds share this order.
2. Rows: per condition kind and rank table, one gather of the table over the batch's
   sensors gives that kind's rows (reading x slot), grouped by slot, in time order.
   Readings the kind never sees (calibrating or faulty ones, duplicates) drop out.
3. Quantity: the kind computes its compared quantity ``x`` over its own rows only
   (:meth:`~riskwatch.rules.conditions.base.ReadingCondition.quantity`).
4. Quiet rows: an idle slot (inactive, no ``for`` run, no N-of-M history) whose ``x`` is
   strictly inside its quiet band cannot change state; whole slot segments of such rows
   stop here.
5. Levels: the remaining rows of all kinds go through the level logic together
   (:func:`~riskwatch.rules.levels.evaluate_levels`: latch, ``for``,
   ``keep_firing_for``, N-of-M, calendars), which yields a status per row.
6. Status: each slot's status becomes its last row's; a slot with a status, a trigger
   run or count history is busy (it leaves the quiet band until it is idle again).
7. Signals: only rows whose status changed become :class:`~riskwatch.model.Signal` s,
   in reading order and then slot order, which is the order the same readings fed one at
   a time give; messages come from templates cached per (rule, state, level, unit, kind).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from riskwatch.model import Batch, Signal, SignalSource, SignalState
from riskwatch.rules.compile import select
from riskwatch.rules.conditions.base import (
    ActiveAlert,
    Phase,
    ReadingCondition,
    Rows,
    RuleEnv,
)
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.levels import (
    LEVELS,
    PENDING,
    evaluate_levels,
    status_column,
    status_level,
    status_state,
)
from riskwatch.rules.messages import builtin_template, rule_message
from riskwatch.rules.segments import run_ends, run_starts, shift_in_segments
from riskwatch.rules.sensor_memory import Needs
from riskwatch.rules.slots import RankTable, SlotTable, carry_state, copy_state, rank_tables

__all__ = ["ReadingRules", "ReadingState"]

_STATES = (SignalState.RESOLVED, SignalState.PENDING, SignalState.FIRING)  # by signal code


class ReadingState(NamedTuple):
    """A rule's state as exported: its slots of the old table (by reference)."""

    slots: SlotTable
    rule_index: int


class _ActiveRows(NamedTuple):
    """One rank table's rows that go on to the level logic."""

    pends: bool
    slot: np.ndarray
    reading: np.ndarray
    x: np.ndarray
    anchor: np.ndarray
    first: np.ndarray


def _overrides_threshold(cls: type[ReadingCondition[Any]]) -> bool:
    return cls.shown_threshold.__func__ is not ReadingCondition.shown_threshold.__func__  # type: ignore[attr-defined]


class ReadingRules:
    """All per-reading rules of a rule set: slots, rank tables and the batch pass."""

    phase: ClassVar[Phase] = Phase.READINGS
    needs: ClassVar[Needs] = Needs.NONE

    def __init__(self, rules: Sequence[ReadingCondition[Any]]) -> None:
        self.rules = list(rules)
        for i, r in enumerate(self.rules):
            r.index = i
        self.by_name = {r.name: r for r in self.rules}
        self._names = [r.name for r in self.rules]
        #: the condition kind classes in use, by kind
        self.kinds: dict[ConditionKind, type[ReadingCondition[Any]]] = {
            type(r).kind: type(r) for r in self.rules
        }
        n_kinds = len(ConditionKind)
        self._resolved_clear = np.zeros(n_kinds, bool)
        self._shows_quantity = np.zeros(n_kinds, bool)
        for kind, cls in self.kinds.items():
            self._resolved_clear[kind] = cls.resolved_shows_clear
            self._shows_quantity[kind] = cls.shows_quantity
        self._own_threshold = [k for k, cls in self.kinds.items() if _overrides_threshold(cls)]
        self._has_calendars = any(r.has_calendar for r in self.rules)
        self._templates: dict[tuple[int, int, int, str, str], str] = {}
        self.slots = SlotTable(0)
        self.tables: list[tuple[ConditionKind, Sequence[RankTable]]] = []
        self._rule_slots: dict[int, np.ndarray] = {}  # slots of a rule, filled on demand
        self._mark = np.zeros(0, np.intp)  # scratch for _order

    def rule_names(self) -> list[str]:
        return list(self._names)

    # ------------------------------------------------------------------ compile
    def rebuild(self, env: RuleEnv) -> None:
        """Lay out the slots for the registry's current sensors, keeping their state."""
        reg = env.registry
        n_sensors = len(reg)
        parts_sensor: list[np.ndarray] = []
        parts_rule: list[np.ndarray] = []
        for r in self.rules:
            ids = np.flatnonzero(select(reg, r.spec.match, r.spec.exclude, env.select_cache))
            parts_sensor.append(ids.astype(np.int32))
            parts_rule.append(np.full(len(ids), r.index, np.int32))
        sensor = np.concatenate(parts_sensor) if parts_sensor else np.zeros(0, np.int32)
        rule = np.concatenate(parts_rule) if parts_rule else np.zeros(0, np.int32)
        order = np.lexsort((rule, sensor))
        sensor, rule = sensor[order], rule[order]
        rule_kind = np.array([int(r.kind) for r in self.rules], np.int8)
        s = SlotTable.allocate(sensor, rule, rule_kind[rule])
        for kind, cls in self.kinds.items():
            columns = cls.new_columns(s.n, np.flatnonzero(s.kind == kind))
            if columns is not None:
                s.columns[kind] = columns
        for r in self.rules:
            sel = np.flatnonzero(rule == r.index)
            if len(sel):
                r.fill(s, sel, sensor[sel], reg, s.columns.get(r.kind))
        s.finish_layout()
        carry_state(self.slots, s)
        s.refresh_band()
        self.slots = s
        self.tables = rank_tables(s, n_sensors)
        self._rule_slots = {}
        self._mark = np.zeros(n_sensors, np.intp)

    # ------------------------------------------------------------------ evaluation
    def on_tick(self, env: RuleEnv, now_ns: int) -> list[Signal]:
        return []  # only readings move per-reading rules

    def on_batch(self, env: RuleEnv, batch: Batch, now_ns: int) -> list[Signal]:
        s = self.slots
        if not s.n:
            return []
        # 1. one reading order for all kinds (grouped by sensor only if a sensor repeats)
        sensor = batch.sensor.astype(np.intp)  # once, not in every take
        order = self._order(sensor)
        repeats = order is not None
        sensor_o = sensor if order is None else sensor.take(order)
        any_flags = bool(batch.flags.any())
        parts: list[_ActiveRows] = []
        for kind, tables in self.tables:
            cond = self.kinds[kind]
            columns = s.columns.get(kind)
            for table, dense in tables:  # each rank's rows are grouped by slot by themselves
                # 2. this rank's rows: one gather over the batch's sensors
                slot = table.take(sensor_o)
                reading: np.ndarray | None = order  # None: row i is reading i
                if not dense:
                    keep = np.flatnonzero(slot >= 0)
                    if not len(keep):
                        continue
                    slot = slot.take(keep)
                    reading = keep if order is None else order.take(keep)
                flags = None
                if any_flags:
                    flags = batch.flags if reading is None else batch.flags.take(reading)
                    if cond.skip_flags:  # readings this kind never sees
                        skip = (flags & cond.skip_flags) != 0
                        if skip.any():
                            keep = np.flatnonzero(~skip)
                            if not len(keep):
                                continue
                            reading = keep if reading is None else reading.take(keep)
                            slot, flags = slot.take(keep), flags.take(keep)
                part = self._active_rows(cond, columns, slot, reading, flags, batch, repeats)
                if part is not None:
                    parts.append(part)
        if not parts:
            return []
        # 5. the level logic over the active rows of all kinds at once
        a_pends = np.concatenate([np.full(len(p.slot), p.pends, bool) for p in parts])
        a_slot = np.concatenate([p.slot for p in parts])
        a_reading = np.concatenate([p.reading for p in parts])
        a_x = np.concatenate([p.x for p in parts])
        a_anchor = np.concatenate([p.anchor for p in parts])
        a_first = np.concatenate([p.first for p in parts])
        all_first = bool(a_first.all())
        a_time = batch.time.take(a_reading)
        off = self._calendar_off(env, a_slot, a_time)
        status = evaluate_levels(s, a_slot, a_x, a_time, a_anchor, a_first, all_first, a_pends, off)
        # 6. each slot's status is its last row's; the previous status of a row is its
        # predecessor's in the slot, or the slot's stored status for the first row
        if all_first:
            prev = s.status[a_slot]
            touched = a_slot
            s.status[touched] = status
        else:
            prev = shift_in_segments(status, a_first, s.status[a_slot])
            last = run_ends(a_first)
            touched = a_slot[last]
            s.status[touched] = status[last]
        s.busy[touched] = (
            (s.status[touched] > 0)
            | s.trigger_run.take(touched, axis=0).any(axis=1)
            | (s.count_history.take(touched, axis=0) != 0).any(axis=1)
        )
        s.refresh_band(touched)
        # 7. signals for the rows whose status changed, in reading order, then slot order
        changed = np.flatnonzero(status != prev)
        if not len(changed):
            return []
        changed = changed[np.lexsort((a_slot[changed], a_reading[changed]))]
        return self._signals(
            env, changed, a_slot, a_time, batch.value.take(a_reading), a_x, status, prev
        )

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

    def _active_rows(
        self,
        cond: type[ReadingCondition[Any]],
        columns: Any,
        slot: np.ndarray,
        reading: np.ndarray | None,
        flags: np.ndarray | None,
        batch: Batch,
        repeats: bool,
    ) -> _ActiveRows | None:
        """Steps 3 and 4 for one rank table's rows: their quantity, then the rows that are
        not quiet (None if all are)."""
        s = self.slots
        n = len(slot)
        first = run_starts(slot) if repeats else None
        all_first = first is None or bool(first.all())
        if reading is None:  # every reading of the batch, in batch order
            t, v = batch.time, batch.value
        else:
            t, v = batch.time.take(reading), batch.value.take(reading)
        # 3. the kind's compared quantity over its rows
        x, anchor = cond.quantity(Rows(slot, reading, flags, t, v, first, all_first), s, columns)
        # 4. quiet rows: an idle slot strictly inside its quiet band changes nothing but
        # its last reading; whole slot segments are skipped, so sequential semantics hold
        lo = s.quiet_low_effective.take(slot)
        quiet = x > lo
        quiet &= x < s.quiet_high.take(slot)
        nan = np.isnan(x)  # (NaN, e.g. a rate without a previous reading, neither
        if nan.any():  # triggers nor clears: quiet unless the slot is busy)
            quiet |= nan & (lo != np.inf)
        if first is not None and not all_first:
            seg = np.flatnonzero(first)
            quiet = np.repeat(np.logical_and.reduceat(quiet, seg), np.diff(np.append(seg, n)))
        act = np.flatnonzero(~quiet)
        if not len(act):
            return None
        return _ActiveRows(
            pends=cond.pends,
            slot=slot.take(act),
            reading=act if reading is None else reading.take(act),
            x=x.take(act),
            anchor=anchor.take(act),
            first=np.ones(len(act), bool) if first is None else first.take(act),
        )

    def _calendar_off(self, env: RuleEnv, slot: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        """Rows outside their rule's calendar (None when no rule has a calendar)."""
        if not self._has_calendars:
            return None
        s = self.slots
        off = None
        rule = s.rule[slot]
        for r in self.rules:
            if not r.has_calendar:
                continue
            m = np.flatnonzero(rule == r.index)
            if not len(m):
                continue
            sens = s.sensor[slot[m]]
            ent = env.registry.column("enterprise")[sens]
            site = env.registry.column("site")[sens]
            inside = np.ones(len(m), bool)
            if r.calendar_in:
                inside = np.zeros(len(m), bool)
                for c in r.calendar_in:
                    inside |= c.active(t[m], ent, site)
            for c in r.calendar_out:
                inside &= ~c.active(t[m], ent, site)
            if off is None:
                off = np.zeros(len(slot), bool)
            off[m] = ~inside
        return off

    def _signals(
        self,
        env: RuleEnv,
        changed: np.ndarray,
        slot: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        x: np.ndarray,
        status: np.ndarray,
        prev: np.ndarray,
    ) -> list[Signal]:
        """Signals of the ``changed`` rows (already in output order)."""
        s = self.slots
        sl = slot[changed]
        st = status[changed].astype(np.int64)
        column = status_column(st, prev[changed].astype(np.int64))
        value = v[changed]
        kinds = s.kind[sl]
        # the number a signal quotes: the trigger, the clear value for a resolved
        # threshold, or what the kind says (the crossed bound of a measuring range)
        with np.errstate(invalid="ignore"):
            threshold = np.where(
                (st == 0) & self._resolved_clear[kinds],
                s.clear[sl, column] * s.sign[sl, column],
                s.trigger[sl, column] * s.sign[sl, column],
            )
        for kind in self._own_threshold:
            m = kinds == kind
            if m.any():
                own = self.kinds[kind].shown_threshold(s, s.columns.get(kind), sl[m], value[m])
                if own is not None:
                    threshold[m] = own
        shown = np.where(self._shows_quantity[kinds], x[changed], value)
        reg = env.registry
        cols = {c: reg.column(c) for c in ("unit", "kind", "location")}
        sens = s.sensor.take(sl)
        code = np.where(st == 0, 0, np.where(st > PENDING, 1, 2))  # resolved, pending, firing
        ent, site, name = (
            reg.column(c).take(sens).tolist() for c in ("enterprise", "site", "sensor")
        )
        templates = self._templates
        rules = self.rules
        names = self._names
        isfinite = math.isfinite
        out: list[Signal] = []
        append = out.append
        for c_, k_, t_, val, th, rule_i, sensor, unit, kind, e_, si_, n_ in zip(
            code.tolist(), column.tolist(), t[changed].tolist(), shown.tolist(),
            threshold.tolist(), s.rule.take(sl).tolist(), sens.tolist(),
            cols["unit"].take(sens).tolist(), cols["kind"].take(sens).tolist(), ent, site, name,
            strict=True,
        ):  # fmt: skip
            state = _STATES[c_]
            tk = (rule_i, c_, k_, unit, kind)
            tpl = templates.get(tk)
            if tpl is None:
                r = rules[rule_i]
                tpl = templates[tk] = (
                    "" if r.spec.message else builtin_template(r, state, k_, unit or "", kind)
                )
            if tpl:  # (fill_template, inlined)
                msg = tpl.format(
                    f"{e_}/{si_}/{n_}",  # the sensor key, as SensorRegistry.key
                    f"{val:.4g}" if isfinite(val) else "n/a",
                    f"{th:.4g}" if isfinite(th) else "n/a",
                ).replace("  ", " ")
            else:  # the rule's own message template
                r = rules[rule_i]
                assert r.spec.message is not None
                msg = rule_message(
                    r.spec.message,
                    sensor=reg.key(sensor),
                    rule=r.name,
                    state=state,
                    level=LEVELS[k_].colour,
                    label=r.label(k_),
                    value=val,
                    threshold=th,
                    unit=cols["unit"][sensor] or "",
                    kind=cols["kind"][sensor],
                    location=cols["location"][sensor],
                )
            append(Signal(names[rule_i], sensor, t_, state, LEVELS[k_] if c_ else None, val, th,
                          msg, SignalSource.RULE))  # fmt: skip
        return out

    # ------------------------------------------------------------------ state views
    def active(self, env: RuleEnv) -> list[ActiveAlert]:
        s = self.slots
        key = env.registry.key
        out = []
        for i in np.flatnonzero(s.status).tolist():
            st = int(s.status[i])
            sensor = int(s.sensor[i])
            out.append(
                ActiveAlert(
                    self._names[int(s.rule[i])],
                    sensor,
                    key(sensor),
                    status_state(st),
                    status_level(st),
                )
            )
        return out

    def _slots_of(self, index: int) -> np.ndarray:
        sl = self._rule_slots.get(index)
        if sl is None:
            sl = self._rule_slots[index] = np.flatnonzero(self.slots.rule == index)
        return sl

    def firing_level(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        r = self.by_name.get(rule_name)
        if r is None:
            return None
        out = np.zeros(n_sensors, np.uint8)
        sl = self._slots_of(r.index)
        st = self.slots.status[sl]
        m = sl[(st > 0) & (st < PENDING)]
        out[self.slots.sensor[m]] = self.slots.status[m]
        return out

    def sensors_of(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        r = self.by_name.get(rule_name)
        if r is None:
            return None
        m = np.zeros(n_sensors, bool)
        m[self.slots.sensor[self.slots.rule == r.index]] = True
        return m

    def export_state(self) -> dict[str, object]:
        return {r.name: ReadingState(self.slots, r.index) for r in self.rules}

    def import_state(self, states: Mapping[str, object]) -> None:
        s = self.slots
        for r in self.rules:
            old = states.get(r.name)
            if old is None:
                continue
            assert isinstance(old, ReadingState)
            src = np.flatnonzero(old.slots.rule == old.rule_index)
            dst = np.flatnonzero(s.rule == r.index)
            _, oi, ni = np.intersect1d(
                old.slots.sensor[src], s.sensor[dst], assume_unique=True, return_indices=True
            )
            copy_state(old.slots, src[oi], s, dst[ni])
        s.refresh_band()

    def nbytes(self) -> tuple[int, int]:
        tables = sum(table.nbytes for _, ts in self.tables for table, _ in ts)
        return self.slots.nbytes_state(), self.slots.nbytes_params() + tables
