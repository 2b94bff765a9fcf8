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

__all__ = [
    "CHART_FIELDS",
    "ChartRef",
    "SlowLevel",
    "SlowLevelRef",
    "chart_learn",
    "chart_mean",
    "chart_surprise",
]

_NS = 1_000_000_000


CHART_FIELDS: dict[str, tuple[Any, float]] = {
    "n": (np.int64, 0),
    "t0": (np.int64, 0),
    "tl": (np.int64, 0),
    "m": (np.float64, 0.0),
    "mean": (np.float64, 0.0),
    "var": (np.float64, 0.0),
}
"""State of an EWMA chart (per sensor): readings charted, time of the first and the
last, the time-weighted mean ``m`` and the long-run mean and variance of ``m``."""


def chart_mean(
    s: dict[str, np.ndarray], sensor: np.ndarray, x: np.ndarray, time: np.ndarray, span_s: float
) -> np.ndarray:
    """``m`` updated with ``x`` (weight ``1 - exp(-dt / span_s)``; the first is ``x``)."""
    n = s["n"][sensor]
    dt = np.maximum(time - s["tl"][sensor], 0) / _NS
    w = -np.expm1(-dt / span_s)
    return np.where(n == 0, x, s["m"][sensor] + w * (x - s["m"][sensor]))


def chart_surprise(
    s: dict[str, np.ndarray],
    sensor: np.ndarray,
    m: np.ndarray,
    time: np.ndarray,
    min_age_s: float,
    warmup: int,
) -> np.ndarray:
    """Two-sided Gaussian tail of ``(m - mean) / sd`` in decades; 0 before ``warmup``
    charted readings and ``min_age_s`` seconds of chart history."""
    d = m - s["mean"][sensor]
    sd = np.sqrt(s["var"][sensor])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d == 0.0, 0.0, d / sd)
    age = (time - s["t0"][sensor]) / _NS
    ok = (s["n"][sensor] >= max(warmup, 2)) & (age >= min_age_s)
    return z_to_decades(np.where(ok, z, 0.0))


def chart_learn(
    s: dict[str, np.ndarray], sensor: np.ndarray, m: np.ndarray, time: np.ndarray, long_s: float
) -> None:
    """Store ``m`` and move the long-run mean and variance towards it (time constant
    ``long_s``, weight at least ``1/n``)."""
    n = s["n"][sensor]
    dt = np.maximum(time - s["tl"][sensor], 0) / _NS
    w = np.maximum(-np.expm1(-dt / long_s), 1.0 / (n + 1.0))
    d = m - s["mean"][sensor]
    first = n == 0
    s["mean"][sensor] = np.where(first, m, s["mean"][sensor] + w * d)
    s["var"][sensor] = np.where(first, 0.0, (1.0 - w) * (s["var"][sensor] + w * d * d))
    s["m"][sensor] = m
    s["t0"][sensor] = np.where(first, time, s["t0"][sensor])
    s["tl"][sensor] = time
    s["n"][sensor] = n + 1


class ChartRef:
    """Scalar twin of the chart functions (for the reference implementations)."""

    def __init__(self, span_s: float, long_s: float, min_age_s: float, warmup: int) -> None:
        self.span_s, self.long_s, self.min_age_s, self.warmup = span_s, long_s, min_age_s, warmup
        self.n, self.t0, self.tl = 0, 0, 0
        self.m, self.mean, self.var = 0.0, 0.0, 0.0

    def short(self, x: float, t: int) -> float:
        if self.n == 0:
            return x
        w = -math.expm1(-max(t - self.tl, 0) / _NS / self.span_s)
        return self.m + w * (x - self.m)

    def score(self, m: float, t: int) -> float:
        if self.n < max(self.warmup, 2) or (t - self.t0) / _NS < self.min_age_s:
            return 0.0
        d = m - self.mean
        if d == 0.0:
            return 0.0
        sd = math.sqrt(self.var)
        z = d / sd if sd > 0 else math.inf
        return min(float(z_to_decades(np.array([z]))[0]) / 10.0, 1.0)

    def learn(self, m: float, t: int) -> None:
        if self.n == 0:
            self.mean, self.var, self.t0 = m, 0.0, t
        else:
            w = max(-math.expm1(-max(t - self.tl, 0) / _NS / self.long_s), 1.0 / (self.n + 1.0))
            d = m - self.mean
            self.mean += w * d
            self.var = (1 - w) * (self.var + w * d * d)
        self.m, self.tl = m, t
        self.n += 1


class SlowLevel(Detector):
    """Time-weighted mean over ``span_s`` against its own long-run mean and variance.

    Parameters: ``span_s`` (time constant of the mean; one day by default),
    ``long_s`` (time constant of its long-run distribution; 30 days), ``min_spans``
    (history, in ``span_s``, before scoring), ``warmup`` (readings), ``threshold``.
    """

    kind = "slow"
    self_calibrated = True  # a chart against its own long-run spread (see Detector)
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = CHART_FIELDS

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

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        m = chart_mean(self._s, sensor, value, time, self.span_s)
        return chart_surprise(self._s, sensor, m, time, self.min_spans * self.span_s, self.warmup)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        m = chart_mean(self._s, sensor, value, time, self.span_s)
        chart_learn(self._s, sensor, m, time, self.long_s)


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
        self.chart = ChartRef(span_s, long_s, min_spans * span_s, warmup)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x:
            return 0.0
        return self.chart.score(self.chart.short(x, t), t)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        self.chart.learn(self.chart.short(x, t), t)
