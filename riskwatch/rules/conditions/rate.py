"""Rate of change (``of: rate``): the change since the slot's previous reading, per ``per``.

The first reading of a slot, and a reading at the same time as the previous one, have
no rate (NaN: it neither triggers nor clears).

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "T-1", "temp", unit="°C")])
>>> rs = RuleSet([load_rules_text(RateCondition.sample)], reg)
>>> S = 10**9
>>> sig = rs.process(Batch.from_arrays([0, 60 * S, 120 * S], [0, 0, 0], [20.0, 21.0, 23.5]), 0)
>>> [(s.time // S, s.state.value, s.message) for s in sig]
[(120, 'firing', 'm1/s1/T-1: rate 2.5 °C >= rising fast 2 °C [temp_rise, firing]')]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.rules.conditions.base import Rows, previous_reading
from riskwatch.rules.conditions.threshold import ThresholdCondition
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.slots import NEVER, SlotColumns, SlotTable

__all__ = ["RateColumns", "RateCondition"]


@dataclass
class RateColumns:
    """The rate's unit per slot (``per``, ns, as a float for the division)."""

    per_ns: np.ndarray

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        pass  # parameters only

    def nbytes_state(self) -> int:
        return 0

    def nbytes_params(self) -> int:
        return self.per_ns.nbytes


class RateCondition(ThresholdCondition[RateColumns]):
    kind = ConditionKind.RATE
    quantity_name = "rate"
    shows_quantity = True
    sample = """\
rules:
  - name: temp_rise
    description: temperature rising faster than 2 °C per minute
    match: {kind: temp}
    of: rate
    per: 1m                   # the rate's unit of time (default 1s)
    level: yellow
    label: rising fast
    above: 2
"""

    @classmethod
    def new_columns(cls, n_slots: int, kind_slots: np.ndarray) -> RateColumns:
        return RateColumns(np.ones(n_slots))

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: RateColumns,
    ) -> None:
        columns.per_ns[sel] = float(int(self.spec.per) or 10**9)
        super().fill(slots, sel, ids, registry, columns)

    @classmethod
    def quantity(
        cls, rows: Rows, slots: SlotTable, columns: RateColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        prev_t, prev_v = previous_reading(rows, slots)
        with np.errstate(divide="ignore", invalid="ignore"):
            dt = (rows.time - prev_t).astype(np.float64)
            x = (rows.value - prev_v) / dt * columns.per_ns.take(rows.slot)
        x[(prev_t == NEVER) | (dt <= 0)] = np.nan
        return x, rows.time
