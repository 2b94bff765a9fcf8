"""The kinds of rule condition, as one ordered enum shared by parsing, slots and conditions.

A rule's kind follows from which keys it gives (see
:attr:`~riskwatch.rules.parse.RuleSpec.condition`): a threshold rule compares its value,
rate or windowed change (``of:``); the others are named by their key. The first six are
*per-reading* kinds: every reading of a matched sensor is one evaluation, and their
(rule, sensor) pairs share the slot arrays (the integer value is the slot's ``kind``
code). No data and compound rules keep their own state.

>>> ConditionKind.RATE, int(ConditionKind.RATE), ConditionKind.OUT_OF_RANGE.key
(<ConditionKind.RATE: 1>, 1, 'out_of_range')
>>> ConditionKind.from_key("no_data")
<ConditionKind.NO_DATA: 6>
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ConditionKind"]


class ConditionKind(IntEnum):
    """A condition kind; the per-reading kinds come first (their values are slot codes)."""

    VALUE = 0
    RATE = 1
    CHANGE = 2
    FROZEN = 3
    OUT_OF_RANGE = 4
    CALIBRATION = 5
    NO_DATA = 6
    COMPOUND = 7

    @property
    def key(self) -> str:
        """The name rule files use (``value``, ``rate``, ..., ``out_of_range``)."""
        return self.name.lower()

    @classmethod
    def from_key(cls, key: str) -> ConditionKind:
        return cls[key.upper()]
