"""Change over a window (``of: change``): the value minus the oldest value within ``window``.

Each slot keeps its last :data:`CHANGE_SAMPLES` readings in a ring; a batch merges the
kept readings with its own rows per slot (in time order) and finds, for every row, the
first reading no older than ``time - window`` with one sorted search.

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
from riskwatch.rules.segments import run_ends, run_starts
from riskwatch.rules.slots import SlotColumns, SlotTable

__all__ = ["CHANGE_SAMPLES", "ChangeColumns", "ChangeCondition"]

CHANGE_SAMPLES = 64  # readings kept per slot


@dataclass
class ChangeColumns:
    """The window per slot, and each change slot's ring of recent readings."""

    window_ns: np.ndarray  # per slot
    ring_row: np.ndarray  # per slot: its row in the rings, -1 for slots of other kinds
    ring_time: np.ndarray  # [ring row, sample], oldest first
    ring_value: np.ndarray
    ring_count: np.ndarray  # samples kept per ring row

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        if old is None:
            return
        assert isinstance(old, ChangeColumns)
        orr = old.ring_row[src]
        nrr = self.ring_row[dst]
        ok = (orr >= 0) & (nrr >= 0)
        if ok.any():
            self.ring_time[nrr[ok]] = old.ring_time[orr[ok]]
            self.ring_value[nrr[ok]] = old.ring_value[orr[ok]]
            self.ring_count[nrr[ok]] = old.ring_count[orr[ok]]

    def nbytes_state(self) -> int:
        return self.ring_time.nbytes + self.ring_value.nbytes + self.ring_count.nbytes

    def nbytes_params(self) -> int:
        return self.window_ns.nbytes + self.ring_row.nbytes


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
    window: 30s               # compared with the oldest reading this recent
    level: yellow
    above: 50
"""

    @classmethod
    def new_columns(cls, n_slots: int, kind_slots: np.ndarray) -> ChangeColumns:
        ring_row = np.full(n_slots, -1, np.int32)
        ring_row[kind_slots] = np.arange(len(kind_slots), dtype=np.int32)
        n = len(kind_slots)
        return ChangeColumns(
            window_ns=np.zeros(n_slots, np.int64),
            ring_row=ring_row,
            ring_time=np.zeros((n, CHANGE_SAMPLES), np.int64),
            ring_value=np.zeros((n, CHANGE_SAMPLES)),
            ring_count=np.zeros(n, np.int32),
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
        super().fill(slots, sel, ids, registry, columns)

    @classmethod
    def quantity(
        cls, rows: Rows, slots: SlotTable, columns: ChangeColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        c = columns
        t, v = rows.time, rows.value
        ring = c.ring_row[rows.slot]
        window = c.window_ns[rows.slot]
        # 1. the kept readings of the rings involved, then the rows, merged per ring row
        # in time order (kept readings first on equal times)
        used = np.unique(ring)
        kept = c.ring_count[used]
        k_ring = np.repeat(used, kept)
        k_pos = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
        all_ring = np.concatenate((k_ring, ring))
        all_t = np.concatenate((c.ring_time[k_ring, k_pos], t))
        all_v = np.concatenate((c.ring_value[k_ring, k_pos], v))
        all_ord = np.arange(len(all_ring))
        o = np.lexsort((all_ord, all_t, all_ring))
        all_ring, all_t, all_v = all_ring[o], all_t[o], all_v[o]
        # 2. per row: the first merged reading of its ring with time >= time - window
        # (queries sort before readings of equal time)
        keys_ring = np.concatenate((all_ring, ring))
        keys_t = np.concatenate((all_t, t - window))
        is_reading = np.concatenate((np.ones(len(all_ring), np.int8), np.zeros(len(ring), np.int8)))
        oo = np.lexsort((is_reading, keys_t, keys_ring))
        isq = is_reading[oo] == 0
        readings_before = np.cumsum(~isq) - (~isq)
        qpos = np.empty(len(ring), np.int64)
        qpos[oo[isq] - len(all_ring)] = readings_before[isq]
        x = v - all_v[np.minimum(qpos, len(all_v) - 1)]
        # 3. the new rings: the last CHANGE_SAMPLES merged readings per ring row
        cap = CHANGE_SAMPLES
        opens = run_starts(all_ring)
        ends = np.flatnonzero(run_ends(opens))
        seg_id = np.cumsum(opens) - 1
        from_end = ends[seg_id] - np.arange(len(all_ring))
        keep = from_end < cap
        seg_len = np.diff(np.concatenate(([-1], ends)))
        n_keep = np.minimum(seg_len, cap)
        pos = n_keep[seg_id] - 1 - from_end
        kept_ring = all_ring[keep]
        c.ring_time[kept_ring, pos[keep]] = all_t[keep]
        c.ring_value[kept_ring, pos[keep]] = all_v[keep]
        c.ring_count[all_ring[ends]] = n_keep
        return x, t
