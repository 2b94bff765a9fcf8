"""The raise-only pass: readings whose event time cannot order them may raise, never clear.

The quality stage flags a reading out of order (older than its sensor's watermark),
``clock_skew`` (stamped ahead of its arrival by more than ``ingest.max_clock_skew_s``)
or conflicting (a second, different value for a time already seen). The in-order pass
never sees them (:data:`~riskwatch.model.PROCESS_SKIP`): its latches, ``for`` runs,
N-of-M histories and last readings follow event time, and such a reading would move
them backwards or forwards in time. Dropping them, though, would let a late 2.0 % CH4
raise nothing. So after the in-order pass each of them is evaluated against the rule
state as the batch left it, in a way that can only raise (docs/rules.md, "Event time"):

- an *immediate* colour (no ``for``) whose trigger the reading meets latches, so the
  alert fires or escalates; for an N-of-M colour the reading counts as one more
  triggering reading beside the last M-1 in-order ones (their history is not changed);
- a colour with ``for`` does not latch: ``for`` asks that the trigger held over time,
  and only in-order readings say that; the slot goes *pending* (if it is not already
  at that level or above), which an in-order reading then confirms or clears;
- nothing is ever reset or moved: no latch cleared, no run started or broken, no
  history or last reading written; a status only ever moves to a more severe one.

Only kinds whose compared quantity is the reading alone take part (``raise_only`` on
the kind: the value threshold and the measuring range). Rate, windowed change, frozen
and calibration need the previous in-order reading and skip these readings.

Calibrating and faulty readings stay out (``raise_only_never`` of the kind), and so do
true duplicates (``DUPLICATE`` without ``CONFLICTING``: a redelivery counts once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from riskwatch.model import RAISE_ONLY, Batch, Flags
from riskwatch.rules.conditions.base import ReadingCondition, Rows
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.levels import PENDING
from riskwatch.rules.slots import RankTable, SlotTable

__all__ = ["RaiseOnlyRows", "candidates", "evaluate_raise_only"]

_RAISE_ONLY = int(RAISE_ONLY)
_DUP = int(Flags.DUPLICATE)
_CONFLICT = int(Flags.CONFLICTING)
_INACTIVE_RANK = 255
# lowest set bit (1-based) of a 4-bit colour mask: the most severe colour present
_LOWEST_BIT = np.array([0] + [(i & -i).bit_length() for i in range(1, 16)], np.uint8)


class RaiseOnlyRows(NamedTuple):
    """The rows (reading x slot) whose status the raise-only pass moved, one per slot."""

    slot: np.ndarray
    reading: np.ndarray  # index into the batch
    x: np.ndarray  # the compared quantity
    status: np.ndarray  # the new status (more severe than prev)
    prev: np.ndarray


def candidates(flags: np.ndarray) -> np.ndarray:
    """Readings for the raise-only pass: a raise-only flag, and not a true duplicate."""
    f = flags.astype(np.int64)
    raise_only = (f & _RAISE_ONLY) != 0
    true_dup = ((f & _DUP) != 0) & ((f & _CONFLICT) == 0)
    return np.flatnonzero(raise_only & ~true_dup)


def _rank(status: np.ndarray) -> np.ndarray:
    """Severity rank of a status code: firing 1..4, pending 11..14, inactive last."""
    st = status.astype(np.int64)
    return np.where(st == 0, _INACTIVE_RANK, st)


def evaluate_raise_only(
    batch: Batch,
    slots: SlotTable,
    tables: Sequence[tuple[ConditionKind, Sequence[RankTable]]],
    kinds: Mapping[ConditionKind, type[ReadingCondition[Any]]],
    calendar_off: Callable[[np.ndarray, np.ndarray], np.ndarray | None],
) -> RaiseOnlyRows | None:
    """Raise or escalate with the batch's raise-only readings; None if nothing moved.

    ``calendar_off(slot, time)`` marks rows outside their rule's calendar (None: no
    calendars), where a reading counts as not triggered.
    """
    idx = candidates(batch.flags)
    if not len(idx):
        return None
    s = slots
    flags = batch.flags
    # 1. rows of the kinds that take part: (reading, slot) for every rank table
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for kind, kind_tables in tables:
        cond = kinds[kind]
        if not cond.raise_only:
            continue
        r = idx[(flags[idx] & cond.raise_only_never) == 0]
        if not len(r):
            continue
        columns = s.columns.get(kind)
        sensor = batch.sensor[r].astype(np.intp)
        for table, _dense in kind_tables:
            slot = table.take(sensor)
            keep = np.flatnonzero(slot >= 0)
            if not len(keep):
                continue
            slot, reading = slot[keep], r[keep]
            rows = Rows(slot, reading, flags[reading], batch.time[reading],
                        batch.value[reading], None, True)  # fmt: skip
            x, _ = cond.quantity(rows, s, columns)  # pure for raise-only kinds
            parts.append((slot, reading, x, np.full(len(slot), cond.pends, bool)))
    if not parts:
        return None
    slot, reading, x, pends = (np.concatenate(a) for a in zip(*parts, strict=True))
    n = len(slot)
    # 2. every row expands into one entry per enabled colour of its slot
    level_count = s.level_count[slot]
    total = int(level_count.sum())
    if not total:
        return None
    row = np.repeat(np.arange(n), level_count)
    entry = np.repeat(s.level_start[slot] - (np.cumsum(level_count) - level_count),
                      level_count) + np.arange(total)  # fmt: skip
    column = s.level_column[entry]
    flat = s.level_flat[entry]
    xl = x[row] * s.sign.reshape(-1)[flat]
    trigger = s.trigger.reshape(-1)[flat]
    with np.errstate(invalid="ignore"):
        trig = (xl > trigger) | (~s.strict.reshape(-1)[flat] & (xl == trigger))
    off = calendar_off(slot, batch.time[reading])
    if off is not None:
        trig &= ~off[row]
    # 3. N-of-M: this reading and the last M-1 in-order trigger bits (history unchanged)
    m = s.count_m[slot[row]].astype(np.int64)
    counted = m > 0
    if counted.any():
        h = s.count_history.reshape(-1)[flat[counted]]
        keep_bits = np.minimum(np.maximum(m[counted] - 1, 0), 63).astype(np.uint64)
        mask = (np.uint64(1) << keep_bits) - np.uint64(1)
        count = np.bitwise_count(h & mask).astype(np.int64) + 1
        trig[counted] &= count >= s.count_n[slot[row[counted]]]
    # 4. immediate colours latch; colours with `for` only pend
    latch0 = s.latch.reshape(-1)[flat]
    immediate = s.for_ns.reshape(-1)[flat] == 0
    set_event = trig & immediate & ~latch0
    pend_event = trig & ~immediate & ~latch0 & pends[row]
    # 5. each row's status: its slot's latched colours plus the ones it latched, else
    # the colours it made pending
    starts = np.cumsum(level_count) - level_count
    has = np.flatnonzero(level_count)
    fire = np.zeros(n, np.uint8)
    pend = np.zeros(n, np.uint8)
    fire[has] = np.bitwise_or.reduceat(((latch0 | set_event).astype(np.uint8) << column),
                                       starts[has])  # fmt: skip
    pend[has] = np.bitwise_or.reduceat((pend_event.astype(np.uint8) << column), starts[has])
    pending = np.where(pend > 0, _LOWEST_BIT[pend] + PENDING, 0)
    status = np.where(fire > 0, _LOWEST_BIT[fire], pending).astype(np.uint8)
    # 6. per slot, its most severe row (the earliest of equals); it counts only if it is
    # more severe than the slot's status after the in-order pass
    order = np.lexsort((batch.time[reading], _rank(status), slot))
    first = np.ones(n, bool)
    first[1:] = slot[order][1:] != slot[order][:-1]
    best = order[first]
    prev = s.status[slot[best]]
    moves = _rank(status[best]) < _rank(prev)
    # the latches are set whatever the status says (a colour below the current level
    # latched too: it holds the alert once the higher one clears)
    s.latch.reshape(-1)[flat[set_event]] = True
    s.clear_run.reshape(-1)[flat[set_event]] = False  # a triggering reading breaks a clear run
    if not moves.any():
        return None
    best, prev = best[moves], prev[moves]
    touched = slot[best]
    s.status[touched] = status[best]
    s.busy[touched] = True
    s.refresh_band(touched)
    return RaiseOnlyRows(touched, reading[best], x[best], status[best], prev)
