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
