"""Asset-level multivariate detection: Mahalanobis distance of an asset's sensor vector.

A pump's current, flow and outlet pressure move together; a fault shows first as a
combination that never occurs (current up, flow down), each value ordinary alone. The
detector keeps, per *asset* (the registry column ``group_by``, default tag ``asset``),
the latest value of each of its sensors, an exponentially weighted mean and covariance
of that vector, and scores the vector's squared Mahalanobis distance

    D² = (x - m)' S⁻¹ (x - m),   S = (1 - shrink) C + shrink diag(C)

against the chi-square law with one degree of freedom per sensor (its exact tail;
Wilson-Hilferty's normal approximation where that underflows). ``shrink`` pulls
the covariance towards its diagonal (Ledoit-Wolf style) so a few hundred readings give
an invertible, stable estimate. The tail is Hotelling's for an estimated mean and
covariance (an F law) with the estimate's effective number of readings,
``min(rounds, (2 - alpha) / alpha)``, so a large asset is not judged by the
chi-square law its estimate cannot support. Score first, then learn.

Vectorised over assets: a round's readings update their assets' vectors, then one
batched solve (``numpy.linalg.solve`` over a stack of ``d x d`` matrices, ``d`` the
largest asset) scores every asset the round touched, and every reading of an asset in
the round gets its asset's score. Assets of fewer than ``min_sensors`` sensors score 0
(one sensor alone is the level members' job).

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(3)
>>> load = rng.uniform(0, 1, 600)
>>> amp, flow = load + rng.normal(0, 0.02, 600), load + rng.normal(0, 0.02, 600)
>>> amp[-1], flow[-1] = 0.9, 0.1   # each ordinary alone, never together
>>> det = AssetMahalanobis(warmup=100)
>>> det.bind_groups(np.array([0, 0]))
>>> sensor = np.tile(np.array([0, 1], np.int32), 600)
>>> s = run_stream(det, sensor, np.stack([amp, flow], 1).reshape(-1), np.repeat(np.arange(600), 2))
>>> round(float(s[-1]), 2), bool(np.quantile(s[400:-2], 0.99) < 0.3)
(0.68, True)
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from riskwatch.detectors.base import Detector, check
from riskwatch.extras import require


def _special() -> ModuleType:
    """scipy.special (the [scipy] extra), imported when an asset is first scored."""
    return require("scipy.special", "scipy", "the asset_mahalanobis detector")

__all__ = ["AssetMahalanobis"]

_LN10 = float(np.log(10.0))


def chi2_decades(d2: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """``-log10`` of the chi-square upper tail of ``d2`` with ``dof`` degrees of freedom,
    >= 0; where the exact tail underflows, Wilson-Hilferty (``(d2/k)^(1/3)`` about
    normal, mean ``1 - 2/(9k)``, variance ``2/(9k)``), which keeps growing.

    >>> chi2_decades(np.array([3.84, 100.0, 1e5]), np.array([1, 1, 2])).round(2).tolist()
    [1.3, 22.82, 2528.41]
    """
    k = np.maximum(np.asarray(dof, np.float64), 1.0)
    x = np.maximum(np.asarray(d2, np.float64), 0.0)
    sp = _special()
    p = sp.chdtrc(k, x)
    v = 2.0 / (9.0 * k)
    z = (np.cbrt(x / k) - (1.0 - v)) / np.sqrt(v)
    far = -sp.log_ndtr(-z) / _LN10
    with np.errstate(divide="ignore"):
        exact = -np.log10(p)
    return np.maximum(np.where(p > 1e-280, exact, far), 0.0) + 0.0


def hotelling_decades(d2: np.ndarray, dof: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``-log10`` of the tail of a new vector's distance from a mean and covariance
    estimated from ``n`` readings (Hotelling: ``d2 n (n - k) / (k (n + 1) (n - 1))`` is
    F(k, n - k) distributed); 0 where ``n <= k`` (no baseline for ``k`` sensors yet).
    An estimated covariance makes distances larger than the chi-square law says: with
    200 readings of 100 sensors about twice as large.

    >>> d2, k = np.array([30.0, 30.0, 30.0]), np.array([10, 10, 10])
    >>> hotelling_decades(d2, k, np.array([20.0, 1e6, 5.0])).round(2).tolist()
    [0.58, 3.07, 0.0]
    """
    k = np.maximum(np.asarray(dof, np.float64), 1.0)
    n = np.asarray(n, np.float64)
    ok = n > k + 1.0
    nn = np.where(ok, n, k + 2.0)
    f = np.maximum(d2, 0.0) * nn * (nn - k) / (k * (nn + 1.0) * (nn - 1.0))
    p = _special().fdtrc(k, nn - k, f)
    far = chi2_decades(f * k, k)  # F(k, m) -> chi2_k / k as m grows; underflow only
    with np.errstate(divide="ignore"):
        exact = -np.log10(p)
    out = np.where(p > 1e-280, exact, far)
    return np.where(ok, np.maximum(out, 0.0), 0.0) + 0.0


class AssetMahalanobis(Detector):
    """Mahalanobis distance of each asset's latest sensor vector (module docstring).

    Parameters
    ----------
    group_by : str
        The registry column naming a sensor's asset (unbound: all sensors one asset).
    alpha : float
        Weight of a round in the mean and covariance (0.01 ~ the last 100 rounds).
    shrink : float
        Share of the covariance replaced by its diagonal, in [0, 1).
    min_sensors : int
        Assets with fewer sensors score 0.
    warmup : int
        Rounds of an asset (rounds with at least one of its readings) before it scores.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    P. C. Mahalanobis (1936); H. Hotelling's T² chart (1947); O. Ledoit, M. Wolf,
    "A well-conditioned estimator for large-dimensional covariance matrices" (2004);
    E. B. Wilson, M. M. Hilferty (1931) for the chi-square tail.
    """

    kind = "asset_mahalanobis"
    round_order_free = True  # one score per asset and round, whatever the order

    def __init__(
        self,
        group_by: str = "asset",
        alpha: float = 0.01,
        shrink: float = 0.1,
        min_sensors: int = 2,
        *,
        warmup: int = 100,
        threshold: float = 0.5,
    ) -> None:
        check(bool(group_by), "group_by", "must name a registry column")
        check(0.0 < alpha < 1.0, "alpha", f"must be in (0, 1), got {alpha}")
        check(0.0 <= shrink < 1.0, "shrink", f"must be in [0, 1), got {shrink}")
        check(isinstance(min_sensors, int) and min_sensors >= 1, "min_sensors",
              "must be an integer >= 1")  # fmt: skip
        super().__init__(warmup=warmup, threshold=threshold)
        self.group_by, self.alpha, self.shrink, self.min_sensors = (
            group_by,
            alpha,
            shrink,
            min_sensors,
        )
        self._bound = False
        self._group = np.zeros(0, np.int64)  # per sensor: asset id
        self._pos = np.zeros(0, np.int64)  # per sensor: its slot in the asset vector
        self._size = np.zeros(0, np.int64)  # per asset: sensors
        self._x = np.zeros((0, 0))  # per asset: latest values (NaN = none yet)
        self._m = np.zeros((0, 0))
        self._c = np.zeros((0, 0, 0))
        self._count = np.zeros(0, np.int64)

    def bind_groups(self, groups: np.ndarray) -> None:
        """Assets of the sensor ids ``0 .. len(groups) - 1`` (state starts fresh)."""
        g = np.asarray(groups, dtype=np.int64)
        _, gid = np.unique(g, return_inverse=True)
        order = np.argsort(gid, kind="stable")
        first = np.r_[0, np.flatnonzero(np.diff(gid[order])) + 1]
        size = np.diff(np.r_[first, len(gid)]) if len(gid) else np.zeros(0, np.int64)
        pos = np.empty(len(gid), np.int64)
        pos[order] = np.arange(len(gid)) - np.repeat(first, size)
        self._bound = True
        self._group, self._pos, self._size = gid, pos, size.astype(np.int64)
        self._reset(len(size), int(size.max()) if len(size) else 0)

    def _reset(self, n_assets: int, dim: int) -> None:
        self._x = np.full((n_assets, dim), np.nan)
        self._m = np.zeros((n_assets, dim))
        self._c = np.zeros((n_assets, dim, dim))
        self._count = np.zeros(n_assets, np.int64)

    def _cover(self, sensor: np.ndarray) -> None:
        """Unbound: every sensor id seen so far is one slot of the one asset."""
        need = int(sensor.max()) + 1 if len(sensor) else 0
        if self._bound:
            if need > len(self._group):  # sensors added after binding: their own asset
                extra = np.arange(len(self._group), need)
                self.bind_groups(np.r_[self._group, len(self._size) + extra])
            return
        if need <= len(self._pos):
            return
        old = len(self._pos)
        x, m, c, count = self._x, self._m, self._c, self._count
        self._group = np.zeros(need, np.int64)
        self._pos = np.arange(need, dtype=np.int64)
        self._size = np.array([need], np.int64)
        self._reset(1, need)
        if old and len(count):
            self._x[:, :old], self._m[:, :old], self._c[:, :old, :old] = x, m, c
            self._count[:] = count

    def forget(self, sensor: np.ndarray) -> None:
        s = np.asarray(sensor, dtype=np.int64)
        s = s[s < len(self._group)]
        g = np.unique(self._group[s])
        self._x[g], self._m[g], self._c[g], self._count[g] = np.nan, 0.0, 0.0, 0

    def state_nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self._group, self._pos, self._size, self._x,
                                          self._m, self._c, self._count)))  # fmt: skip

    def _vectors(self, sensor: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The round's assets and their vectors with the round's readings put in."""
        self._cover(sensor)
        g = self._group[sensor]
        assets, inv = np.unique(g, return_inverse=True)
        x = self._x[assets]  # a copy
        x[inv, self._pos[sensor]] = value
        return assets, x

    def _d2(self, assets: np.ndarray, x: np.ndarray) -> np.ndarray:
        m, c = self._m[assets], self._c[assets]
        dim = x.shape[1]
        diag = np.diagonal(c, axis1=1, axis2=2)
        s = (1.0 - self.shrink) * c
        idx = np.arange(dim)
        # slots an asset does not have (or whose sensor has not reported): identity rows
        # and a zero deviation, so they add nothing to the distance
        present = ~np.isnan(x)
        scale = np.where(present, diag, 1.0)
        floor = 1e-12 * np.maximum(scale.max(axis=1, initial=0.0), 1e-300)[:, None]
        s[:, idx, idx] = np.where(present, self.shrink * diag + s[:, idx, idx], 1.0) + floor
        s = np.where(present[:, :, None] & present[:, None, :], s, s * np.eye(dim))
        dev = np.where(present, x - m, 0.0)
        sol = np.linalg.solve(s, dev[:, :, None])[:, :, 0]
        return np.einsum("ij,ij->i", dev, sol)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        out = np.zeros(len(sensor))
        ok = np.isfinite(value)
        if not ok.any():
            return out
        s, v = sensor[ok], value[ok]
        self._cover(s)
        big = self._size[self._group[s]] >= self.min_sensors
        if not big.all():  # assets too small to score: 0, and nothing to compute
            ok[ok] = big
            s, v = s[big], v[big]
            if not len(s):
                return out
        assets, x = self._vectors(s, v)
        live = (self._count[assets] >= max(self.warmup, 2)) & (
            self._size[assets] >= self.min_sensors
        )
        u = np.zeros(len(assets))
        if live.any():
            dof = (~np.isnan(x[live])).sum(axis=1)
            n_eff = np.minimum(self._count[assets[live]], (2.0 - self.alpha) / self.alpha)
            u[live] = hotelling_decades(self._d2(assets[live], x[live]), dof, n_eff)
        out[ok] = u[np.searchsorted(assets, self._group[s])]
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        self._cover(sensor)
        big = self._size[self._group[sensor]] >= self.min_sensors
        if not big.all():  # assets too small to score learn nothing (they never score)
            sensor, value = sensor[big], value[big]
            if not len(sensor):
                return
        assets, x = self._vectors(sensor, value)
        self._x[assets] = x
        n = self._count[assets]
        a = np.maximum(self.alpha, 1.0 / (n + 1.0))[:, None]
        m = self._m[assets]
        known = ~np.isnan(x)
        dev = np.where(known, x - m, 0.0)
        m_new = np.where(n[:, None] == 0, np.where(known, x, 0.0), m + a * dev)
        # EW covariance (West's update): C <- (1 - a) (C + a dev dev')
        c = self._c[assets]
        c_new = (1.0 - a[:, :, None]) * (c + a[:, :, None] * dev[:, :, None] * dev[:, None, :])
        self._m[assets] = m_new
        self._c[assets] = c_new
        self._count[assets] = n + 1
