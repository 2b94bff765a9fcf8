"""Slow level: the day's mean against the long-run distribution of day means.

The reading-scale members judge each reading against the recent level and spread, so a
level that moves by less than the reading-to-reading scatter (a temperature a few
degrees low for days, a city's taxi demand a fifth down over a holiday) never stands
out. Averaged over a day, the scatter and the daily swing largely cancel and the shift
does stand out. Per sensor this keeps

- ``m``: a time-based exponentially weighted mean of the readings with time constant
  ``span_s`` (weight ``1 - exp(-dt / span_s)`` per reading, so the sampling rate does
  not matter and a gap simply weighs the new reading more),
- the mean and variance of ``m`` itself over the long run (time constant ``long_s``,
  weight at least ``1/n`` so the start is a plain average),

and reports the two-sided Gaussian tail of ``(m' - mean) / sd`` in decades (the z
members' scale), ``m'`` being ``m`` updated with the current reading. It scores only
after ``min_spans`` time constants of history. Six numbers per sensor, O(1) per reading.

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(3)
>>> t = np.arange(288 * 40, dtype=np.int64) * 300 * 10**9      # 40 days, 5-min readings
>>> x = 20 + 5 * np.sin(2 * np.pi * np.arange(len(t)) / 288) + rng.normal(0, 3, len(t))
>>> x[288 * 35 :] -= 6.0                                        # 6 low: within sd 3 + swing
>>> s = run_stream(SlowLevel(), np.zeros(len(t), np.int32), x, t)
>>> bool(s[: 288 * 35].max() < 0.5), bool(s[288 * 35 :].max() > 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check, z_to_decades
from riskwatch.detectors.registry import register

__all__ = ["SlowLevel", "SlowLevelRef"]

_NS = 1_000_000_000


@register
class SlowLevel(Detector):
    """Time-weighted mean over ``span_s`` against its own long-run mean and variance.

    Parameters: ``span_s`` (time constant of the mean; one day by default),
    ``long_s`` (time constant of its long-run distribution; 30 days), ``min_spans``
    (history, in ``span_s``, before scoring), ``warmup`` (readings), ``threshold``.
    """

    kind = "slow"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "t0": (np.int64, 0),
        "tl": (np.int64, 0),
        "m": (np.float64, 0.0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
    }

    def __init__(
        self,
        span_s: float = 86400.0,
        *,
        long_s: float = 30 * 86400.0,
        min_spans: float = 3.0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(span_s > 0.0, "span_s", f"must be > 0, got {span_s}")
        check(long_s >= span_s, "long_s", f"must be >= span_s, got {long_s}")
        check(min_spans >= 0.0, "min_spans", f"must be >= 0, got {min_spans}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.span_s, self.long_s, self.min_spans = float(span_s), float(long_s), float(min_spans)

    def _short(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        n = s["n"][sensor]
        dt = np.maximum(time - s["tl"][sensor], 0) / _NS
        w = -np.expm1(-dt / self.span_s)
        return np.where(n == 0, value, s["m"][sensor] + w * (value - s["m"][sensor]))

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        m = self._short(sensor, value, time)
        d = m - s["mean"][sensor]
        sd = np.sqrt(s["var"][sensor])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d == 0.0, 0.0, d / sd)
        age = (time - s["t0"][sensor]) / _NS
        ok = (s["n"][sensor] >= max(self.warmup, 2)) & (age >= self.min_spans * self.span_s)
        return z_to_decades(np.where(ok, z, 0.0))

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        m = self._short(sensor, value, time)
        n = s["n"][sensor]
        dt = np.maximum(time - s["tl"][sensor], 0) / _NS
        w = np.maximum(-np.expm1(-dt / self.long_s), 1.0 / (n + 1.0))
        d = m - s["mean"][sensor]
        first = n == 0
        s["mean"][sensor] = np.where(first, m, s["mean"][sensor] + w * d)
        s["var"][sensor] = np.where(first, 0.0, (1.0 - w) * (s["var"][sensor] + w * d * d))
        s["m"][sensor] = m
        s["t0"][sensor] = np.where(first, time, s["t0"][sensor])
        s["tl"][sensor] = time
        s["n"][sensor] = n + 1


class SlowLevelRef:
    """Scalar reference of :class:`SlowLevel` (tests compare the two)."""

    def __init__(
        self,
        span_s: float = 86400.0,
        *,
        long_s: float = 30 * 86400.0,
        min_spans: float = 3.0,
        warmup: int = 30,
    ) -> None:
        self.span_s, self.long_s, self.min_spans, self.warmup = span_s, long_s, min_spans, warmup
        self.n, self.t0, self.tl = 0, 0, 0
        self.m, self.mean, self.var = 0.0, 0.0, 0.0

    def _short(self, x: float, t: int) -> float:
        if self.n == 0:
            return x
        w = -math.expm1(-max(t - self.tl, 0) / _NS / self.span_s)
        return self.m + w * (x - self.m)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x or self.n < max(self.warmup, 2):
            return 0.0
        if (t - self.t0) / _NS < self.min_spans * self.span_s:
            return 0.0
        d = self._short(x, t) - self.mean
        if d == 0.0:
            return 0.0
        sd = math.sqrt(self.var)
        z = d / sd if sd > 0 else math.inf
        return min(float(z_to_decades(np.array([z]))[0]) / 10.0, 1.0)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        m = self._short(x, t)
        if self.n == 0:
            self.mean, self.var, self.t0 = m, 0.0, t
        else:
            w = max(-math.expm1(-max(t - self.tl, 0) / _NS / self.long_s), 1.0 / (self.n + 1.0))
            d = m - self.mean
            self.mean += w * d
            self.var = (1 - w) * (self.var + w * d * d)
        self.m, self.tl = m, t
        self.n += 1
