"""river adapters: same contract (no look-ahead, batch == one at a time, score is pure)."""

from __future__ import annotations

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.detectors.base import run_stream
from riskwatch.detectors.river_adapter import RiverAssetHST, RiverDrift, RiverHST
from riskwatch.detectors.stage import DetectorStage
from riskwatch.model import Batch
from riskwatch.pipeline import StageContext


def test_kswin_detects_distribution_change() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(0, 4, 200)]  # variance change, same mean
    s = run_stream(RiverDrift(model="kswin"), np.zeros(len(x), np.int32), x)
    assert s[:500].max() < 0.5
    assert 500 <= int(np.argmax(s >= 0.5)) < 650


def test_drift_batch_equals_one_at_a_time_and_score_is_pure() -> None:
    rng = np.random.default_rng(1)
    sensor = rng.integers(0, 3, 600).astype(np.int32)
    x = rng.normal(0, 1, 600) + (np.arange(600) > 400) * 5
    t = np.arange(600, dtype=np.int64)
    a = run_stream(RiverDrift(), sensor, x, t)
    one = RiverDrift()
    b = np.concatenate(
        [run_stream(one, sensor[i : i + 1], x[i : i + 1], t[i : i + 1]) for i in range(600)]
    )
    np.testing.assert_array_equal(a, b)
    before = one.score(np.array([0]), np.array([50.0]), np.array([601]))
    again = one.score(np.array([0]), np.array([50.0]), np.array([601]))
    np.testing.assert_array_equal(before, again)


def test_hst_scores_outlier_above_normal() -> None:
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(0.5, 0.05, 800), 3.0]
    s = run_stream(RiverHST(window_size=100, warmup=200), np.zeros(len(x), np.int32), x)
    assert s[-1] > np.quantile(s[200:-1], 0.99)


def test_asset_hst_over_registry_groups() -> None:
    """Two sensors of one pump move together; a reading where they disagree scores above
    the typical one; both share one model."""
    ids = [0, 1]
    det = RiverAssetHST(group_by="sensor", window_size=100, warmup=200)
    det.bind_groups(np.array([0, 0, 1]))
    rng = np.random.default_rng(3)
    n = 1000
    load = rng.uniform(0, 1, n)
    amp, flow = load + rng.normal(0, 0.02, n), load + rng.normal(0, 0.02, n)
    amp[-1], flow[-1] = 0.98, 0.02  # the pair disagrees on the last reading
    sensor = np.tile(np.array(ids[:2], np.int32), n)
    value = np.stack([amp, flow], axis=1).reshape(-1)
    s = run_stream(det, sensor, value, np.repeat(np.arange(n), 2))
    assert s[-1] > np.median(s[400:-1])  # HST is a weak but cheap multivariate screen
    assert set(det._models) == {0}


def test_stage_binds_asset_groups(tmp_path) -> None:
    reg = SensorRegistry()
    reg.intern("e", "s", ["a", "b"], kinds=["x", "x"])
    f = tmp_path / "d.yaml"
    f.write_text(
        "detectors: [{name: pump, members: {m: {type: river_asset_hst, group_by: kind, warmup: 5}}}]\n"
    )
    st = DetectorStage([f], reg)
    st.process(Batch.from_arrays([1, 1], [0, 1], [1.0, 2.0]), StageContext(1, reg))
    det = st.entries[0].ensemble.members["m"]
    assert det._group.tolist() == [0, 0]
