"""Rule condition kinds: one module per kind and the registry that maps a kind to its class.

Per-reading kinds (:class:`~riskwatch.rules.conditions.base.ReadingCondition`) compile
into slots and share the level pass; no-data and compound rules are
:class:`~riskwatch.rules.conditions.base.Condition` s with their own state.

>>> sorted(k.key for k in CONDITIONS)  # doctest: +NORMALIZE_WHITESPACE
['calibration', 'change', 'compound', 'frozen', 'no_data', 'out_of_range', 'rate', 'value']
"""

from __future__ import annotations

from typing import Any, Protocol

from riskwatch.rules.conditions.base import (
    ActiveAlert,
    CompileContext,
    Condition,
    Phase,
    ReadingCondition,
    Rows,
    RuleEnv,
)
from riskwatch.rules.conditions.calibration import CalibrationCondition
from riskwatch.rules.conditions.change import (
    CHANGE_MAX_KEPT,
    ChangeColumns,
    ChangeCondition,
    change_entries_needed,
)
from riskwatch.rules.conditions.compound import CompoundCondition
from riskwatch.rules.conditions.frozen import FrozenCondition
from riskwatch.rules.conditions.no_data import NoDataCondition
from riskwatch.rules.conditions.out_of_range import RangeColumns, RangeCondition
from riskwatch.rules.conditions.rate import RateColumns, RateCondition
from riskwatch.rules.conditions.threshold import ThresholdCondition, ValueCondition
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.parse import RuleSpec

__all__ = [
    "CHANGE_MAX_KEPT",
    "CONDITIONS",
    "ActiveAlert",
    "CalibrationCondition",
    "ChangeColumns",
    "ChangeCondition",
    "CompileContext",
    "CompoundCondition",
    "Condition",
    "ConditionClass",
    "FrozenCondition",
    "NoDataCondition",
    "Phase",
    "RangeColumns",
    "RangeCondition",
    "RateColumns",
    "RateCondition",
    "ReadingCondition",
    "Rows",
    "RuleEnv",
    "ThresholdCondition",
    "ValueCondition",
    "change_entries_needed",
    "samples",
]


class ConditionClass(Protocol):
    """A condition kind's class: compiles one rule of the kind; carries a sample rule file."""

    sample: str

    def __call__(
        self, spec: RuleSpec, ctx: CompileContext
    ) -> ReadingCondition[Any] | Condition: ...


#: every condition kind, by the kind a rule's keys give (RuleSpec.condition)
CONDITIONS: dict[ConditionKind, ConditionClass] = {
    ConditionKind.VALUE: ValueCondition,
    ConditionKind.RATE: RateCondition,
    ConditionKind.CHANGE: ChangeCondition,
    ConditionKind.FROZEN: FrozenCondition,
    ConditionKind.OUT_OF_RANGE: RangeCondition,
    ConditionKind.CALIBRATION: CalibrationCondition,
    ConditionKind.NO_DATA: NoDataCondition,
    ConditionKind.COMPOUND: CompoundCondition,
}


def samples() -> dict[str, str]:
    """The commented sample rule file of every condition kind, by kind name."""
    return {kind.key: cls.sample for kind, cls in CONDITIONS.items()}
