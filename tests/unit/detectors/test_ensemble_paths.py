"""The ensemble's fast paths compute exactly what the plain per-member contract does.

The ensemble keeps its row-state members' state in one block and moves it with one
gather/scatter per round (``Detector.move_rows_to``, ``Detector.step_rows``), shares one calibrator over its
members, and, for the engine stage, lets the robust member skip exact surprises that
cannot matter (``exact_low=False``). These tests pin all three to the reference: each
member run alone through ``score``/``learn`` and a one-member ``TailCalibrator``.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskwatch.detectors import kernels
from riskwatch.detectors.base import run_stream
from riskwatch.detectors.calibrate import TailCalibrator
from riskwatch.detectors.cusum import Cusum
from riskwatch.detectors.ensemble import Ensemble
from riskwatch.detectors.flatline import Flatline
from riskwatch.detectors.page_hinkley import PageHinkley
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.seasonal_shift import SeasonalShift
from riskwatch.detectors.slow_level import SlowLevel

STEP = 5 * 10**9


def _members(variant: int = 0):
    if variant == 1:  # non-default floors and tolerances take the other code paths
        return {
            "level": RobustZScore(alpha=0.3, min_std=0.05, warmup=0),
            "frozen": Flatline(tol=0.01, rel_tol=0.0, warmup=1),
            "shift": Cusum(alpha=0.5, min_std=0.05, k=0.0, h=2.0, warmup=2),
        }
    if variant == 3:  # the bundled `anomaly` entry's members (compiled kernels)
        return {
            "level": RobustZScore(alpha=0.02, warmup=20),
            "frozen": Flatline(warmup=20),
            "frozen2": Flatline(warmup=20),
            "shift": Cusum(alpha=0.02, h=6.0, warmup=20),
        }
    if variant == 2:  # members with their own state beside the row block
        return {
            "ph": PageHinkley(lam=8.0, warmup=10),
            "level": RobustZScore(alpha=0.05, warmup=20),
            "slow": SlowLevel(span_s=600.0, long_s=3000.0, min_spans=1.0, warmup=3),
            "drift": SeasonalShift(slot_s=60, min_cycles=1, span_s=600.0, min_age_s=0.0, warmup=3),
            "shift": Cusum(alpha=0.02, h=6.0, warmup=20),
        }
    return {
        "level": RobustZScore(alpha=0.05, warmup=20),
        "frozen": Flatline(warmup=20, collapse=30.0),
        "frozen2": Flatline(warmup=20),
        "shift": Cusum(alpha=0.02, h=6.0, warmup=20),
    }


def _fleet(seed: int, n_sensors: int = 12, n: int = 700, nan: bool = True):
    """Readings of several sensors, each sensor at most once per round: noise, repeats
    (rounded values), a step, a spike, a frozen run and a few NaN/inf readings."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, n_sensors)) * rng.choice([0.01, 1.0, 5.0], n_sensors)
    x = np.round(x, 2)
    x[n // 2 :, 0] += 6.0
    x[300, 1] += 40.0
    x[400:460, 2] = x[400, 2]
    x[n // 3 :, 3] += np.linspace(0, 5, n - n // 3)
    if nan:
        x[rng.random(x.shape) < 0.003] = np.nan
        x[250, 4] = np.inf
    sensor = np.tile(np.arange(n_sensors), n)
    time = np.repeat(np.arange(n, dtype=np.int64) * STEP, n_sensors)
    return sensor, x.reshape(-1), time


def test_compiled_kernels_are_in_use() -> None:
    """numba is a dependency: the engine's ensembles run the compiled one-pass round
    (a config that has no kernel, flatline ``collapse``, falls back to numpy)."""
    assert kernels.JIT
    assert Ensemble(_members(1)).jit
    assert not Ensemble(_members(1), jit=False).jit
    assert not Ensemble(_members(0)).jit  # Flatline(collapse=30): numpy path


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("chunk", [12, 97, 4000])
@pytest.mark.parametrize("jit", [True, False])
def test_member_scores_equal_members_run_alone(
    variant: int, seed: int, chunk: int, jit: bool
) -> None:
    sensor, value, time = _fleet(seed)
    ens = Ensemble(_members(variant), threshold=0.5, hold_ns=10 * STEP, jit=jit)
    got = {k: [] for k in ens.members}
    for a in range(0, len(sensor), chunk):
        out = ens.process(sensor[a : a + chunk], value[a : a + chunk], time[a : a + chunk])
        for k, v in out.members.items():
            got[k].append(v)
    for k, det in _members(variant).items():
        want = run_stream(det, sensor, value, time)
        np.testing.assert_array_equal(np.concatenate(got[k]), want, err_msg=k)


@pytest.mark.parametrize("jit", [True, False])
def test_row_block_grows_mid_stream_and_members_keep_their_state(jit: bool) -> None:
    """New sensor ids past the block's capacity arrive mid-stream: the block grows, the
    members' and calibrator's state moves into it (``move_rows_to``), and every member
    still scores exactly as when run alone."""
    sensor, value, time = _fleet(6, nan=False)
    late = sensor + 40 * (time >= 350 * STEP)  # from round 350 on, the ids 40..51
    ens = Ensemble(_members(3), threshold=0.5, hold_ns=10 * STEP, calibrate_alpha=0.05, jit=jit)
    got = {k: [] for k in ens.members}
    sizes = []
    for a in range(0, len(late), 120):
        out = ens.process(late[a : a + 120], value[a : a + 120], time[a : a + 120])
        sizes.append(len(ens._rows))
        for k, v in out.members.items():
            got[k].append(v)
    assert sizes[0] < sizes[-1] and all(d.n_sensors == sizes[-1] for d in ens.members.values())
    alone = _members(3)
    cals = {k: TailCalibrator(0.05, 10.0) for k in alone}
    for k, det in alone.items():
        want = np.zeros(len(late))
        for a in range(0, len(late), 12):  # one round per time step
            s, v, t = late[a : a + 12], value[a : a + 12], time[a : a + 12]
            want[a : a + 12] = cals[k].score_learn(s, det.surprise(s, v, t))
            det.learn(s, v, t)
        np.testing.assert_array_equal(np.concatenate(got[k]), want, err_msg=k)


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("alpha", [0.05, 0.2])  # 0.2: weights pass 1e30, renormalised
def test_shared_calibrator_equals_one_per_member(
    variant: int, seed: int, jit: bool, alpha: float
) -> None:
    sensor, value, time = _fleet(seed)
    ens = Ensemble(
        _members(variant), threshold=0.5, hold_ns=10 * STEP, calibrate_alpha=alpha, jit=jit
    )
    out = ens.process(sensor, value, time)
    alone = _members(variant)
    cals = {k: TailCalibrator(alpha, 10.0) for k in alone}
    want = {k: np.zeros(len(sensor)) for k in alone}
    n_s = int(sensor.max()) + 1
    for a in range(0, len(sensor), n_s):  # one round per time step
        s, v, t = sensor[a : a + n_s], value[a : a + n_s], time[a : a + n_s]
        for k, det in alone.items():
            u = det.surprise(s, v, t)  # charts (self_calibrated) pass through as they are
            want[k][a : a + n_s] = (
                np.minimum(u / 10.0, 1.0) if det.self_calibrated else cals[k].score_learn(s, u)
            )
            det.learn(s, v, t)
    for k in alone:
        np.testing.assert_array_equal(out.members[k], want[k], err_msg=k)
    assert max(float(v.max()) for v in out.members.values()) > 0.5
    charts = sum(d.self_calibrated for d in alone.values())
    if charts:  # the calibrator holds only the others
        assert ens._cal is not None and ens._cal.members == len(alone) - charts
    if alpha == 0.2:
        # 700 readings: an unnormalised weight would be 1.25 ** 700 ~ 1e67
        used = [c for k, c in cals.items() if not alone[k].self_calibrated]
        assert all(1e3 < float(c._w.max()) < 1e31 for c in used)


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.7])
@pytest.mark.parametrize("combine", [None, ("all", ["level", ("any", ["shift", "frozen"])])])
@pytest.mark.parametrize("variant", [0, 3])
def test_lazy_low_surprises_change_no_decision(threshold, combine, variant) -> None:
    """exact_low=False: same windows, and exact scores wherever a decision or a signal
    reads them (readings that are hot, in a window, or open/close one)."""
    sensor, value, time = _fleet(3, nan=False)

    def run(exact_low: bool):
        ens = Ensemble(
            _members(variant), combine, threshold=threshold, hold_ns=30 * STEP,
            calibrate_alpha=0.02,
        )  # fmt: skip
        outs = [
            ens.process(sensor[a : a + 600], value[a : a + 600], time[a : a + 600],
                        exact_low=exact_low)
            for a in range(0, len(sensor), 600)
        ]  # fmt: skip
        peak = ens.peak(np.arange(12))
        return outs, peak

    exact, peak_e = run(True)
    lazy, peak_l = run(False)
    np.testing.assert_array_equal(peak_e, peak_l)
    n_raised = 0
    open_ = np.zeros(12, dtype=bool)  # window open before the reading (test-side replay)
    for a, (e, z) in enumerate(zip(exact, lazy, strict=True)):
        np.testing.assert_array_equal(e.raised, z.raised)
        np.testing.assert_array_equal(e.cleared, z.cleared)
        s = sensor[a * 600 : (a + 1) * 600]
        inside = np.zeros(len(s), dtype=bool)
        for i, sid in enumerate(s.tolist()):
            inside[i] = open_[sid]
            open_[sid] = (open_[sid] or e.raised[i]) and not e.cleared[i]
        keep = (e.score >= threshold) | e.raised | e.cleared | inside
        np.testing.assert_array_equal(e.score[keep], z.score[keep])
        for k in e.members:
            np.testing.assert_array_equal(e.members[k][keep], z.members[k][keep], err_msg=k)
        n_raised += int(e.raised.sum())
    assert n_raised > 0


def test_copy_mid_stream_continues_identically() -> None:
    """A deep copy (the engine's reload keeps state; benches copy warm state) gets its
    own line-aligned row block and goes on exactly like the original."""
    import copy

    sensor, value, time = _fleet(5)
    half = len(sensor) // 2
    ens = Ensemble(_members(3), threshold=0.5, hold_ns=10 * STEP, calibrate_alpha=0.05)
    ens.process(sensor[:half], value[:half], time[:half])
    twin = copy.deepcopy(ens)
    assert twin._rows.ctypes.data % 64 == 0 and twin._rows.shape[1] % 8 == 0
    assert not np.shares_memory(twin._rows, ens._rows)
    a = ens.process(sensor[half:], value[half:], time[half:])
    b = twin.process(sensor[half:], value[half:], time[half:])
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.raised, b.raised)
    np.testing.assert_array_equal(ens._rows, twin._rows)


def test_unique_check_leaves_its_scratch_clean() -> None:
    """The compiled uniqueness check marks ids in a per-sensor scratch array; it must be
    all zero again whether the batch had repeats or not (a stale mark would only cost
    speed: the batch would be split into rounds needlessly)."""
    ens = Ensemble(_members(3), threshold=0.5, hold_ns=10 * STEP)
    assert ens._unique(np.array([4, 2, 9], np.int32))
    assert not ens._unique(np.array([4, 2, 4, 9], np.int32))
    assert not ens._unique(np.array([1, 1], np.int64))
    assert ens._unique(np.array([9, 4, 2, 1], np.int64))
    assert not ens._scratch.any()
