"""Core data model: the columnar :class:`Batch`, reading :class:`Flags`, warning
:class:`Level` and rule/detector :class:`Signal`.

A batch is a handful of equal-length numpy columns, never a list of dicts; every
stage works on whole columns.

>>> import numpy as np
>>> b = Batch.from_arrays(time=[3, 1, 2], sensor=[0, 1, 0], value=[0.5, 0.7, 0.6])
>>> b.sorted_by_time().time.tolist()
[1, 2, 3]
>>> len(b), int(Flags.CALIBRATING | Flags.LATE)
(3, 5)
>>> Level.RED < Level.ORANGE  # lower number = more severe
True
>>> SignalState("firing") is SignalState.FIRING, SignalState.FIRING == "firing"
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag, StrEnum
from typing import Any

import numpy as np

__all__ = [
    "PROCESS_SKIP",
    "RAISE_ONLY",
    "Batch",
    "EndReason",
    "Flags",
    "Level",
    "Signal",
    "SignalSource",
    "SignalState",
    "concat_batches",
]


class Flags(IntFlag):
    """Per-reading bit flags (``Batch.flags``, uint8)."""

    NONE = 0
    CALIBRATING = 1  # quality "calibrating" (标校): stored, never raises process alerts
    FAULT = 2  # quality "fault": gateway marked the point faulty
    LATE = 4  # event time far behind arrival time
    DUPLICATE = 8  # same sensor and time seen before
    OUT_OF_ORDER = 16  # older than the sensor's watermark (newest in-order reading)
    CLOCK_SKEW = 32  # ahead of its arrival by more than ingest.max_clock_skew_s
    CONFLICTING = 64  # with DUPLICATE: same sensor and time as before, another value


#: Readings whose event time cannot be trusted to order them: out of order, from a fast
#: clock, or a second value for a time already seen. Rules evaluate them *raise-only*
#: (they may raise or escalate an alert, never clear or step one down, and never move
#: the in-order state); detectors skip them. See docs/rules.md, "Event time".
RAISE_ONLY = Flags.OUT_OF_ORDER | Flags.CLOCK_SKEW | Flags.CONFLICTING

#: Readings the in-order evaluation of process alerts never sees (rules' value, rate and
#: change conditions; detectors): calibrating and faulty readings, true duplicates, and
#: the raise-only readings (which rules see through their raise-only pass instead).
PROCESS_SKIP = Flags.CALIBRATING | Flags.FAULT | Flags.DUPLICATE | RAISE_ONLY


class Level(IntEnum):
    """Four-colour warning scale used in Chinese safety supervision; 1 is the highest.

    ``Level.from_name("orange")`` accepts the English colour names.
    """

    RED = 1
    ORANGE = 2
    YELLOW = 3
    BLUE = 4

    @classmethod
    def from_name(cls, name: str) -> Level:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown level {name!r}; expected one of red, orange, yellow, blue"
            ) from None

    @property
    def colour(self) -> str:
        return self.name.lower()


_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Columns of equal length describing readings.

    - ``time``: int64 ns since the epoch, UTC (event time from the payload)
    - ``sensor``: int32 dense sensor id from :class:`riskwatch.catalog.SensorRegistry`
    - ``value``: float64
    - ``flags``: uint8 bit set of :class:`Flags`
    - ``received``: int64 ns arrival time at the engine (for arrival-time deadman and
      pipeline latency); equal to ``time`` when unknown.
    """

    time: np.ndarray
    sensor: np.ndarray
    value: np.ndarray
    flags: np.ndarray
    received: np.ndarray = field(default_factory=lambda: _EMPTY_I64)

    def __post_init__(self) -> None:
        n = len(self.time)
        if not (len(self.sensor) == len(self.value) == len(self.flags) == n):
            raise ValueError("Batch columns must have equal length")
        if len(self.received) != n:
            object.__setattr__(self, "received", self.time.copy())

    @classmethod
    def from_arrays(
        cls,
        time: Sequence[int] | np.ndarray,
        sensor: Sequence[int] | np.ndarray,
        value: Sequence[float] | np.ndarray,
        flags: Sequence[int] | np.ndarray | None = None,
        received: Sequence[int] | np.ndarray | None = None,
    ) -> Batch:
        t = np.asarray(time, dtype=np.int64)
        f = np.zeros(len(t), dtype=np.uint8) if flags is None else np.asarray(flags, dtype=np.uint8)
        r = t.copy() if received is None else np.asarray(received, dtype=np.int64)
        return cls(t, np.asarray(sensor, dtype=np.int32), np.asarray(value, dtype=np.float64), f, r)

    @classmethod
    def empty(cls) -> Batch:
        return cls.from_arrays([], [], [])

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: np.ndarray | slice) -> Batch:
        """Rows selected by an integer index or boolean mask."""
        return Batch(
            self.time[index],
            self.sensor[index],
            self.value[index],
            self.flags[index],
            self.received[index],
        )

    def sorted_by_time(self) -> Batch:
        """Stable sort by (time); rows of one sensor keep their arrival order on ties."""
        if len(self) < 2 or bool(np.all(self.time[1:] >= self.time[:-1])):
            return self
        return self.take(np.argsort(self.time, kind="stable"))

    def with_flags(self, flags: np.ndarray) -> Batch:
        return Batch(self.time, self.sensor, self.value, flags, self.received)


def concat_batches(batches: Iterable[Batch]) -> Batch:
    """Concatenate batches column by column (no sorting)."""
    bs = [b for b in batches if len(b)]
    if not bs:
        return Batch.empty()
    if len(bs) == 1:
        return bs[0]
    return Batch(
        np.concatenate([b.time for b in bs]),
        np.concatenate([b.sensor for b in bs]),
        np.concatenate([b.value for b in bs]),
        np.concatenate([b.flags for b in bs]),
        np.concatenate([b.received for b in bs]),
    )


class SignalState(StrEnum):
    """What a rule or detector says of its subject at a reading: the one vocabulary from
    rules and detectors to alerts (the alert lifecycle maps each to its own event)."""

    RESOLVED = "resolved"
    PENDING = "pending"
    FIRING = "firing"


class SignalSource(StrEnum):
    """Which kind of stage emitted a signal."""

    RULE = "rule"
    DETECTOR = "detector"


class EndReason(StrEnum):
    """Why an alert's condition ended although no reading cleared it: the rule or
    detector that watched it stopped watching. Rules and detectors say it (their reload
    result), alerts record it (the ``reason`` of the ``resolved`` transition); a reading
    never ends an alert with a reason.

    - ``RULE_REMOVED``: a reload removed the rule (or detector entry) itself;
    - ``UNWATCHED``: a reload changed the rule (or detector entry) so that it no longer
      selects the alert's sensor or group.
    """

    RULE_REMOVED = "rule_removed"
    UNWATCHED = "unwatched"


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule or detector decision for one sensor (or group) at one time.

    Only *changes* are emitted: a rule emits a signal when a (rule, sensor) slot moves
    between states or levels. ``level`` is ``None`` when the condition cleared.

    - ``rule``: rule or detector name
    - ``sensor``: sensor id, or -1 for a group signal (then ``group`` names it)
    - ``time``: ns of the reading (or the clock tick) that caused the change
    - ``state``: a :class:`SignalState` (pending, firing or resolved)
    - ``value`` / ``threshold``: what was compared
    - ``message``: human text ("CH4 1.62 %  >= power-off 1.5 % for 0s")
    - ``source``: a :class:`SignalSource`; ``score`` for detectors
    - ``reason``: an :class:`EndReason` on a ``resolved`` signal that no reading caused
      (a reload stopped watching the subject); ``None`` for every reading's signal
    """

    rule: str
    sensor: int
    time: int
    state: SignalState
    level: Level | None
    value: float
    threshold: float
    message: str
    source: SignalSource = SignalSource.RULE
    group: str | None = None
    score: float | None = None
    extra: dict[str, Any] | None = None
    reason: EndReason | None = None
