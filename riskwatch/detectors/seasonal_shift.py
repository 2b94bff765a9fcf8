"""Seasonal shift: a sustained departure from a daily or weekly profile.

Electricity load of an enterprise, ventilation and pump duty follow the clock. The
detector keeps, per sensor, an exponentially weighted profile with one value per slot
of the period (``slot_s`` seconds wide; ``period: daily`` or ``weekly``) and charts the
residual ``x - profile[slot]`` over hours (:mod:`.chart`): production-like load through
a night during a shutdown order, a plant that did not start, a working day run like a
holiday, all of them deviations too small per reading to stand out in the scatter.
Timestamps are UTC; ``utc_offset_s`` shifts them to local time.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from riskwatch.detectors.base import Detector, check
from riskwatch.detectors.chart import (
    CHART_FIELDS,
    ChartRef,
    chart_learn,
    chart_mean,
    chart_surprise,
)

__all__ = ["SeasonalShift", "SeasonalShiftRef"]

PERIOD_S = {"daily": 86400, "weekly": 7 * 86400}

_PROFILE_FIELDS: dict[str, tuple[Any, float]] = {
    "profile": (np.float64, 0.0),  # EW value of each slot (one column per slot)
    "slot_seen": (np.int64, 0),  # readings each slot has had
}


class SeasonalShift(Detector):
    """EWMA chart of the residual from a daily or weekly profile: a sustained deviation.

    A deviation that is small per reading but lasts (a holiday's missing demand,
    production-like load through a night during a shutdown order, a process running a
    few percent off its usual daily course) stays below any per-reading threshold.
    This detector keeps a per-slot profile (the first reading of a slot sets it, then
    weight ``alpha``) and charts the residual ``x - profile[slot]`` like ``slow``
    charts the level: a time-weighted EW mean over ``span_s`` (3 h) judged against its
    own long-run mean and variance (``long_s``, 30 days), two-sided Gaussian tail on the
    shared scale. Readings of a slot seen fewer than ``min_cycles`` times are not
    charted; the chart scores once it has ``min_cycles`` whole periods of history (3
    days daily, 3 weeks weekly, counted from its first charted reading; ``min_age_s``
    sets another history in seconds). State: the profile (2 numbers per slot) and the
    chart (6 numbers) per sensor.

    Parameters
    ----------
    period : {"daily", "weekly"}
        The period of the profile.
    slot_s : int
        Width of a profile slot in seconds; must divide the period.
    alpha : float
        Weight of a reading in its slot's profile value, in (0, 1].
    min_cycles : int
        Sightings of a slot before its residuals are charted, and whole periods of
        chart history before it scores (unless ``min_age_s``).
    span_s : float
        Time constant of the residual's short mean, seconds.
    long_s : float
        Time constant of the short mean's long-run mean and variance (>= ``span_s``).
    min_age_s : float or None
        Chart history before scoring, seconds (None: ``min_cycles`` periods).
    utc_offset_s : int
        Offset of local time from UTC, seconds (slots follow the local clock).
    warmup : int
        Charted readings before scoring.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    S. W. Roberts, "Control chart tests based on geometric moving averages",
    *Technometrics* 1 (1959) 239-250 (the EWMA chart of the residual).

    Examples
    --------
    Four weeks of 15-minute load, 800 kW by day and 100 kW at night, noise sd 30 kW;
    the last night runs 60 kW high (two noise sd, within the scatter of any one
    reading). The first reading at 0.5 is the 12th of that night (2 h 45 min in):

    >>> from riskwatch.detectors.base import run_stream
    >>> rng = np.random.default_rng(2)
    >>> t = np.arange(96 * 28, dtype=np.int64) * 900 * 10**9
    >>> hour = t // 10**9 % 86400 // 3600
    >>> x = np.where((hour >= 8) & (hour < 18), 800.0, 100.0) + rng.normal(0, 30, len(t))
    >>> x[96 * 27 :][hour[96 * 27 :] < 6] += 60.0
    >>> s = run_stream(SeasonalShift(slot_s=900), np.zeros(len(x), np.int32), x, t)
    >>> int(np.argmax(s >= 0.5)) - 96 * 27, bool(s[: 96 * 27].max() < 0.5)
    (11, True)
    """

    kind = "seasonal_shift"
    self_calibrated = True  # a chart against its own long-run spread (see Detector)
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        **CHART_FIELDS,
        **_PROFILE_FIELDS,
    }

    def __init__(
        self,
        period: Literal["daily", "weekly"] = "daily",
        *,
        slot_s: int = 900,
        alpha: float = 0.2,
        min_cycles: int = 3,
        span_s: float = 3 * 3600.0,
        long_s: float = 30 * 86400.0,
        min_age_s: float | None = None,
        utc_offset_s: int = 0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(span_s > 0.0, "span_s", f"must be > 0, got {span_s}")
        check(long_s >= span_s, "long_s", f"must be >= span_s, got {long_s}")
        check(min_age_s is None or min_age_s >= 0.0, "min_age_s", f"must be >= 0, got {min_age_s}")
        super().__init__(warmup=warmup, threshold=threshold)
        check(period in PERIOD_S, "period", f"must be daily or weekly, got {period!r}")
        check(slot_s > 0 and PERIOD_S[period] % slot_s == 0, "slot_s", "must divide the period")
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(min_cycles >= 1, "min_cycles", f"must be >= 1, got {min_cycles}")
        self.period, self.slot_s, self.alpha, self.min_cycles = period, slot_s, alpha, min_cycles
        self.utc_offset_s = utc_offset_s
        self.n_slots = PERIOD_S[period] // slot_s
        self._s["profile"] = np.zeros((0, self.n_slots))
        self._s["slot_seen"] = np.zeros((0, self.n_slots), dtype=np.int64)
        self.span_s, self.long_s = float(span_s), float(long_s)
        self.min_age_s = float(min_cycles * PERIOD_S[period] if min_age_s is None else min_age_s)

    def slot(self, time: np.ndarray) -> np.ndarray:
        """Slot index of each timestamp (ns UTC)."""
        sec = np.asarray(time, dtype=np.int64) // 1_000_000_000 + self.utc_offset_s
        return (sec % PERIOD_S[self.period]) // self.slot_s

    def _residual(
        self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slot, residual from it, and whether the slot is mature enough to chart it."""
        slot = self.slot(time)
        residual = value - self._s["profile"][sensor, slot]
        return slot, residual, self._s["slot_seen"][sensor, slot] >= self.min_cycles

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        _, residual, mature = self._residual(sensor, value, time)
        short = chart_mean(self._s, sensor, residual, time, self.span_s)
        u = chart_surprise(self._s, sensor, short, time, self.min_age_s, self.warmup)
        return np.where(mature, u, 0.0)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        slot, residual, mature = self._residual(sensor, value, time)
        s = self._s
        seen = s["slot_seen"][sensor, slot]
        prof = s["profile"][sensor, slot]
        s["profile"][sensor, slot] = np.where(seen > 0, prof + self.alpha * (value - prof), value)
        s["slot_seen"][sensor, slot] = seen + 1
        if mature.any():
            sel = np.flatnonzero(mature)
            charted, charted_t = sensor[sel], time[sel]
            short = chart_mean(self._s, charted, residual[sel], charted_t, self.span_s)
            chart_learn(self._s, charted, short, charted_t, self.long_s)


class SeasonalShiftRef:
    """Scalar reference of :class:`SeasonalShift` (tests compare the two)."""

    def __init__(
        self,
        period: str = "daily",
        *,
        slot_s: int = 900,
        alpha: float = 0.2,
        min_cycles: int = 3,
        span_s: float = 3 * 3600.0,
        long_s: float = 30 * 86400.0,
        min_age_s: float | None = None,
        utc_offset_s: int = 0,
        warmup: int = 30,
    ) -> None:
        self.period_s, self.slot_s, self.alpha = PERIOD_S[period], slot_s, alpha
        self.min_cycles, self.utc_offset_s = min_cycles, utc_offset_s
        self.profile: dict[int, float] = {}
        self.slot_seen: dict[int, int] = {}
        age = float(min_cycles * self.period_s if min_age_s is None else min_age_s)
        self.chart = ChartRef(span_s, long_s, age, warmup)

    def _slot(self, t: int) -> int:
        return ((t // 1_000_000_000 + self.utc_offset_s) % self.period_s) // self.slot_s

    def score_one(self, x: float, t: int = 0) -> float:
        k = self._slot(t)
        if x != x or self.slot_seen.get(k, 0) < self.min_cycles:
            return 0.0
        return self.chart.score(self.chart.short(x - self.profile[k], t), t)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        k = self._slot(t)
        seen = self.slot_seen.get(k, 0)
        if seen >= self.min_cycles:
            self.chart.learn(self.chart.short(x - self.profile[k], t), t)
        self.profile[k] = self.profile[k] + self.alpha * (x - self.profile[k]) if seen > 0 else x
        self.slot_seen[k] = seen + 1
