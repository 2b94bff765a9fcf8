"""river models behind the detector API, for where a per-sensor or per-asset model pays.

river models learn one dict at a time, so these adapters loop in Python over the
readings of a round (one model per sensor or per asset). That costs tens of
microseconds per reading (``bench/bench_detectors.py`` measures it), so use them on
selected streams, not on every sensor; the numpy detectors cover the fleet.

* ``river_hst``: :class:`river.anomaly.HalfSpaceTrees` on one sensor (min-max scaled).
* ``river_asset_hst``: one HalfSpaceTrees per *asset* over all its sensors' latest
  values (multivariate: a pump whose current, vibration and outlet pressure disagree).
  The asset of a sensor is the registry column ``group_by`` (default tag ``asset``);
  the stage binds the registry (:class:`~.base.GroupedDetector`); unbound
  (``riskwatch score``), all columns are one asset.
* ``river_drift``: :class:`river.drift.ADWIN` or :class:`river.drift.KSWIN` per sensor;
  score 1 on the reading at which the detector signals drift.

``score`` never changes state: HalfSpaceTrees' ``score_one`` is pure; for drift
detectors the update is tried on a copy. Surprise scale: ``10 * model score`` for HST
(0.5 = HST score 0.5), 10 for a drift signal; calibrate them in the ensemble.

ADWIN on 400 standard normal readings, then a mean shift of 6 sigma: drift is signalled
once, 15 readings into the new level:

>>> import numpy as np
>>> from riskwatch.detectors.base import run_stream
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 1, 400), rng.normal(6, 1, 100)]
>>> s = run_stream(RiverDrift(model="adwin"), np.zeros(len(x), np.int32), x)
>>> np.flatnonzero(s >= 0.5).tolist()
[415]
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np

from riskwatch.detectors.base import Detector, check
from riskwatch.extras import require

__all__ = ["RiverAssetHST", "RiverDrift", "RiverHST"]


def _hst(n_trees: int, height: int, window_size: int, seed: int) -> Any:
    require("river", "river", "the river_* detectors")
    from river import anomaly, preprocessing

    return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=n_trees, height=height, window_size=window_size, seed=seed
    )


class _PerKey(Detector):
    """Common part: a dict of river models keyed by an int, warm-up counted per key."""

    def __init__(self, *, warmup: int, threshold: float) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        self._models: dict[int, Any] = {}
        self._seen: dict[int, int] = {}

    def _model(self, key: int) -> Any:
        m = self._models.get(key)
        if m is None:
            m = self._models[key] = self._new()
        return m

    def _new(self) -> Any:
        raise NotImplementedError

    def forget(self, sensor: np.ndarray) -> None:
        for s in np.asarray(sensor).tolist():
            self._models.pop(int(s), None)
            self._seen.pop(int(s), None)


class RiverHST(_PerKey):
    """Per-sensor HalfSpaceTrees (univariate, min-max scaled); surprise ``10 * score``.

    Parameters
    ----------
    n_trees : int
        Trees in the forest.
    height : int
        Height of each tree (1..20).
    window_size : int
        Readings per reference window (the mass profile is rebuilt every window).
    seed : int
        Random seed of the trees.
    warmup : int
        Readings of a sensor before it scores.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    S. C. Tan, K. M. Ting, T. F. Liu, "Fast anomaly detection for streaming data",
    *IJCAI* 2011, 1511-1516. river: ``river.anomaly.HalfSpaceTrees``.

    Examples
    --------
    800 readings around 0.5 (sd 0.05), then 3.0: the outlier scores above the 99th
    percentile of the others, but only just; HalfSpaceTrees is a weak screen on one
    series (docs/detectors.md, measured quality):

    >>> from riskwatch.detectors.base import run_stream
    >>> rng = np.random.default_rng(2)
    >>> x = np.r_[rng.normal(0.5, 0.05, 800), 3.0]
    >>> s = run_stream(RiverHST(window_size=100, warmup=200), np.zeros(len(x), np.int32), x)
    >>> round(float(s[-1]), 4), round(float(np.quantile(s[200:-1], 0.99)), 4)
    (0.9949, 0.9944)
    """

    kind = "river_hst"

    def __init__(
        self,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int = 42,
        *,
        warmup: int = 250,
        threshold: float = 0.5,
    ) -> None:
        check(n_trees >= 1, "n_trees", f"must be >= 1, got {n_trees}")
        check(1 <= height <= 20, "height", f"must be within 1..20, got {height}")
        check(window_size >= 1, "window_size", f"must be >= 1, got {window_size}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.n_trees, self.height, self.window_size, self.seed = n_trees, height, window_size, seed

    def _new(self) -> Any:
        return _hst(self.n_trees, self.height, self.window_size, self.seed)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        out = np.zeros(len(sensor))
        for i, (s, v) in enumerate(zip(sensor.tolist(), value.tolist(), strict=True)):
            if v == v and self._seen.get(s, 0) >= self.warmup:
                out[i] = 10.0 * float(self._model(s).score_one({"x": v}))
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        for s, v in zip(sensor.tolist(), value.tolist(), strict=True):
            self._model(s).learn_one({"x": v})
            self._seen[s] = self._seen.get(s, 0) + 1


class RiverAssetHST(_PerKey):
    """HalfSpaceTrees per asset over the latest value of each of its sensors.

    Each reading updates its sensor's entry in the asset's feature dict (the latest
    value of every sensor of the asset) and is scored as that whole dict, so a reading
    that is ordinary alone but not together with its asset's other sensors stands out.
    Sensors of one asset in one round see each other in order (``round_order_free`` is
    False). The stage binds the groups (:class:`~.base.GroupedDetector`).

    Parameters
    ----------
    group_by : str
        The registry column naming a sensor's asset (sensors without the column: one
        asset).
    n_trees, height, window_size, seed : int
        As :class:`RiverHST`.
    warmup : int
        Readings of an asset before it scores.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    S. C. Tan, K. M. Ting, T. F. Liu, "Fast anomaly detection for streaming data",
    *IJCAI* 2011, 1511-1516.

    Examples
    --------
    A pump's current and flow follow one load; on the last reading they disagree. It
    scores 0.9861, above the median reading (0.9798), yet 19 % of the ordinary
    readings score at least as high:

    >>> from riskwatch.detectors.base import run_stream
    >>> det = RiverAssetHST(group_by="asset", window_size=100, warmup=200)
    >>> det.bind_groups(np.array([0, 0]))  # sensors 0 and 1: one asset
    >>> rng = np.random.default_rng(3)
    >>> load = rng.uniform(0, 1, 1000)
    >>> amp, flow = load + rng.normal(0, 0.02, 1000), load + rng.normal(0, 0.02, 1000)
    >>> amp[-1], flow[-1] = 0.98, 0.02
    >>> sensor = np.tile(np.array([0, 1], np.int32), 1000)
    >>> value = np.stack([amp, flow], axis=1).reshape(-1)
    >>> s = run_stream(det, sensor, value, np.repeat(np.arange(1000), 2))
    >>> round(float(s[-1]), 4), round(float(np.median(s[400:-1])), 4)
    (0.9861, 0.9798)
    """

    kind = "river_asset_hst"
    round_order_free = False  # sensors of one asset in a round see each other in order

    def __init__(
        self,
        group_by: str = "asset",
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int = 42,
        *,
        warmup: int = 250,
        threshold: float = 0.5,
    ) -> None:
        check(bool(group_by), "group_by", "must name a registry column")
        check(n_trees >= 1, "n_trees", f"must be >= 1, got {n_trees}")
        check(1 <= height <= 20, "height", f"must be within 1..20, got {height}")
        check(window_size >= 1, "window_size", f"must be >= 1, got {window_size}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.group_by, self.n_trees, self.height = group_by, n_trees, height
        self.window_size, self.seed = window_size, seed
        self._group = np.zeros(0, dtype=np.int64)
        self._latest: dict[int, dict[str, float]] = {}

    def bind_groups(self, groups: np.ndarray) -> None:
        """Group id per sensor id (the stage passes the registry column, factorised)."""
        self._group = np.asarray(groups, dtype=np.int64)

    def _groups(self, sensor: np.ndarray) -> list[int]:
        g = np.zeros(len(sensor), dtype=np.int64)
        ok = sensor < len(self._group)
        g[ok] = self._group[sensor[ok]]
        return g.tolist()

    def _new(self) -> Any:
        return _hst(self.n_trees, self.height, self.window_size, self.seed)

    def _features(self, g: int, s: int, v: float) -> dict[str, float]:
        f = dict(self._latest.get(g, {}))
        f[str(s)] = v
        return f

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        out = np.zeros(len(sensor))
        groups = self._groups(sensor)
        pending: dict[int, dict[str, float]] = {}
        for i, (s, v) in enumerate(zip(sensor.tolist(), value.tolist(), strict=True)):
            g = groups[i]
            if v != v:
                continue
            f = pending.setdefault(g, dict(self._latest.get(g, {})))
            f[str(s)] = v
            if self._seen.get(g, 0) >= self.warmup:
                out[i] = 10.0 * float(self._model(g).score_one(dict(f)))
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        groups = self._groups(sensor)
        for i, (s, v) in enumerate(zip(sensor.tolist(), value.tolist(), strict=True)):
            g = groups[i]
            f = self._latest.setdefault(g, {})
            f[str(s)] = v
            self._model(g).learn_one(dict(f))
            self._seen[g] = self._seen.get(g, 0) + 1


class RiverDrift(_PerKey):
    """Per-sensor ADWIN or KSWIN concept-drift detector; surprise 10 (score 1) on the
    reading at which the river detector signals drift, else 0.

    Parameters
    ----------
    model : {"adwin", "kswin"}
        ADWIN (adaptive window, mean changes) or KSWIN (Kolmogorov-Smirnov test over a
        sliding window, any change of distribution).
    delta : float
        ADWIN's confidence, in (0, 1).
    alpha : float
        KSWIN's significance, in (0, 1).
    window_size : int
        KSWIN's window (>= 10).
    seed : int
        KSWIN's sampling seed.
    warmup : int
        Readings of a sensor before it scores.
    threshold : float
        Default alert threshold on the score.

    References
    ----------
    A. Bifet, R. Gavaldà, "Learning from time-changing data with adaptive windowing",
    *SIAM SDM* 2007, 443-448. C. Raab, M. Heusinger, F.-M. Schleif, "Reactive soft
    prototype computing for concept drift streams", *Neurocomputing* 416 (2020)
    340-351 (KSWIN). river: ``river.drift.ADWIN``, ``river.drift.KSWIN``.

    Examples
    --------
    KSWIN on a variance change (same mean, sd 1 -> 4 at reading 500):

    >>> from riskwatch.detectors.base import run_stream
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 1, 500), rng.normal(0, 4, 200)]
    >>> s = run_stream(RiverDrift(model="kswin"), np.zeros(len(x), np.int32), x)
    >>> np.flatnonzero(s >= 0.5).tolist()
    [602]
    """

    kind = "river_drift"

    def __init__(
        self,
        model: Literal["adwin", "kswin"] = "adwin",
        delta: float = 0.002,
        alpha: float = 0.005,
        window_size: int = 100,
        seed: int = 42,
        *,
        warmup: int = 30,
        threshold: float = 0.5,
    ) -> None:
        check(model in ("adwin", "kswin"), "model", f"must be adwin or kswin, got {model!r}")
        check(0.0 < delta < 1.0, "delta", f"must be in (0, 1), got {delta}")
        check(0.0 < alpha < 1.0, "alpha", f"must be in (0, 1), got {alpha}")
        check(window_size >= 10, "window_size", f"must be >= 10, got {window_size}")
        super().__init__(warmup=warmup, threshold=threshold)
        self.model, self.delta, self.alpha = model, delta, alpha
        self.window_size, self.seed = window_size, seed

    def _new(self) -> Any:
        require("river", "river", "the river_drift detector")
        from river import drift

        if self.model == "adwin":
            return drift.ADWIN(delta=self.delta)
        return drift.KSWIN(alpha=self.alpha, window_size=self.window_size, seed=self.seed)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        out = np.zeros(len(sensor))
        for i, (s, v) in enumerate(zip(sensor.tolist(), value.tolist(), strict=True)):
            if v != v or self._seen.get(s, 0) < self.warmup:
                continue
            trial = copy.deepcopy(self._model(s))
            trial.update(v)
            out[i] = 10.0 if trial.drift_detected else 0.0
        return out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        for s, v in zip(sensor.tolist(), value.tolist(), strict=True):
            self._model(s).update(v)
            self._seen[s] = self._seen.get(s, 0) + 1
