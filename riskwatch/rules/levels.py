"""Levels: the vectorised latch, ``for``, ``keep_firing_for`` and N-of-M logic.

Each colour of a rule is an independent latch (Prometheus' alerting rule, per colour):

- the colour *triggers* on a reading when its compared quantity reaches the trigger
  (for N-of-M rules: when at least N of the last M readings did);
- it *latches* (fires) once the trigger held on every reading for ``for`` (the run starts
  at the first triggering reading: ``trigger_since``, Prometheus' ``ActiveAt``);
- it *unlatches* only once its clear condition held, without the trigger, for
  ``keep_firing_for`` (from ``clear_since``); the trigger merely stopping to hold does
  not clear a colour, which is what gives hysteresis.

A slot's status is then its most severe latched colour (firing), else, for kinds that
can pend, its most severe triggered colour still waiting for ``for`` (pending), else
inactive. Status codes: 0 inactive, ``1..4`` firing at that level, ``11..14`` pending.

Rows arrive grouped by slot and in time order (a *segment* per slot). Every row expands
into one *entry* per enabled colour of its slot, indexing the flattened ``[slot, column]``
arrays; entries of one (slot, column) are contiguous and in time order, so the run
starts and latch events are segmented forward fills (:mod:`~riskwatch.rules.segments`)
and a batch gives exactly what the same readings fed one at a time would give.

>>> from riskwatch.rules.slots import SlotTable
>>> t = SlotTable.allocate(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int8))
>>> t.trigger[0, 0], t.clear[0, 0], t.for_ns[0, 0], t.enabled[0, 0] = 1.0, 0.5, 2, True
>>> t.finish_layout()
>>> x = np.array([1.2, 1.3, 1.1, 0.8, 0.4])
>>> status = evaluate_levels(t, np.zeros(5, np.intp), x, np.arange(5), np.arange(5),
...                          np.array([True, False, False, False, False]), False,
...                          np.ones(5, bool), None)
>>> status.tolist()  # pending, pending, red (for 2 ns), red (0.8 is not below 0.5), clear
[11, 11, 1, 1, 0]
>>> [str(status_state(int(s))) for s in status[[0, 2, 4]]], status_level(int(status[0]))
(['pending', 'firing', 'resolved'], <Level.RED: 1>)
"""

from __future__ import annotations

import numpy as np

from riskwatch.model import Level, SignalState
from riskwatch.rules.segments import forward_fill_index, run_ends, run_starts, shift_in_segments
from riskwatch.rules.slots import SlotTable

__all__ = [
    "LEVELS",
    "PENDING",
    "count_window",
    "evaluate_levels",
    "status_column",
    "status_level",
    "status_state",
]

PENDING = 10  # status = PENDING + level while the trigger waits for `for`
#: colour column -> Level
LEVELS = (Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE)
# lowest set bit (1-based) of a 4-bit colour mask: the most severe colour present
_LOWEST_BIT = np.array([0] + [(i & -i).bit_length() for i in range(1, 16)], np.uint8)


def status_state(status: int) -> SignalState:
    """The signal state a status code stands for."""
    if status == 0:
        return SignalState.RESOLVED
    return SignalState.PENDING if status > PENDING else SignalState.FIRING


def status_level(status: int) -> Level:
    """The level of a firing or pending status code."""
    return Level(status % PENDING)


def status_column(status: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Colour column of each status change: the new level, or the one that resolved."""
    return np.where(
        status == 0,
        previous % PENDING - 1,
        np.where(status > PENDING, status - PENDING - 1, status - 1),
    )


def evaluate_levels(
    slots: SlotTable,
    slot: np.ndarray,
    x: np.ndarray,
    time: np.ndarray,
    anchor: np.ndarray,
    first: np.ndarray,
    all_first: bool,
    pends: np.ndarray,
    off: np.ndarray | None,
) -> np.ndarray:
    """Evaluate every enabled colour of every row at once; return the per-row status.

    ``slot``, ``x`` (the compared quantity) and ``time`` are per row, grouped by slot in
    time order; ``first`` marks each slot's first row (``all_first``: every row is its
    own slot). ``anchor`` is the time a ``for`` run starting at the row counts from (the
    previous reading's for frozen values, else the row's own). ``pends`` says the row's
    kind can be pending; ``off`` marks rows outside their rule's calendar. The slots'
    latch, run and N-of-M state is read, advanced over the rows and written back.
    """
    s = slots
    n = len(slot)
    # 1. expand rows into (row, colour) entries, grouped by (slot, colour) in time order
    level_count = s.level_count[slot]
    if all_first:
        total = int(level_count.sum())
        row = np.repeat(np.arange(n), level_count)
        entry = np.repeat(
            s.level_start[slot] - (np.cumsum(level_count) - level_count), level_count
        ) + np.arange(total)
        entry_first = None
    else:
        seg = np.flatnonzero(first)
        seg_rows = np.diff(np.append(seg, n))
        seg_entries = seg_rows * level_count[seg]
        total = int(seg_entries.sum())
        seg_of = np.repeat(np.arange(len(seg)), seg_entries)
        local = np.arange(total) - np.repeat(np.cumsum(seg_entries) - seg_entries, seg_entries)
        rows_of = seg_rows[seg_of]
        colour_i = local // rows_of  # the slot's i-th enabled colour
        row_i = local - colour_i * rows_of  # the segment's i-th row
        row = seg[seg_of] + row_i
        entry = s.level_start[slot[seg]][seg_of] + colour_i
        entry_first = row_i == 0
    column = s.level_column[entry]
    flat = s.level_flat[entry]
    xl = x[row]
    tl = time[row]
    # 2. trigger and clear conditions (signed, so every trigger reads x >= trigger)
    if s.any_sign:
        xl = xl * s.sign.reshape(-1)[flat]
    trigger = s.trigger.reshape(-1)[flat]
    clear_at = s.clear.reshape(-1)[flat]
    with np.errstate(invalid="ignore"):
        if s.any_strict:
            trig = (xl > trigger) | (~s.strict.reshape(-1)[flat] & (xl == trigger))
        else:
            trig = xl >= trigger
        if s.any_clear_inclusive:
            clr = (xl < clear_at) | (s.clear_inclusive.reshape(-1)[flat] & (xl == clear_at))
        else:
            clr = xl < clear_at
    off_entry = None
    if off is not None:  # outside its calendar a reading counts as not triggered
        off_entry = off[row]
        trig &= ~off_entry
    if all_first:
        last_flat = flat
        entry_last = None
    else:
        assert entry_first is not None
        entry_last = run_ends(entry_first)
        last_flat = flat[entry_last]
    # 3. N-of-M: the trigger becomes "N of the last M readings triggered"
    if s.any_count:
        counted = s.count_m[slot[row]] > 0
        if counted.any():
            ef = entry_first if entry_first is not None else np.ones(total, bool)
            trig, clr = count_window(s, trig, clr, counted, flat, ef, slot[row])
    if off_entry is not None:
        clr |= off_entry
    # 4. trigger runs: start of the current run (ActiveAt); the colour is due to latch
    # once the trigger held for `for`
    trigger_run = s.trigger_run.reshape(-1)[flat]
    if s.any_for:
        al = anchor[row]
        since = s.trigger_since.reshape(-1)[flat]
        if entry_first is None:
            start = np.where(trigger_run, since, al)
        else:
            prev_trig = shift_in_segments(trig, entry_first, trigger_run)
            start_val = np.where(entry_first & prev_trig, since, al)
            start = start_val[forward_fill_index((trig & ~prev_trig) | entry_first, False)]
        set_event = trig & (tl - start >= s.for_ns.reshape(-1)[flat])
    else:
        start = tl
        set_event = trig
    # 5. clear runs: the colour is due to unlatch once clear held for keep_firing_for
    if s.any_keep:
        clear_run = s.clear_run.reshape(-1)[flat]
        clear_since = s.clear_since.reshape(-1)[flat]
        if entry_first is None:
            clear_start = np.where(clear_run, clear_since, tl)
        else:
            prev_clr = shift_in_segments(clr, entry_first, clear_run)
            clear_val = np.where(entry_first & prev_clr, clear_since, tl)
            clear_start = clear_val[forward_fill_index((clr & ~prev_clr) | entry_first, False)]
        reset_event = clr & ~trig & (tl - clear_start >= s.keep_ns.reshape(-1)[flat])
    else:
        clear_start = tl
        reset_event = clr & ~trig
    # 6. latch: the last set/reset event, else the carried latch
    latch0 = s.latch.reshape(-1)[flat]
    if entry_first is None:
        latch = (latch0 | set_event) & ~reset_event
    else:
        val = np.where(set_event, True, np.where(reset_event, False, latch0))
        latch = val[forward_fill_index(set_event | reset_event | entry_first, False)]
    # 7. per row: the most severe latched colour, else the most severe pending one
    firing_bits = latch.astype(np.uint8) << column
    pending_bits = (trig & ~latch & pends[row]).astype(np.uint8) << column
    fire = np.zeros(n, np.uint8)
    pend = np.zeros(n, np.uint8)
    if entry_first is None:
        has = np.flatnonzero(level_count)
        if len(has):
            starts = (np.cumsum(level_count) - level_count)[has]
            fire[has] = np.bitwise_or.reduceat(firing_bits, starts)
            pend[has] = np.bitwise_or.reduceat(pending_bits, starts)
    else:
        np.bitwise_or.at(fire, row, firing_bits)
        np.bitwise_or.at(pend, row, pending_bits)
    status = np.where(
        fire > 0, _LOWEST_BIT[fire], np.where(pend > 0, _LOWEST_BIT[pend] + PENDING, 0)
    )
    # 8. write back each (slot, colour)'s state after its last entry
    last = slice(None) if entry_last is None else entry_last
    s.latch.reshape(-1)[last_flat] = latch[last]
    s.trigger_run.reshape(-1)[last_flat] = trig[last]
    if s.any_for:
        s.trigger_since.reshape(-1)[last_flat] = start[last]
    if s.any_keep:
        s.clear_run.reshape(-1)[last_flat] = clr[last]
        s.clear_since.reshape(-1)[last_flat] = clear_start[last]
    return status.astype(np.uint8)


def count_window(
    slots: SlotTable,
    trig: np.ndarray,
    clr: np.ndarray,
    counted: np.ndarray,
    flat: np.ndarray,
    first: np.ndarray,
    slot: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """N-of-M: replace trigger/clear of the ``counted`` entries by the windowed count.

    The count of a (slot, colour) entry is the triggering readings among its last M: the
    entries of the batch so far plus the stored ``count_history`` bits (newest in bit 0).
    The history after the batch (the last M-1 trigger bits) is written back per (slot,
    colour). Returns the new trigger and clear arrays.
    """
    history = slots.count_history.reshape(-1)
    ci = np.flatnonzero(counted)
    hit = trig[ci].astype(np.int64)
    c_flat = flat[ci]
    opens = run_starts(c_flat)
    seg = np.cumsum(opens) - 1
    seg_start = np.flatnonzero(opens)
    pos = np.arange(len(ci)) - seg_start[seg]  # entry's position in its (slot, colour) run
    seg_len = np.diff(np.append(seg_start, len(ci)))
    run_len = seg_len[seg]
    m = slots.count_m[slot[ci]].astype(np.int64)
    need = slots.count_n[slot[ci]].astype(np.int64)
    h = history[c_flat]
    csum = np.cumsum(hit)
    base = np.where(seg_start[seg] > 0, csum[seg_start[seg] - 1], 0)
    in_run = csum - base  # inclusive count from the run's start
    back = pos - m
    before = np.where(back >= 0, csum[np.maximum(back + seg_start[seg], 0)] - base, 0)
    count = in_run - before
    # the readings before the batch that are still inside the window come from history
    from_history = np.minimum(np.maximum(m - 1 - pos, 0), 63).astype(np.uint64)
    mask = (np.uint64(1) << from_history) - np.uint64(1)
    count = count + np.bitwise_count(h & mask).astype(np.int64)
    new_trig = trig.copy()
    new_clr = clr.copy()
    new_trig[ci] = count >= need
    new_clr[ci] = (count < need) & clr[ci]
    # history after the run: the last m-1 trigger bits, newest in bit 0
    shift = (run_len - 1 - pos).astype(np.uint64)
    contrib = np.where(shift < 63, hit.astype(np.uint64) << np.minimum(shift, np.uint64(62)), 0)
    contrib = contrib.astype(np.uint64)
    bits = np.bitwise_or.reduceat(contrib, seg_start) if len(seg_start) else contrib
    lens = seg_len.astype(np.uint64)
    h0 = history[c_flat[seg_start]]
    shifted = np.where(lens < 63, h0 << np.minimum(lens, np.uint64(62)), np.uint64(0))
    ms = slots.count_m[slot[ci[seg_start]]].astype(np.uint64)
    keep = (np.uint64(1) << np.maximum(ms, np.uint64(1)) - np.uint64(1)) - np.uint64(1)
    history[c_flat[seg_start]] = (shifted | bits) & keep
    return new_trig, new_clr
