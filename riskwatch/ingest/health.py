"""Health signals raised by the ingest adapters while they decode (a Sparkplug node going
offline, a KJ power-off the mine's own system did not execute): a small queue that the
adapters fill on the engine thread and the ``adapter_health`` stage drains into the
pipeline's signals, so they reach the alert lifecycle like any rule's.

>>> from riskwatch.model import Level, SignalState
>>> q = AdapterSignals()
>>> q.emit("sparkplug_offline", "g1/n1", 5, SignalState.FIRING, Level.ORANGE, "node offline")
>>> [(s.rule, s.group, s.state.value) for s in q.drain()], q.drain()
([('sparkplug_offline', 'g1/n1', 'firing')], [])
"""

from __future__ import annotations

import threading

from riskwatch.model import Level, Signal, SignalState

__all__ = ["AdapterSignals"]


class AdapterSignals:
    """Signals waiting for the next batch or tick (thread-safe: the HTTP and KJ threads
    never emit, but a lock costs nothing at this rate)."""

    def __init__(self) -> None:
        self._pending: list[Signal] = []
        self._lock = threading.Lock()

    def emit(
        self, rule: str, group: str, time_ns: int, state: SignalState, level: Level | None,
        message: str, *, sensor: int = -1, value: float = float("nan"),
        threshold: float = float("nan"),
    ) -> None:  # fmt: skip
        """Queue one signal (``sensor = -1``: a group signal on ``group``)."""
        s = Signal(rule=rule, sensor=sensor, time=time_ns, state=state, level=level,
                   value=value, threshold=threshold, message=message,
                   group=None if sensor >= 0 else group)  # fmt: skip
        with self._lock:
            self._pending.append(s)

    def drain(self) -> list[Signal]:
        with self._lock:
            out, self._pending = self._pending, []
        return out
