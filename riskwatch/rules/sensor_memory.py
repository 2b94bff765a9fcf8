"""What the rule set remembers per sensor for conditions that look beyond one reading.

No-data rules need when each sensor last reported (event time and arrival time); compound
rules need each sensor's last process value. Both are kept once per rule set (not per
rule), and only when a rule needs them (:class:`Needs`).

>>> from riskwatch.model import Batch, Flags
>>> m = SensorMemory()
>>> m.grow(2)
>>> b = Batch.from_arrays([5, 7, 9], [0, 1, 0], [1.0, 2.0, 3.0], [0, 0, int(Flags.FAULT)])
>>> m.observe(b, Needs.SEEN | Needs.LAST_VALUE)
>>> m.seen_event.tolist(), m.last_value.tolist()
([9, 7], [1.0, 2.0])
"""

from __future__ import annotations

from enum import IntFlag
from typing import NamedTuple

import numpy as np

from riskwatch.model import PROCESS_SKIP, Batch, Flags
from riskwatch.rules.slots import NEVER
from riskwatch.state.tree import SensorMap, StateTree

__all__ = ["Needs", "SensorMemory", "SensorSnapshot"]

_SKEW = int(Flags.CLOCK_SKEW)


class Needs(IntFlag):
    """What a condition reads from the :class:`SensorMemory`."""

    NONE = 0
    SEEN = 1  # last event and arrival time per sensor
    LAST_VALUE = 2  # last process value per sensor


class SensorSnapshot(NamedTuple):
    seen_event: np.ndarray
    seen_arrival: np.ndarray
    last_value: np.ndarray
    start_ns: int | None


class SensorMemory:
    """Per sensor id: last seen (event / arrival ns) and last process value."""

    def __init__(self) -> None:
        self.seen_event = np.full(0, NEVER, np.int64)
        self.seen_arrival = np.full(0, NEVER, np.int64)
        self.last_value = np.full(0, np.nan)
        self.start_ns: int | None = None  # when the rule set first ran (never-reported)

    def grow(self, n_sensors: int) -> None:
        """Extend the arrays to the registry's size (new sensors: never seen)."""
        grow = n_sensors - len(self.seen_event)
        if grow > 0:
            self.seen_event = np.concatenate([self.seen_event, np.full(grow, NEVER, np.int64)])
            self.seen_arrival = np.concatenate([self.seen_arrival, np.full(grow, NEVER, np.int64)])
            self.last_value = np.concatenate([self.last_value, np.full(grow, np.nan)])

    def start(self, now_ns: int) -> None:
        if self.start_ns is None:
            self.start_ns = now_ns

    def resume(self, stopped_ns: int, now_ns: int) -> int:
        """After a restart: the engine's own downtime (``stopped_ns`` .. ``now_ns``) is not
        a sensor's silence on the arrival clock (nothing was received, whatever the sensors
        did: their readings wait in the broker), so arrival times and the start move on by
        it. Returns the gap skipped (ns)."""
        gap = now_ns - stopped_ns
        if gap <= 0:
            return 0
        seen = self.seen_arrival != NEVER
        self.seen_arrival[seen] += gap
        if self.start_ns is not None:
            self.start_ns += gap
        return gap

    def observe(self, batch: Batch, needs: Needs) -> None:
        """Record a time-sorted batch (only what some rule needs); a clock-skewed reading
        counts as seen at its arrival."""
        if needs & Needs.SEEN:
            t = batch.time
            skewed = (batch.flags & _SKEW) != 0
            if skewed.any():  # a fast clock's stamp would hide the sensor's next silence
                t = np.where(skewed, batch.received, t)
            np.maximum.at(self.seen_event, batch.sensor, t)
            np.maximum.at(self.seen_arrival, batch.sensor, batch.received)
        if needs & Needs.LAST_VALUE:
            ok = (batch.flags & int(PROCESS_SKIP)) == 0
            self.last_value[batch.sensor[ok]] = batch.value[ok]  # time-sorted: the last wins

    def nbytes(self) -> int:
        return self.seen_event.nbytes + self.seen_arrival.nbytes + self.last_value.nbytes

    def snapshot(self) -> SensorSnapshot:
        return SensorSnapshot(self.seen_event, self.seen_arrival, self.last_value, self.start_ns)

    def restore(self, snap: SensorSnapshot) -> None:
        """Take over a snapshot of another rule set (as far as this registry reaches)."""
        n = min(len(snap.seen_event), len(self.seen_event))
        self.seen_event[:n] = snap.seen_event[:n]
        self.seen_arrival[:n] = snap.seen_arrival[:n]
        self.last_value[:n] = snap.last_value[:n]
        self.start_ns = snap.start_ns

    def dump_state(self) -> StateTree:
        return {
            "v": 1,
            "seen_event": self.seen_event.copy(),
            "seen_arrival": self.seen_arrival.copy(),
            "last_value": self.last_value.copy(),
            "start_ns": self.start_ns,
        }

    def load_state(self, tree: StateTree, sensors: SensorMap) -> int:
        """Take over last-seen times and values by sensor key; returns how many sensors
        had been seen."""
        n = len(self.seen_event)

        def column(name: str, dtype: type, fill: float) -> np.ndarray | None:
            got = tree.get(name)
            if not isinstance(got, np.ndarray) or got.ndim != 1:
                return None
            return sensors.scatter(got.astype(dtype), fill, n)

        if (ev := column("seen_event", np.int64, NEVER)) is not None:
            self.seen_event = ev
        if (ar := column("seen_arrival", np.int64, NEVER)) is not None:
            self.seen_arrival = ar
        if (lv := column("last_value", np.float64, np.nan)) is not None:
            self.last_value = lv
        start = tree.get("start_ns")
        self.start_ns = int(start) if isinstance(start, int) else self.start_ns
        return int((self.seen_event != NEVER).sum())
