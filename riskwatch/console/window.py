"""An in-memory window of recent readings for the console's sensor charts.

One ring buffer of (time, sensor id, value) for all sensors, written with whole-array
numpy per batch (no loop per reading); a chart query masks the ring by sensor id.

>>> import numpy as np
>>> from riskwatch.model import Batch
>>> w = SeriesWindow(4)
>>> w.add(Batch.from_arrays([1, 2, 3], [0, 1, 0], [1.0, 2.0, 3.0]))
>>> w.add(Batch.from_arrays([4, 5], [0, 0], [4.0, 5.0]))
>>> t, v = w.series(0)
>>> t.tolist(), v.tolist()
([3, 4, 5], [3.0, 4.0, 5.0])
"""

from __future__ import annotations

import threading

import numpy as np

from riskwatch.model import Batch

__all__ = ["SeriesWindow"]


class SeriesWindow:
    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.time = np.zeros(self.capacity, dtype=np.int64)
        self.sensor = np.full(self.capacity, -1, dtype=np.int32)
        self.value = np.zeros(self.capacity, dtype=np.float64)
        self.pos = 0  # total readings written
        self._lock = threading.Lock()

    def add(self, batch: Batch) -> None:
        n = len(batch)
        if n == 0:
            return
        t, s, v = batch.time, batch.sensor, batch.value
        if n > self.capacity:
            t, s, v = t[-self.capacity :], s[-self.capacity :], v[-self.capacity :]
            n = self.capacity
        with self._lock:
            idx = (self.pos + np.arange(n)) % self.capacity
            self.time[idx] = t
            self.sensor[idx] = s
            self.value[idx] = v
            self.pos += n

    def series(
        self, sid: int, since_ns: int | None = None, limit: int = 5000
    ) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of one sensor, oldest first (the newest ``limit``)."""
        with self._lock:
            m = self.sensor == sid
            t, v = self.time[m], self.value[m]
        if since_ns is not None:
            keep = t >= since_ns
            t, v = t[keep], v[keep]
        order = np.argsort(t, kind="stable")[-limit:]
        return t[order], v[order]
