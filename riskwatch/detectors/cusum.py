"""Two-sided CUSUM: small persistent shifts of the mean, e.g. a drifting pressure transmitter.

Each reading is standardised against a slowly adapting baseline (EWMA mean and
variance with weight ``alpha``); the upper and lower sums
``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)`` accumulate evidence of a shift
larger than ``k`` sigmas; the alarm is ``max(S+, S-) >= h`` (score 0.5), after which
both sums restart and the baseline jumps to the new level. For ``k = 0.5`` and
``h = 8`` the in-control average run length is about 10^5 readings.

300 standard normal readings, then the mean shifts by 1.5 sigma: the first alarm comes
6 readings later, and after each alarm the sums restart on the new level:

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(1)
>>> x = np.r_[rng.normal(0, 1, 300), rng.normal(1.5, 1, 100)]
>>> s = run_stream(Cusum(), np.zeros(len(x), np.int32), x)
>>> np.flatnonzero(s >= 0.5).tolist(), float(s[:300].max().round(3))
([306, 316, 332], 0.222)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, check

_ZMAX = 1e6  # a quiet sensor that moves gives an infinite z; keep the sums finite

__all__ = ["Cusum", "CusumRef"]


class Cusum(Detector):
    """Two-sided standardised CUSUM over all sensors; ``k`` and ``h`` in sigmas.

    Surprise ``5 * max(S+, S-) / h`` (score 0.5 at the alarm ``h``).

    Parameters
    ----------
    alpha : float
        Weight of a reading in the baseline mean and variance, in (0, 1] (at least
        ``1/n``: a plain average at the start).
    k : float
        Allowance in sigmas: shifts smaller than ``k`` do not accumulate (0.5 tunes the
        chart to a shift of about one sigma).
    h : float
        Alarm level of the sums in sigmas.
    min_std : float
        Floor on the baseline sigma in the sensor's unit.
    warmup : int
        Readings before the sums move.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    E. S. Page, "Continuous inspection schemes", *Biometrika* 41 (1954) 100-115.
    D. C. Montgomery, *Introduction to Statistical Quality Control*, 6th ed., Wiley,
    2009, section 9.1 (the tabular CUSUM; ``k = 0.5``, ``h`` 4-5 for shifts of one
    sigma; ``h = 8`` here for a long in-control run length on fleet-scale streams).
    """

    kind = "cusum"
    row_state = True
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
        "sum_up": (np.float64, 0.0),
        "sum_down": (np.float64, 0.0),
    }

    def __init__(
        self,
        alpha: float = 0.01,
        *,
        k: float = 0.5,
        h: float = 8.0,
        min_std: float = 0.0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(k >= 0.0, "k", f"must be >= 0, got {k}")
        check(h > 0.0, "h", f"must be > 0, got {h}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.alpha, self.k, self.h, self.min_std = alpha, k, h, min_std

    def _sums(self, sensor: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self._s
        d = value - s["mean"][sensor]
        sd = np.maximum(np.sqrt(s["var"][sensor]), self.min_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.clip(np.where(d == 0.0, 0.0, d / sd), -_ZMAX, _ZMAX)
        z = np.where(s["n"][sensor] >= max(self.warmup, 2), z, 0.0)
        sum_up = np.maximum(0.0, s["sum_up"][sensor] + z - self.k)
        sum_down = np.maximum(0.0, s["sum_down"][sensor] - z - self.k)
        return sum_up, sum_down

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        sum_up, sum_down = self._sums(sensor, value)
        return 5.0 * np.maximum(sum_up, sum_down) / self.h

    def step_rows(
        self,
        st: dict[str, np.ndarray],
        value: np.ndarray,
        time: np.ndarray,
        need: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`_surprise` then :meth:`_learn` on gathered state (updated in place), the
        sums computed once (identical numbers)."""
        n, mean, var = st["n"], st["mean"], st["var"]
        sum_up, sum_down = st["sum_up"], st["sum_down"]
        n_min = float(n.min())  # past warm-up everywhere (the usual case): fewer masks
        d = value - mean
        scored = n_min >= max(self.warmup, 2) or n >= max(self.warmup, 2)
        if np.any(scored):
            sd = np.sqrt(var)
            if self.min_std:
                sd = np.maximum(sd, self.min_std)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(d == 0.0, 0.0, d / sd)
            np.maximum(z, -_ZMAX, out=z)  # clip
            np.minimum(z, _ZMAX, out=z)
            if not np.all(scored):
                z = np.where(scored, z, 0.0)
            np.maximum(0.0, sum_up + z - self.k, out=sum_up)
            np.maximum(0.0, sum_down - z - self.k, out=sum_down)
        else:  # z = 0
            np.maximum(0.0, sum_up + 0.0 - self.k, out=sum_up)
            np.maximum(0.0, sum_down - 0.0 - self.k, out=sum_down)
        top = np.maximum(sum_up, sum_down)
        out = 5.0 * top / self.h
        alarm = top >= self.h
        # max(alpha, 1/(n+1)) is alpha for every reading once 1/(n_min+1) <= alpha
        a = (
            self.alpha
            if 1.0 / (n_min + 1.0) <= self.alpha
            else np.maximum(self.alpha, 1.0 / (n + 1.0))
        )
        ad = a * d
        first = n == 0 if n_min == 0.0 else False
        reset = first | alarm
        # mean + a * d and (1 - a) * (var + a * d * d), in place
        mean += ad
        ad *= d
        var += ad
        var *= 1.0 - a
        if reset.any():
            np.copyto(mean, value, where=reset)
            if n_min == 0.0:
                var[first] = 0.0
            sum_up[alarm] = 0.0
            sum_down[alarm] = 0.0
        n += 1
        return out

    def block_kernel(self) -> tuple[int, tuple[float, ...]] | None:
        if not kernels.JIT:
            return None
        return kernels.CUSUM, (self.alpha, self.k, self.h, self.min_std, float(self.warmup), _ZMAX)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        sum_up, sum_down = self._sums(sensor, value)
        alarm = np.maximum(sum_up, sum_down) >= self.h
        n = s["n"][sensor]
        a = np.maximum(self.alpha, 1.0 / (n + 1.0))
        d = value - s["mean"][sensor]
        first = n == 0
        mean = np.where(first | alarm, value, s["mean"][sensor] + a * d)
        var = np.where(first, 0.0, (1.0 - a) * (s["var"][sensor] + a * d * d))
        s["mean"][sensor] = mean
        s["var"][sensor] = var
        s["sum_up"][sensor] = np.where(alarm, 0.0, sum_up)
        s["sum_down"][sensor] = np.where(alarm, 0.0, sum_down)
        s["n"][sensor] = n + 1


class CusumRef:
    """Scalar reference of :class:`Cusum` for one sensor (same parameters)."""

    def __init__(
        self,
        alpha: float = 0.01,
        *,
        k: float = 0.5,
        h: float = 8.0,
        min_std: float = 0.0,
        warmup: int = 30,
    ) -> None:
        self.alpha, self.k, self.h, self.min_std, self.warmup = alpha, k, h, min_std, warmup
        self.n, self.mean, self.var, self.sum_up, self.sum_down = 0, 0.0, 0.0, 0.0, 0.0

    def _sums(self, x: float) -> tuple[float, float]:
        z = 0.0
        if self.n >= max(self.warmup, 2):
            d = x - self.mean
            sd = max(math.sqrt(self.var), self.min_std)
            z = 0.0 if d == 0.0 else (d / sd if sd > 0 else math.copysign(math.inf, d))
            z = min(max(z, -_ZMAX), _ZMAX)
        return max(0.0, self.sum_up + z - self.k), max(0.0, self.sum_down - z - self.k)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x:
            return 0.0
        sum_up, sum_down = self._sums(x)
        return min(1.0, 0.5 * max(sum_up, sum_down) / self.h)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        sum_up, sum_down = self._sums(x)
        alarm = max(sum_up, sum_down) >= self.h
        d = x - self.mean
        a = max(self.alpha, 1.0 / (self.n + 1.0))
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            self.mean = x if alarm else self.mean + a * d
            self.var = (1 - a) * (self.var + a * d * d)
        self.sum_up, self.sum_down = (0.0, 0.0) if alarm else (sum_up, sum_down)
        self.n += 1
