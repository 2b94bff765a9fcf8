"""Threshold rules: levels with trigger, clear value (hysteresis), ``for``, ``keep_firing_for``
and N-of-M, here over the reading's value (``of: value``, the default).

:class:`ThresholdCondition` holds what every threshold rule shares, whatever it compares
(value, rate, change): the per-colour parameters and the message texts.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "O2-1", "o2", unit="%")])
>>> rs = RuleSet([load_rules_text(ValueCondition.sample)], reg)
>>> sig = rs.process(Batch.from_arrays([1, 2, 3], [0, 0, 0], [20.0, 19.0, 19.6]), 3)
>>> for s in sig:
...     print(s.time, s.state, s.level and s.level.colour, "|", s.message)
2 firing orange | m1/s1/O2-1: o2 19 % <= oxygen low 19.5 % [o2_low, firing]
3 resolved None | m1/s1/O2-1: o2 19.6 % > clear 19.5 % [o2_low, resolved]
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import SignalState
from riskwatch.rules.compile import resolve_number
from riskwatch.rules.conditions.base import CompileContext, ReadingCondition, Rows
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.messages import THRESHOLD, VALUE
from riskwatch.rules.parse import LevelSpec, RuleSpec
from riskwatch.rules.slots import SlotTable

__all__ = ["ThresholdCondition", "ValueCondition"]

C = TypeVar("C")


class ThresholdCondition(ReadingCondition[C]):
    """A threshold rule over some quantity (value, rate or change)."""

    #: what the message calls the quantity (None: the sensor's kind, e.g. "ch4")
    quantity_name: ClassVar[str | None] = None

    def __init__(self, spec: RuleSpec, ctx: CompileContext) -> None:
        self.levels: list[LevelSpec] = spec.all_levels()
        self.level_by_column = {int(lv.level) - 1: lv for lv in self.levels}
        super().__init__(spec, ctx)
        self.count_n, self.count_m = (spec.count.n, spec.count.m) if spec.count else (0, 0)

    def column_labels(self) -> dict[int, str]:
        return {int(lv.level) - 1: lv.label or lv.level.colour for lv in self.levels}

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: C,
    ) -> None:
        s = slots
        s.count_n[sel] = self.count_n
        s.count_m[sel] = self.count_m
        for lv in self.levels:
            k = int(lv.level) - 1
            d = lv.direction
            trig = resolve_number(registry, lv.trigger, ids, d)
            clear_sp = lv.clear
            clr = resolve_number(registry, clear_sp, ids, d) if clear_sp is not None else trig
            clr = np.where(np.isnan(clr), trig, clr)
            s.sign[sel, k] = d
            s.trigger[sel, k] = np.where(np.isnan(trig), np.inf, trig * d)
            s.clear[sel, k] = np.where(np.isnan(clr), -np.inf, clr * d)
            s.strict[sel, k] = lv.strict
            # a strict trigger without its own clear value clears at the trigger itself
            s.clear_inclusive[sel, k] = bool(lv.strict) and clear_sp is None
            s.for_ns[sel, k] = int(lv.for_ or 0)
            s.keep_ns[sel, k] = int(lv.keep_firing_for or 0)
            s.enabled[sel, k] = ~np.isnan(trig)  # a missing setpoint turns the colour off

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        what = self.quantity_name or kind_col or "value"
        lv = self.level_by_column.get(column)
        up = lv is None or lv.direction > 0
        if state == SignalState.RESOLVED:
            op = "<" if up else ">"
            return f"{what} {VALUE} {unit} {op} clear {THRESHOLD} {unit}"
        op = (">" if up else "<") + ("" if lv is not None and lv.strict else "=")
        body = f"{what} {VALUE} {unit} {op} {self.label(column)} {THRESHOLD} {unit}"
        if state == SignalState.PENDING:
            body += f" (pending for {lv.for_ if lv else ''})"
        return body


class ValueCondition(ThresholdCondition[None]):
    """The reading's value against the levels."""

    kind = ConditionKind.VALUE
    raise_only = True
    sample = """\
rules:
  - name: o2_low
    description: oxygen below 19.5 %
    match: {kind: o2}
    level: orange
    label: oxygen low
    below: 19.5               # a number, catalog.NAME, K * catalog.NAME or {setpoint: ...}
    # clear_above: 19.8       # hysteresis (default: the trigger)
    # for: 30s                # must hold on every reading this long (pending meanwhile)
    # keep_firing_for: 1m     # the clear condition must hold this long
    # count: {n: 3, m: 5}     # or: 3 of the last 5 readings
"""

    @classmethod
    def quantity(cls, rows: Rows, slots: SlotTable, columns: None) -> tuple[np.ndarray, np.ndarray]:
        return rows.value, rows.time
