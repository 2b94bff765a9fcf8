"""Slow level: the day's mean against the long-run distribution of day means.

The reading-scale members judge each reading against the recent level and spread, so a
level that moves by less than the reading-to-reading scatter (a temperature a few
degrees low for days, a city's taxi demand a fifth down over a holiday) never stands
out. Averaged over a day, the scatter and the daily swing largely cancel and the shift
does stand out. This is an EWMA control chart (:mod:`.chart`) of the readings
themselves, time constant ``span_s`` (a day), against the long-run mean and variance of
that day mean (``long_s``, 30 days). It scores only after ``min_spans`` time constants
of history. Six numbers per sensor, O(1) per reading.

40 days of 5-minute readings with a daily swing of +-5 and noise sd 3; from day 35 on
the level is 6 lower, within the swing and the scatter of any reading. The first
reading at 0.5 is 562 readings (47 h) after the drop:

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(3)
>>> t = np.arange(288 * 40, dtype=np.int64) * 300 * 10**9
>>> x = 20 + 5 * np.sin(2 * np.pi * np.arange(len(t)) / 288) + rng.normal(0, 3, len(t))
>>> x[288 * 35 :] -= 6.0
>>> s = run_stream(SlowLevel(), np.zeros(len(t), np.int32), x, t)
>>> int(np.argmax(s >= 0.5)) - 288 * 35, float(s[: 288 * 35].max().round(2))
(562, 0.09)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check
from riskwatch.detectors.chart import (
    CHART_FIELDS,
    ChartRef,
    chart_learn,
    chart_mean,
    chart_surprise,
)

__all__ = ["SlowLevel", "SlowLevelRef"]


class SlowLevel(Detector):
    """Time-weighted mean over ``span_s`` against its own long-run mean and variance.

    Parameters
    ----------
    span_s : float
        Time constant of the mean, seconds (one day).
    long_s : float
        Time constant of its long-run mean and variance, seconds (>= ``span_s``).
    min_spans : float
        History before scoring, in ``span_s``.
    warmup : int
        Readings before scoring.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    S. W. Roberts, "Control chart tests based on geometric moving averages",
    *Technometrics* 1 (1959) 239-250.
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
