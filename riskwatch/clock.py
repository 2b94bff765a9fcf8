"""Clocks. Only the engine's main loop reads real time; everything else takes ``now``.

>>> c = ManualClock(1_000)
>>> c.advance(0.5); c.now_ns()
500001000
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class SystemClock:
    """Wall-clock time in ns since the epoch (UTC)."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock tests step by hand."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def set(self, now_ns: int) -> None:
        self._now = int(now_ns)

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1e9)
