"""Compiled per-round kernels of the row-state detectors (numba), in place on the row block.

Why: an ensemble keeps the scalar state of its row-state members (robust level,
flatline, CUSUM) and of its calibrator as one float64 row per sensor. The numpy path
gathers the rows of a round, runs each member as ~25 whole-array operations over
strided columns and scatters the rows back: most of its cost is memory passes, not
arithmetic (about 0.2 µs per reading for three members). These kernels do the same
per-element arithmetic reading and writing the block in place: no gather, no scatter,
no temporaries (about 0.04 µs per reading for three members and the calibrator's
counts, most of it cache misses on a 12 MB block and 47 MB of bins at 100k sensors).

They are not a second definition of the detectors: each kernel is the member's
``step_rows`` (or the calibrator's ``score_learn_rows``) written per element, with the
same IEEE operations in the same order, so scores and state are bit-identical to the
numpy path (``tests/unit/detectors/test_ensemble_paths.py`` runs both on fleets with
warm-up, first readings, repeats, steps, spikes and infinite z). Transcendental
functions (the Gaussian tail of the robust z-score, the logarithms of the flatline
repeat probability and of the calibrated tail) stay in numpy on the few readings that
need them, so no libm/numpy ulp difference can creep in.

``JIT`` is False when numba is missing or ``RISKWATCH_JIT=0``; ensembles then use the
numpy path. :func:`ready` compiles the kernels (or loads them from numba's cache next
to this file) when an ensemble is built, so the first batch does not pay it.

>>> import numpy as np
>>> rows = np.zeros((4, 3))  # robust level: n, loc, mad of four sensors
>>> raw, aux = np.zeros((1, 2)), np.zeros((1, 2))
>>> params = np.array([[0.05, 1.345, 0.0, 30.0, 1.2533, 0.0]])
>>> if JIT:
...     _ = step_block(rows, np.array([1, 3]), np.array([5.0, 7.0]), np.array([ROBUST]),
...                    np.array([0]), params, raw, aux, -1, 0.0, raw)
>>> rows[[1, 3], 1].tolist() if JIT else [5.0, 7.0]
[5.0, 7.0]
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

__all__ = [
    "CUSUM", "FLATLINE", "JIT", "ROBUST", "all_unique", "calibrate_block", "ready", "step_block",
]  # fmt: skip

#: member codes of :func:`step_block`
ROBUST, FLATLINE, CUSUM = 0, 1, 2

log = logging.getLogger(__name__)

try:  # pragma: no cover - exercised by whichever way the test machine is set up
    if os.environ.get("RISKWATCH_JIT", "1") == "0":
        raise ImportError("RISKWATCH_JIT=0")
    import numba

    JIT = True

    def _njit(fn: Any) -> Any:
        # error_model="numpy": x / 0.0 is inf/nan as in numpy, not ZeroDivisionError
        return numba.njit(cache=True, error_model="numpy", nogil=True)(fn)

    def _inline(fn: Any) -> Any:
        return numba.njit(cache=True, error_model="numpy", nogil=True, inline="always")(fn)

except ImportError:  # pragma: no cover
    JIT = False

    def _njit(fn: Any) -> Any:
        return fn

    _inline = _njit


@_inline
def _robust(r: np.ndarray, col: int, x: float, alpha: float, c: float, min_std: float,
            warmup: float, k_sd: float) -> float:  # fmt: skip
    """RobustZScore.step_rows for one reading: returns z (0 in warm-up), learns."""
    n = r[col]
    loc = r[col + 1]
    mad = r[col + 2]
    d = x - loc
    sd = k_sd * mad
    z = 0.0
    if n >= max(warmup, 2.0):
        sdf = max(sd, min_std) if min_std else sd
        if d != 0.0:
            z = d / sdf
    a = max(alpha, 1.0 / (n + 1.0))
    if n >= warmup and sd > 0:
        lim = c * sd
        psi = min(max(d, -lim), lim)
        dev = min(abs(d), 3.0 * sd)
    else:
        psi = d
        dev = abs(d)
    if n == 0:
        r[col + 1] = x
        r[col + 2] = 0.0
    else:
        r[col + 1] = loc + a * psi
        r[col + 2] = mad + a * (dev - mad)
    r[col] = n + 1
    return z


@_inline
def _flatline(r: np.ndarray, col: int, x: float, alpha: float, tol: float, rel_tol: float,
              warmup: float) -> tuple[float, float]:  # fmt: skip
    """Flatline.step_rows (``collapse`` off) for one reading: returns the run length
    where it scores (a repeat past warm-up, else 0) and the repeat probability ``p`` it
    is scored with (the caller takes ``run * -log10(p)``); learns."""
    n = r[col]
    last = r[col + 1]
    repeats = r[col + 3]
    compared = r[col + 4]
    d = x - last
    t = rel_tol * abs(last)
    if tol:
        t += tol
    same = abs(d) <= t and n > 0
    run = (r[col + 2] + 1.0) if same else 0.0
    r[col + 2] = run
    hit = 0.0
    p = 1.0
    if same and n >= warmup:
        hit = run
        p = (repeats + 1.0) / (compared + 2.0)
    if n > 0:
        r[col + 3] = repeats * (1.0 - alpha) + (1.0 if same else 0.0)
        r[col + 4] = compared * (1.0 - alpha) + 1.0
    else:
        r[col + 4] = 0.0
    r[col + 1] = x
    r[col] = n + 1
    return hit, p


@_inline
def _cusum(r: np.ndarray, col: int, x: float, alpha: float, k: float, h: float,
           min_std: float, warmup: float, zmax: float) -> float:  # fmt: skip
    """Cusum.step_rows for one reading: returns ``5 * max(S+, S-) / h``, learns
    (baseline re-set after an alarm)."""
    n = r[col]
    mean = r[col + 1]
    var = r[col + 2]
    d = x - mean
    z = 0.0
    if n >= max(warmup, 2.0):
        sd = math.sqrt(var)
        if min_std:
            sd = max(sd, min_std)
        if d != 0.0:
            z = d / sd
        z = min(max(z, -zmax), zmax)
    sp = max(0.0, r[col + 3] + z - k)
    sn = max(0.0, r[col + 4] - z - k)
    top = max(sp, sn)
    alarm = top >= h
    a = max(alpha, 1.0 / (n + 1.0))
    ad = a * d
    if n == 0:
        r[col + 1] = x
        r[col + 2] = 0.0
    else:
        r[col + 1] = x if alarm else mean + ad
        r[col + 2] = (var + ad * d) * (1.0 - a)
    if alarm:
        r[col + 3] = 0.0
        r[col + 4] = 0.0
    else:
        r[col + 3] = sp
        r[col + 4] = sn
    r[col] = n + 1
    return 5.0 * top / h


@_njit
def step_block(
    rows: np.ndarray,
    sensor: np.ndarray,
    value: np.ndarray,
    codes: np.ndarray,
    cols: np.ndarray,
    params: np.ndarray,
    raw: np.ndarray,
    aux: np.ndarray,
    tcol: int,
    cal_alpha: float,
    tw_out: np.ndarray,
) -> float:
    """Every row-state member of an ensemble over one round, in place on ``rows``.

    Member ``m`` is of kind ``codes[m]`` (:data:`ROBUST`, :data:`FLATLINE`,
    :data:`CUSUM`), its fields start at column ``cols[m]``, its hyper-parameters are
    ``params[m]`` (in the order of the ``_block_params`` of its class); its raw output
    for reading ``i`` goes to ``raw[m, i]`` (and ``aux[m, i]``). Sensors are unique.

    With ``tcol >= 0`` the calibrator's total and increment weight (columns ``tcol``,
    ``tcol + 1``) are advanced here too, while the row is in cache (``tot + w``,
    ``w / (1 - cal_alpha)``); their values before the reading go to ``tw_out[0]`` and
    ``tw_out[1]`` for :func:`calibrate_block` (which also renormalises).
    """
    # Touch every row first: these loads are independent, so the CPU keeps many misses
    # in flight at once, and the work loop below finds its rows in cache (the work on a
    # row depends on its loads, which serialises misses: ~3x slower on 100k sensors).
    last = rows.shape[1] - 1
    touch = 0.0
    for i in range(sensor.shape[0]):
        touch += rows[sensor[i], 0] + rows[sensor[i], last]
    # Member by member (each inner loop branch-free of the others; the rows stay in
    # cache between members): ~2x faster than all members per reading.
    n = sensor.shape[0]
    for m in range(codes.shape[0]):
        c, col = codes[m], cols[m]
        q0, q1, q2, q3, q4, q5 = (
            params[m, 0],
            params[m, 1],
            params[m, 2],
            params[m, 3],
            params[m, 4],
            params[m, 5],
        )
        if c == ROBUST:
            for i in range(n):
                raw[m, i] = _robust(rows[sensor[i]], col, value[i], q0, q1, q2, q3, q4)
        elif c == FLATLINE:
            for i in range(n):
                raw[m, i], aux[m, i] = _flatline(rows[sensor[i]], col, value[i], q0, q1, q2, q3)
        else:
            for i in range(n):
                raw[m, i] = _cusum(rows[sensor[i]], col, value[i], q0, q1, q2, q3, q4, q5)
    if tcol >= 0:
        for i in range(n):
            r = rows[sensor[i]]
            tot = r[tcol]
            w = r[tcol + 1]
            tw_out[0, i] = tot
            tw_out[1, i] = w
            r[tcol] = tot + w
            r[tcol + 1] = w / (1.0 - cal_alpha)
    return touch


@_njit
def calibrate_block(
    rows: np.ndarray,
    tcol: int,
    cnt: np.ndarray,
    sensor: np.ndarray,
    u: np.ndarray,
    need: np.ndarray,
    use_need: bool,
    alpha: float,
    tw: np.ndarray,
    out: np.ndarray,
    look_out: np.ndarray,
    ge_out: np.ndarray,
) -> tuple[int, float]:
    """:meth:`~riskwatch.detectors.calibrate.TailCalibrator.score_learn_rows` without the
    transcendental part, after :func:`step_block` advanced each sensor's total and
    weight (columns ``tcol``, ``tcol + 1`` of ``rows``; ``tw`` holds their values before
    the reading). ``cnt`` holds the half-decade bins (sensor x member x bin, highest bin
    first, float32). ``out[m, i]`` gets the raw score ``max(u / 10, 0)``. Each look-up
    (member ``m``, reading ``i`` with ``u[m, i] >= 1`` and ``need[i]`` if ``use_need``)
    appends its flat index ``m * n + i`` to ``look_out`` and its tail count to
    ``ge_out`` (bins from the top down to the reading's own, summed in that order in
    float64). Then it learns: adds the weight to each surprise's bin, and renormalises
    bins and total once the weight passes 1e30. Returns the number of look-ups.
    """
    nb = cnt.shape[2]
    top = nb + 1  # index of the last bin in the 41-bin scale (bins below 2 not stored)
    touch = 0.0
    for i in range(sensor.shape[0]):  # independent loads first (see step_block)
        for m in range(u.shape[0]):
            if u[m, i] >= 1.0:  # the bin that learns (look-ups are few)
                touch += cnt[sensor[i], m, nb - 1 - (min(int(min(u[m, i], 1e6) / 0.5), top) - 2)]
    n = sensor.shape[0]
    k = 0
    for i in range(n):
        s = sensor[i]
        w = tw[1, i]
        for m in range(u.shape[0]):
            ui = u[m, i]
            out[m, i] = max(ui / 10.0, 0.0) + 0.0
            if ui >= 1.0:
                ul = min(ui, 1e6)
                b = nb - 1 - (min(int(ul / 0.5), top) - 2)
                if not use_need or need[i]:
                    acc = np.float64(cnt[s, m, 0])
                    for j in range(1, b + 1):
                        acc += cnt[s, m, j]
                    look_out[k] = m * n + i
                    ge_out[k] = acc
                    k += 1
                cnt[s, m, b] = cnt[s, m, b] + w
        w_new = w / (1.0 - alpha)
        if w_new > 1e30:  # float32 counts: renormalise long before overflow
            for m in range(cnt.shape[1]):
                for j in range(nb):
                    cnt[s, m, j] = cnt[s, m, j] / w_new
            rows[s, tcol] = (tw[0, i] + w) / w_new
            rows[s, tcol + 1] = 1.0
    return k, touch


@_njit
def all_unique(sensor: np.ndarray, scratch: np.ndarray) -> bool:
    """Whether no id repeats in ``sensor`` (ids in ``[0, len(scratch))``; ``scratch``
    is all zero before and after): two passes, no sort.

    >>> scratch = np.zeros(8, np.uint8)
    >>> [bool(all_unique(np.array(ids), scratch)) for ids in ([3, 1, 7], [3, 1, 3])]
    [True, False]
    """
    n = sensor.shape[0]
    seen = n
    for i in range(n):
        if scratch[sensor[i]]:
            seen = i
            break
        scratch[sensor[i]] = 1
    for i in range(seen):
        scratch[sensor[i]] = 0
    return seen == n


_READY: bool | None = None


def ready() -> bool:
    """Whether the kernels can be used: compiles (or loads from the cache) every kernel
    once per process, on tiny inputs of the exact types the ensemble passes, so the
    first engine batch does not pay the compilation (about 2 s cold, 0.1 s cached).
    A failure is logged once and the ensembles fall back to the numpy path.

    >>> isinstance(ready(), bool)
    True
    """
    global _READY
    if _READY is None:
        _READY = False
        if JIT:
            try:
                rows, cnt = np.zeros((2, 16)), np.zeros((2, 3, 39), np.float32)
                sensor, value = np.array([1], np.int64), np.array([1.0])
                codes = np.array([ROBUST, FLATLINE, CUSUM], np.int64)
                cols = np.array([0, 3, 8], np.int64)
                raw, aux, tw = np.zeros((3, 1)), np.zeros((3, 1)), np.zeros((2, 1))
                step_block(rows, sensor, value, codes, cols, np.ones((3, 6)), raw, aux, 13, 0.1, tw)
                all_unique(sensor, np.zeros(2, np.uint8))
                all_unique(sensor.astype(np.int32), np.zeros(2, np.uint8))  # Batch.sensor
                calibrate_block(
                    rows, 13, cnt, sensor, raw, np.ones(1, bool), True, 0.1, tw,
                    np.zeros((3, 1)), np.zeros(3, np.int64), np.zeros(3),
                )  # fmt: skip
                _READY = True
            except Exception:  # any compiler failure means: use numpy
                log.warning("detector kernels unavailable, numpy path used", exc_info=True)
    return _READY
