"""Surprise density: Numenta-style anomaly likelihood over a level model's own surprises.

A single reading a little off the level is routine; *many* of them in a short span is
not (denser spikes on a load balancer, a temperature that starts to wobble, a variance
increase). Numenta's "anomaly likelihood" turned HTM's raw scores into most of its NAB
score this way: average the raw score over a short window and ask how unusual that
average is against its own long-run distribution.

Here the raw score is an EWMA level model's surprise (``-log10`` two-sided Gaussian tail
of ``(x - mean) / sd``, capped at 10 decades and divided by 10, so in [0, 1]). Per
sensor the detector keeps

- the level model (count, EW mean, EW variance; weight ``max(alpha, 1/n)``),
- the short average ``a`` of the raw score (EW, weight ``short``; 0.1 ~ Numenta's
  10-reading window),
- the long-run mean and variance of ``a`` (EW, weight ``max(long, 1/n)``; 1/8640 ~
  Numenta's historic window of 8640 readings),

and reports ``z = (a - mean_a) / sd_a`` on the z members' scale (``-log10`` of the
two-sided Gaussian tail of ``z``, 5 decades at z = 4.42), for z > 0 only: only a
*higher* than usual density is surprising. ``sd_a`` has a floor ``min_std`` on the
[0, 1] scale so a perfectly regular series does not alarm on its first wobble. Seven
numbers per sensor, O(1) per reading.

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(1)
>>> x = rng.normal(0, 1, 3000); x[2500:2600] = rng.normal(0, 4, 100)  # variance x16
>>> s = run_stream(SurpriseDensity(), np.zeros(len(x), np.int32), x)
>>> bool(s[300:2500].max() < 0.5), bool(s[2500:2600].max() > 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.special import log_ndtr

from riskwatch.detectors.base import Detector, check, z_to_decades
from riskwatch.detectors.registry import register

__all__ = ["SurpriseDensity", "SurpriseDensityRef"]

_LN10 = math.log(10.0)


def _upper_tail_decades(z: np.ndarray) -> np.ndarray:
    """``-log10(2 P(Z >= z))`` for z > 0, else 0: the z members' scale, one side only."""
    return np.maximum(-log_ndtr(-np.maximum(z, 0.0)) / _LN10 - math.log10(2.0), 0.0) + 0.0


@register
class SurpriseDensity(Detector):
    """Short average of a level model's surprise against its long-run distribution.

    Parameters: ``alpha`` (level model weight), ``short`` (weight of the short
    average), ``long`` (weight of its long-run mean/variance), ``min_std`` (floor of
    the long-run standard deviation on the [0, 1] raw scale), ``warmup`` (readings
    before scores are non-zero; Numenta's learning period is 288), ``threshold``.
    """

    kind = "density"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
        "avg": (np.float64, 0.0),
        "m": (np.int64, 0),
        "amean": (np.float64, 0.0),
        "avar": (np.float64, 0.0),
    }

    def __init__(
        self,
        alpha: float = 0.02,
        *,
        short: float = 0.1,
        long: float = 1.0 / 8640,
        min_std: float = 0.01,
        warmup: int = 288,
        threshold: float = 0.5,
    ) -> None:
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(0.0 < short <= 1.0, "short", f"must be in (0, 1], got {short}")
        check(0.0 < long <= 1.0, "long", f"must be in (0, 1], got {long}")
        check(min_std > 0.0, "min_std", f"must be > 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.alpha, self.short, self.long, self.min_std = alpha, short, long, min_std

    def _raw(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Level-model surprise of each reading on [0, 1] (0 until the model has 2)."""
        s = self._s
        d = value - s["mean"][sensor]
        sd = np.sqrt(s["var"][sensor])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d == 0.0, 0.0, d / sd)
        z = np.where(s["n"][sensor] >= 2, z, 0.0)
        return np.minimum(z_to_decades(z), 10.0) / 10.0

    def _avg(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        s = self._s
        r = self._raw(sensor, value)
        first = s["n"][sensor] == 0
        return np.where(first, r, s["avg"][sensor] + self.short * (r - s["avg"][sensor]))

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        a = self._avg(sensor, value)
        sd = np.maximum(np.sqrt(s["avar"][sensor]), self.min_std)
        z = (a - s["amean"][sensor]) / sd
        ok = (s["n"][sensor] >= max(self.warmup, 2)) & (s["m"][sensor] >= 2)
        return np.where(ok, _upper_tail_decades(z), 0.0)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        a = self._avg(sensor, value)
        # long-run distribution of the short average
        m = s["m"][sensor]
        w = np.maximum(self.long, 1.0 / (m + 1.0))
        da = a - s["amean"][sensor]
        s["amean"][sensor] = np.where(m == 0, a, s["amean"][sensor] + w * da)
        s["avar"][sensor] = np.where(m == 0, 0.0, (1.0 - w) * (s["avar"][sensor] + w * da * da))
        s["m"][sensor] = m + 1
        s["avg"][sensor] = a
        # level model
        n = s["n"][sensor]
        b = np.maximum(self.alpha, 1.0 / (n + 1.0))
        d = value - s["mean"][sensor]
        first = n == 0
        s["mean"][sensor] = np.where(first, value, s["mean"][sensor] + b * d)
        s["var"][sensor] = np.where(first, 0.0, (1.0 - b) * (s["var"][sensor] + b * d * d))
        s["n"][sensor] = n + 1


class SurpriseDensityRef:
    """Scalar reference of :class:`SurpriseDensity` (tests compare the two)."""

    def __init__(
        self,
        alpha: float = 0.02,
        *,
        short: float = 0.1,
        long: float = 1.0 / 8640,
        min_std: float = 0.01,
        warmup: int = 288,
    ) -> None:
        self.alpha, self.short, self.long, self.min_std, self.warmup = (
            alpha, short, long, min_std, warmup
        )  # fmt: skip
        self.n, self.mean, self.var = 0, 0.0, 0.0
        self.avg, self.m, self.amean, self.avar = 0.0, 0, 0.0, 0.0

    def _raw(self, x: float) -> float:
        if self.n < 2:
            return 0.0
        d = x - self.mean
        if d == 0.0:
            return 0.0
        sd = math.sqrt(self.var)
        z = d / sd if sd > 0 else math.inf
        return min(float(z_to_decades(np.array([z]))[0]), 10.0) / 10.0

    def _a(self, x: float) -> float:
        r = self._raw(x)
        return r if self.n == 0 else self.avg + self.short * (r - self.avg)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x or self.n < max(self.warmup, 2) or self.m < 2:
            return 0.0
        sd = max(math.sqrt(self.avar), self.min_std)
        z = (self._a(x) - self.amean) / sd
        return min(float(_upper_tail_decades(np.array([z]))[0]) / 10.0, 1.0)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        a = self._a(x)
        if self.m == 0:
            self.amean, self.avar = a, 0.0
        else:
            w = max(self.long, 1.0 / (self.m + 1.0))
            da = a - self.amean
            self.amean += w * da
            self.avar = (1 - w) * (self.avar + w * da * da)
        self.m += 1
        self.avg = a
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            b = max(self.alpha, 1.0 / (self.n + 1.0))
            d = x - self.mean
            self.mean += b * d
            self.var = (1 - b) * (self.var + b * d * d)
        self.n += 1
