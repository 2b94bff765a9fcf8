"""Out of measuring range: the reading outside ``[low, high]`` (a sensor fault).

The compared quantity is how far the value lies outside the range (``max(low - v,
v - high)``, positive outside); the bounds default to the catalogue's ``range_low`` /
``range_high``, and a sensor without either bound is not watched. Calibrating readings
are skipped; readings a gateway flagged faulty still count (a -266 on a faulty
anemometer is exactly what this rule is for).

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch, Flags
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "W-1", "wind", unit="m/s", range_low=0,
...                                 range_high=15)])
>>> rs = RuleSet([load_rules_text(RangeCondition.sample)], reg)
>>> b = Batch.from_arrays([1, 2, 3], [0] * 3, [3.0, -266.0, 4.0], [0, int(Flags.FAULT), 0])
>>> for s in rs.process(b, 3):
...     print(s.time, s.state, s.threshold, "|", s.message)
2 firing 0.0 | m1/s1/W-1: value -266 m/s outside measuring range [wind_range, firing]
3 resolved 0.0 | m1/s1/W-1: value 4 m/s back inside measuring range [wind_range, resolved]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import RAISE_ONLY, Flags, SignalState
from riskwatch.rules.compile import resolve_number
from riskwatch.rules.conditions.base import ReadingCondition, Rows
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.messages import VALUE
from riskwatch.rules.parse import as_setpoint
from riskwatch.rules.slots import SlotColumns, SlotTable

__all__ = ["RangeColumns", "RangeCondition"]


@dataclass
class RangeColumns:
    """The measuring range per slot (NaN: no bound on that side)."""

    low: np.ndarray
    high: np.ndarray

    def carry(self, old: SlotColumns | None, src: np.ndarray, dst: np.ndarray) -> None:
        pass  # parameters only

    def nbytes_state(self) -> int:
        return 0

    def nbytes_params(self) -> int:
        return self.low.nbytes + self.high.nbytes


class RangeCondition(ReadingCondition[RangeColumns]):
    kind = ConditionKind.OUT_OF_RANGE
    skip_flags = int(Flags.CALIBRATING | RAISE_ONLY)
    raise_only = True  # a faulty out-of-order -266 still raises
    raise_only_never = int(Flags.CALIBRATING)
    pends = False
    resolved_shows_clear = False
    sample = """\
rules:
  - name: wind_range
    description: anemometer outside its measuring range (sensor fault)
    match: {kind: wind}
    out_of_range: {}          # low / high default to catalog.range_low / range_high
    # out_of_range: {low: 0, high: 15, for: 10s}
"""

    @classmethod
    def new_columns(cls, n_slots: int, kind_slots: np.ndarray) -> RangeColumns:
        return RangeColumns(np.full(n_slots, np.nan), np.full(n_slots, np.nan))

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: RangeColumns,
    ) -> None:
        rng = self.spec.out_of_range
        assert rng is not None
        k = int(self.spec.out_level) - 1
        lo = resolve_number(registry, as_setpoint(rng.low), ids, -1)
        hi = resolve_number(registry, as_setpoint(rng.high), ids, 1)
        columns.low[sel], columns.high[sel] = lo, hi
        # outside: distance > 0; back inside: distance <= 0
        slots.trigger[sel, k] = 0.0
        slots.strict[sel, k] = True
        slots.clear[sel, k] = 0.0
        slots.clear_inclusive[sel, k] = True
        slots.for_ns[sel, k] = int(rng.for_ or 0)
        slots.enabled[sel, k] = ~(np.isnan(lo) & np.isnan(hi))

    @classmethod
    def quantity(
        cls, rows: Rows, slots: SlotTable, columns: RangeColumns
    ) -> tuple[np.ndarray, np.ndarray]:
        v = rows.value
        with np.errstate(invalid="ignore"):
            x = np.fmax(columns.low.take(rows.slot) - v, v - columns.high.take(rows.slot))
        return x, rows.time

    @classmethod
    def shown_threshold(
        cls, slots: SlotTable, columns: RangeColumns, slot: np.ndarray, value: np.ndarray
    ) -> np.ndarray:
        """The bound the value crossed (the low one when it is not above the high one)."""
        high = columns.high[slot]
        with np.errstate(invalid="ignore"):
            return np.where(value > high, high, columns.low[slot])

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        if state == SignalState.RESOLVED:
            return f"value {VALUE} {unit} back inside measuring range"
        return f"value {VALUE} {unit} outside measuring range"
