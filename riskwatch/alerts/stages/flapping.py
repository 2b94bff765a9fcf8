"""Flapping (Kapacitor's idea, counted in activations): an alert that becomes active
``high`` times within ``window`` is flapping and is notified once; it settles when its
activations within the window fall to ``low`` or fewer (checked on every tick).

:class:`Flapping` is pure: it takes an alert's activation times and returns the times
still inside the window (a new list when any fell out) with its verdict.
:class:`FlappingStage` mutes a flapping alert's records but ``flapping`` and ``settled``.

>>> f = Flapping(window_ns=100, high=3, low=1)
>>> times: list[int] = []
>>> verdicts = []
>>> for t in (0, 10, 20):
...     times, over = f.activate(times, t)
...     verdicts.append(over)
>>> verdicts, times
([False, False, True], [0, 10, 20])
>>> f.settle(times, 50), f.settle(times, 115)
(([0, 10, 20], False), ([20], True))
"""

from __future__ import annotations

from collections.abc import Sequence

from riskwatch.alerts.records import Action
from riskwatch.alerts.stages.muter import FLAPPING, Suppression
from riskwatch.alerts.state import Alert

__all__ = ["Flapping", "FlappingStage"]


class Flapping:
    def __init__(self, window_ns: int, high: int, low: int) -> None:
        self.window_ns, self.high, self.low = int(window_ns), int(high), int(low)

    def _recent(self, times: list[int], now_ns: int) -> list[int]:
        """Drop the leading times at or before ``now - window`` (``times`` itself when
        none is dropped)."""
        cut = now_ns - self.window_ns
        first = 0
        while first < len(times) and times[first] <= cut:
            first += 1
        return times[first:] if first else times

    def activate(self, times: Sequence[int], now_ns: int) -> tuple[list[int], bool]:
        """One more activation at ``now_ns``: the times kept, and whether the alert is now
        over the flapping threshold."""
        kept = self._recent([*times, now_ns], now_ns)
        return kept, len(kept) >= self.high

    def settle(self, times: list[int], now_ns: int) -> tuple[list[int], bool]:
        """The times kept at ``now_ns``, and whether few enough are left to settle."""
        kept = self._recent(times, now_ns)
        return kept, len(kept) <= self.low


_SPOKEN = frozenset((Action.FLAPPING, Action.SETTLED))


class FlappingStage:
    """A flapping alert is notified when it starts and when it settles, not in between."""

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None:
        if alert.flapping and action not in _SPOKEN:
            return FLAPPING
        return None
