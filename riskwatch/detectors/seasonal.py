"""Seasonal baselines: per time-of-day (and day-of-week) profiles for daily load curves.

Electricity load of an enterprise, ventilation and pump duty follow the clock. The
detector keeps, per sensor, an exponentially weighted mean for each slot of the period
(``slot_s`` seconds wide; ``period: daily`` or ``weekly``) and scores the residual
``x - profile[slot]`` against the sensor's residual spread. So night load that looks
like production, or a plant that did not start in the morning, scores high while the
ordinary daily swing scores nothing. A slot must have been seen ``min_cycles`` times
before it scores. Timestamps are UTC; ``utc_offset_s`` shifts them to local time.

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

__all__ = ["SeasonalBaseline", "SeasonalBaselineRef"]

_PERIODS = {"daily": 86400, "weekly": 7 * 86400}


class SeasonalBaseline(Detector):
    """Per-slot profile (daily or weekly) with a z-score of the residual."""

    kind = "seasonal"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "var": (np.float64, 0.0),
        "prof": (np.float64, 0.0),
        "cnt": (np.int64, 0),
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
        check(period in _PERIODS, "period", f"must be daily or weekly, got {period!r}")
        check(slot_s > 0 and _PERIODS[period] % slot_s == 0, "slot_s", "must divide the period")
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(0.0 < alpha_var <= 1.0, "alpha_var", f"must be in (0, 1], got {alpha_var}")
        check(min_cycles >= 1, "min_cycles", f"must be >= 1, got {min_cycles}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.period, self.slot_s, self.alpha, self.alpha_var = period, slot_s, alpha, alpha_var
        self.min_cycles, self.utc_offset_s, self.min_std = min_cycles, utc_offset_s, min_std
        self.n_slots = _PERIODS[period] // slot_s
        self._s["prof"] = np.zeros((0, self.n_slots))
        self._s["cnt"] = np.zeros((0, self.n_slots), dtype=np.int64)

    def slot(self, time: np.ndarray) -> np.ndarray:
        """Slot index of each timestamp (ns UTC)."""
        sec = np.asarray(time, dtype=np.int64) // 1_000_000_000 + self.utc_offset_s
        return (sec % _PERIODS[self.period]) // self.slot_s

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
        s["prof"][sensor, k] = np.where(seen, prof + self.alpha * d, value)
        s["cnt"][sensor, k] = c + 1


class SeasonalBaselineRef:
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
        self.p = _PERIODS[period]
        self.slot_s, self.alpha, self.alpha_var = slot_s, alpha, alpha_var
        self.min_cycles, self.off, self.min_std, self.warmup = (
            min_cycles, utc_offset_s, min_std, warmup
        )  # fmt: skip
        self.n, self.var = 0, 0.0
        self.prof: dict[int, float] = {}
        self.cnt: dict[int, int] = {}

    def _slot(self, t: int) -> int:
        return ((t // 1_000_000_000 + self.off) % self.p) // self.slot_s

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
