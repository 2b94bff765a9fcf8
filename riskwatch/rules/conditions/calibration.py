"""Calibration overrun: a sensor flagged ``calibrating`` continuously for longer than ``max``.

The compared quantity is the calibrating flag itself (1 or 0), so this kind sees every
reading, calibrating ones included; the first calibrating reading starts the run.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch, Flags
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CH4-1", "ch4", unit="%")])
>>> rs = RuleSet([load_rules_text(CalibrationCondition.sample)], reg)
>>> H, cal = 3600 * 10**9, int(Flags.CALIBRATING)
>>> b = Batch.from_arrays([0, 1 * H, 2 * H, 3 * H], [0] * 4, [1.0] * 4, [cal, cal, cal, 0])
>>> for s in rs.process(b, 3 * H):
...     print(s.time // H, s.state, "|", s.message)
2 firing | m1/s1/CH4-1: in calibration longer than 2h [ch4_calibration, firing]
3 resolved | m1/s1/CH4-1: calibration ended [ch4_calibration, resolved]
"""

from __future__ import annotations

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import RAISE_ONLY, Flags, SignalState
from riskwatch.rules.conditions.base import ReadingCondition, Rows
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.slots import SlotTable

__all__ = ["CalibrationCondition"]


class CalibrationCondition(ReadingCondition[None]):
    kind = ConditionKind.CALIBRATION
    skip_flags = int(RAISE_ONLY)  # it is about calibrating readings, in event-time order
    pends = False
    resolved_shows_clear = False
    sample = """\
rules:
  - name: ch4_calibration
    description: methane sensor left in calibration for more than 2 h
    match: {kind: ch4}
    calibration: {max: 2h}
"""

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: None,
    ) -> None:
        calibration = self.spec.calibration
        assert calibration is not None
        k = int(self.spec.out_level) - 1
        slots.trigger[sel, k] = 0.5
        slots.clear[sel, k] = 0.5
        slots.for_ns[sel, k] = int(calibration.max)
        slots.enabled[sel, k] = True

    @classmethod
    def quantity(cls, rows: Rows, slots: SlotTable, columns: None) -> tuple[np.ndarray, np.ndarray]:
        if rows.flags is None:
            return np.zeros(len(rows.slot)), rows.time
        return ((rows.flags & int(Flags.CALIBRATING)) != 0).astype(np.float64), rows.time

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        assert self.spec.calibration is not None
        if state == SignalState.RESOLVED:
            return "calibration ended"
        return f"in calibration longer than {self.spec.calibration.max}"
