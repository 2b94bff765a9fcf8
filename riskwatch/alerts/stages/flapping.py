"""Flapping (Kapacitor's idea, counted in activations): an alert that becomes active
``high`` times within ``window`` is flapping and is notified once; it settles when its
activations within the window fall to ``low`` or fewer (checked on every tick).

>>> f = Flapping(window_ns=100, high=3, low=1)
>>> times: list[int] = []
>>> [f.activate(times, t) for t in (0, 10, 20)]
[False, False, True]
>>> f.settled(times, 50), f.settled(times, 115)
(False, True)
"""

from __future__ import annotations

__all__ = ["Flapping"]


class Flapping:
    def __init__(self, window_ns: int, high: int, low: int) -> None:
        self.window_ns, self.high, self.low = int(window_ns), int(high), int(low)

    def _prune(self, times: list[int], now_ns: int) -> None:
        cut = now_ns - self.window_ns
        while times and times[0] <= cut:
            times.pop(0)

    def activate(self, times: list[int], now_ns: int) -> bool:
        """Record one activation; True if the alert is now over the flapping threshold."""
        times.append(now_ns)
        self._prune(times, now_ns)
        return len(times) >= self.high

    def settled(self, times: list[int], now_ns: int) -> bool:
        self._prune(times, now_ns)
        return len(times) <= self.low
