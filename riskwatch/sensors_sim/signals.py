"""Vectorised signal shapes: one call computes the deterministic part of every due reading.

Time is passed in (epoch seconds, float64 array, one per reading); local time is China
Standard Time (UTC+8), which sets shifts, day/night and weekdays. Noise is a per-sensor
AR(1) process (:func:`ar1_step`), so consecutive readings of a sensor are correlated the
way real analog points are.

>>> import numpy as np
>>> t = np.array([0.0, 6 * 3600.0])          # 08:00 and 14:00 local on a Thursday
>>> pat = np.array([Pattern.LOAD, Pattern.LOAD], dtype=np.int8)
>>> baseline(pat, np.array([1000.0, 1000.0]), np.zeros(2), np.zeros(2), t, t0_s=0.0).round(1)
array([750., 750.])
>>> local_hour(np.array([16 * 3600.0])).tolist()  # 16:00 UTC is midnight in Beijing
[0.0]
"""

from __future__ import annotations

import numpy as np

from riskwatch.sensors_sim.plants.base import Pattern

__all__ = ["CUT_CYCLE_S", "TZ_OFFSET_S", "ar1_step", "baseline", "load_shape", "local_hour"]

TZ_OFFSET_S = 8 * 3600
CUT_CYCLE_S = 5400.0  # one shearer pass along the face (~90 min)
TANK_CYCLE_S = 8 * 3600.0
NIGHT_LOAD = 0.12  # share of rated load at night on a production day
DAY_LOAD = 0.75
WEEKEND_LOAD = 0.30


def local_hour(t_s: np.ndarray) -> np.ndarray:
    """Hour of day (float) in UTC+8."""
    return ((t_s + TZ_OFFSET_S) % 86400.0) / 3600.0


def weekday(t_s: np.ndarray) -> np.ndarray:
    """0 = Monday ... 6 = Sunday, in UTC+8 (1970-01-01 was a Thursday)."""
    return ((np.floor((t_s + TZ_OFFSET_S) / 86400.0) + 3) % 7).astype(np.int8)


def load_shape(t_s: np.ndarray) -> np.ndarray:
    """Share of rated load of a 15-minute mean: production 08-20 on weekdays (lunch dip),
    ramps 06-08 and 20-22, a low night, and a light weekend.

    >>> import numpy as np
    >>> h = np.array([3.0, 7.0, 10.0, 12.5, 21.0]) * 3600 - TZ_OFFSET_S  # a Thursday
    >>> load_shape(h).round(3).tolist()
    [0.12, 0.435, 0.75, 0.6, 0.435]
    """
    h = local_hour(t_s)
    up = np.clip((h - 6.0) / 2.0, 0.0, 1.0)
    down = np.clip((22.0 - h) / 2.0, 0.0, 1.0)
    day = NIGHT_LOAD + (DAY_LOAD - NIGHT_LOAD) * np.minimum(up, down)
    day = np.where((h >= 12.0) & (h < 13.0), 0.6, day)
    wd = weekday(t_s)
    weekend = NIGHT_LOAD + (WEEKEND_LOAD - NIGHT_LOAD) * np.minimum(up, down)
    return np.where(wd >= 5, weekend, day)


def baseline(
    pattern: np.ndarray,
    base: np.ndarray,
    amp: np.ndarray,
    phase: np.ndarray,
    t_s: np.ndarray,
    *,
    t0_s: float,
) -> np.ndarray:
    """Deterministic value of each reading (all arrays aligned, one row per reading)."""
    out = base.astype(np.float64, copy=True)
    h = local_hour(t_s)
    m = pattern == Pattern.CUTTING
    if m.any():
        # production shifts 08-24 (two shifts) cut coal; the night shift maintains (检修班)
        prod = (h[m] >= 8.0).astype(np.float64)
        cyc = 0.5 * (1.0 - np.cos(2 * np.pi * (t_s[m] + phase[m]) / CUT_CYCLE_S))
        out[m] = base[m] * (0.8 + 0.2 * prod) + amp[m] * cyc * prod
    m = pattern == Pattern.DAILY
    if m.any():
        out[m] = base[m] + amp[m] * np.sin(2 * np.pi * (h[m] - 9.0) / 24.0)
    m = pattern == Pattern.LOAD
    if m.any():
        out[m] = base[m] * load_shape(t_s[m])
    m = pattern == Pattern.TANK
    if m.any():
        out[m] = base[m] + amp[m] * np.sin(2 * np.pi * (t_s[m] + phase[m]) / TANK_CYCLE_S)
    m = pattern == Pattern.CREEP
    if m.any():
        out[m] = base[m] + amp[m] * (t_s[m] - t0_s) / 86400.0
    return out


def ar1_step(
    state: np.ndarray, idx: np.ndarray, innov_sd: np.ndarray, rho: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Advance the AR(1) noise of sensors ``idx`` by one reading (in place) and return it.

    >>> import numpy as np
    >>> s = np.zeros(3)
    >>> ar1_step(s, np.array([2]), np.array([1.0, 1.0, 0.5]), np.full(3, 0.5), np.array([2.0]))
    array([1.])
    """
    new = rho[idx] * state[idx] + innov_sd[idx] * z
    state[idx] = new
    return new
