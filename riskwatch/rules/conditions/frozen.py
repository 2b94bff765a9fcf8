"""Frozen value: every change ``|Δ| <= tolerance`` for longer than ``for`` (a stuck sensor).

The compared quantity is the change since the slot's previous reading; a ``for`` run
counts from that previous reading, so a value stuck since 10:00 fires at 10:00 + ``for``.
Calibrating readings are skipped; readings a gateway flagged faulty still count.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CO-1", "co", unit="ppm")])
>>> rs = RuleSet([load_rules_text(FrozenCondition.sample)], reg)
>>> H = 3600 * 10**9
>>> b = Batch.from_arrays([0, 1 * H, 2 * H, 3 * H], [0] * 4, [4.0, 4.0, 4.0, 5.0])
>>> for s in rs.process(b, 3 * H):
...     print(s.time // H, s.state, "|", s.message)
2 firing | m1/s1/CO-1: value 4 ppm unchanged for >= 2h [co_frozen, firing]
3 resolved | m1/s1/CO-1: value changed to 5 ppm [co_frozen, resolved]
"""

from __future__ import annotations

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import RAISE_ONLY, Flags, SignalState
from riskwatch.rules.conditions.base import ReadingCondition, Rows, previous_reading
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.messages import VALUE
from riskwatch.rules.slots import NEVER, SlotTable

__all__ = ["FrozenCondition"]


class FrozenCondition(ReadingCondition[None]):
    kind = ConditionKind.FROZEN
    skip_flags = int(Flags.CALIBRATING | RAISE_ONLY)  # |Δ| needs the in-order predecessor
    pends = False
    resolved_shows_clear = False
    sample = """\
rules:
  - name: co_frozen
    description: CO sensor stuck (the same reading for 2 h)
    match: {kind: co}
    frozen: {for: 2h, tolerance: 0}   # |change| <= tolerance on every reading
    # level: yellow                   # health rules default to yellow
"""

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: None,
    ) -> None:
        frozen = self.spec.frozen
        assert frozen is not None
        k = int(self.spec.out_level) - 1
        # "|change| <= tolerance" as a below-trigger that clears above the tolerance
        slots.sign[sel, k] = -1.0
        slots.trigger[sel, k] = -frozen.tolerance
        slots.clear[sel, k] = -frozen.tolerance
        slots.for_ns[sel, k] = int(frozen.for_)
        slots.enabled[sel, k] = True

    @classmethod
    def quantity(cls, rows: Rows, slots: SlotTable, columns: None) -> tuple[np.ndarray, np.ndarray]:
        prev_t, prev_v = previous_reading(rows, slots)
        x = np.abs(rows.value - prev_v)
        return x, np.where(prev_t != NEVER, prev_t, rows.time)

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        assert self.spec.frozen is not None
        if state == SignalState.RESOLVED:
            return f"value changed to {VALUE} {unit}"
        return f"value {VALUE} {unit} unchanged for >= {self.spec.frozen.for_}"
