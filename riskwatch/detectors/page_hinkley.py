"""Page–Hinkley: a change of the mean against the whole history (or a long memory).

Classic PH compares each reading with the running mean of everything seen so far:
``m+ = sum(z - delta)``, ``PH+ = m+ - min(m+)`` (and the mirror for decreases), with
``z`` standardised by the running standard deviation so ``delta`` and ``lam`` are in
sigmas. It suits slow monotone drift (a methane background creeping up week by week),
where a CUSUM on an adapting baseline would follow the drift. ``alpha = 0`` uses the
cumulative mean; ``alpha > 0`` forgets old readings. The statistic and the mean restart
after an alarm (as river's ``PageHinkley`` does).

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(2)
>>> x = rng.normal(0, 1, 1500) + np.r_[np.zeros(500), np.linspace(0, 3, 1000)]
>>> s = run_stream(PageHinkley(), np.zeros(len(x), np.int32), x)
>>> bool(s[:500].max() < 0.5), bool(s.max() >= 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check

_ZMAX = 1e6  # a quiet sensor that moves gives an infinite z; keep the sums finite

__all__ = ["PageHinkley", "PageHinkleyRef"]


class PageHinkley(Detector):
    """Two-sided standardised Page–Hinkley test over all sensors."""

    kind = "page_hinkley"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "m": (np.int64, 0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
        "cp": (np.float64, 0.0),
        "mp": (np.float64, 0.0),
        "cn": (np.float64, 0.0),
        "mn": (np.float64, 0.0),
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
        cp = s["cp"][sensor] + z - self.delta
        cn = s["cn"][sensor] - z - self.delta
        mp = np.minimum(s["mp"][sensor], cp)
        mn = np.minimum(s["mn"][sensor], cn)
        return cp, mp, cn, mn

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        cp, mp, cn, mn = self._stats(sensor, value)
        return 5.0 * np.maximum(cp - mp, cn - mn) / self.lam

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        cp, mp, cn, mn = self._stats(sensor, value)
        alarm = np.maximum(cp - mp, cn - mn) >= self.lam
        n, m = s["n"][sensor], s["m"][sensor]
        mean, var = s["mean"][sensor], s["var"][sensor]
        a = np.maximum(self.alpha, 1.0 / (m + 1.0))
        d = value - mean
        new_mean = np.where(m == 0, value, mean + a * d)
        new_var = np.where(n == 0, 0.0, (1.0 - a) * (var + a * d * d))
        new_var = np.where(m == 0, var, new_var)  # after a restart keep the learned spread
        s["mean"][sensor] = np.where(alarm, value, new_mean)
        s["var"][sensor] = new_var
        s["m"][sensor] = np.where(alarm, 1, m + 1)
        for k, v in (("cp", cp), ("mp", mp), ("cn", cn), ("mn", mn)):
            s[k][sensor] = np.where(alarm, 0.0, v)
        s["n"][sensor] = n + 1


class PageHinkleyRef:
    """Scalar reference of :class:`PageHinkley`."""

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
        self.n = self.m = 0
        self.mean = self.var = self.cp = self.mp = self.cn = self.mn = 0.0

    def _stats(self, x: float) -> tuple[float, float, float, float]:
        z = 0.0
        if self.n >= max(self.warmup, 2):
            d = x - self.mean
            sd = max(math.sqrt(self.var), self.min_std)
            z = 0.0 if d == 0.0 else (d / sd if sd > 0 else math.copysign(math.inf, d))
            z = min(max(z, -_ZMAX), _ZMAX)
        cp = self.cp + z - self.delta
        cn = self.cn - z - self.delta
        return cp, min(self.mp, cp), cn, min(self.mn, cn)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x:
            return 0.0
        cp, mp, cn, mn = self._stats(x)
        return min(1.0, 0.5 * max(cp - mp, cn - mn) / self.lam)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        cp, mp, cn, mn = self._stats(x)
        alarm = max(cp - mp, cn - mn) >= self.lam
        a = max(self.alpha, 1.0 / (self.m + 1.0))
        d = x - self.mean
        if self.m == 0:
            new_mean, new_var = x, self.var
        else:
            new_mean = self.mean + a * d
            new_var = (1 - a) * (self.var + a * d * d)
        if self.n == 0:
            new_var = 0.0
        self.var = new_var
        if alarm:
            self.mean, self.m = x, 1
            self.cp = self.mp = self.cn = self.mn = 0.0
        else:
            self.mean, self.m = new_mean, self.m + 1
            self.cp, self.mp, self.cn, self.mn = cp, mp, cn, mn
        self.n += 1
