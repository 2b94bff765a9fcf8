"""Robust z-score: a streaming median/MAD-like location and scale that outliers cannot drag.

The location follows the Huber M-estimator step (a residual is clipped at ``c`` robust
sigmas before it moves the estimate, so single spikes barely move it and the estimate
sits near the median); the scale is an exponentially weighted mean absolute deviation
of clipped residuals (``sigma = 1.2533 * mad`` for Gaussian data). During warm-up both
are plain EWMAs. Use it for spiky signals (dust, CO near blasting) where one spike
would otherwise inflate the EWMA variance and hide the next.

A square wave between 0 and 1, a spike of 50 at reading 100, the wave again and a 9
at reading 111: both are detected, and the first spike did not inflate the scale so
much that it hides the second (an EWMA variance would have):

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> x = np.r_[np.tile([0.0, 1.0], 50), 50.0, np.tile([0.0, 1.0], 5), 9.0]
>>> s = run_stream(RobustZScore(alpha=0.05), np.zeros(len(x), np.int32), x)
>>> np.flatnonzero(s >= 0.5).tolist()
[100, 111]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, check, z_score_to_unit_scalar, z_to_decades

__all__ = ["RobustZScore", "RobustZScoreRef"]

_K = 1.2533  # sigma / mean-absolute-deviation for a Gaussian
_Z_DECADE = 1.64  # |z| below this: two-sided tail > 0.1, i.e. surprise < 1 decade


class RobustZScore(Detector):
    """Huber-location / mean-absolute-deviation z-score over all sensors.

    Per sensor: the reading count, the location and the mean absolute deviation of
    clipped residuals; the z-score is ``(x - loc) / max(1.2533 * mad, min_std)``
    (1.2533 = sigma / mean absolute deviation for a Gaussian). The weight of a reading
    is ``max(alpha, 1/n)``, so the start is a plain average; residuals are clipped only
    once past ``warmup``.

    Parameters
    ----------
    alpha : float
        Weight of a new reading, in (0, 1] (1/alpha ~ the memory in readings).
    c : float
        Clipping point of a residual in robust sigmas (1.345 is Huber's constant for
        95 % efficiency at the Gaussian); the deviation is clipped at 3 sigmas.
    min_std : float
        Floor on sigma in the sensor's unit, so a quiet sensor does not score infinity
        on its first quantisation step.
    warmup : int
        Readings before scoring.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    P. J. Huber, "Robust estimation of a location parameter", *Annals of Mathematical
    Statistics* 35 (1964) 73-101.
    """

    kind = "robust"
    row_state = True
    lazy_low = True
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "loc": (np.float64, 0.0),
        "mad": (np.float64, 0.0),
    }

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        c: float = 1.345,
        min_std: float = 0.0,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(c > 0.0, "c", f"must be > 0, got {c}")
        check(min_std >= 0.0, "min_std", f"must be >= 0, got {min_std}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.alpha, self.c, self.min_std = alpha, c, min_std

    def z(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        s = self._s
        d = value - s["loc"][sensor]
        sd = np.maximum(_K * s["mad"][sensor], self.min_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d == 0.0, 0.0, d / sd)
        return np.where(s["n"][sensor] >= max(self.warmup, 2), z, 0.0)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        return z_to_decades(self.z(sensor, value))

    def step_rows(
        self,
        st: dict[str, np.ndarray],
        value: np.ndarray,
        time: np.ndarray,
        need: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`_surprise` then :meth:`_learn` on gathered state (updated in place):
        the same per-element operations, so identical numbers."""
        n, loc, mad = st["n"], st["loc"], st["mad"]
        n_min = float(n.min())  # past warm-up everywhere (the usual case): fewer masks
        d = value - loc
        sd = _K * mad
        scored = n_min >= max(self.warmup, 2) or n >= max(self.warmup, 2)
        if np.any(scored):
            sdf = np.maximum(sd, self.min_std) if self.min_std else sd  # sd >= 0
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(d == 0.0, 0.0, d / sdf)
            z = z if np.all(scored) else np.where(scored, z, 0.0)
            if need is None:
                out = z_to_decades(z)
            else:  # the Gaussian tail only where it may reach a decade, or is needed
                out = np.zeros(len(value))
                look = np.flatnonzero((np.abs(z) >= _Z_DECADE) | need)
                out[look] = z_to_decades(z[look])
        else:
            out = np.zeros(len(value))
        # max(alpha, 1/(n+1)) is alpha for every reading once 1/(n_min+1) <= alpha
        a = (
            self.alpha
            if 1.0 / (n_min + 1.0) <= self.alpha
            else np.maximum(self.alpha, 1.0 / (n + 1.0))
        )
        robust = sd > 0 if n_min >= self.warmup else (n >= self.warmup) & (sd > 0)
        if robust.all():
            lim = self.c * sd
            psi = np.minimum(np.maximum(d, -lim), lim)
            dev = np.minimum(np.abs(d), 3.0 * sd)
        elif not robust.any():
            psi, dev = d, np.abs(d)
        else:
            lim = np.where(robust, self.c * sd, np.inf)
            psi = np.minimum(np.maximum(d, -lim), lim)
            dev = np.minimum(np.abs(d), np.where(robust, 3.0 * sd, np.inf))
        first = n == 0 if n_min == 0.0 else None
        if first is not None and first.any():
            np.copyto(loc, np.where(first, value, loc + a * psi))
            np.copyto(mad, np.where(first, 0.0, mad + a * (dev - mad)))
        else:  # loc + a * psi and mad + a * (dev - mad), in place
            loc += a * psi
            dev -= mad
            dev *= a
            mad += dev
        n += 1
        return out

    def block_kernel(self) -> tuple[int, tuple[float, ...]] | None:
        if not kernels.JIT:
            return None
        return kernels.ROBUST, (self.alpha, self.c, self.min_std, float(self.warmup), _K)

    def finish_kernel(
        self, raw: np.ndarray, aux: np.ndarray, need: np.ndarray | None = None
    ) -> np.ndarray:
        if need is None:  # raw: z
            return z_to_decades(raw)
        out = np.zeros(len(raw))
        look = np.flatnonzero((np.abs(raw) >= _Z_DECADE) | need)
        out[look] = z_to_decades(raw[look])
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        n = s["n"][sensor]
        a = np.maximum(self.alpha, 1.0 / (n + 1.0))
        loc, mad = s["loc"][sensor], s["mad"][sensor]
        d = value - loc
        sd = _K * mad
        robust = (n >= self.warmup) & (sd > 0)
        lim = np.where(robust, self.c * sd, np.inf)
        psi = np.clip(d, -lim, lim)
        dev = np.minimum(np.abs(d), np.where(robust, 3.0 * sd, np.inf))
        first = n == 0
        s["loc"][sensor] = np.where(first, value, loc + a * psi)
        s["mad"][sensor] = np.where(first, 0.0, mad + a * (dev - mad))
        s["n"][sensor] = n + 1


class RobustZScoreRef:
    """Scalar reference of :class:`RobustZScore` for one sensor (same parameters; tests
    compare the two)."""

    def __init__(
        self, alpha: float = 0.05, *, c: float = 1.345, min_std: float = 0.0, warmup: int = 30
    ) -> None:
        self.alpha, self.c, self.min_std, self.warmup = alpha, c, min_std, warmup
        self.n, self.loc, self.mad = 0, 0.0, 0.0

    def score_one(self, x: float, t: int = 0) -> float:
        if self.n < max(self.warmup, 2) or x != x:
            return 0.0
        d = x - self.loc
        if d == 0.0:
            return 0.0
        sd = max(_K * self.mad, self.min_std)
        return z_score_to_unit_scalar(d / sd if sd > 0 else math.inf)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        if self.n == 0:
            self.loc, self.mad = x, 0.0
        else:
            d = x - self.loc
            sd = _K * self.mad
            if self.n >= self.warmup and sd > 0:
                psi = min(max(d, -self.c * sd), self.c * sd)
                dev = min(abs(d), 3.0 * sd)
            else:
                psi, dev = d, abs(d)
            a = max(self.alpha, 1.0 / (self.n + 1.0))
            self.loc += a * psi
            self.mad += a * (dev - self.mad)
        self.n += 1
