"""Asset-level Mahalanobis detector: vectorised over assets = a plain per-asset loop."""

from __future__ import annotations

import numpy as np

from riskwatch.detectors.asset_mahalanobis import AssetMahalanobis, hotelling_decades
from riskwatch.detectors.base import run_stream
from riskwatch.detectors.ensemble import Ensemble


def _reference(x: np.ndarray, alpha: float, shrink: float, warmup: int) -> np.ndarray:
    """One asset, every sensor every round: score (Hotelling tail), then learn."""
    n, d = x.shape
    m, c = np.zeros(d), np.zeros((d, d))
    out = np.zeros(n)
    for t in range(n):
        if t >= max(warmup, 2) and d >= 2:
            dg = np.diag(np.diag(c))
            s = (1 - shrink) * c + shrink * dg
            s = s + np.eye(d) * 1e-12 * max(np.diag(c).max(), 1e-300)
            dev = x[t] - m
            d2 = float(dev @ np.linalg.solve(s, dev))
            n_eff = min(t, (2 - alpha) / alpha)
            out[t] = hotelling_decades(np.array([d2]), np.array([d]), np.array([n_eff]))[0]
        a = max(alpha, 1.0 / (t + 1.0))
        if t == 0:
            m = x[0].copy()
        else:
            dev = x[t] - m
            m = m + a * dev
            c = (1 - a) * (c + a * np.outer(dev, dev))
    return np.minimum(out / 10.0, 1.0)


def _assets(seed: int, n: int = 400) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for d in (2, 3, 4):
        load = rng.uniform(0, 1, n)
        x = load[:, None] * rng.uniform(0.5, 2, d) + rng.normal(0, 0.05, (n, d))
        x[n - 50, :2] += (1.0, -1.0)  # two sensors off their common course
        out.append(x)
    return out


def test_vectorised_over_assets_equals_the_per_asset_loop() -> None:
    xs = _assets(1)
    n = len(xs[0])
    groups = np.concatenate([np.full(x.shape[1], k) for k, x in enumerate(xs)])
    det = AssetMahalanobis(warmup=50)
    det.bind_groups(groups)
    sensor = np.tile(np.arange(len(groups)), n)
    value = np.concatenate(xs, axis=1).reshape(-1)
    got = run_stream(det, sensor, value, np.repeat(np.arange(n), len(groups))).reshape(n, -1)
    for k, x in enumerate(xs):
        ref = _reference(x, 0.01, 0.1, 50)
        for j in np.flatnonzero(groups == k):
            np.testing.assert_allclose(got[:, j], ref, rtol=1e-9, atol=1e-12)
    # the joint fault stands out in each asset, its sensors ordinary alone
    assert (got[n - 50] >= 0.5).all() and np.quantile(got[100 : n - 50], 0.99) < 0.5


def test_one_sensor_asset_scores_zero_and_ensemble_path_agrees() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 300)
    det = AssetMahalanobis(warmup=10)
    det.bind_groups(np.array([0]))
    assert run_stream(det, np.zeros(300, np.int32), x).max() == 0.0
    xs = _assets(3, 200)[0]
    a = AssetMahalanobis(warmup=20)
    a.bind_groups(np.array([0, 0]))
    ens = Ensemble({"asset": AssetMahalanobis(warmup=20)}, threshold=0.5)
    ens.members["asset"].bind_groups(np.array([0, 0]))  # type: ignore[attr-defined]
    sensor, value = np.tile([0, 1], 200), xs.reshape(-1)
    t = np.repeat(np.arange(200), 2)
    np.testing.assert_allclose(
        run_stream(a, sensor, value, t), ens.process(sensor, value, t).members["asset"]
    )
