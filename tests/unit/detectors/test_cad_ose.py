"""CAD OSE: the published algorithm's details, the member's streaming contract.

Faithfulness to NAB's published result files is checked by bench/cad_ose_faithful.py
(18 of 18 files equal row by row); these tests pin the parts that make it so.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskwatch.detectors.base import HyperParameterError, run_stream
from riskwatch.detectors.cad_ose import CadOse, _SlotMap, cad_ose_scores, encode, tuple_hash
from riskwatch.detectors.ensemble import Ensemble


def _wave(seed: int, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 + 3 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.5, n)
    x[n // 2 :] += 6  # a level it never showed
    return np.round(x, 2)


def test_encoding_is_three_bits_of_the_level() -> None:
    assert encode(0, 3) == (0, 2, 4)
    assert encode(7, 3) == (1, 3, 5)
    assert encode(6, 3) == (0, 3, 5)


def test_tuple_hash_is_cpython2s() -> None:
    # values of CPython 2.7's tuple hash on a 64-bit build
    assert tuple_hash(()) == 3527539
    assert tuple_hash((1, 2)) == 3713081631934410656


def test_slot_map_iterates_in_cpython2_dict_order() -> None:
    m = _SlotMap()
    for k in (2, 1, 9):  # 9 collides with 1 in an 8-slot table
        m.put(k, k * 10)
    assert [k for k, _ in m.items()] == [1, 2, 9]
    for k in range(3, 8):  # the 6th key grows the table to 32 slots
        m.put(k, k)
    assert [k for k, _ in m.items()] == [1, 2, 3, 4, 5, 6, 7, 9]
    assert m.get(9) == 90 and m.get(8) is None


def test_member_equals_reference_with_a_fixed_range() -> None:
    xs = [_wave(s) for s in range(3)]
    n = len(xs[0])
    sensor = np.tile(np.arange(3), n)
    value = np.stack(xs, axis=1).reshape(-1)
    time = np.repeat(np.arange(n, dtype=np.int64), 3)
    lo, hi = float(value.min()), float(value.max())
    ens = Ensemble({"cad": CadOse(lo=lo, hi=hi, rest_period=20)}, threshold=0.75)
    got = ens.process(sensor, value, time).members["cad"].reshape(n, 3)
    for k in range(3):
        ref = cad_ose_scores(xs[k], lo=lo, hi=hi, rest_period=20)
        np.testing.assert_allclose(got[:, k], ref, rtol=0, atol=1e-12)


def test_first_rest_period_is_silent_and_a_new_level_scores() -> None:
    x = _wave(4)
    s = run_stream(CadOse(lo=0.0, hi=24.0, rest_period=20), np.zeros(len(x), np.int32), x)
    assert s[:20].max() == 0.0
    assert np.flatnonzero(s >= 0.75).tolist() == [200]  # the step to levels never shown
    assert s[201:221].max() == 0.0  # the published rest after a hot score


def test_score_never_changes_state_and_equals_the_fused_path() -> None:
    x = _wave(5, 150)
    a = CadOse(rest_period=10)
    s = run_stream(a, np.zeros(len(x), np.int32), x)  # score, then learn, per round
    ens = Ensemble({"cad": CadOse(rest_period=10)}, threshold=0.75)
    fused = ens.process(np.zeros(len(x), np.int32), x, np.arange(len(x))).members["cad"]
    np.testing.assert_allclose(s, fused, rtol=0, atol=1e-12)
    before = a.contexts(0)
    a.score(np.array([0]), np.array([1e6]), np.array([10**6]))
    a.score(np.array([0]), np.array([-1e6]), np.array([10**6]))
    assert a.contexts(0) == before


def test_no_look_ahead() -> None:
    x = _wave(6)
    t = np.arange(len(x))
    s = np.zeros(len(x), np.int32)

    def run(v: np.ndarray) -> np.ndarray:
        ens = Ensemble({"cad": CadOse(rest_period=10)}, threshold=0.75)
        return ens.process(s, v, t).members["cad"]

    y = x.copy()
    y[300:] = 1e6
    np.testing.assert_array_equal(run(x)[:300], run(y)[:300])


def test_nan_is_a_gap() -> None:
    x = _wave(7, 100)
    y = x.copy()
    y[50] = np.nan
    det_x, det_y = CadOse(rest_period=5), CadOse(rest_period=5)
    sx = run_stream(det_x, np.zeros(99, np.int32), np.delete(x, 50))
    sy = run_stream(det_y, np.zeros(100, np.int32), y)
    assert sy[50] == 0.0
    np.testing.assert_allclose(np.delete(sy, 50), sx, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kw,param",
    [({"lo": 0.0}, "lo"), ({"lo": 2.0, "hi": 1.0}, "hi"), ({"bits": 0}, "bits"),
     ({"rest_period": -1}, "rest_period"), ({"base_threshold": 0.0}, "base_threshold")],
)  # fmt: skip
def test_bad_hyper_parameters_are_named(kw, param) -> None:
    with pytest.raises(HyperParameterError) as e:
        CadOse(**kw)
    assert e.value.param == param
