"""Prototype novelty: the recent shape of a series against the shapes it has shown before.

An ARTime-like member (adaptive resonance over windows of values, Numenta's NAB
leader), vectorised over sensors. The members that judge single readings against a
level or a time-of-day profile miss an anomaly that is made of ordinary values in an
unusual order (a daily curve that stops, a burst, a changed rhythm). Here each reading
closes a window of the last ``window`` readings, normalised by the sensor's running mean
and standard deviation; per sensor up to ``k`` prototypes of such windows are learned
online (leader clustering with a vigilance radius, then online k-means):

- the nearest prototype (RMS distance over the window, in running standard deviations)
  absorbs the window with rate ``max(1/count, rate)``;
- a window farther than ``vigilance`` from every prototype founds a new one while fewer
  than ``k`` exist (afterwards the nearest absorbs it).

Novelty is the distance to the nearest prototype against this sensor's usual nearest
distances (EW mean and variance, weight ``alpha``, at least ``1/n``): the one-sided
Gaussian tail of that z-score in decades, on the z members' scale (heavy-tailed
distances are then tamed by the ensemble's tail calibration). The window is scored
against the prototypes *before* it is learned, so a reading's score depends only on
readings up to it. State per sensor: ``window`` + ``k * (window + 1)`` + 7 numbers
(2.4 kB with the defaults), so it suits the ``generic`` entry, not a whole fleet.

>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(1)
>>> x = np.sin(2 * np.pi * np.arange(4000) / 48) + rng.normal(0, 0.05, 4000)
>>> x[3000:3048] = x[2952:3000][::-1]                  # one cycle run backwards
>>> s = run_stream(Prototype(), np.zeros(len(x), np.int32), x)
>>> bool(s[1000:3000].max() < 0.5), bool(s[3000:3048].max() > 0.5)
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors.base import Detector, check, z_to_decades
from riskwatch.detectors.registry import register

__all__ = ["Prototype", "PrototypeRef"]


@register
class Prototype(Detector):
    """Distance of the recent window to the nearest of ``k`` learned prototypes.

    Parameters: ``window`` (readings per window), ``k`` (prototypes per sensor),
    ``vigilance`` (RMS distance, in running standard deviations, beyond which a window
    founds a new prototype), ``rate`` (floor of a prototype's learning rate),
    ``alpha`` (floor of the weight of the running mean/variance of the readings and of
    the nearest distances), ``warmup`` (readings before scoring), ``threshold``.
    """

    kind = "prototype"
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "mean": (np.float64, 0.0),
        "var": (np.float64, 0.0),
        "dmean": (np.float64, 0.0),
        "dvar": (np.float64, 0.0),
        "nd": (np.int64, 0),
        "used": (np.int64, 0),
        "buf": (np.float64, 0.0),
        "proto": (np.float64, 0.0),
        "cnt": (np.float64, 0.0),
    }

    def __init__(
        self,
        window: int = 8,
        *,
        k: int = 32,
        vigilance: float = 0.2,
        rate: float = 0.01,
        alpha: float = 0.001,
        warmup: int = 300,
        threshold: float = 0.5,
    ) -> None:
        check(isinstance(window, int) and window >= 1, "window", "must be an integer >= 1")
        check(isinstance(k, int) and k >= 1, "k", "must be an integer >= 1")
        check(vigilance > 0.0, "vigilance", f"must be > 0, got {vigilance}")
        check(0.0 < rate <= 1.0, "rate", f"must be in (0, 1], got {rate}")
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.window, self.k, self.vigilance = window, k, float(vigilance)
        self.rate, self.alpha = float(rate), float(alpha)
        self._s["buf"] = np.zeros((0, window))
        self._s["proto"] = np.zeros((0, k, window))
        self._s["cnt"] = np.zeros((0, k))

    def _vec(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        """The window closed by ``value`` (raw values), oldest first."""
        buf = self._s["buf"][sensor]
        return np.concatenate([buf[:, 1:], value[:, None]], axis=1)

    def _nearest(
        self, sensor: np.ndarray, value: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw window, normalised window, index of and distance to the nearest prototype
        (``inf`` where a sensor has none yet)."""
        s = self._s
        w = self._vec(sensor, value)
        sd = np.sqrt(s["var"][sensor])
        sd = np.where(sd > 0.0, sd, 1.0)
        x = (w - s["mean"][sensor][:, None]) / sd[:, None]
        p = s["proto"][sensor]
        with np.errstate(over="ignore"):  # a window normalised by a vanishing sd: d2 = inf,
            d2 = np.mean((p - x[:, None, :]) ** 2, axis=2)  # which scores 0 (not finite)
        d2 = np.where(np.arange(self.k)[None, :] < s["used"][sensor][:, None], d2, np.inf)
        j = np.argmin(d2, axis=1)
        d = np.sqrt(d2[np.arange(len(sensor)), j])
        return w, x, j, d

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        _, _, _, d = self._nearest(sensor, value)
        sd = np.sqrt(s["dvar"][sensor])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0.0, (d - s["dmean"][sensor]) / sd, 0.0)
        ok = (s["n"][sensor] >= max(self.warmup, self.window + 2)) & (s["nd"][sensor] >= 2)
        z = np.where(ok & np.isfinite(z), np.maximum(z, 0.0), 0.0)
        return z_to_decades(z)

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        n = s["n"][sensor]
        full = n >= self.window  # the window holds real readings only from then on
        w, x, j, d = self._nearest(sensor, value)
        # nearest distances: running mean and variance
        fin = full & np.isfinite(d)
        nd = s["nd"][sensor]
        a = np.maximum(self.alpha, 1.0 / (nd + 1.0))
        dd = np.where(fin, d, 0.0) - s["dmean"][sensor]
        s["dmean"][sensor] = np.where(fin, s["dmean"][sensor] + a * dd, s["dmean"][sensor])
        s["dvar"][sensor] = np.where(
            fin,
            np.where(nd == 0, 0.0, (1.0 - a) * (s["dvar"][sensor] + a * dd * dd)),
            s["dvar"][sensor],
        )
        s["nd"][sensor] = nd + fin
        # prototypes: found a new one beyond the vigilance radius while slots remain,
        # else move the nearest towards the window
        used = s["used"][sensor]
        new = full & ~(d <= self.vigilance) & (used < self.k)
        tgt = np.where(new, used, j)
        c = s["cnt"][sensor, tgt]
        r = np.where(new, 1.0, np.maximum(1.0 / (c + 1.0), self.rate))
        upd = full[:, None]
        p = s["proto"][sensor, tgt]
        s["proto"][sensor, tgt] = np.where(upd, p + r[:, None] * (x - p), p)
        s["cnt"][sensor, tgt] = np.where(full, c + 1.0, c)
        s["used"][sensor] = used + new
        # readings: running mean and variance (after the window was normalised)
        am = np.maximum(self.alpha, 1.0 / (n + 1.0))
        dv = value - s["mean"][sensor]
        s["mean"][sensor] = s["mean"][sensor] + am * dv
        s["var"][sensor] = np.where(n == 0, 0.0, (1.0 - am) * (s["var"][sensor] + am * dv * dv))
        s["buf"][sensor] = w
        s["n"][sensor] = n + 1


class PrototypeRef:
    """Scalar reference of :class:`Prototype` (tests compare the two)."""

    def __init__(
        self,
        window: int = 8,
        *,
        k: int = 32,
        vigilance: float = 0.2,
        rate: float = 0.01,
        alpha: float = 0.001,
        warmup: int = 300,
    ) -> None:
        self.window, self.k, self.vigilance = window, k, vigilance
        self.rate, self.alpha, self.warmup = rate, alpha, warmup
        self.n = self.nd = 0
        self.mean = self.var = self.dmean = self.dvar = 0.0
        self.buf = [0.0] * window
        self.proto: list[list[float]] = []
        self.cnt: list[float] = []

    def _nearest(self, x: float) -> tuple[list[float], list[float], int, float]:
        w = [*self.buf[1:], x]
        sd = math.sqrt(self.var) or 1.0
        v = [(wi - self.mean) / sd for wi in w]
        best, bd = -1, math.inf
        for i, p in enumerate(self.proto):
            d2 = sum((pi - vi) ** 2 for pi, vi in zip(p, v, strict=True)) / self.window
            if d2 < bd:
                best, bd = i, d2
        return w, v, best, math.sqrt(bd)

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x or self.n < max(self.warmup, self.window + 2) or self.nd < 2:
            return 0.0
        _, _, _, d = self._nearest(x)
        sd = math.sqrt(self.dvar)
        if not sd > 0.0 or not math.isfinite(d):
            return 0.0
        z = max((d - self.dmean) / sd, 0.0)
        return min(float(z_to_decades(np.array([z]))[0]) / 10.0, 1.0)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        full = self.n >= self.window
        w, v, j, d = self._nearest(x)
        if full and math.isfinite(d):
            a = max(self.alpha, 1.0 / (self.nd + 1.0))
            dd = d - self.dmean
            self.dvar = 0.0 if self.nd == 0 else (1.0 - a) * (self.dvar + a * dd * dd)
            self.dmean += a * dd
            self.nd += 1
        if full:
            if not d <= self.vigilance and len(self.proto) < self.k:
                self.proto.append(list(v))
                self.cnt.append(1.0)
            else:
                r = max(1.0 / (self.cnt[j] + 1.0), self.rate)
                self.proto[j] = [
                    pi + r * (vi - pi) for pi, vi in zip(self.proto[j], v, strict=True)
                ]
                self.cnt[j] += 1.0
        am = max(self.alpha, 1.0 / (self.n + 1.0))
        dv = x - self.mean
        self.var = 0.0 if self.n == 0 else (1.0 - am) * (self.var + am * dv * dv)
        self.mean += am * dv
        self.buf = w
        self.n += 1
