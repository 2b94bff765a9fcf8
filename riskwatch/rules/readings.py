"""The per-reading rules of a rule set, evaluated together over each batch.

Every per-reading rule (threshold on value / rate / change, frozen, out of range,
calibration) is compiled into slots (:mod:`~riskwatch.rules.slots`), one per (rule,
matched sensor). A batch goes through these steps, with no Python loop over readings or
sensors (the ``# n.`` comments in the code follow them):

1.-4. Rows (:mod:`~riskwatch.rules.rows`): per condition kind, the batch's rows
   (reading x slot), grouped by slot in time order; the kind's compared quantity over
   them; and the rows that are not quiet (an idle slot far from every trigger cannot
   change state).
5. Levels: the remaining rows of all kinds go through the level logic together
   (:func:`~riskwatch.rules.levels.evaluate_levels`: latch, ``for``,
   ``keep_firing_for``, N-of-M, calendars), which yields a status per row.
6. Status: each slot's status becomes its last row's; a slot with a status, a trigger
   run or count history is busy (it leaves the quiet band until it is idle again).
7. Signals: only rows whose status changed become :class:`~riskwatch.model.Signal` s
   (:class:`~riskwatch.rules.messages.SignalWriter`), in reading order and then slot
   order, which is the order the same readings fed one at a time give.
8. Raise-only: readings flagged out of order, clock-skewed or conflicting skipped steps
   1-7; they are evaluated now against the state the batch left, and may only raise or
   escalate (:mod:`~riskwatch.rules.raise_only`). Their signals follow the in-order ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

import numpy as np

from riskwatch.model import Batch, Flags, Signal
from riskwatch.rules.compile import select
from riskwatch.rules.conditions.base import (
    ActiveAlert,
    Phase,
    ReadingCondition,
    RuleEnv,
)
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.levels import (
    PENDING,
    evaluate_levels,
    status_column,
    status_level,
    status_state,
)
from riskwatch.rules.messages import SignalWriter
from riskwatch.rules.raise_only import evaluate_raise_only
from riskwatch.rules.rows import active_rows
from riskwatch.rules.segments import run_ends, shift_in_segments
from riskwatch.rules.sensor_memory import Needs
from riskwatch.rules.slots import RankTable, SlotTable, carry_state, copy_state, rank_tables
from riskwatch.state.tree import Restored, SensorMap, StateTree, fields_of, with_fields

__all__ = ["ReadingRules", "ReadingState"]


class ReadingState(NamedTuple):
    """A rule's state as exported: its slots of the old table (by reference)."""

    slots: SlotTable
    rule_index: int


def _overrides_threshold(cls: type[ReadingCondition[Any]]) -> bool:
    """The kind quotes a threshold of its own (see ReadingCondition.shown_threshold)."""
    own = cls.shown_threshold.__func__  # type: ignore[attr-defined]
    return own is not ReadingCondition.shown_threshold.__func__  # type: ignore[attr-defined]


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
        self.writer = SignalWriter(self.rules)
        self.slots = SlotTable(0)
        self.tables: list[tuple[ConditionKind, Sequence[RankTable]]] = []
        self._rule_slots: dict[int, np.ndarray] = {}  # slots of a rule, filled on demand
        self._mark = np.zeros(0, np.intp)  # scratch over sensor ids (reading_order)

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
        if not self.slots.n:
            return []
        out = self._in_order(env, batch)
        # 8. out-of-order, clock-skewed and conflicting readings: raise-only, against the
        # state the in-order readings left (riskwatch.rules.raise_only)
        if batch.flags.any():
            out += self._raise_only(env, batch)
        return out

    def _raise_only(self, env: RuleEnv, batch: Batch) -> list[Signal]:
        moved = evaluate_raise_only(
            batch, self.slots, self.tables, self.kinds,
            lambda slot, t: self._calendar_off(env, slot, t),
        )  # fmt: skip
        if moved is None:
            return []
        # the signal's time: the arrival for a clock-skewed reading (its stamp is wrong)
        t = np.minimum(batch.time.take(moved.reading), batch.received.take(moved.reading))
        changed = np.lexsort((moved.slot, t))
        signals = self._signals(env, changed, moved.slot, t, batch.value.take(moved.reading),
                                moved.x, moved.status, moved.prev)  # fmt: skip
        why = batch.flags.take(moved.reading[changed])
        return [_noted(sig, int(f)) for sig, f in zip(signals, why.tolist(), strict=True)]

    def _in_order(self, env: RuleEnv, batch: Batch) -> list[Signal]:
        """Steps 1-7: the readings taken in event-time order."""
        s = self.slots
        # 1.-4. the rows of every kind that are not quiet (see riskwatch.rules.rows)
        rows = active_rows(batch, s, self.tables, self.kinds, self._mark)
        if rows is None:
            return []
        # 5. the level logic over the active rows of all kinds at once
        all_first = bool(rows.first.all())
        time = batch.time.take(rows.reading)
        off = self._calendar_off(env, rows.slot, time)
        status = evaluate_levels(s, rows.slot, rows.x, time, rows.anchor, rows.first, all_first,
                                 rows.pends, off)  # fmt: skip
        # 6. each slot's status is its last row's; the previous status of a row is its
        # predecessor's in the slot, or the slot's stored status for the first row
        if all_first:
            prev = s.status[rows.slot]
            touched = rows.slot
            s.status[touched] = status
        else:
            prev = shift_in_segments(status, rows.first, s.status[rows.slot])
            last = run_ends(rows.first)
            touched = rows.slot[last]
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
        changed = changed[np.lexsort((rows.slot[changed], rows.reading[changed]))]
        return self._signals(env, changed, rows.slot, time, batch.value.take(rows.reading),
                             rows.x, status, prev)  # fmt: skip

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
        code = np.where(st == 0, 0, np.where(st > PENDING, 1, 2))  # resolved, pending, firing
        return self.writer.write(env.registry, s.rule.take(sl), s.sensor.take(sl), t[changed],
                                 code, column, shown, threshold)  # fmt: skip

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

    def adopt_state(self, states: Mapping[str, object]) -> None:
        """Changed rules take over their predecessors' active slots (see
        :meth:`~riskwatch.rules.conditions.base.Condition.adopt_state`): a firing slot
        starts with the same colours latched (a colour the new rule lacks becomes its most
        severe enabled one: when in doubt, alarm), a pending one pending, and both keep
        the old status, so the next reading that evaluates another status signals it (a
        resolve when the new clear condition holds). The last reading's time and value
        carry over too (rate and frozen compare with it)."""
        s = self.slots
        for r in self.rules:
            old = states.get(r.name)
            if old is None:
                continue
            assert isinstance(old, ReadingState)
            o = old.slots
            src = np.flatnonzero(o.rule == old.rule_index)
            dst = np.flatnonzero(s.rule == r.index)
            _, oi, ni = np.intersect1d(
                o.sensor[src], s.sensor[dst], assume_unique=True, return_indices=True
            )
            src, dst = src[oi], dst[ni]
            s.last_time[dst] = o.last_time[src]
            s.last_value[dst] = o.last_value[src]
            status = o.status[src]
            act = status > 0
            src, dst, status = src[act], dst[act], status[act]
            if not len(dst):
                continue
            enabled = s.enabled[dst]
            latch = o.latch[src] & enabled
            firing = (status < PENDING) & ~latch.any(axis=1)
            if firing.any():  # its latched colours are gone: the most severe one left
                first = np.argmax(enabled[firing], axis=1)
                latch[np.flatnonzero(firing), first] = enabled[firing].any(axis=1)
            latch[status > PENDING] = False
            s.latch[dst] = latch
            s.status[dst] = status
            s.busy[dst] = True
        s.refresh_band()

    # ------------------------------------------------------------------ durable state
    def dump_state(self) -> StateTree:
        """The slot table's state arrays by name, each slot's (rule name, sensor id), and
        every kind's own columns field by field (:func:`~riskwatch.state.tree.fields_of`)."""
        s = self.slots
        return {
            "v": 1,
            "rules": list(self._names),
            "sensor": s.sensor.copy(),
            "rule": s.rule.copy(),
            "kind": s.kind.copy(),
            "state": {name: arr.copy() for name, arr in s.state_named().items()},
            "columns": {kind.key: fields_of(cols) for kind, cols in s.columns.items()},
        }

    def load_state(
        self, tree: StateTree, sensors: SensorMap, keep: set[str], changed: set[str]
    ) -> Restored:
        """Take over the slots of the rules in ``keep`` (same name and definition) whose
        sensor still exists, matched by (rule name, sensor key)."""
        out = Restored()
        try:
            names = [str(n) for n in tree["rules"]]
            o_sensor = sensors.ids(tree["sensor"])
            o_rule_old = np.asarray(tree["rule"], np.int64)
            saved_state = dict(tree["state"])
            saved_cols = dict(tree.get("columns", {}))
            o_kind = np.asarray(tree["kind"])
        except (KeyError, TypeError, ValueError) as exc:
            out.dropped.append(f"rules: per-reading state unreadable ({exc!r})")
            return out
        # old rule index -> this set's index, for kept rules only
        remap = np.full(len(names) + 1, -1, np.int64)
        for i, n in enumerate(names):
            r = self.by_name.get(n)
            if r is not None and n in keep:
                remap[i] = r.index
        o_rule = remap[np.where((o_rule_old >= 0) & (o_rule_old < len(names)), o_rule_old, -1)]
        # the old table, as far as it is readable: its sensors and rules in today's ids
        n_old = len(o_sensor)
        old = SlotTable(n_old)
        old.sensor, old.rule = o_sensor.astype(np.int32), o_rule.astype(np.int32)
        present = []
        for name, arr in old.state_named().items():
            got = saved_state.get(name)
            if isinstance(got, np.ndarray) and got.shape == arr.shape and got.dtype == arr.dtype:
                arr[...] = got
                present.append(name)
            else:
                out.dropped.append(f"rules: slot field {name!r} not in the snapshot (reset)")
        s = self.slots
        for kind, cols in s.columns.items():
            rebuilt, bad = with_fields(cols, saved_cols.get(kind.key))
            if rebuilt is None:
                if (s.kind == kind).any() and (o_kind == int(kind)).any():
                    out.dropped.append(
                        f"rules: {kind.key} columns of another layout ({', '.join(bad)}): reset"
                    )
                continue
            old.columns[kind] = rebuilt
        # match (rule, sensor) pairs of the old table with today's slots
        ok = np.flatnonzero((o_rule >= 0) & (o_sensor >= 0))
        src = dst = np.zeros(0, np.intp)
        if len(ok) and s.n:
            okey = o_rule[ok] << 32 | o_sensor[ok]
            nkey = s.rule.astype(np.int64) << 32 | s.sensor.astype(np.int64)
            order = np.argsort(nkey)
            pos = np.minimum(np.searchsorted(nkey[order], okey), s.n - 1)
            hit = nkey[order][pos] == okey
            src, dst = ok[hit], order[pos[hit]]
        states_new = s.state_named()
        for name in present:
            states_new[name][dst] = old.state_named()[name][src]
        for kind, cols in s.columns.items():
            if kind in old.columns:
                cols.carry(old.columns[kind], src, dst)
        s.refresh_band()
        adopt = {n: i for i, n in enumerate(names) if n in changed and n in self.by_name}
        if adopt and "status" in present and "latch" in present:
            old.rule = np.where(o_sensor >= 0, o_rule_old, -1).astype(np.int32)
            self.adopt_state({n: ReadingState(old, i) for n, i in adopt.items()})
        kept_rules = {names[i] for i in np.unique(o_rule_old[src]).tolist()} if len(src) else set()
        out.counts = {
            "rules with slots": len(kept_rules),
            "slots": len(dst),
            "latched": int(s.latch[dst].any(axis=1).sum()),
        }
        return out

    def nbytes(self) -> tuple[int, int]:
        tables = sum(table.nbytes for _, ts in self.tables for table, _ in ts)
        return self.slots.nbytes_state(), self.slots.nbytes_params() + tables


def _noted(sig: Signal, flags: int) -> Signal:
    """The signal of a raise-only reading, its message saying why the reading was odd."""
    if flags & Flags.CLOCK_SKEW:
        why = "clock-skewed reading"
    elif flags & Flags.OUT_OF_ORDER:
        why = "out-of-order reading"
    else:
        why = "conflicting reading"
    body, sep, tail = sig.message.rpartition(" [")
    msg = f"{body} ({why}){sep}{tail}" if sep else f"{sig.message} ({why})"
    return replace(sig, message=msg)
