"""Frozen / flat-line and variance-collapse detection: a tank level that stopped moving.

Two pieces of evidence, the larger wins:

* **frozen**: the reading repeats the previous one (within ``tol`` + ``rel_tol``·|x|).
  The detector learns how often this sensor repeats itself (``p``, an exponentially
  weighted frequency with a Laplace prior); a run of ``r`` repeats has probability
  ``p**r``, and the score is ``-log10(p**r) / 10`` — 0.5 at 1e-5. A sensor that always
  repeats (a 0/1 door contact, a flat test signal) never scores; one that never repeats
  scores after two or three frozen readings.
* **variance collapse**: the short-term mean square of successive differences falls
  ``collapse`` times below its long-term value (score 0.5 at that ratio); catches a
  transmitter that still jitters in its last digit but no longer follows the process.

A noisy series that freezes at 0.3 from reading 300 on: reading 300 is a new value,
301 the first repeat; a sensor that never repeated itself scores 0.5 at the third
repeat, reading 303, and stays there:

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(3)
>>> x = np.r_[rng.normal(0, 1, 300), np.full(10, 0.3)]
>>> s = run_stream(Flatline(), np.zeros(len(x), np.int32), x)
>>> int(np.argmax(s >= 0.5)), bool(s[:300].max() < 0.5)
(303, True)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, check

__all__ = ["Flatline", "FlatlineRef"]


class Flatline(Detector):
    """Frozen-value and variance-collapse detector over all sensors.

    Parameters
    ----------
    alpha : float
        Weight of a reading in the sensor's repeat frequency, in (0, 1] (0.002 ~ the
        last 500 readings).
    tol, rel_tol : float
        A reading repeats the previous one when they differ by at most
        ``tol + rel_tol * |previous|``.
    collapse : float
        0 switches variance collapse off; otherwise the ratio of long- to short-term
        mean square successive difference that scores 0.5 (> 1).
    alpha_short, alpha_long : float
        Weights of the short- and long-term mean square successive difference
        (``alpha_long < alpha_short``).
    warmup : int
        Readings before scoring.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    P.-S. de Laplace, *Essai philosophique sur les probabilités*, 1814 (the rule of
    succession: the repeat probability ``(repeats + 1) / (readings + 2)``).
    J. von Neumann, R. H. Kent, H. R. Bellinson, B. I. Hart, "The mean square successive
    difference", *Annals of Mathematical Statistics* 12 (1941) 153-162.
    """

    kind = "flatline"
    row_state = True
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "last": (np.float64, 0.0),
        "run": (np.int64, 0),
        "repeats": (np.float64, 0.0),  # decayed count of readings that repeated
        "compared": (np.float64, 0.0),  # decayed count of readings compared
        "msd_short": (np.float64, 0.0),  # short-term mean square successive difference
        "msd_long": (np.float64, 0.0),  # and long-term
    }

    def __init__(
        self,
        alpha: float = 0.002,
        *,
        tol: float = 0.0,
        rel_tol: float = 1e-9,
        collapse: float = 0.0,
        alpha_short: float = 0.1,
        alpha_long: float = 0.005,
        warmup: int = 100,
        threshold: float = 0.5,
    ) -> None:
        check(0.0 < alpha <= 1.0, "alpha", f"must be in (0, 1], got {alpha}")
        check(tol >= 0.0, "tol", f"must be >= 0, got {tol}")
        check(rel_tol >= 0.0, "rel_tol", f"must be >= 0, got {rel_tol}")
        check(collapse == 0.0 or collapse > 1.0, "collapse", "must be 0 (off) or > 1")
        check(0.0 < alpha_short <= 1.0, "alpha_short", "must be in (0, 1]")
        check(0.0 < alpha_long < alpha_short, "alpha_long", "must be in (0, alpha_short)")
        self.alpha, self.tol, self.rel_tol, self.collapse = alpha, tol, rel_tol, collapse
        self.alpha_short, self.alpha_long = alpha_short, alpha_long
        super().__init__(warmup=warmup, threshold=threshold)

    def _state_fields(self) -> dict[str, tuple[Any, float]]:
        # The difference statistics only ever reach a score through ``collapse``.
        f = dict(self.state_fields)
        if not self.collapse:
            del f["msd_short"], f["msd_long"]
        return f

    def _step(self, sensor: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, ...]:
        s = self._s
        last = s["last"][sensor]
        d = value - last
        same = (np.abs(d) <= self.tol + self.rel_tol * np.abs(last)) & (s["n"][sensor] > 0)
        run = np.where(same, s["run"][sensor] + 1, 0)
        if not self.collapse:
            return same, run, d, d
        msd_short = (1.0 - self.alpha_short) * s["msd_short"][sensor] + self.alpha_short * d * d
        msd_short = np.where(s["n"][sensor] > 0, msd_short, 0.0)
        return same, run, msd_short, d

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        _, run, msd_short, _ = self._step(sensor, value)
        p = (s["repeats"][sensor] + 1.0) / (s["compared"][sensor] + 2.0)
        out = run * -np.log10(p)
        if self.collapse:
            msd_long = s["msd_long"][sensor]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(msd_long > 0, msd_long / msd_short, 1.0)
                c = 5.0 * np.log(np.maximum(ratio, 1.0)) / math.log(self.collapse)
            out = np.maximum(out, c)
        return np.where(s["n"][sensor] >= self.warmup, out, 0.0)

    def step_rows(
        self,
        st: dict[str, np.ndarray],
        value: np.ndarray,
        time: np.ndarray,
        need: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`_surprise` then :meth:`_learn` on gathered state, updated in place.

        Identical numbers: the frozen term ``run * -log10(p)`` is exactly 0 where the
        run is 0, as ``p < 1``, so the logarithm is only taken on repeats.
        """
        n, last, run0 = st["n"], st["last"], st["run"]
        repeats, compared = st["repeats"], st["compared"]
        n_min = float(n.min())
        d = value - last
        all_has = n_min > 0.0
        has = n > 0 if not all_has or self.collapse else True
        tol = self.rel_tol * np.abs(last)
        if self.tol:
            tol += self.tol
        same = np.abs(d) <= tol
        if not all_has:
            same &= has
        run = run0  # where(same, run + 1, 0), in place: (run + 1) * same
        run += 1
        run *= same
        if self.collapse:
            msd_short = (1.0 - self.alpha_short) * st["msd_short"] + self.alpha_short * d * d
            msd_short = np.where(has, msd_short, 0.0)
            msd_long = st["msd_long"]
            p = (repeats + 1.0) / (compared + 2.0)
            out = run * -np.log10(p)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(msd_long > 0, msd_long / msd_short, 1.0)
                c = 5.0 * np.log(np.maximum(ratio, 1.0)) / math.log(self.collapse)
            out = np.where(n >= self.warmup, np.maximum(out, c), 0.0)
            new_msd_long = (1.0 - self.alpha_long) * msd_long + self.alpha_long * d * d
            st["msd_short"][...] = msd_short
            np.copyto(msd_long, np.where(has, new_msd_long, 0.0))
        else:
            out = np.zeros(len(value))
            hit = np.flatnonzero(same if n_min >= self.warmup else same & (n >= self.warmup))
            if len(hit):
                p = (repeats[hit] + 1.0) / (compared[hit] + 2.0)
                out[hit] = run[hit] * -np.log10(p)
        keep = 1.0 - self.alpha
        if all_has:  # keep * repeats + same and keep * compared + 1, in place
            repeats *= keep
            repeats += same
            compared *= keep
            compared += 1.0
        else:
            np.copyto(repeats, keep * repeats + same, where=has)
            np.copyto(compared, np.where(has, keep * compared + 1.0, 0.0))
        last[...] = value
        n += 1
        return out

    def block_kernel(self) -> tuple[int, tuple[float, ...]] | None:
        if not kernels.JIT or self.collapse:
            return None
        return kernels.FLATLINE, (self.alpha, self.tol, self.rel_tol, float(self.warmup))

    def finish_kernel(
        self, raw: np.ndarray, aux: np.ndarray, need: np.ndarray | None = None
    ) -> np.ndarray:
        out = np.zeros(len(raw))  # raw: scoring run length, aux: repeat probability
        hit = np.flatnonzero(raw > 0.0)
        if len(hit):
            out[hit] = raw[hit] * -np.log10(aux[hit])
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        s = self._s
        same, run, msd_short, d = self._step(sensor, value)
        n = s["n"][sensor]
        has = n > 0
        s["run"][sensor] = run
        s["repeats"][sensor] = np.where(
            has, (1.0 - self.alpha) * s["repeats"][sensor] + same, s["repeats"][sensor]
        )
        s["compared"][sensor] = np.where(has, (1.0 - self.alpha) * s["compared"][sensor] + 1.0, 0.0)
        s["last"][sensor] = value
        s["n"][sensor] = n + 1
        if self.collapse:
            s["msd_short"][sensor] = msd_short
            msd_long = (1.0 - self.alpha_long) * s["msd_long"][sensor] + self.alpha_long * d * d
            s["msd_long"][sensor] = np.where(has, msd_long, 0.0)


class FlatlineRef:
    """Scalar reference of :class:`Flatline` for one sensor (same parameters)."""

    def __init__(
        self,
        alpha: float = 0.002,
        *,
        tol: float = 0.0,
        rel_tol: float = 1e-9,
        collapse: float = 0.0,
        alpha_short: float = 0.1,
        alpha_long: float = 0.005,
        warmup: int = 100,
    ) -> None:
        self.alpha, self.tol, self.rel_tol, self.collapse = alpha, tol, rel_tol, collapse
        self.alpha_short, self.alpha_long, self.warmup = alpha_short, alpha_long, warmup
        self.n = self.run = 0
        self.last = self.repeats = self.compared = self.msd_short = self.msd_long = 0.0

    def _step(self, x: float) -> tuple[bool, int, float, float]:
        d = x - self.last
        same = self.n > 0 and abs(d) <= self.tol + self.rel_tol * abs(self.last)
        run = self.run + 1 if same else 0
        msd_short = (
            (1 - self.alpha_short) * self.msd_short + self.alpha_short * d * d if self.n else 0.0
        )
        return same, run, msd_short, d

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x or self.n < self.warmup:
            return 0.0
        _, run, msd_short, _ = self._step(x)
        p = (self.repeats + 1.0) / (self.compared + 2.0)
        out = run * -math.log10(p) / 10.0
        if self.collapse and self.msd_long > 0:
            ratio = self.msd_long / msd_short if msd_short > 0 else math.inf
            out = max(out, 0.5 * math.log(max(ratio, 1.0)) / math.log(self.collapse))
        return min(out, 1.0)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        same, run, msd_short, d = self._step(x)
        self.run, self.msd_short = run, msd_short
        if self.n > 0:
            self.repeats = (1 - self.alpha) * self.repeats + same
            self.compared = (1 - self.alpha) * self.compared + 1.0
            self.msd_long = (1 - self.alpha_long) * self.msd_long + self.alpha_long * d * d
        self.last = x
        self.n += 1
