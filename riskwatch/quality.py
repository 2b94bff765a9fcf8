"""Data-quality stage: flags duplicate and out-of-order readings per sensor.

Runs first in the pipeline over each time-sorted batch, with the newest event time seen
per sensor kept in an array indexed by sensor id:

- ``DUPLICATE``: same sensor and same event time as a reading already seen (a redelivered
  or repeated reading); it is still stored (InfluxDB overwrites itself) but rules can skip it;
- ``OUT_OF_ORDER``: older than the sensor's newest reading already processed.

>>> import numpy as np
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.pipeline import StageContext
>>> st = QualityStage()
>>> ctx = StageContext(now_ns=0, registry=SensorRegistry())
>>> st.process(Batch.from_arrays([10, 20], [0, 0], [1.0, 2.0]), ctx).flags.tolist()
[0, 0]
>>> st.process(Batch.from_arrays([5, 20, 20, 30], [0, 0, 1, 1], [1.0] * 4), ctx).flags.tolist()
[16, 8, 0, 0]
"""

from __future__ import annotations

import numpy as np

from riskwatch.model import Batch, Flags
from riskwatch.pipeline import StageContext
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["QualityStage"]

_NEVER = np.iinfo(np.int64).min


class QualityStage:
    name = "quality"

    def __init__(self) -> None:
        self._last = np.full(0, _NEVER, dtype=np.int64)

    def _grow(self, n: int) -> None:
        if n > len(self._last):
            grown = np.full(max(n, 2 * len(self._last)), _NEVER, dtype=np.int64)
            grown[: len(self._last)] = self._last
            self._last = grown

    def process(self, batch: Batch, ctx: StageContext) -> Batch:
        if len(batch) == 0:
            return batch
        s, t = batch.sensor, batch.time
        self._grow(int(s.max()) + 1)
        prev = self._last[s]
        flags = batch.flags.copy()
        flags[t < prev] |= int(Flags.OUT_OF_ORDER)
        dup = t == prev
        # repeats inside the batch: same (sensor, time) as the row before in (sensor, time) order
        order = np.lexsort((t, s))
        ss, ts = s[order], t[order]
        same = np.zeros(len(s), dtype=bool)
        same[1:] = (ss[1:] == ss[:-1]) & (ts[1:] == ts[:-1])
        dup[order[same]] = True
        flags[dup] |= int(Flags.DUPLICATE)
        np.maximum.at(self._last, s, t)
        return batch.with_flags(flags)

    # -- durable state (riskwatch.state.Durable) -------------------------------------------
    def dump_state(self) -> StateTree:
        """The newest event time per sensor id (the watermarks)."""
        seen = np.flatnonzero(self._last != _NEVER)
        n = int(seen[-1]) + 1 if len(seen) else 0  # not the spare room of the doubling
        return {"v": 1, "last": self._last[:n].copy()}

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        """Take over the watermarks of the sensors that still exist (by key)."""
        last = tree.get("last")
        if not isinstance(last, np.ndarray) or last.dtype != np.int64:
            return Restored(dropped=["quality: no watermarks in the snapshot"])
        self._last = sensors.scatter(last, _NEVER)
        return Restored({"sensors": int((self._last != _NEVER).sum())})
