"""Slots: the per-(rule, sensor) parameter and state arrays of the per-reading rules.

Every per-reading rule (threshold on value, rate or change, frozen, out of range,
calibration) is compiled into one *slot* per matched sensor. Slots are ordered by sensor
(then rule), so a sensor's slots are contiguous. Each slot has four *colour columns*
(red, orange, yellow, blue: column = ``Level - 1``), and a rule's numbers for a colour
sit in per-slot arrays ``[slot, column]``:

- ``trigger`` / ``clear``: stored signed (``sign`` is -1 for a ``below`` level), so every
  trigger reads ``x >= trigger`` (``x > trigger`` when ``strict``) and every clear reads
  ``x < clear`` (``x <= clear`` when ``clear_inclusive``);
- ``for_ns`` / ``keep_ns``: how long the trigger (clear) must hold before the colour
  latches (unlatches); ``count_n`` of ``count_m`` readings for N-of-M rules.

The state beside them: the colour ``latch``; the ``trigger_run`` flag and its start
``trigger_since`` (for ``for``); ``clear_run`` / ``clear_since`` (for
``keep_firing_for``); ``count_history`` (the last M trigger bits, newest in bit 0); the
slot ``status`` (see :mod:`~riskwatch.rules.levels`); the last reading's time and value;
and ``busy`` (the slot is not idle, so its readings cannot skip the level logic).

A condition kind that needs more per-slot numbers (the rate's ``per``, the change's
window and sample ring, the measuring range) keeps them in its own :class:`SlotColumns`.

When the sensor registry grows, the table is rebuilt and the state of every (rule,
sensor) pair that existed before is carried over (:func:`carry_state`).

>>> t = SlotTable.allocate(np.array([0, 0, 1], np.int32), np.array([0, 1, 0], np.int32),
...                        np.array([0, 1, 0], np.int8))
>>> t.trigger[:, 0] = [1.0, 2.0, 1.0]
>>> t.enabled[:, 0] = True
>>> t.finish_layout()
>>> t.level_count.tolist(), t.quiet_high.tolist()
([1, 1, 1], [1.0, 2.0, 1.0])
>>> [(kind.key, len(tables)) for kind, tables in rank_tables(t, 2)]
[('value', 1), ('rate', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from riskwatch.rules.kinds import ConditionKind

__all__ = [
    "LEVEL_COLUMNS",
    "NEVER",
    "RankTable",
    "SlotColumns",
    "SlotTable",
    "carry_state",
    "copy_state",
    "rank_tables",
]

LEVEL_COLUMNS = 4  # red, orange, yellow, blue (Level - 1)
NEVER = np.iinfo(np.int64).min // 4  # "no time yet" (safe to subtract from)


class SlotColumns(Protocol):
    """Per-slot numbers a condition kind adds to the table (indexed by slot)."""

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        """Take over the state of slots ``src`` of ``old`` (same kind) into slots ``dst``."""
        ...

    def nbytes_state(self) -> int: ...

    def nbytes_params(self) -> int: ...


#: one rank's table over sensor ids (slot of the sensor's r-th rule of a kind, or -1), and
#: whether it covers every sensor (then a batch's rows need no filtering)
RankTable = tuple[np.ndarray, bool]


class SlotTable:
    """Parameter and state arrays over (rule, sensor) slots (see the module docstring)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sensor = np.zeros(n, np.int32)
        self.rule = np.zeros(n, np.int32)
        self.kind = np.zeros(n, np.int8)  # a per-reading ConditionKind
        # parameters per colour column
        self.sign = np.ones((n, LEVEL_COLUMNS))
        self.trigger = np.full((n, LEVEL_COLUMNS), np.inf)
        self.clear = np.full((n, LEVEL_COLUMNS), -np.inf)
        self.strict = np.zeros((n, LEVEL_COLUMNS), bool)
        self.clear_inclusive = np.zeros((n, LEVEL_COLUMNS), bool)
        self.for_ns = np.zeros((n, LEVEL_COLUMNS), np.int64)
        self.keep_ns = np.zeros((n, LEVEL_COLUMNS), np.int64)
        self.enabled = np.zeros((n, LEVEL_COLUMNS), bool)
        self.count_n = np.zeros(n, np.int16)
        self.count_m = np.zeros(n, np.int16)
        # the enabled (slot, column) pairs as a flat list, by slot then column: a slot's
        # entries start at level_start[slot] and number level_count[slot]
        self.level_count = np.zeros(n, np.int64)
        self.level_start = np.zeros(n, np.int64)
        self.level_column = np.zeros(0, np.uint8)
        self.level_flat = np.zeros(0, np.int64)  # slot * LEVEL_COLUMNS + column
        # which optional comparisons any enabled level uses (skipped when none does)
        self.any_sign = self.any_strict = self.any_clear_inclusive = False
        self.any_for = self.any_keep = self.any_count = False
        # quiet band: an idle slot whose x is strictly inside (quiet_low, quiet_high)
        # cannot change state; quiet_low_effective is +inf while the slot is busy
        self.quiet_low = np.full(n, -np.inf)
        self.quiet_high = np.full(n, np.inf)
        self.quiet_low_effective = np.full(n, -np.inf)
        # state
        self.latch = np.zeros((n, LEVEL_COLUMNS), bool)
        self.trigger_run = np.zeros((n, LEVEL_COLUMNS), bool)
        self.trigger_since = np.zeros((n, LEVEL_COLUMNS), np.int64)
        self.clear_run = np.zeros((n, LEVEL_COLUMNS), bool)
        self.clear_since = np.zeros((n, LEVEL_COLUMNS), np.int64)
        self.count_history = np.zeros((n, LEVEL_COLUMNS), np.uint64)
        self.status = np.zeros(n, np.uint8)
        self.last_time = np.full(n, NEVER, np.int64)
        self.last_value = np.full(n, np.nan)
        self.busy = np.zeros(n, bool)
        # per-kind extra columns
        self.columns: dict[ConditionKind, SlotColumns] = {}

    @classmethod
    def allocate(cls, sensor: np.ndarray, rule: np.ndarray, kind: np.ndarray) -> SlotTable:
        """A table for slots ordered by (sensor, rule), with default parameters."""
        t = cls(len(sensor))
        t.sensor, t.rule, t.kind = sensor, rule, kind
        return t

    def state_named(self) -> dict[str, np.ndarray]:
        """The state arrays by name (what a rebuild or a reload carries over per slot,
        and what a snapshot writes: a state array added here is saved and restored with
        no code of its own)."""
        return {
            "latch": self.latch,
            "trigger_run": self.trigger_run,
            "trigger_since": self.trigger_since,
            "clear_run": self.clear_run,
            "clear_since": self.clear_since,
            "count_history": self.count_history,
            "status": self.status,
            "last_time": self.last_time,
            "last_value": self.last_value,
            "busy": self.busy,
        }

    def state_arrays(self) -> list[np.ndarray]:
        """The state arrays (what a rebuild or a reload carries over per slot)."""
        return list(self.state_named().values())

    def param_arrays(self) -> list[np.ndarray]:
        return [
            self.sensor,
            self.rule,
            self.kind,
            self.sign,
            self.trigger,
            self.clear,
            self.strict,
            self.clear_inclusive,
            self.for_ns,
            self.keep_ns,
            self.enabled,
            self.count_n,
            self.count_m,
            self.quiet_low,
            self.quiet_high,
            self.quiet_low_effective,
            self.level_count,
            self.level_start,
            self.level_column,
            self.level_flat,
        ]

    def finish_layout(self) -> None:
        """After the parameters are filled: the level list, the flags and the quiet band."""
        en = self.enabled
        self.level_count = en.sum(axis=1).astype(np.int64)
        self.level_start = (
            np.concatenate([[0], np.cumsum(self.level_count)[:-1]]).astype(np.int64)
            if self.n
            else np.zeros(0, np.int64)
        )
        slot, column = np.nonzero(en)  # row-major: by slot, then column ascending
        self.level_column = column.astype(np.uint8)
        self.level_flat = slot.astype(np.int64) * LEVEL_COLUMNS + column
        self.any_sign = bool((self.sign[en] < 0).any())
        self.any_strict = bool(self.strict[en].any())
        self.any_clear_inclusive = bool(self.clear_inclusive[en].any())
        self.any_for = bool((self.for_ns[en] > 0).any())
        self.any_keep = bool((self.keep_ns[en] > 0).any())
        self.any_count = bool((self.count_m > 0).any())
        # the band between the lowest `above` trigger and the highest `below` one
        with np.errstate(invalid="ignore"):
            up = en & (self.sign > 0)
            down = en & (self.sign < 0)
            self.quiet_high = (
                np.where(up, self.trigger, np.inf).min(axis=1) if self.n else np.zeros(0)
            )
            self.quiet_low = (
                np.where(down, -self.trigger, -np.inf).max(axis=1) if self.n else np.zeros(0)
            )
        self.quiet_low_effective = self.quiet_low.copy()

    def refresh_band(self, idx: np.ndarray | slice = slice(None)) -> None:
        """Recompute the effective quiet band (after a rebuild, reload or busy change)."""
        self.quiet_low_effective[idx] = np.where(self.busy[idx], np.inf, self.quiet_low[idx])

    def nbytes_state(self) -> int:
        return sum(a.nbytes for a in self.state_arrays()) + sum(
            c.nbytes_state() for c in self.columns.values()
        )

    def nbytes_params(self) -> int:
        return sum(a.nbytes for a in self.param_arrays()) + sum(
            c.nbytes_params() for c in self.columns.values()
        )


def copy_state(old: SlotTable, src: np.ndarray, new: SlotTable, dst: np.ndarray) -> None:
    """Copy the state of slots ``src`` of ``old`` into slots ``dst`` of ``new``."""
    for arr_new, arr_old in zip(new.state_arrays(), old.state_arrays(), strict=True):
        arr_new[dst] = arr_old[src]
    for kind, cols in new.columns.items():
        cols.carry(old.columns.get(kind), src, dst)


def carry_state(old: SlotTable, new: SlotTable) -> None:
    """Carry the state of every (rule, sensor) slot that exists in both tables."""
    if not (old.n and new.n):
        return
    okey = old.rule.astype(np.int64) << 32 | old.sensor.astype(np.int64)
    nkey = new.rule.astype(np.int64) << 32 | new.sensor.astype(np.int64)
    o = np.argsort(okey)
    pos = np.searchsorted(okey[o], nkey)
    pos = np.minimum(pos, len(o) - 1)
    hit = okey[o][pos] == nkey
    copy_state(old, o[pos[hit]], new, np.flatnonzero(hit))


def rank_tables(
    slots: SlotTable, n_sensors: int
) -> list[tuple[ConditionKind, Sequence[RankTable]]]:
    """Per condition kind, rank tables over sensor ids: ``table[sensor]`` is the slot of
    the sensor's r-th rule of that kind (-1 if none), so a batch finds each kind's rows
    with one gather per rank instead of expanding every reading into all its slots."""
    out: list[tuple[ConditionKind, Sequence[RankTable]]] = []
    for kind in np.unique(slots.kind).tolist():
        sel = np.flatnonzero(slots.kind == kind)
        sens = slots.sensor[sel]  # slots are ordered by sensor: a sensor's run is contiguous
        runs = np.flatnonzero(np.r_[True, sens[1:] != sens[:-1]])
        rank = np.arange(len(sel)) - np.repeat(runs, np.diff(np.r_[runs, len(sel)]))
        tables: list[RankTable] = []
        for r in range(int(rank.max()) + 1):
            m = rank == r
            table = np.full(n_sensors, -1, np.intp)  # intp: take() casts other index types
            table[sens[m]] = sel[m]
            tables.append((table, bool(m.sum() == n_sensors)))
        out.append((ConditionKind(kind), tables))
    return out
