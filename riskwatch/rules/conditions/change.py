"""Change over a window (``of: change``): the rise (or fall) within ``window``.

A rule with ``above`` levels compares the **rise**: the value minus the lowest value of
the sensor's readings within the window ``[t - window, t]`` (the reading itself
included, so the rise is never negative). A rule with ``below`` levels compares the
**fall** the same way, as the value minus the highest value within the window (never
positive; ``below: -50`` fires on a fall of 50 or more). A rule cannot have both (the
parser says to write two rules). "Load rose by 50 kW within 30 s" then means exactly
that: some reading of the last 30 s was 50 kW or more lower than this one.

**Exact for any window and any batching.** Each slot keeps a *monotone deque*: the
readings still inside the window of its newest reading that no newer reading undercuts
(strictly increasing values in time order, for a rise; the sign is flipped for a fall).
Only those can ever be the minimum of a future window, so the result equals a plain
scan over every reading in the window (``riskwatch.rules.reference`` is that scan, and
a hypothesis test compares both for windows from seconds to 24 h under random batch
splits). A batch is evaluated for all slots at once: the kept readings answer with one
segmented sorted search (a deque's first reading inside the window is its minimum), and
the batch's own rows with a sparse table of range minima, ``log2(longest run of one
slot in the batch) + 1`` numpy steps (at most 15 for a 20,000-reading batch); no Python
loop over readings or slots.

**Memory.** A deque holds at most the readings within one window: ``window / reporting
interval + 1`` entries of 20 bytes, reached only by a series that rises reading after
reading for a whole window; a noisy or flat series keeps a few. The hard bound is
:data:`CHANGE_MAX_KEPT` entries per (rule, sensor) (2.6 MB). ``rules check`` refuses a
window that could need more, at the catalogue's ``period_s`` (1 s where a sensor has
none). Should a sensor still report faster than that, its oldest kept entries are merged
into the lowest one, which then stays until the newest merged reading leaves the window:
the rise is then over-estimated (an alarm may come early), never under-estimated, and
``coarsened`` counts the merges.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "P-1", "load_kw", unit="kW")])
>>> rs = RuleSet([load_rules_text(ChangeCondition.sample)], reg)
>>> S = 10**9
>>> b = Batch.from_arrays([0, 10 * S, 20 * S, 50 * S], [0] * 4, [100.0, 120.0, 170.0, 175.0])
>>> [(s.time // S, s.state.value, s.value) for s in rs.process(b, 50 * S)]
[(20, 'firing', 70.0), (50, 'resolved', 5.0)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.rules.conditions.base import Rows
from riskwatch.rules.conditions.threshold import ThresholdCondition
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.slots import SlotColumns, SlotTable

__all__ = ["CHANGE_MAX_KEPT", "ChangeColumns", "ChangeCondition", "change_entries_needed"]

CHANGE_MAX_KEPT = 1 << 17  # deque entries per (rule, sensor): a 36 h window at 1 s
ASSUMED_PERIOD_NS = 10**9  # reporting interval assumed where the catalogue gives none
_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_F64 = np.zeros(0, np.float64)


def change_entries_needed(window_ns: int, period_ns: int) -> int:
    """Deque entries a window can need at a reporting interval (a reading per interval,
    rising all the way), counting the reading at each end.

    >>> change_entries_needed(3600 * 10**9, 10**9)
    3601
    """
    return int(window_ns // max(int(period_ns), 1)) + 1


@dataclass
class ChangeColumns:
    """Per slot the window and direction; per change slot (its *ring row*) a monotone
    deque of kept readings, stored flat for all ring rows.

    State (what a snapshot must keep): ``kept_row``, ``kept_time``, ``kept_value`` and
    ``coarsened``. The flat entries are sorted by ring row, then time; within a ring row
    the values (``sign * value``) strictly increase.
    """

    window_ns: np.ndarray  # per slot
    sign: np.ndarray  # per slot: +1.0 (rise, above levels) or -1.0 (fall, below levels)
    ring_row: np.ndarray  # per slot: its deque's ring row, -1 for slots of other kinds
    kept_row: np.ndarray  # per kept entry (int32): its ring row
    kept_time: np.ndarray  # per kept entry (int64 ns)
    kept_value: np.ndarray  # per kept entry: sign * value
    coarsened: np.ndarray  # per ring row (int64): entries merged away at CHANGE_MAX_KEPT

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        if old is None:
            return
        assert isinstance(old, ChangeColumns)
        orr = old.ring_row[src]
        nrr = self.ring_row[dst]
        ok = (orr >= 0) & (nrr >= 0)
        # a reversed direction (a rule edit) keeps nothing: the deque holds the other extreme
        ok &= old.sign[src] == self.sign[dst]
        remap = np.full(len(old.coarsened), -1, np.int32)
        remap[orr[ok]] = nrr[ok]
        if not len(old.kept_row):
            return
        new_row = remap[old.kept_row]
        keep = new_row >= 0
        order = np.argsort(new_row[keep], kind="stable")  # keeps time order per row
        self.kept_row = new_row[keep][order]
        self.kept_time = old.kept_time[keep][order]
        self.kept_value = old.kept_value[keep][order]
        self.coarsened[nrr[ok]] = old.coarsened[orr[ok]]

    def nbytes_state(self) -> int:
        return (
            self.kept_row.nbytes
            + self.kept_time.nbytes
            + self.kept_value.nbytes
            + self.coarsened.nbytes
        )

    def nbytes_params(self) -> int:
        return self.window_ns.nbytes + self.sign.nbytes + self.ring_row.nbytes

    def kept_counts(self) -> np.ndarray:
        """Entries kept per ring row."""
        return np.bincount(self.kept_row, minlength=len(self.coarsened))


def _first_at_or_after(
    seg: np.ndarray, key: np.ndarray, q_seg: np.ndarray, q_key: np.ndarray
) -> np.ndarray:
    """Per query, the index of the first element of its segment with ``key >= q_key``
    (``seg`` non-decreasing, ``key`` sorted within each segment); the segment's end if
    none. One lexsort over elements and queries together (queries sort first on ties)."""
    n = len(seg)
    s = np.concatenate((seg, q_seg))
    k = np.concatenate((key, q_key))
    is_el = np.concatenate((np.ones(n, np.int8), np.zeros(len(q_seg), np.int8)))
    o = np.lexsort((is_el, k, s))
    el = is_el[o].astype(np.intp)
    before = np.cumsum(el) - el  # elements sorted before each entry
    out = np.empty(len(q_seg), np.intp)
    isq = el == 0
    out[o[isq] - n] = before[isq]
    return out


class _RangeMin:
    """Range minima over ``a`` by a sparse table: ``query(lo, hi)`` is ``min(a[lo:hi+1])``
    for every pair at once (``lo <= hi``). Level ``j`` holds the minima of the runs of
    length ``2**j``; ``levels`` steps build it (bounded by log2 of the longest range)."""

    def __init__(self, a: np.ndarray, longest: int) -> None:
        self.tab = [a]
        span = 1
        while span * 2 <= longest:
            prev = self.tab[-1]
            self.tab.append(np.minimum(prev[:-span], prev[span:]))
            span *= 2

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        length = hi - lo + 1
        k = np.zeros(len(lo), np.intp)
        if len(lo):
            k = np.floor(np.log2(np.maximum(length, 1))).astype(np.intp)
            k = np.minimum(k, len(self.tab) - 1)
        out = np.empty(len(lo))
        for j in np.unique(k).tolist():
            m = k == j
            t = self.tab[j]
            out[m] = np.minimum(t[lo[m]], t[hi[m] - (1 << j) + 1])
        return out


class ChangeCondition(ThresholdCondition[ChangeColumns]):
    kind = ConditionKind.CHANGE
    quantity_name = "change"
    shows_quantity = True
    sample = """\
rules:
  - name: load_jump
    description: load up by 50 kW or more within 30 s
    match: {kind: load_kw}
    of: change
    window: 30s               # the rise over the lowest reading this recent
    level: yellow
    above: 50
"""

    @classmethod
    def new_columns(cls, n_slots: int, kind_slots: np.ndarray) -> ChangeColumns:
        ring_row = np.full(n_slots, -1, np.int32)
        ring_row[kind_slots] = np.arange(len(kind_slots), dtype=np.int32)
        return ChangeColumns(
            window_ns=np.zeros(n_slots, np.int64),
            sign=np.ones(n_slots),
            ring_row=ring_row,
            kept_row=_EMPTY_I32,
            kept_time=_EMPTY_I64,
            kept_value=_EMPTY_F64,
            coarsened=np.zeros(len(kind_slots), np.int64),
        )

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: ChangeColumns,
    ) -> None:
        columns.window_ns[sel] = int(self.spec.window or 0)
        falls = any(lv.direction < 0 for lv in self.spec.all_levels())
        columns.sign[sel] = -1.0 if falls else 1.0
        super().fill(slots, sel, ids, registry, columns)

    @classmethod
    def quantity(
        cls, rows: Rows, slots: SlotTable, columns: ChangeColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        c = columns
        t, v = rows.time, rows.value
        n = len(t)
        if n == 0:
            return np.zeros(0), t
        sign = c.sign[rows.slot]
        u = sign * v  # the minimum of u over the window is the extreme the rule needs
        w = c.window_ns[rows.slot]
        # segments: a slot's rows (contiguous, in time order)
        opens = np.ones(n, bool) if rows.first is None else rows.first
        starts = np.flatnonzero(opens)
        seg = np.cumsum(opens) - 1
        ends = np.append(starts[1:], n) - 1
        ring_seg = c.ring_row[rows.slot[starts]]
        # 1. kept entries of the segments' rings, gathered in segment order
        lo_k = np.searchsorted(c.kept_row, ring_seg, "left")
        cnt_k = np.searchsorted(c.kept_row, ring_seg, "right") - lo_k
        tot = int(cnt_k.sum())
        sub_end = np.cumsum(cnt_k)
        sub_seg = np.repeat(np.arange(len(starts)), cnt_k)
        gather = np.arange(tot) - np.repeat(sub_end - cnt_k - lo_k, cnt_k)
        sub_t, sub_u = c.kept_time[gather], c.kept_value[gather]
        # 2. per row: the kept deque's minimum within the window is its first entry inside
        lo_t = t - w
        if tot:
            first_in = _first_at_or_after(sub_seg, sub_t, seg, lo_t)
            has = first_in < sub_end[seg]
            kept_min = np.where(has, sub_u[np.minimum(first_in, tot - 1)], np.inf)
        else:
            kept_min = np.full(n, np.inf)
        # 3. per row: the minimum over the batch's rows of its slot inside the window
        longest = int((ends - starts).max()) + 1
        if longest == 1:
            row_min = u
            rmq = None
        else:
            lo_r = _first_at_or_after(seg, t, seg, lo_t)
            rmq = _RangeMin(u, longest)
            row_min = rmq.query(lo_r, np.arange(n))
        x = v - sign * np.minimum(kept_min, row_min)
        # 4. the new deques: entries inside the window of the slot's newest reading that
        # no later entry of the slot undercuts (equal values: the later one stays)
        t_last, w_seg = t[ends], w[starts]
        if rmq is None:
            seg_min = u
            later_min = np.full(n, np.inf)
        else:
            seg_min = rmq.query(starts, ends)
            idx = np.arange(n)
            inner = idx < ends[seg]
            later_min = np.full(n, np.inf)
            later_min[inner] = rmq.query(idx[inner] + 1, ends[seg][inner])
        keep_row = (u < later_min) & (t >= t_last[seg] - w_seg[seg])
        keep_sub = (sub_u < seg_min[sub_seg]) & (sub_t >= (t_last - w_seg)[sub_seg])
        new_seg = np.concatenate((sub_seg[keep_sub], seg[keep_row]))
        new_t = np.concatenate((sub_t[keep_sub], t[keep_row]))
        new_u = np.concatenate((sub_u[keep_sub], u[keep_row]))
        src = np.concatenate((np.zeros(int(keep_sub.sum()), np.int8),
                              np.ones(int(keep_row.sum()), np.int8)))  # fmt: skip
        o = np.lexsort((src, new_t, new_seg))
        new_seg, new_t, new_u = new_seg[o], new_t[o], new_u[o]
        new_seg, new_t, new_u = cls._bound(c, ring_seg, new_seg, new_t, new_u)
        # 5. replace the segments' rings in the flat store (kept sorted by ring row)
        retain = np.ones(len(c.kept_row), bool)
        retain[gather] = False
        r_row = c.kept_row[retain]
        new_row = ring_seg[new_seg].astype(np.int32)
        # segments are in row order, not ring order: sort the new entries by ring row
        o = np.argsort(new_row, kind="stable")
        new_row, new_t, new_u = new_row[o], new_t[o], new_u[o]
        pos = np.searchsorted(r_row, new_row)
        c.kept_row = np.insert(r_row, pos, new_row)
        c.kept_time = np.insert(c.kept_time[retain], pos, new_t)
        c.kept_value = np.insert(c.kept_value[retain], pos, new_u)
        return x, t

    @staticmethod
    def _bound(
        c: ChangeColumns,
        ring_seg: np.ndarray,
        seg: np.ndarray,
        t: np.ndarray,
        u: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hold each deque to :data:`CHANGE_MAX_KEPT` entries: a longer one keeps its
        first (lowest) entry, stamped with the time of the newest entry merged into it,
        and its newest ``CHANGE_MAX_KEPT - 1`` entries (over-estimates a rise, never
        under-estimates one)."""
        cap = CHANGE_MAX_KEPT
        n_seg = len(ring_seg)
        counts = np.bincount(seg, minlength=n_seg)
        if not len(counts) or counts.max() <= cap:
            return seg, t, u
        first = np.searchsorted(seg, np.arange(n_seg))
        pos = np.arange(len(seg)) - first[seg]
        over = counts[seg] > cap
        drop = over & (pos >= 1) & (pos <= counts[seg] - cap)
        heads = first[counts > cap]
        t = t.copy()
        t[heads] = t[heads + counts[counts > cap] - cap]
        np.add.at(c.coarsened, ring_seg[counts > cap], counts[counts > cap] - cap)
        keep = ~drop
        return seg[keep], t[keep], u[keep]
