"""Seasonal baselines: per time-of-day (and day-of-week) profiles for daily load curves.

Electricity load of an enterprise, ventilation and pump duty follow the clock. The
detector keeps, per sensor, an exponentially weighted mean for each slot of the period
(``slot_s`` seconds wide; ``period: daily`` or ``weekly``) and scores the residual
``x - profile[slot]`` against the sensor's residual spread. So night load that looks
like production, or a plant that did not start in the morning, scores high while the
ordinary daily swing scores nothing. A slot must have been seen ``min_cycles`` times
before it scores. Timestamps are UTC; ``utc_offset_s`` shifts them to local time.
``seasonal_shift`` (:class:`SeasonalShift`) keeps the same profile and charts the
residual over hours instead, for departures too small to show in one reading.

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> t = np.arange(96 * 10, dtype=np.int64) * 900 * 10**9   # 10 days of 15-min load
>>> x = 100 + 50 * np.sin(2 * np.pi * (t // 10**9 % 86400) / 86400)
>>> rng = np.random.default_rng(4); x = x + rng.normal(0, 1, len(x)); x[-30] += 15
>>> s = run_stream(SeasonalBaseline(slot_s=900), np.zeros(len(x), np.int32), x, t)
>>> bool(s[:-30].max() < 0.5), bool(s[-30] > 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np

from riskwatch.detectors.base import Detector, check, z_score_to_unit_scalar, z_to_decades
from riskwatch.detectors.slow_level import (
    CHART_FIELDS,
    ChartRef,
    chart_learn,
    chart_mean,
    chart_surprise,
)

__all__ = ["SeasonalBaseline", "SeasonalBaselineRef", "SeasonalShift", "SeasonalShiftRef"]

_PERIODS = {"daily": 86400, "weekly": 7 * 86400}


_PROFILE_FIELDS: dict[str, tuple[Any, float]] = {"prof": (np.float64, 0.0), "cnt": (np.int64, 0)}


class _SlotProfile(Detector):
    """A detector keeping a per-slot EW profile of a daily or weekly period (the part
    ``seasonal`` and ``seasonal_shift`` share): slot ``k`` of a reading, ``prof[k]``
    (the first reading of a slot sets it, then weight ``alpha``) and ``cnt[k]``
    (state fields ``_PROFILE_FIELDS``, one column per slot)."""

    def _init_profile(
        self, period: str, slot_s: int, alpha: float, min_cycles: int, utc_offset_s: int
    ) -> None:
        check(period in _PERIODS, "period", f"must be daily or weekly, got {period!r}")
        check(slot_s > 0 and _PERIODS[period] % slot_s == 0, "slot_s", "must divide the period")
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(min_cycles >= 1, "min_cycles", f"must be >= 1, got {min_cycles}")
        self.period, self.slot_s, self.alpha, self.min_cycles = period, slot_s, alpha, min_cycles
        self.utc_offset_s = utc_offset_s
        self.n_slots = _PERIODS[period] // slot_s
        self._s["prof"] = np.zeros((0, self.n_slots))
        self._s["cnt"] = np.zeros((0, self.n_slots), dtype=np.int64)

    def slot(self, time: np.ndarray) -> np.ndarray:
        """Slot index of each timestamp (ns UTC)."""
        sec = np.asarray(time, dtype=np.int64) // 1_000_000_000 + self.utc_offset_s
        return (sec % _PERIODS[self.period]) // self.slot_s

    def _learn_profile(self, sensor: np.ndarray, k: np.ndarray, value: np.ndarray) -> None:
        s = self._s
        c = s["cnt"][sensor, k]
        prof = s["prof"][sensor, k]
        s["prof"][sensor, k] = np.where(c > 0, prof + self.alpha * (value - prof), value)
        s["cnt"][sensor, k] = c + 1


class SeasonalBaseline(_SlotProfile):
    """Per-slot profile (daily or weekly) with a z-score of the residual."""

    kind = "seasonal"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "var": (np.float64, 0.0),
        **_PROFILE_FIELDS,
    }

    def __init__(
        self,
        period: Literal["daily", "weekly"] = "daily",
        *,
        slot_s: int = 900,
        alpha: float = 0.2,
        alpha_var: float = 0.01,
        min_cycles: int = 2,
        utc_offset_s: int = 0,
        min_std: float = 0.0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(0.0 < alpha_var <= 1.0, "alpha_var", f"must be in (0, 1], got {alpha_var}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self._init_profile(period, slot_s, alpha, min_cycles, utc_offset_s)
        self.alpha_var, self.min_std = alpha_var, min_std

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        k = self.slot(time)
        d = value - s["prof"][sensor, k]
        sd = np.maximum(np.sqrt(s["var"][sensor]), self.min_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d == 0.0, 0.0, d / sd)
        ok = (s["cnt"][sensor, k] >= self.min_cycles) & (s["n"][sensor] >= max(self.warmup, 2))
        return z_to_decades(np.where(ok, z, 0.0))

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        k = self.slot(time)
        c = s["cnt"][sensor, k]
        prof = s["prof"][sensor, k]
        d = value - prof
        seen = c > 0
        n = s["n"][sensor]
        v = s["var"][sensor]
        av = np.maximum(self.alpha_var, 1.0 / (n + 1.0))
        s["var"][sensor] = np.where(seen, (1 - av) * v + av * d * d, v)
        s["n"][sensor] = np.where(seen, n + 1, n)
        self._learn_profile(sensor, k, value)


class SeasonalShift(_SlotProfile):
    """EWMA chart of the residual from a daily or weekly profile: a sustained deviation.

    The ``seasonal`` detector judges each reading against its slot; a deviation that is
    small per reading but lasts (a holiday's missing demand, production-like load
    through a night during a shutdown order, a process running a few percent off its
    usual daily course) stays below its threshold reading by reading. This detector
    keeps the same per-slot profile (``period``, ``slot_s``, ``alpha``) and charts the
    residual ``x - profile[slot]`` like ``slow`` charts the level: a time-weighted EW
    mean over ``span_s`` (3 h) judged against its own long-run mean and variance
    (``long_s``, 30 days), two-sided Gaussian tail on the shared scale. Readings of a
    slot seen fewer than ``min_cycles`` times are not charted; the chart scores once it
    has ``min_cycles`` whole periods of history (3 days daily, 3 weeks weekly, counted
    from its first charted reading; ``min_age_s`` sets another history in seconds).
    State: the profile (2 numbers per slot) and the chart (6 numbers) per sensor.

    >>> from riskwatch.detectors.base import run_stream
    >>> rng = np.random.default_rng(2)
    >>> t = np.arange(96 * 28, dtype=np.int64) * 900 * 10**9      # 4 weeks, 15-min load
    >>> hour = t // 10**9 % 86400 // 3600
    >>> x = np.where((hour >= 8) & (hour < 18), 800.0, 100.0) + rng.normal(0, 30, len(t))
    >>> x[96 * 27 :][hour[96 * 27 :] < 6] += 60.0     # last night: +60 kW, within the scatter
    >>> sensor = np.zeros(len(x), np.int32)
    >>> shift = run_stream(SeasonalShift(period="daily", slot_s=900), sensor, x, t)
    >>> single = run_stream(SeasonalBaseline(slot_s=900), sensor, x, t)
    >>> bool(shift[: 96 * 27].max() < 0.5), bool(shift[96 * 27 :].max() > 0.5)
    (True, True)
    >>> bool(single.max() < 0.5)
    True
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
        self._init_profile(period, slot_s, alpha, min_cycles, utc_offset_s)
        self.span_s, self.long_s = float(span_s), float(long_s)
        self.min_age_s = float(min_cycles * _PERIODS[period] if min_age_s is None else min_age_s)

    def _residual(
        self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slot, residual from it, and whether the slot is mature enough to chart it."""
        k = self.slot(time)
        r = value - self._s["prof"][sensor, k]
        return k, r, self._s["cnt"][sensor, k] >= self.min_cycles

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        _, r, ok = self._residual(sensor, value, time)
        m = chart_mean(self._s, sensor, r, time, self.span_s)
        u = chart_surprise(self._s, sensor, m, time, self.min_age_s, self.warmup)
        return np.where(ok, u, 0.0)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        k, r, ok = self._residual(sensor, value, time)
        self._learn_profile(sensor, k, value)
        if ok.any():
            sel = np.flatnonzero(ok)
            sn, tn = sensor[sel], time[sel]
            m = chart_mean(self._s, sn, r[sel], tn, self.span_s)
            chart_learn(self._s, sn, m, tn, self.long_s)


class _SlotProfileRef:
    """Scalar twin of :class:`_SlotProfile`: the slot of a time, profile and counts."""

    def __init__(
        self, period: str, slot_s: int, alpha: float, min_cycles: int, utc_offset_s: int
    ) -> None:
        self.p, self.slot_s, self.alpha = _PERIODS[period], slot_s, alpha
        self.min_cycles, self.off = min_cycles, utc_offset_s
        self.prof: dict[int, float] = {}
        self.cnt: dict[int, int] = {}

    def _slot(self, t: int) -> int:
        return ((t // 1_000_000_000 + self.off) % self.p) // self.slot_s


class SeasonalBaselineRef(_SlotProfileRef):
    """Scalar reference of :class:`SeasonalBaseline`."""

    def __init__(
        self,
        period: str = "daily",
        *,
        slot_s: int = 900,
        alpha: float = 0.2,
        alpha_var: float = 0.01,
        min_cycles: int = 2,
        utc_offset_s: int = 0,
        min_std: float = 0.0,
        warmup: int = 30,
    ) -> None:
        super().__init__(period, slot_s, alpha, min_cycles, utc_offset_s)
        self.alpha_var, self.min_std, self.warmup = alpha_var, min_std, warmup
        self.n, self.var = 0, 0.0

    def score_one(self, x: float, t: int = 0) -> float:
        k = self._slot(t)
        if x != x or self.cnt.get(k, 0) < self.min_cycles or self.n < max(self.warmup, 2):
            return 0.0
        d = x - self.prof[k]
        if d == 0.0:
            return 0.0
        sd = max(math.sqrt(self.var), self.min_std)
        return z_score_to_unit_scalar(d / sd if sd > 0 else math.inf)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        k = self._slot(t)
        c = self.cnt.get(k, 0)
        if c > 0:
            d = x - self.prof[k]
            av = max(self.alpha_var, 1.0 / (self.n + 1.0))
            self.var = (1 - av) * self.var + av * d * d
            self.n += 1
            self.prof[k] += self.alpha * d
        else:
            self.prof[k] = x
        self.cnt[k] = c + 1


class SeasonalShiftRef(_SlotProfileRef):
    """Scalar reference of :class:`SeasonalShift`."""

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
        super().__init__(period, slot_s, alpha, min_cycles, utc_offset_s)
        age = float(min_cycles * self.p if min_age_s is None else min_age_s)
        self.chart = ChartRef(span_s, long_s, age, warmup)

    def score_one(self, x: float, t: int = 0) -> float:
        k = self._slot(t)
        if x != x or self.cnt.get(k, 0) < self.min_cycles:
            return 0.0
        return self.chart.score(self.chart.short(x - self.prof[k], t), t)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        k = self._slot(t)
        c = self.cnt.get(k, 0)
        if c >= self.min_cycles:
            self.chart.learn(self.chart.short(x - self.prof[k], t), t)
        self.prof[k] = self.prof[k] + self.alpha * (x - self.prof[k]) if c > 0 else x
        self.cnt[k] = c + 1
