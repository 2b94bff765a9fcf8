"""``slow`` (SlowLevel: day mean against the long-run distribution of day means):
vectorised == scalar reference, batch == one at a time, a level shift hidden in the
daily swing and the noise found within a stated delay (which the reading-scale robust
z-score misses), false-alarm bound on a long stationary run. No look-ahead and the
generic false-alarm bound run over every registered type in test_detectors.py."""

from __future__ import annotations

import numpy as np
import pytest

from riskwatch.detectors.base import HyperParameterError, run_stream
from riskwatch.detectors.registry import DETECTORS
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.slow_level import SlowLevel, SlowLevelRef

STEP = 300 * 10**9  # 5-minute readings
DAY = 288


def _daily(seed: int, days: int, shift_day: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = DAY * days
    t = np.arange(n, dtype=np.int64) * STEP
    x = 20 + 5 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, 3, n)
    x[DAY * shift_day :] += shift
    return x, t


def test_registered() -> None:
    assert DETECTORS["slow"] is SlowLevel


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_scalar_reference(seed) -> None:
    m = 3
    kw = {"span_s": 3600.0, "long_s": 86400.0, "min_spans": 2.0}
    xs, ts = [], []
    for k in range(m):
        x, t = _daily(seed * 10 + k, 4, 3, 40.0)
        x[[50, 51, 300]] = np.nan
        x[100:110] = x[100]
        t = t + np.where(np.arange(len(t)) > 500, 7200 * 10**9, 0)  # a 2 h gap
        xs.append(np.round(x, 2))
        ts.append(t)
    n = len(xs[0])
    sensor = np.tile(np.arange(m), n)
    value = np.stack(xs, axis=1).reshape(-1)
    time = np.stack(ts, axis=1).reshape(-1)
    got = run_stream(SlowLevel(**kw), sensor, value, time).reshape(n, m)
    for k in range(m):
        r = SlowLevelRef(**kw)
        want = []
        for i in range(n):
            want.append(r.score_one(float(xs[k][i]), int(ts[k][i])))
            r.learn_one(float(xs[k][i]), int(ts[k][i]))
        np.testing.assert_allclose(got[:, k], want, rtol=1e-9, atol=1e-12)
    assert got.max() > 0.5


@pytest.mark.parametrize("seed", range(3))
def test_detects_hidden_level_shift_within_a_day(seed) -> None:
    """A 6-unit drop on a series with a +-5 daily swing and noise sd 3: no reading stands
    out (the robust z-score never reaches 0.5), the day mean does, within 288 readings
    (one day of 5-minute readings; measured ~205); nothing before the shift reaches 0.5."""
    x, t = _daily(400 + seed, 30, 25, -6.0)
    s = run_stream(SlowLevel(), np.zeros(len(x), np.int32), x, t)
    r = run_stream(RobustZScore(alpha=0.02), np.zeros(len(x), np.int32), x, t)
    assert s[: DAY * 25].max() < 0.5
    hit = np.flatnonzero(s[DAY * 25 :] >= 0.5)
    assert len(hit) and hit[0] <= DAY
    assert r[DAY * 25 :].max() < 0.5


def test_false_alarm_bound_long_stationary_run() -> None:
    """50 sensors x 20 days of stationary noise (288 000 readings): none reaches 0.5
    (measured maximum 0.30)."""
    rng = np.random.default_rng(13)
    n, m = DAY * 20, 50
    x = rng.normal(5, 1, (n, m))
    t = np.repeat(np.arange(n, dtype=np.int64) * STEP, m)
    s = run_stream(SlowLevel(), np.tile(np.arange(m), n), x.reshape(-1), t)
    assert s.max() < 0.5


@pytest.mark.parametrize(
    "kw,param",
    [({"span_s": 0.0}, "span_s"), ({"long_s": 10.0}, "long_s"),
     ({"min_spans": -1.0}, "min_spans"), ({"warmup": -1}, "warmup")],
)  # fmt: skip
def test_hyper_parameters_validated(kw, param) -> None:
    with pytest.raises(HyperParameterError) as e:
        SlowLevel(**kw)
    assert e.value.param == param
