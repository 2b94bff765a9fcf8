"""``seasonal_shift`` (EWMA chart of the residual from a daily or weekly profile):
a sustained departure too small per reading to stand out found within a stated
delay, a holiday against the weekly profile, history before scoring, false-alarm bound
on long runs of a daily load curve. Vectorised == scalar reference, batch == one at a
time, no look-ahead and the generic false-alarm bound run over every registered type
in test_detectors.py."""

from __future__ import annotations

import numpy as np
import pytest

from riskwatch.detectors.base import run_stream
from riskwatch.detectors.registry import DETECTORS
from riskwatch.detectors.seasonal_shift import SeasonalShift

Q = 900 * 10**9  # 15-minute load readings
DAY = 96


def _load(seed: int, days: int, *, weekend: bool, m: int = 1) -> tuple[np.ndarray, ...]:
    """Production 08-18 h at 800 kW, 100 kW at night (300 kW by day at weekends when
    ``weekend``), noise sd 30 kW; ``m`` sensors as columns."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAY * days, dtype=np.int64) * Q
    hour = t // 10**9 % 86400 // 3600
    dow = (t // 10**9 // 86400 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    work = (hour >= 8) & (hour < 18)
    base = np.where(work, 800.0, 100.0)
    if weekend:
        base = np.where((dow >= 5) & work, 300.0, base)
    return t, hour, dow, base[:, None] + rng.normal(0, 30, (len(t), m))


def test_registered() -> None:
    assert DETECTORS["seasonal_shift"] is SeasonalShift


@pytest.mark.parametrize("seed", range(4))
def test_night_load_within_the_scatter_found_within_six_hours(seed) -> None:
    """+60 kW (2 noise sd) from 00:00 to 06:00 on day 27: the daily chart reaches 0.5
    within 24 readings (measured 4-16) and nothing before does, while no single reading
    of that night is 4.42 noise sd (a per-reading z-score's 0.5) off the true profile."""
    t, _, _, x = _load(seed, 28, weekend=False)
    x = x[:, 0]
    night = slice(DAY * 27, DAY * 27 + 24)
    x[night] += 60.0
    z = np.zeros(len(x), np.int32)
    s = run_stream(SeasonalShift(period="daily", slot_s=900), z, x, t)
    assert s[: DAY * 27].max() < 0.5
    hit = np.flatnonzero(s[night] >= 0.5)
    assert len(hit) and hit[0] < 24
    assert (np.abs(x[night] - 100.0) / 30.0).max() < 4.42  # true night profile 100 kW, sd 30


@pytest.mark.parametrize("seed", range(3))
def test_weekly_profile_finds_a_weekday_run_like_a_weekend_only_after_three_weeks(seed) -> None:
    """A Tuesday of week 5 produces 120 kW less by day: the weekly chart (30-min slots)
    reaches 0.5 within 4 h of the shift start (measured 45-60 min). It charts a slot
    from its third reading (the second week) and scores after 3 weeks of chart history,
    so nothing scores before day 28."""
    t, hour, _, x = _load(10 + seed, 35, weekend=True)
    x = x[:, 0]
    day = slice(DAY * 33, DAY * 34)  # a Tuesday
    x[day] -= np.where((hour[day] >= 8) & (hour[day] < 18), 120.0, 0.0)
    s = run_stream(SeasonalShift(period="weekly", slot_s=1800), np.zeros(len(x), np.int32), x, t)
    assert s[: DAY * 28].max() == 0.0
    assert s[: DAY * 33].max() < 0.5
    hit = np.flatnonzero(s[day] >= 0.5)
    assert len(hit) and hit[0] < 32 + 16


def test_false_alarm_bound_long_daily_load_curves() -> None:
    """40 sensors x 35 days of the daily load curve (134 400 readings per detector):
    none reaches 0.5 (measured maxima 0.49 daily, 0.40 weekly)."""
    t, _, _, x = _load(13, 35, weekend=False, m=40)
    sensor = np.tile(np.arange(40), len(t))
    for period, slot in (("daily", 900), ("weekly", 1800)):
        det = SeasonalShift(period=period, slot_s=slot)
        s = run_stream(det, sensor, x.reshape(-1), np.repeat(t, 40))
        assert s.max() < 0.5, period


def test_young_slots_are_not_charted() -> None:
    """A reading whose slot was seen fewer than ``min_cycles`` times scores 0 and does
    not move the chart."""
    det = SeasonalShift(period="daily", slot_s=3600, min_cycles=2, min_age_s=0.0, warmup=0)
    s = np.zeros(1, np.int64)
    for h in range(3):  # hours 0-2, first sight: profile only
        det.learn(s, np.array([10.0]), np.array([h * 3600 * 10**9]))
    assert det._s["charted"][0] == 0
    t = np.array([(86400 + 3600 * 5) * 10**9])  # hour 5: never seen
    assert det.surprise(s, np.array([1e6]), t)[0] == 0.0
