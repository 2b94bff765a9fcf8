"""The window decision: one alert per anomaly episode, not one per reading.

Per sensor, a *window* opens on the first reading whose combined score reaches
``threshold`` (one raise), stays open while hot readings keep coming, and closes once
``hold_ns`` has passed since the last hot reading (one clear); the engine's tick closes
the windows of sensors that went quiet (:meth:`WindowDecision.expire`). Everything in
between is suppressed, so an episode raises one alert.

The *decision score* (what ``riskwatch score`` writes) reports a window's opening reading
and 0 for its repeats. Below the threshold there is no window, so at a lower cut-off
(NAB picks its own) every reading of a weak episode would count again; with
``repeat_floor`` set, a reading at or above the floor outside any such episode opens a
quiet episode that lasts until ``repeat_hold_ns`` passes without another one, and the
episode's later readings below the threshold report 0. At every cut-off from the floor
up, an episode then counts once (plus the alert, if it grows into one). Alerts, windows
and scores are unchanged by it.

>>> import numpy as np
>>> windows = WindowDecision(threshold=0.5, hold_ns=3)
>>> windows.reserve(1)
>>> score = np.array([0.1, 0.9, 0.7, 0.2, 0.2, 0.2, 0.2])
>>> for t, x in enumerate(score.tolist()):
...     sensor = np.array([0])
...     out = windows.decide(sensor, np.array([t]), np.array([x]), windows.is_open(sensor))
...     print(t, out.decision.tolist(), out.raised.tolist(), out.cleared.tolist())
0 [0.1] [False] [False]
1 [0.9] [True] [False]
2 [0.0] [False] [False]
3 [0.0] [False] [False]
4 [0.0] [False] [False]
5 [0.0] [False] [True]
6 [0.2] [False] [False]
>>> windows.peak(np.array([0])).tolist()
[0.9]

Three settings make a window follow the evidence rather than a clock:

- ``min_history``: a sensor's first ``min_history`` readings can neither open a window
  nor report a decision score (0): there is no baseline yet to be anomalous against.
- ``clear_below``: while a window is open, any reading at or above it (not only a hot
  one) is still evidence and keeps the window open; it closes once the score has
  stayed below ``clear_below`` for ``hold_ns`` (an alarm deadband with an off-delay, as
  ISA-18.2 describes for process alarms). Without it, the threshold is the level.
- ``clear_after``: the window also closes after this many readings in a row without
  evidence, whichever comes first: an off-delay in readings, which means the same at
  any reporting rate (a time hold of hours is thousands of readings of a 1 Hz sensor).

>>> w = WindowDecision(threshold=0.5, hold_ns=2, min_history=2, clear_below=0.3)
>>> w.reserve(1)
>>> for t, x in enumerate([0.9, 0.1, 0.8, 0.4, 0.35, 0.1, 0.1, 0.1]):
...     sensor = np.array([0])
...     out = w.decide(sensor, np.array([t]), np.array([x]), w.is_open(sensor))
...     print(t, out.decision.tolist(), out.raised.tolist(), out.cleared.tolist())
0 [0.0] [False] [False]
1 [0.0] [False] [False]
2 [0.8] [True] [False]
3 [0.0] [False] [False]
4 [0.0] [False] [False]
5 [0.0] [False] [False]
6 [0.0] [False] [True]
7 [0.1] [False] [False]
>>> w = WindowDecision(threshold=0.5, hold_ns=10**9, clear_after=2)
>>> w.reserve(1)
>>> for t, x in enumerate([0.9, 0.1, 0.4, 0.1, 0.1, 0.1]):
...     sensor = np.array([0])
...     print(t, w.decide(sensor, np.array([t]), np.array([x]), w.is_open(sensor)).cleared)
0 [False]
1 [False]
2 [ True]
3 [False]
4 [False]
5 [False]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Decided", "WindowDecision"]

_NEVER = np.iinfo(np.int64).min // 2  # "no reading yet" (time minus it cannot overflow)


@dataclass(frozen=True)
class Decided:
    """One round's decision, per reading: the ``decision`` score (repeats inside an open
    window, and with ``repeat_floor`` inside a quiet episode, set to 0) and whether the
    reading ``raised`` or ``cleared`` a window."""

    decision: np.ndarray
    raised: np.ndarray
    cleared: np.ndarray


class WindowDecision:
    """Per-sensor anomaly windows over a combined score: raise, hold, clear, peaks,
    sub-threshold repeat suppression and expiry (module docstring).

    Parameters
    ----------
    threshold : float
        A reading whose score reaches it is hot; in (0, 1].
    hold_ns : int
        A window closes this long after its last hot reading (ns, >= 0).
    repeat_floor : float or None
        Quiet episodes of the decision score open at this score (below ``threshold``);
        None switches repeat suppression off.
    repeat_hold_ns : int
        A quiet episode lasts this long after its last reading at or above the floor.
    min_history : int
        Readings of a sensor before it may open a window (its decision score is 0
        until then).
    clear_below : float or None
        An open window stays open while scores reach this level (in (0, threshold]);
        None: the threshold.
    clear_after : int
        Readings in a row without evidence that also close a window (0: only
        ``hold_ns``).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        hold_ns: int = 3_600_000_000_000,
        repeat_floor: float | None = None,
        repeat_hold_ns: int = 3_600_000_000_000,
        min_history: int = 0,
        clear_below: float | None = None,
        clear_after: int = 0,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if hold_ns < 0:
            raise ValueError(f"hold must be >= 0, got {hold_ns}")
        if repeat_floor is not None and not 0.0 < repeat_floor < threshold:
            raise ValueError(
                f"repeat_floor must be in (0, threshold = {threshold}), got {repeat_floor}"
            )
        if repeat_hold_ns < 0:
            raise ValueError(f"repeat_hold must be >= 0, got {repeat_hold_ns}")
        if min_history < 0:
            raise ValueError(f"min_history must be >= 0, got {min_history}")
        if clear_below is not None and not 0.0 < clear_below <= threshold:
            raise ValueError(
                f"clear_below must be in (0, threshold = {threshold}], got {clear_below}"
            )
        if clear_after < 0:
            raise ValueError(f"clear_after must be >= 0, got {clear_after}")
        self.clear_after = int(clear_after)
        self._calm = np.zeros(0, dtype=np.int64)  # readings in a row without evidence
        self.min_history = int(min_history)
        self.clear_below = threshold if clear_below is None else float(clear_below)
        self._seen = np.zeros(0, dtype=np.int64)  # readings per sensor (min_history)
        self.threshold = threshold
        self.hold_ns = int(hold_ns)
        self.repeat_floor = repeat_floor
        self.repeat_hold_ns = int(repeat_hold_ns)
        self._open = np.zeros(0, dtype=bool)
        self._last_hot = np.zeros(0, dtype=np.int64)  # time of the last hot reading
        self._peak = np.zeros(0)  # highest score of the current (or last) window
        # time of the last reading >= repeat_floor (quiet episodes); only with a floor
        self._quiet_last = np.zeros(0, dtype=np.int64)

    @property
    def capacity(self) -> int:
        """How many sensor ids have window state."""
        return len(self._open)

    def reserve(self, cap: int) -> None:
        """Grow the window state to ``cap`` sensors (exactly; callers choose the growth)."""
        n = len(self._open)
        if cap > n:
            self._open = np.r_[self._open, np.zeros(cap - n, dtype=bool)]
            self._last_hot = np.r_[self._last_hot, np.zeros(cap - n, dtype=np.int64)]
            self._peak = np.r_[self._peak, np.zeros(cap - n)]
            self._seen = np.r_[self._seen, np.zeros(cap - n, dtype=np.int64)]
            self._calm = np.r_[self._calm, np.zeros(cap - n, dtype=np.int64)]
            if self.repeat_floor is not None:
                self._quiet_last = np.r_[self._quiet_last, np.full(cap - n, _NEVER, np.int64)]

    def is_open(self, sensor: np.ndarray) -> np.ndarray:
        """Whether each sensor (ids within capacity) has its window open."""
        return self._open.take(sensor)

    def active(self, sensor: np.ndarray) -> np.ndarray:
        """Whether each sensor has an open window (False for ids never seen)."""
        sensor = np.asarray(sensor, dtype=np.int64)
        out = np.zeros(len(sensor), dtype=bool)
        known = sensor < len(self._open)
        out[known] = self._open[sensor[known]]
        return out

    def peak(self, sensor: np.ndarray) -> np.ndarray:
        """Highest score seen in each sensor's current (or last) window."""
        return self._peak[np.asarray(sensor, dtype=np.int64)]

    def decide(
        self,
        sensor: np.ndarray,
        time: np.ndarray,
        score: np.ndarray,
        was_open: np.ndarray,
        *,
        exact_low: bool = True,
    ) -> Decided:
        """Decide one round (unique sensors, within capacity): ``was_open`` is
        :meth:`is_open` of ``sensor`` before the round. ``exact_low=False`` skips the
        quiet episodes of ``repeat_floor`` (the decision score below the threshold is
        then not the exact one; raises, clears and windows are the same)."""
        n = len(sensor)
        hot = score >= self.threshold
        young = None
        if self.min_history:
            seen = self._seen.take(sensor)
            self._seen[sensor] = seen + 1
            young = seen < self.min_history
            if young.any():
                hot &= ~young
            else:
                young = None
        raised = hot & ~was_open
        cleared = np.zeros(n, dtype=bool)
        decision = np.where(was_open, 0.0, score) if was_open.any() else score.copy()
        if young is not None:
            decision[young] = 0.0
        # Only sensors with a window open or opening change window state (few per round).
        work = np.flatnonzero(hot | was_open)
        if len(work):
            ids, work_hot, work_open = sensor[work], hot[work], was_open[work]
            work_time, work_score = time[work], score[work]
            # evidence keeps a window open: a hot reading, or one at clear_below or more
            lit = work_hot | (work_open & (work_score >= self.clear_below))
            last_hot = np.where(lit, work_time, self._last_hot[ids])
            closes = ~lit & (work_time - last_hot >= self.hold_ns)
            if self.clear_after:
                calm = np.where(lit, 0, self._calm[ids] + 1)
                closes |= ~lit & (calm >= self.clear_after)
                self._calm[ids] = np.where(closes, 0, calm)
            cleared[work] = closes
            self._open[ids] = ~closes
            self._last_hot[ids] = last_hot
            self._peak[ids] = np.where(
                raised[work], work_score, np.maximum(self._peak[ids], work_score * work_open)
            )
        if self.repeat_floor is not None and exact_low and n:
            self._quiet_repeats(sensor, time, score, hot, decision)
        return Decided(decision, raised, cleared)

    def _quiet_repeats(
        self,
        sensor: np.ndarray,
        time: np.ndarray,
        score: np.ndarray,
        hot: np.ndarray,
        decision: np.ndarray,
    ) -> None:
        """Sub-threshold repeat suppression of the decision score (in place): a reading
        below the threshold inside a quiet episode (one ``repeat_hold_ns`` from the
        sensor's last reading >= ``repeat_floor``) reports 0; then readings at or above
        the floor extend (or open) their sensor's episode."""
        assert self.repeat_floor is not None
        last = self._quiet_last.take(sensor)
        decision[(time - last < self.repeat_hold_ns) & ~hot] = 0.0
        at_floor = np.flatnonzero(score >= self.repeat_floor)
        if len(at_floor):
            self._quiet_last[sensor[at_floor]] = time[at_floor]

    def expire(self, now_ns: int) -> np.ndarray:
        """Close windows whose hold ran out without new readings; returns their sensor ids.

        The engine's tick calls this so a sensor that went quiet during an anomaly still
        gets its window resolved.
        """
        gone = np.flatnonzero(self._open & (now_ns - self._last_hot >= self.hold_ns))
        self._open[gone] = False
        return gone

    def open_ids(self) -> np.ndarray:
        """The sensor ids whose window is open."""
        return np.flatnonzero(self._open)

    def adopt(self, other: WindowDecision, sensor: np.ndarray) -> None:
        """Open the windows ``other`` has open for ``sensor`` (ids within both
        capacities), with their last hot reading and peak: a changed detector entry takes
        over its predecessor's open anomalies, which then close as any window does,
        ``hold`` after their last hot reading (on a reading or at expiry).

        >>> a, b = WindowDecision(0.5, hold_ns=3), WindowDecision(0.5, hold_ns=3)
        >>> a.reserve(2); b.reserve(2)
        >>> one = np.array([1])
        >>> _ = a.decide(one, np.array([10]), np.array([0.9]), a.is_open(one))
        >>> b.adopt(a, a.open_ids())
        >>> b.open_ids().tolist(), b.expire(12).tolist(), b.expire(13).tolist()
        ([1], [], [1])
        """
        s = np.asarray(sensor, dtype=np.int64)
        s = s[other._open[s]]
        self._open[s] = True
        self._last_hot[s] = other._last_hot[s]
        self._peak[s] = other._peak[s]

    def forget(self, sensor: np.ndarray) -> None:
        """Close these sensors' windows and end their quiet episodes."""
        s = np.asarray(sensor, dtype=np.int64)
        s = s[s < len(self._open)]
        self._open[s] = False
        self._seen[s] = 0
        self._calm[s] = 0
        if self.repeat_floor is not None:
            self._quiet_last[s] = _NEVER

    def nbytes(self) -> int:
        """Bytes of per-sensor window state."""
        return (
            self._open.nbytes + self._last_hot.nbytes + self._peak.nbytes
            + self._quiet_last.nbytes + self._seen.nbytes + self._calm.nbytes
        )  # fmt: skip
