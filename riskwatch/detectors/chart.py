"""EWMA control chart of a statistic: the part ``slow`` and ``seasonal_shift`` share.

Per sensor the chart keeps a time-weighted exponentially weighted mean of its input
(time constant ``span_s``: weight ``1 - exp(-dt / span_s)`` per reading, so the sampling
rate does not matter and a gap simply weighs the new reading more) and the long-run
mean and variance of that mean itself (time constant ``long_s``, weight at least
``1/n`` so the start is a plain average). Its surprise is the two-sided Gaussian tail
of ``(mean' - long_mean) / long_sd`` in decades, ``mean'`` being the short mean updated
with the current reading: a departure smaller than the reading-to-reading scatter
stands out once it has lasted about ``span_s``.

The functions work on a detector's state arrays (``CHART_FIELDS``) for the readings of
one round; :class:`ChartRef` is their scalar twin for the reference implementations.

References
----------
S. W. Roberts, "Control chart tests based on geometric moving averages",
*Technometrics* 1 (1959) 239-250.

>>> import numpy as np
>>> state = {k: np.full(1, init, dtype=dt) for k, (dt, init) in CHART_FIELDS.items()}
>>> sensor, hour = np.array([0]), 3600 * 10**9
>>> for i, x in enumerate([1.0, 1.2, 0.9, 1.1, 1.0, 1.1]):
...     t = np.array([i * hour])
...     chart_learn(state, sensor, chart_mean(state, sensor, np.array([x]), t, 3600.0), t, 86400.0)
>>> t = np.array([6 * hour])   # an hour later 1.5: the short mean moves to 1.34
>>> short = chart_mean(state, sensor, np.array([1.5]), t, 3600.0)
>>> short.round(2).tolist(), chart_surprise(state, sensor, short, t, 0.0, 2).round(2).tolist()
([1.34], [9.32])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from riskwatch.detectors.base import z_to_decades

__all__ = ["CHART_FIELDS", "ChartRef", "chart_learn", "chart_mean", "chart_surprise"]

_NS = 1_000_000_000

CHART_FIELDS: dict[str, tuple[Any, float]] = {
    "charted": (np.int64, 0),  # readings charted
    "first_t": (np.int64, 0),  # time of the first charted reading
    "last_t": (np.int64, 0),  # time of the last
    "short_mean": (np.float64, 0.0),  # time-weighted EW mean of the input
    "long_mean": (np.float64, 0.0),  # long-run mean of short_mean
    "long_var": (np.float64, 0.0),  # and its variance
}
"""State of an EWMA chart (per sensor)."""


def chart_mean(
    s: dict[str, np.ndarray], sensor: np.ndarray, x: np.ndarray, time: np.ndarray, span_s: float
) -> np.ndarray:
    """The short mean updated with ``x`` (weight ``1 - exp(-dt / span_s)``; the first
    is ``x``)."""
    n = s["charted"][sensor]
    dt = np.maximum(time - s["last_t"][sensor], 0) / _NS
    w = -np.expm1(-dt / span_s)
    short = s["short_mean"][sensor]
    return np.where(n == 0, x, short + w * (x - short))


def chart_surprise(
    s: dict[str, np.ndarray],
    sensor: np.ndarray,
    short: np.ndarray,
    time: np.ndarray,
    min_age_s: float,
    warmup: int,
) -> np.ndarray:
    """Two-sided Gaussian tail of ``(short - long_mean) / long_sd`` in decades; 0 before
    ``warmup`` charted readings and ``min_age_s`` seconds of chart history."""
    d = short - s["long_mean"][sensor]
    sd = np.sqrt(s["long_var"][sensor])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d == 0.0, 0.0, d / sd)
    age_s = (time - s["first_t"][sensor]) / _NS
    ok = (s["charted"][sensor] >= max(warmup, 2)) & (age_s >= min_age_s)
    return z_to_decades(np.where(ok, z, 0.0))


def chart_learn(
    s: dict[str, np.ndarray],
    sensor: np.ndarray,
    short: np.ndarray,
    time: np.ndarray,
    long_s: float,
) -> None:
    """Store the short mean and move the long-run mean and variance towards it (time
    constant ``long_s``, weight at least ``1/n``)."""
    n = s["charted"][sensor]
    dt = np.maximum(time - s["last_t"][sensor], 0) / _NS
    w = np.maximum(-np.expm1(-dt / long_s), 1.0 / (n + 1.0))
    d = short - s["long_mean"][sensor]
    first = n == 0
    s["long_mean"][sensor] = np.where(first, short, s["long_mean"][sensor] + w * d)
    s["long_var"][sensor] = np.where(first, 0.0, (1.0 - w) * (s["long_var"][sensor] + w * d * d))
    s["short_mean"][sensor] = short
    s["first_t"][sensor] = np.where(first, time, s["first_t"][sensor])
    s["last_t"][sensor] = time
    s["charted"][sensor] = n + 1


class ChartRef:
    """Scalar twin of the chart functions (for the reference implementations)."""

    def __init__(self, span_s: float, long_s: float, min_age_s: float, warmup: int) -> None:
        self.span_s, self.long_s, self.min_age_s, self.warmup = span_s, long_s, min_age_s, warmup
        self.n, self.first_t, self.last_t = 0, 0, 0
        self.short_mean, self.long_mean, self.long_var = 0.0, 0.0, 0.0

    def short(self, x: float, t: int) -> float:
        """The short mean updated with ``x`` at ``t``."""
        if self.n == 0:
            return x
        w = -math.expm1(-max(t - self.last_t, 0) / _NS / self.span_s)
        return self.short_mean + w * (x - self.short_mean)

    def score(self, short: float, t: int) -> float:
        """Score of a short mean at ``t`` (pure)."""
        if self.n < max(self.warmup, 2) or (t - self.first_t) / _NS < self.min_age_s:
            return 0.0
        d = short - self.long_mean
        if d == 0.0:
            return 0.0
        sd = math.sqrt(self.long_var)
        z = d / sd if sd > 0 else math.inf
        return min(float(z_to_decades(np.array([z]))[0]) / 10.0, 1.0)

    def learn(self, short: float, t: int) -> None:
        """Learn a short mean at ``t``."""
        if self.n == 0:
            self.long_mean, self.long_var, self.first_t = short, 0.0, t
        else:
            w = max(-math.expm1(-max(t - self.last_t, 0) / _NS / self.long_s), 1.0 / (self.n + 1.0))
            d = short - self.long_mean
            self.long_mean += w * d
            self.long_var = (1 - w) * (self.long_var + w * d * d)
        self.short_mean, self.last_t = short, t
        self.n += 1
