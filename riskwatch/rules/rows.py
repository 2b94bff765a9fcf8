"""Which readings of a batch go on to the level logic: steps 1 to 4 of the per-reading pass.

1. Order: if a sensor repeats in the batch, the readings are sorted by sensor once
   (stable, so time order is kept within a sensor); all kinds share this order.
2. Rows: per condition kind and rank table, one gather of the table over the batch's
   sensors gives that kind's rows (reading x slot), grouped by slot, in time order; the
   readings the kind never sees (its ``skip_flags``) drop out.
3. Quantity: the kind computes its compared quantity over its own rows only.
4. Quiet rows: an idle slot (inactive, no ``for`` run, no N-of-M history) whose quantity
   is strictly inside its quiet band cannot change state; whole slot segments of such
   rows stop here. What remains, over all kinds, is returned as one set of rows.

>>> import numpy as np
>>> reading_order(np.array([3, 1, 3, 2], np.intp), np.zeros(4, np.intp)).tolist()
[1, 3, 0, 2]
>>> reading_order(np.array([3, 1, 2], np.intp), np.zeros(4, np.intp)) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from riskwatch.model import Batch
from riskwatch.rules.conditions.base import ReadingCondition, Rows
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.segments import run_starts
from riskwatch.rules.slots import RankTable, SlotTable

__all__ = ["ActiveRows", "active_rows", "reading_order"]


class ActiveRows(NamedTuple):
    """The rows of all kinds that go on to the level logic (grouped by slot, time order)."""

    pends: np.ndarray  # the row's kind can be pending
    slot: np.ndarray
    reading: np.ndarray  # index into the batch
    x: np.ndarray  # the compared quantity
    anchor: np.ndarray  # when a `for` run starting at the row counts from
    first: np.ndarray  # True at a slot's first row


def reading_order(sensor: np.ndarray, mark: np.ndarray) -> np.ndarray | None:
    """Reading order that groups a sensor's readings (time order kept), or None when no
    sensor repeats in the batch (then every reading is its own group). ``mark`` is
    scratch space over sensor ids."""
    n = len(sensor)
    ar = np.arange(n, dtype=np.intp)
    mark[sensor] = ar
    if np.array_equal(mark.take(sensor), ar):
        return None
    # stable order by sensor: an unstable sort of (sensor, position) keys is faster
    pos_bits = max(1, n.bit_length())
    key = (sensor.astype(np.int64) << pos_bits) | np.arange(n, dtype=np.int64)
    return np.sort(key) & ((1 << pos_bits) - 1)


def active_rows(
    batch: Batch,
    slots: SlotTable,
    tables: Sequence[tuple[ConditionKind, Sequence[RankTable]]],
    kinds: Mapping[ConditionKind, type[ReadingCondition[Any]]],
    mark: np.ndarray,
) -> ActiveRows | None:
    """The batch's rows that are not quiet, over every kind (None if all are quiet)."""
    # 1. one reading order for all kinds (grouped by sensor only if a sensor repeats)
    sensor = batch.sensor.astype(np.intp)  # once, not in every take
    order = reading_order(sensor, mark)
    repeats = order is not None
    sensor_o = sensor if order is None else sensor.take(order)
    any_flags = bool(batch.flags.any())
    parts: list[ActiveRows] = []
    for kind, kind_tables in tables:
        cond = kinds[kind]
        columns = slots.columns.get(kind)
        for table, dense in kind_tables:  # each rank's rows are grouped by slot by themselves
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
            part = _not_quiet(cond, columns, slots, slot, reading, flags, batch, repeats)
            if part is not None:
                parts.append(part)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return ActiveRows(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


def _not_quiet(
    cond: type[ReadingCondition[Any]],
    columns: Any,
    slots: SlotTable,
    slot: np.ndarray,
    reading: np.ndarray | None,
    flags: np.ndarray | None,
    batch: Batch,
    repeats: bool,
) -> ActiveRows | None:
    """Steps 3 and 4 for one rank table's rows: their quantity, then the rows that are
    not quiet (None if all are)."""
    n = len(slot)
    first = run_starts(slot) if repeats else None
    all_first = first is None or bool(first.all())
    if reading is None:  # every reading of the batch, in batch order
        t, v = batch.time, batch.value
    else:
        t, v = batch.time.take(reading), batch.value.take(reading)
    # 3. the kind's compared quantity over its rows
    x, anchor = cond.quantity(Rows(slot, reading, flags, t, v, first, all_first), slots, columns)
    # 4. quiet rows: an idle slot strictly inside its quiet band changes nothing but its
    # last reading; whole slot segments are skipped, so sequential semantics hold
    lo = slots.quiet_low_effective.take(slot)
    quiet = x > lo
    quiet &= x < slots.quiet_high.take(slot)
    nan = np.isnan(x)  # (NaN, e.g. a rate without a previous reading, neither
    if nan.any():  # triggers nor clears: quiet unless the slot is busy)
        quiet |= nan & (lo != np.inf)
    if first is not None and not all_first:
        seg = np.flatnonzero(first)
        quiet = np.repeat(np.logical_and.reduceat(quiet, seg), np.diff(np.append(seg, n)))
    act = np.flatnonzero(~quiet)
    if not len(act):
        return None
    return ActiveRows(
        pends=np.full(len(act), cond.pends, bool),
        slot=slot.take(act),
        reading=act if reading is None else reading.take(act),
        x=x.take(act),
        anchor=anchor.take(act),
        first=np.ones(len(act), bool) if first is None else first.take(act),
    )
