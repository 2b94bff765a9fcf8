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

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(3)
>>> x = np.r_[rng.normal(0, 1, 300), np.full(10, 0.3)]
>>> s = run_stream(Flatline(), np.zeros(len(x), np.int32), x)
>>> bool(s[:300].max() < 0.5), int(np.argmax(s >= 0.5)) - 300
(True, 3)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, check

__all__ = ["Flatline", "FlatlineRef"]


class Flatline(Detector):
    """Frozen-value and variance-collapse detector over all sensors."""

    kind = "flatline"
    row_state = True
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {
        "n": (np.int64, 0),
        "last": (np.float64, 0.0),
        "run": (np.int64, 0),
        "same": (np.float64, 0.0),
        "tot": (np.float64, 0.0),
        "d2s": (np.float64, 0.0),
        "d2l": (np.float64, 0.0),
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
            del f["d2s"], f["d2l"]
        return f

    def _step(self, sensor: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, ...]:
        s = self._s
        last = s["last"][sensor]
        d = value - last
        same = (np.abs(d) <= self.tol + self.rel_tol * np.abs(last)) & (s["n"][sensor] > 0)
        run = np.where(same, s["run"][sensor] + 1, 0)
        if not self.collapse:
            return same, run, d, d
        d2s = (1.0 - self.alpha_short) * s["d2s"][sensor] + self.alpha_short * d * d
        d2s = np.where(s["n"][sensor] > 0, d2s, 0.0)
        return same, run, d2s, d

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        s = self._s
        _, run, d2s, _ = self._step(sensor, value)
        p = (s["same"][sensor] + 1.0) / (s["tot"][sensor] + 2.0)
        out = run * -np.log10(p)
        if self.collapse:
            d2l = s["d2l"][sensor]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(d2l > 0, d2l / d2s, 1.0)
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
        n, last, run0, same_f, tot = st["n"], st["last"], st["run"], st["same"], st["tot"]
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
            d2s = (1.0 - self.alpha_short) * st["d2s"] + self.alpha_short * d * d
            d2s = np.where(has, d2s, 0.0)
            d2l = st["d2l"]
            p = (same_f + 1.0) / (tot + 2.0)
            out = run * -np.log10(p)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(d2l > 0, d2l / d2s, 1.0)
                c = 5.0 * np.log(np.maximum(ratio, 1.0)) / math.log(self.collapse)
            out = np.where(n >= self.warmup, np.maximum(out, c), 0.0)
            new_d2l = (1.0 - self.alpha_long) * d2l + self.alpha_long * d * d
            st["d2s"][...] = d2s
            np.copyto(d2l, np.where(has, new_d2l, 0.0))
        else:
            out = np.zeros(len(value))
            hit = np.flatnonzero(same if n_min >= self.warmup else same & (n >= self.warmup))
            if len(hit):
                p = (same_f[hit] + 1.0) / (tot[hit] + 2.0)
                out[hit] = run[hit] * -np.log10(p)
        keep = 1.0 - self.alpha
        if all_has:  # keep * same + same? and keep * tot + 1, in place
            same_f *= keep
            same_f += same
            tot *= keep
            tot += 1.0
        else:
            np.copyto(same_f, keep * same_f + same, where=has)
            np.copyto(tot, np.where(has, keep * tot + 1.0, 0.0))
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
        same, run, d2s, d = self._step(sensor, value)
        n = s["n"][sensor]
        has = n > 0
        s["run"][sensor] = run
        s["same"][sensor] = np.where(
            has, (1.0 - self.alpha) * s["same"][sensor] + same, s["same"][sensor]
        )
        s["tot"][sensor] = np.where(has, (1.0 - self.alpha) * s["tot"][sensor] + 1.0, 0.0)
        s["last"][sensor] = value
        s["n"][sensor] = n + 1
        if self.collapse:
            s["d2s"][sensor] = d2s
            d2l = (1.0 - self.alpha_long) * s["d2l"][sensor] + self.alpha_long * d * d
            s["d2l"][sensor] = np.where(has, d2l, 0.0)


class FlatlineRef:
    """Scalar reference of :class:`Flatline`."""

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
        self.last = self.same = self.tot = self.d2s = self.d2l = 0.0

    def _step(self, x: float) -> tuple[bool, int, float, float]:
        d = x - self.last
        same = self.n > 0 and abs(d) <= self.tol + self.rel_tol * abs(self.last)
        run = self.run + 1 if same else 0
        d2s = (1 - self.alpha_short) * self.d2s + self.alpha_short * d * d if self.n else 0.0
        return same, run, d2s, d

    def score_one(self, x: float, t: int = 0) -> float:
        if x != x or self.n < self.warmup:
            return 0.0
        _, run, d2s, _ = self._step(x)
        p = (self.same + 1.0) / (self.tot + 2.0)
        out = run * -math.log10(p) / 10.0
        if self.collapse and self.d2l > 0:
            ratio = self.d2l / d2s if d2s > 0 else math.inf
            out = max(out, 0.5 * math.log(max(ratio, 1.0)) / math.log(self.collapse))
        return min(out, 1.0)

    def learn_one(self, x: float, t: int = 0) -> None:
        if x != x:
            return
        same, run, d2s, d = self._step(x)
        self.run, self.d2s = run, d2s
        if self.n > 0:
            self.same = (1 - self.alpha) * self.same + same
            self.tot = (1 - self.alpha) * self.tot + 1.0
            self.d2l = (1 - self.alpha_long) * self.d2l + self.alpha_long * d * d
        self.last = x
        self.n += 1
