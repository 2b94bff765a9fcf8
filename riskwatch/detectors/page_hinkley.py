"""Page–Hinkley: a change of the mean against the whole history (or a long memory).

Classic PH compares each reading with the running mean of everything seen so far:
``m+ = sum(z - delta)``, ``PH+ = m+ - min(m+)`` (and the mirror for decreases), with
``z`` standardised by the running standard deviation so ``delta`` and ``lam`` are in
sigmas. It suits slow monotone drift (a methane background creeping up week by week),
where a CUSUM on an adapting baseline would follow the drift. ``alpha = 0`` uses the
cumulative mean; ``alpha > 0`` forgets old readings. The statistic and the mean restart
after an alarm (as river's ``PageHinkley`` does).

Standard normal noise whose mean starts to creep up at reading 500 (by 3 sigma over
the next 1000 readings): the first alarm comes at reading 691, then the test restarts
on the new level and alarms again as the drift continues:

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(2)
>>> x = rng.normal(0, 1, 1500) + np.r_[np.zeros(500), np.linspace(0, 3, 1000)]
>>> s = run_stream(PageHinkley(), np.zeros(len(x), np.int32), x)
>>> np.flatnonzero(s >= 0.5).tolist(), float(s[:500].max().round(3))
([691, 974, 1300], 0.183)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check

_ZMAX = 1e6  # a quiet sensor that moves gives an infinite z; keep the sums finite

__all__ = ["PageHinkley", "PageHinkleyRef"]


class PageHinkley(Detector):
    """Two-sided standardised Page–Hinkley test over all sensors.

    Surprise ``5 * max(PH+, PH-) / lam`` (score 0.5 at the alarm ``lam``).

    Parameters
    ----------
    delta : float
        Allowance in sigmas (magnitude of changes that are not worth an alarm).
    lam : float
        Alarm level of the statistic in sigmas.
    alpha : float
        0 compares with the mean of everything seen since the last alarm; in (0, 1) a
        forgetting weight for the mean and variance (at least ``1/m`` after ``m``
        readings since the last alarm).
    min_std : float
        Floor on sigma in the sensor's unit.
    warmup : int
        Readings before the statistic moves.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    E. S. Page, "Continuous inspection schemes", *Biometrika* 41 (1954) 100-115.
    D. V. Hinkley, "Inference about the change-point from cumulative sum tests",
    *Biometrika* 58 (1971) 509-523.
    """

    kind = "page_hinkley"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "since_alarm": (np.int64, 0),  # readings since the last alarm (or the start)
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
        "cum_up": (np.float64, 0.0),
        "min_up": (np.float64, 0.0),
        "cum_down": (np.float64, 0.0),
        "min_down": (np.float64, 0.0),
    }

    def __init__(
        self,
        delta: float = 0.25,
        lam: float = 25.0,
        *,
        alpha: float = 0.0,
        min_std: float = 0.0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(delta >= 0.0, "delta", f"must be >= 0, got {delta}")
        check(lam > 0.0, "lam", f"must be > 0, got {lam}")
        check(0.0 <= alpha < 1.0, "alpha", f"must be in [0, 1), got {alpha}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.delta, self.lam, self.alpha, self.min_std = delta, lam, alpha, min_std

    def _stats(self, sensor: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, ...]:
        s = self._s
        d = value - s["mean"][sensor]
        sd = np.maximum(np.sqrt(s["var"][sensor]), self.min_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.clip(np.where(d == 0.0, 0.0, d / sd), -_ZMAX, _ZMAX)
        z = np.where(s["n"][sensor] >= max(self.warmup, 2), z, 0.0)
        cum_up = s["cum_up"][sensor] + z - self.delta
        cum_down = s["cum_down"][sensor] - z - self.delta
        min_up = np.minimum(s["min_up"][sensor], cum_up)
        min_down = np.minimum(s["min_down"][sensor], cum_down)
        return cum_up, min_up, cum_down, min_down

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        cum_up, min_up, cum_down, min_down = self._stats(sensor, value)
        return 5.0 * np.maximum(cum_up - min_up, cum_down - min_down) / self.lam

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        cum_up, min_up, cum_down, min_down = self._stats(sensor, value)
        alarm = np.maximum(cum_up - min_up, cum_down - min_down) >= self.lam
        n, since_alarm = s["n"][sensor], s["since_alarm"][sensor]
        mean, var = s["mean"][sensor], s["var"][sensor]
        a = np.maximum(self.alpha, 1.0 / (since_alarm + 1.0))
        d = value - mean
        new_mean = np.where(since_alarm == 0, value, mean + a * d)
        new_var = np.where(n == 0, 0.0, (1.0 - a) * (var + a * d * d))
        # after a restart keep the learned spread
        new_var = np.where(since_alarm == 0, var, new_var)
        s["mean"][sensor] = np.where(alarm, value, new_mean)
        s["var"][sensor] = new_var
        s["since_alarm"][sensor] = np.where(alarm, 1, since_alarm + 1)
        statistics = {"cum_up": cum_up, "min_up": min_up, "cum_down": cum_down}
        statistics["min_down"] = min_down
        for k, v in statistics.items():
            s[k][sensor] = np.where(alarm, 0.0, v)
        s["n"][sensor] = n + 1


class PageHinkleyRef:
    """Scalar reference of :class:`PageHinkley` for one sensor (same parameters)."""

    def __init__(
        self,
        delta: float = 0.25,
        lam: float = 25.0,
        *,
        alpha: float = 0.0,
        min_std: float = 0.0,
        warmup: int = 30,
    ) -> None:
        self.delta, self.lam, self.alpha, self.min_std = delta, lam, alpha, min_std
        self.warmup = warmup
        self.n = self.since_alarm = 0
        self.mean = self.var = 0.0
        self.cum_up = self.min_up = self.cum_down = self.min_down = 0.0

    def _stats(self, x: float) -> tuple[float, float, float, float]:
        z = 0.0
        if self.n >= max(self.warmup, 2):
            d = x - self.mean
            sd = max(math.sqrt(self.var), self.min_std)
            z = 0.0 if d == 0.0 else (d / sd if sd > 0 else math.copysign(math.inf, d))
            z = min(max(z, -_ZMAX), _ZMAX)
        cum_up = self.cum_up + z - self.delta
        cum_down = self.cum_down - z - self.delta
        return cum_up, min(self.min_up, cum_up), cum_down, min(self.min_down, cum_down)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x:
            return 0.0
        cum_up, min_up, cum_down, min_down = self._stats(x)
        return min(1.0, 0.5 * max(cum_up - min_up, cum_down - min_down) / self.lam)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        cum_up, min_up, cum_down, min_down = self._stats(x)
        alarm = max(cum_up - min_up, cum_down - min_down) >= self.lam
        a = max(self.alpha, 1.0 / (self.since_alarm + 1.0))
        d = x - self.mean
        if self.since_alarm == 0:
            new_mean, new_var = x, self.var
        else:
            new_mean = self.mean + a * d
            new_var = (1 - a) * (self.var + a * d * d)
        if self.n == 0:
            new_var = 0.0
        self.var = new_var
        if alarm:
            self.mean, self.since_alarm = x, 1
            self.cum_up = self.min_up = self.cum_down = self.min_down = 0.0
        else:
            self.mean, self.since_alarm = new_mean, self.since_alarm + 1
            self.cum_up, self.min_up = cum_up, min_up
            self.cum_down, self.min_down = cum_down, min_down
        self.n += 1
