"""Data-quality stage: the event-time flags of each reading, per sensor.

Runs first in the pipeline over each batch. Per sensor it keeps a *watermark*: the
event time of the newest reading taken in order, and the value of the first reading
at that time, in plain arrays indexed by sensor id (``watermark``, ``watermark_value``).
Against them it flags (docs/rules.md, "Event time", is the contract):

- ``CLOCK_SKEW``: the event time is ahead of the arrival time by more than
  ``max_clock_skew_s`` (the gateway's clock is fast). Such a reading is stored and
  evaluated raise-only, but it never advances the watermark: one reading stamped five
  minutes ahead would otherwise make every true reading of those five minutes "out of
  order";
- ``OUT_OF_ORDER``: older than the sensor's watermark;
- ``DUPLICATE``: same sensor and same event time as a reading already seen (the
  watermark, or an earlier row of the batch). A true redelivery (same value) is only
  stored; with another value it is also ``CONFLICTING``, and the rules evaluate it
  raise-only, so the more dangerous of two values for one time always counts.

>>> import numpy as np
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.pipeline import StageContext
>>> st = QualityStage(max_clock_skew_s=2.0)
>>> ctx = StageContext(now_ns=0, registry=SensorRegistry())
>>> st.process(Batch.from_arrays([10, 20], [0, 0], [1.0, 2.0]), ctx).flags.tolist()
[0, 0]
>>> st.process(Batch.from_arrays([5, 20, 20, 20, 30], [0, 0, 0, 1, 1], [1.0, 2.0, 3.0, 1.0, 1.0]),
...            ctx).flags.tolist()  # out of order; redelivered; another value; sensor 1 new
[16, 8, 72, 0, 0]
>>> S = 10**9  # a reading 290 s ahead of its arrival does not move the watermark:
>>> b = Batch.from_arrays([300 * S, 11 * S], [2, 2], [0.3, 2.0], received=[10 * S, 11 * S])
>>> st.process(b, ctx).flags.tolist(), int(st.watermark[2]) // S
([32, 0], 11)

(The batch is not sorted here: the rules sort by time, and flags are per reading.)
"""

from __future__ import annotations

import numpy as np

from riskwatch.model import Batch, Flags
from riskwatch.pipeline import StageContext
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["DEFAULT_MAX_CLOCK_SKEW_S", "QualityStage"]

_NEVER = np.iinfo(np.int64).min
#: ``ingest.max_clock_skew_s``: see docs/rules.md, "Event time", for why 2 s
DEFAULT_MAX_CLOCK_SKEW_S = 2.0


class QualityStage:
    """Flags out-of-order, duplicate, conflicting and clock-skewed readings.

    Parameters
    ----------
    max_clock_skew_s:
        How far (seconds) a reading's event time may be ahead of its arrival time before
        it is flagged ``CLOCK_SKEW``. Readings without an arrival time (``received``
        equal to ``time``) are never skewed.

    State (what a durable snapshot must keep): ``watermark`` (int64 ns per sensor id,
    ``int64`` minimum for none yet) and ``watermark_value`` (float64 per sensor id).
    """

    name = "quality"

    def __init__(self, max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S) -> None:
        if not max_clock_skew_s >= 0:
            raise ValueError(f"max_clock_skew_s must be >= 0, got {max_clock_skew_s}")
        self.max_clock_skew_ns = int(max_clock_skew_s * 1e9)
        self.watermark = np.full(0, _NEVER, dtype=np.int64)
        self.watermark_value = np.full(0, np.nan, dtype=np.float64)

    def _grow(self, n: int) -> None:
        if n > len(self.watermark):
            size = max(n, 2 * len(self.watermark))
            wm = np.full(size, _NEVER, dtype=np.int64)
            wm[: len(self.watermark)] = self.watermark
            wv = np.full(size, np.nan, dtype=np.float64)
            wv[: len(self.watermark_value)] = self.watermark_value
            self.watermark, self.watermark_value = wm, wv

    def process(self, batch: Batch, ctx: StageContext) -> Batch:
        if len(batch) == 0:
            return batch
        s, t, v = batch.sensor, batch.time, batch.value
        self._grow(int(s.max()) + 1)
        flags = batch.flags.copy()
        # 1. a fast clock: ahead of arrival by more than the allowed skew
        skewed = (t - batch.received) > self.max_clock_skew_ns
        flags[skewed] |= int(Flags.CLOCK_SKEW)
        # 2. against the watermark from before the batch
        prev = self.watermark[s]
        flags[t < prev] |= int(Flags.OUT_OF_ORDER)
        at_mark = t == prev
        # 3. repeats inside the batch: same (sensor, time) as the row before in
        # (sensor, time) order (lexsort is stable: arrival order within a repeat)
        order = np.lexsort((t, s))
        ss, ts = s[order], t[order]
        same = np.zeros(len(s), dtype=bool)
        same[1:] = (ss[1:] == ss[:-1]) & (ts[1:] == ts[:-1])
        dup = at_mark.copy()
        dup[order[same]] = True
        flags[dup] |= int(Flags.DUPLICATE)
        # conflicting: another value than the first one seen for that (sensor, time), the
        # watermark's or the first row's of the batch (so A, B, A flags only B)
        run_start = np.maximum.accumulate(np.where(~same, np.arange(len(s)), 0))
        first_value = np.empty(len(s))
        first_value[order] = v[order[run_start]]
        first_value = np.where(at_mark, self.watermark_value[s], first_value)
        flags[dup & (v != first_value)] |= int(Flags.CONFLICTING)
        # 4. advance the watermark over the readings taken in order (never a skewed one):
        # per sensor the newest time, and the value of its first reading at that time
        keep = ~skewed[order]
        if keep.any():
            o = order[keep]
            so, to = s[o], t[o]
            last = np.ones(len(o), dtype=bool)  # last row of each sensor in (s, t) order
            last[:-1] = so[1:] != so[:-1]
            start = np.ones(len(o), dtype=bool)  # first row of each (sensor, time) run
            start[1:] = (so[1:] != so[:-1]) | (to[1:] != to[:-1])
            run_start = np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
            li = np.flatnonzero(last)
            sensor, newest = so[li], to[li]
            moves = newest > self.watermark[sensor]
            sensor, newest = sensor[moves], newest[moves]
            self.watermark[sensor] = newest
            self.watermark_value[sensor] = v[o[run_start[li[moves]]]]
        return batch.with_flags(flags)

    # -- durable state (riskwatch.state.Durable) -------------------------------------------
    def dump_state(self) -> StateTree:
        """The watermark per sensor id (newest event time) and the value at it."""
        seen = np.flatnonzero(self.watermark != _NEVER)
        n = int(seen[-1]) + 1 if len(seen) else 0  # not the spare room of the doubling
        return {"v": 2, "watermark": self.watermark[:n].copy(),
                "watermark_value": self.watermark_value[:n].copy()}  # fmt: skip

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        """Take over the watermarks of the sensors that still exist (by key)."""
        mark = tree.get("watermark", tree.get("last"))  # "last": the first layout
        if not isinstance(mark, np.ndarray) or mark.dtype != np.int64:
            return Restored(dropped=["quality: no watermarks in the snapshot"])
        self.watermark = sensors.scatter(mark, _NEVER)
        value = tree.get("watermark_value")
        if isinstance(value, np.ndarray) and value.dtype == np.float64 and len(value) == len(mark):
            self.watermark_value = sensors.scatter(value, np.nan)
        else:
            self.watermark_value = np.full(len(self.watermark), np.nan)
        return Restored({"sensors": int((self.watermark != _NEVER).sum())})
