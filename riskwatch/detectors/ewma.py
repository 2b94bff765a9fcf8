"""EWMA mean/variance z-score: how far a reading is from the recent level, in recent sigmas.

The workhorse for slowly varying signals (temperatures, pressures, gas backgrounds):
an exponentially weighted mean and variance per sensor, ``O(1)`` memory, and a score
from the two-sided Gaussian tail of ``(x - mean) / sd`` (see :mod:`.base` for the scale).

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 1, 200), 12.0]
>>> s = run_stream(EWMAZScore(alpha=0.05), np.zeros(len(x), np.int32), x)
>>> bool(s[:-1].max() < 0.5), bool(s[-1] > 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check, z_score_to_unit_scalar, z_to_decades

__all__ = ["EWMAZScore", "EWMAZScoreRef"]


class EWMAZScore(Detector):
    """Exponentially weighted mean/variance z-score over all sensors at once.

    Parameters: ``alpha`` (weight of a new reading, 1/alpha ~ memory in readings),
    ``min_std`` (absolute floor on the standard deviation, in the sensor's unit, so a
    perfectly quiet sensor does not score infinity on its first quantisation step),
    ``warmup`` (readings before scores are non-zero), ``threshold``. The weight is
    ``max(alpha, 1/n)``: a plain average over the first readings, so the variance is not
    biased low while it fills (which would inflate early z-scores).
    """

    kind = "ewma"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
    }

    def __init__(
        self, alpha: float = 0.05, *, min_std: float = 0.0, warmup: int = 30, threshold: float = 0.5
    ) -> None:
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.alpha = alpha
        self.min_std = min_std

    def z(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Signed standardised deviation of each reading (0 before warm-up)."""
        s = self._s
        d = value - s["mean"][sensor]
        sd = np.maximum(np.sqrt(s["var"][sensor]), self.min_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d == 0.0, 0.0, d / sd)
        return np.where(s["n"][sensor] >= max(self.warmup, 2), z, 0.0)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        return z_to_decades(self.z(sensor, value))

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        n = s["n"][sensor]
        a = np.maximum(self.alpha, 1.0 / (n + 1.0))  # cumulative average until 1/n < alpha
        d = value - s["mean"][sensor]
        first = n == 0
        s["mean"][sensor] = np.where(first, value, s["mean"][sensor] + a * d)
        s["var"][sensor] = np.where(first, 0.0, (1.0 - a) * (s["var"][sensor] + a * d * d))
        s["n"][sensor] = n + 1


class EWMAZScoreRef:
    """Scalar reference of :class:`EWMAZScore` for one sensor (tests compare the two)."""

    def __init__(self, alpha: float = 0.05, *, min_std: float = 0.0, warmup: int = 30) -> None:
        self.alpha, self.min_std, self.warmup = alpha, min_std, warmup
        self.n, self.mean, self.var = 0, 0.0, 0.0

    def score_one(self, x: float, t: int = 0) -> float:
        if self.n < max(self.warmup, 2) or x != x:
            return 0.0
        d = x - self.mean
        sd = max(math.sqrt(self.var), self.min_std)
        if d == 0.0:
            return 0.0
        return z_score_to_unit_scalar(d / sd if sd > 0 else math.inf)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            d = x - self.mean
            a = max(self.alpha, 1.0 / (self.n + 1.0))
            self.mean += a * d
            self.var = (1 - a) * (self.var + a * d * d)
        self.n += 1
