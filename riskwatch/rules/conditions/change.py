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
binary search over all deques at once (a deque's first reading inside the window is its
minimum; ``log2(longest deque) + 1`` numpy steps, at most 18), and the batch's own rows
with a sparse table of range minima (``log2(longest run of one slot in the batch) + 1``
steps, at most 15 for a 20,000-reading batch); no Python loop over readings or slots.

**Memory.** A deque holds at most the readings within one window: ``window / reporting
interval + 1`` entries of 16 bytes, reached only by a series that rises reading after
reading for a whole window; a noisy or flat series keeps a few. The deques share a pool
of regions (see :class:`ChangeColumns`), at most four times the kept entries plus 8 per
(rule, sensor). The hard bound is :data:`CHANGE_MAX_KEPT` entries per (rule, sensor)
(2 MB). ``rules check`` refuses a
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
MIN_CAP = 4  # the smallest pool region of a deque


def change_entries_needed(window_ns: int, period_ns: int) -> int:
    """Deque entries a window can need at a reporting interval (a reading per interval,
    rising all the way), counting the reading at each end.

    >>> change_entries_needed(3600 * 10**9, 10**9)
    3601
    """
    return int(window_ns // max(int(period_ns), 1)) + 1


def _caps(counts: np.ndarray) -> np.ndarray:
    """Region sizes for deques of ``counts`` entries: a power of two, at least twice the
    count (appends then fit for a while) and at least :data:`MIN_CAP`."""
    need = np.maximum(2 * counts.astype(np.int64), MIN_CAP)
    return (1 << np.ceil(np.log2(need)).astype(np.int64)).astype(np.int64)


def _ranges(lo: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices ``lo[i] .. lo[i] + n[i] - 1`` for every i, and each one's i."""
    owner = np.repeat(np.arange(len(n)), n)
    ends = np.cumsum(n)
    return np.arange(int(ends[-1]) if len(n) else 0) - np.repeat(ends - n - lo, n), owner


@dataclass
class ChangeColumns:
    """Per slot the window and direction; per change slot (its *ring row*) a monotone
    deque of kept readings in a region of a shared pool.

    Ring row ``r`` holds its entries at ``pool_time/pool_value[head[r] : head[r] +
    count[r]]``, in time order with strictly increasing values (``sign * value``), inside
    its region ``[base[r], base[r] + cap[r])``. A batch drops entries at the front (out of
    the window) and the back (undercut), and appends in place; a deque that outgrows its
    region moves to a new one at the pool's end, and the pool is compacted once it is
    more than four times the kept entries plus ``2 * MIN_CAP`` per ring row.

    State (what a snapshot must keep): the six ring-row arrays ``base``, ``cap``,
    ``head``, ``count``, ``coarsened`` and the pool (``pool_time``, ``pool_value``,
    ``pool_used``); ``window_ns``, ``sign`` and ``ring_row`` are parameters.
    """

    window_ns: np.ndarray  # per slot
    sign: np.ndarray  # per slot: +1.0 (rise, above levels) or -1.0 (fall, below levels)
    ring_row: np.ndarray  # per slot: its deque's ring row, -1 for slots of other kinds
    base: np.ndarray  # per ring row (int64): start of its pool region
    cap: np.ndarray  # per ring row (int64): size of its region
    head: np.ndarray  # per ring row (int64): pool index of its first (oldest) entry
    count: np.ndarray  # per ring row (int64): entries kept
    coarsened: np.ndarray  # per ring row (int64): entries merged away at CHANGE_MAX_KEPT
    pool_time: np.ndarray  # int64 ns
    pool_value: np.ndarray  # sign * value
    pool_used: int = 0  # pool entries handed out to regions (the rest is free)

    @classmethod
    def empty(cls, n_slots: int, kind_slots: np.ndarray) -> ChangeColumns:
        n = len(kind_slots)
        ring_row = np.full(n_slots, -1, np.int32)
        ring_row[kind_slots] = np.arange(n, dtype=np.int32)
        cap = np.full(n, MIN_CAP, np.int64)
        base = np.arange(n, dtype=np.int64) * MIN_CAP
        return cls(
            window_ns=np.zeros(n_slots, np.int64),
            sign=np.ones(n_slots),
            ring_row=ring_row,
            base=base,
            cap=cap,
            head=base.copy(),
            count=np.zeros(n, np.int64),
            coarsened=np.zeros(n, np.int64),
            pool_time=np.zeros(n * MIN_CAP, np.int64),
            pool_value=np.zeros(n * MIN_CAP),
            pool_used=n * MIN_CAP,
        )

    def entries(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and values (``sign * value``) kept by one ring row, oldest first."""
        h, n = int(self.head[row]), int(self.count[row])
        return self.pool_time[h : h + n].copy(), self.pool_value[h : h + n].copy()

    def kept_counts(self) -> np.ndarray:
        """Entries kept per ring row."""
        return self.count.copy()

    def relayout(
        self, rows: np.ndarray, times: np.ndarray, values: np.ndarray, owner: np.ndarray
    ) -> None:
        """Give ``rows`` fresh regions at the pool's end holding ``times``/``values``
        (grouped by ``owner``, an index into ``rows``, in time order)."""
        counts = np.bincount(owner, minlength=len(rows)).astype(np.int64)
        caps = _caps(counts)
        bases = self.pool_used + np.cumsum(caps) - caps
        self._reserve(int(caps.sum()))
        self.base[rows], self.cap[rows], self.head[rows] = bases, caps, bases
        self.count[rows] = counts
        dst, _ = _ranges(bases, counts)
        self.pool_time[dst], self.pool_value[dst] = times, values
        self.pool_used += int(caps.sum())

    def _reserve(self, extra: int) -> None:
        need = self.pool_used + extra
        if need > len(self.pool_time):
            size = max(need, len(self.pool_time) * 3 // 2)
            grow = size - len(self.pool_time)
            self.pool_time = np.concatenate((self.pool_time, np.zeros(grow, np.int64)))
            self.pool_value = np.concatenate((self.pool_value, np.zeros(grow)))

    def compact_if_sparse(self) -> None:
        """Rebuild the pool with fresh regions once it is mostly garbage or slack
        (amortised: it runs after the pool grew by at least its live size)."""
        n = len(self.count)
        live = int(self.count.sum())
        if self.pool_used <= 4 * live + 2 * MIN_CAP * n:
            return
        src, owner = _ranges(self.head, self.count)
        times, values = self.pool_time[src], self.pool_value[src]
        self.pool_time = np.zeros(0, np.int64)
        self.pool_value = np.zeros(0)
        self.pool_used = 0
        self.relayout(np.arange(n), times, values, owner)

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        if old is None:
            return
        assert isinstance(old, ChangeColumns)
        orr = old.ring_row[src]
        nrr = self.ring_row[dst]
        ok = (orr >= 0) & (nrr >= 0)
        # a reversed direction (a rule edit) keeps nothing: the deque holds the other extreme
        ok &= old.sign[src] == self.sign[dst]
        orr, nrr = orr[ok].astype(np.int64), nrr[ok].astype(np.int64)
        if not len(orr):
            return
        idx, owner = _ranges(old.head[orr], old.count[orr])
        self.relayout(nrr, old.pool_time[idx], old.pool_value[idx], owner)
        self.coarsened[nrr] = old.coarsened[orr]
        self.compact_if_sparse()

    def nbytes_state(self) -> int:
        per_ring = self.base.nbytes + self.cap.nbytes + self.head.nbytes + self.count.nbytes
        return per_ring + self.coarsened.nbytes + self.pool_time.nbytes + self.pool_value.nbytes

    def nbytes_params(self) -> int:
        return self.window_ns.nbytes + self.sign.nbytes + self.ring_row.nbytes


def _search(key: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per query, the first index in ``[lo, hi)`` with ``key[index] >= q`` (``hi`` if
    none), ``key`` sorted within each range: a binary search for all queries at once,
    ``log2(longest range) + 1`` numpy steps."""
    lo, hi = lo.copy(), hi.copy()
    last = max(len(key) - 1, 0)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        below = key[np.minimum(mid, last)] < q
        lo = np.where(open_ & below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)


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
        return ChangeColumns.empty(n_slots, kind_slots)

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
        # ingest dead-letters non-finite values; through the API (replay) a NaN is never
        # an extreme and never kept (its own x stays NaN: no trigger)
        u = np.where(np.isnan(u), np.inf, u)
        w = c.window_ns[rows.slot]
        # segments: a slot's rows (contiguous, in time order), one ring row each
        opens = np.ones(n, bool) if rows.first is None else rows.first
        starts = np.flatnonzero(opens)
        seg = np.cumsum(opens) - 1
        ends = np.append(starts[1:], n) - 1
        ring = c.ring_row[rows.slot[starts]].astype(np.int64)
        head, count = c.head[ring], c.count[ring]
        # 1. per row: the kept deque's minimum within the window is its first entry there
        lo_t = t - w
        first_in = _search(c.pool_time, head[seg], (head + count)[seg], lo_t)
        has = first_in < (head + count)[seg]
        kept_min = np.where(has, c.pool_value[np.minimum(first_in, len(c.pool_value) - 1)],
                            np.inf)  # fmt: skip
        # 2. per row: the minimum over the batch's rows of its slot inside the window
        longest = int((ends - starts).max()) + 1
        idx = np.arange(n)
        if longest == 1:
            rmq = None
            row_min = u
            seg_min = u
            later_min = np.full(n, np.inf)
        else:
            lo_r = _search(t, starts[seg], idx + 1, lo_t)
            rmq = _RangeMin(u, longest)
            row_min = rmq.query(lo_r, idx)
            seg_min = rmq.query(starts, ends)
            later_min = np.full(n, np.inf)
            inner = idx < ends[seg]
            later_min[inner] = rmq.query(idx[inner] + 1, ends[seg][inner])
        x = v - sign * np.minimum(kept_min, row_min)
        t_row = t
        # 3. the new deques: entries inside the window of the slot's newest reading that
        # no later entry of the slot undercuts (equal values: the later one stays). Old
        # entries left are one run [new_lo, new_hi) (values increase along the deque).
        # A row older than the deque's newest entry (only if the quality stage lets an
        # out-of-order reading through) is kept as of that newest time: it then stays
        # longer, which can only make a later rise larger (alarm early, never late).
        newest = np.where(count > 0, c.pool_time[np.maximum(head + count - 1, 0)], t[starts])
        t = np.maximum(t, newest[seg])
        edge = t[ends] - w[starts]
        new_lo = _search(c.pool_time, head, head + count, edge)
        new_hi = _search(c.pool_value, new_lo, head + count, seg_min)
        keep_row = (u < later_min) & (t >= edge[seg])
        add = np.bincount(seg[keep_row], minlength=len(starts)).astype(np.int64)
        live = new_hi - new_lo
        base, cap = c.base[ring], c.cap[ring]
        fits = (new_hi + add <= base + cap) & (live + add <= CHANGE_MAX_KEPT)
        # 3a. in place: append after the run that is left
        at = np.flatnonzero(fits)
        k_rows = np.flatnonzero(keep_row & fits[seg])
        if len(k_rows):
            rank = np.arange(len(k_rows)) - np.searchsorted(k_rows, starts[seg[k_rows]])
            dst = new_hi[seg[k_rows]] + rank
            c.pool_time[dst], c.pool_value[dst] = t[k_rows], u[k_rows]
        c.head[ring[at]] = new_lo[at]
        c.count[ring[at]] = live[at] + add[at]
        # 3b. moved: the run that is left and the new entries, to the start of the own
        # region when they fit there, else to a new region at the pool's end
        mv = np.flatnonzero(~fits)
        if len(mv):
            o_idx, o_own = _ranges(new_lo[mv], live[mv])
            m_rows = np.flatnonzero(keep_row & ~fits[seg])
            pos_in_mv = np.searchsorted(mv, seg[m_rows])
            own = np.concatenate((o_own, pos_in_mv))
            tt = np.concatenate((c.pool_time[o_idx], t[m_rows]))
            uu = np.concatenate((c.pool_value[o_idx], u[m_rows]))
            o = np.argsort(own, kind="stable")  # old run first, then the batch's rows
            own, tt, uu = own[o], tt[o], uu[o]
            own, tt, uu = cls._bound(c, ring[mv], own, tt, uu)
            n_mv = np.bincount(own, minlength=len(mv)).astype(np.int64)
            stay = n_mv <= cap[mv]
            st = np.flatnonzero(stay)
            sel = stay[own]
            dst, _ = _ranges(base[mv][st], n_mv[st])
            c.pool_time[dst], c.pool_value[dst] = tt[sel], uu[sel]
            c.head[ring[mv][st]] = base[mv][st]
            c.count[ring[mv][st]] = n_mv[st]
            go = np.flatnonzero(~stay)
            if len(go):
                remap = np.full(len(mv), -1, np.int64)
                remap[go] = np.arange(len(go))
                c.relayout(ring[mv][go], tt[~sel], uu[~sel], remap[own[~sel]])
            c.compact_if_sparse()
        return x, t_row

    @staticmethod
    def _bound(
        c: ChangeColumns,
        rings: np.ndarray,
        own: np.ndarray,
        t: np.ndarray,
        u: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hold each deque to :data:`CHANGE_MAX_KEPT` entries: a longer one keeps its
        first (lowest) entry, stamped with the time of the newest entry merged into it,
        and its newest ``CHANGE_MAX_KEPT - 1`` entries (over-estimates a rise, never
        under-estimates one). ``own`` (sorted) says which of ``rings`` an entry is of."""
        cap = CHANGE_MAX_KEPT
        counts = np.bincount(own, minlength=len(rings))
        if not len(counts) or counts.max() <= cap:
            return own, t, u
        first = np.searchsorted(own, np.arange(len(rings)))
        pos = np.arange(len(own)) - first[own]
        drop = (counts[own] > cap) & (pos >= 1) & (pos <= counts[own] - cap)
        big = counts > cap
        heads = first[big]
        t = t.copy()
        t[heads] = t[heads + counts[big] - cap]
        np.add.at(c.coarsened, rings[big], counts[big] - cap)
        keep = ~drop
        return own[keep], t[keep], u[keep]
