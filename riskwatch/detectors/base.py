"""The detector contract: river's ``learn``/``score`` over whole columns of many sensors.

A detector keeps its learned state in numpy arrays indexed by sensor id. One call
handles one *round*: arrays ``sensor``, ``value``, ``time`` in which each sensor occurs
at most once. ``score`` reads the state and never changes it; ``learn`` updates it and
returns nothing. The streaming order is always score first, then learn, so a score only
depends on readings before (and at) it: there is no look-ahead.

A micro-batch may hold several readings of one sensor; :func:`rounds` splits it into
rounds (the k-th reading of every sensor goes into round k) so a batch gives exactly
the same scores as feeding readings one at a time. In the engine a round holds
thousands of sensors, so the Python loop runs over rounds, never over readings.

Scores are in [0, 1] and on one scale for every detector and every series:
``0.5`` is each detector's classic decision rule (``z`` tail probability 1e-5, CUSUM
sum reaching ``h``, Page-Hinkley reaching ``lam``), ``1`` is far past it. For
z-type detectors the score is ``-log10(p) / 10`` with ``p`` the two-sided Gaussian
tail probability of the standardised deviation, so the scale means the same thing on
a temperature and on a request latency.

Row-state detectors (one number per sensor and state field) can hand their state to a
*row block*, a float64 array with one row per sensor that an ensemble shares among its
members: :meth:`Detector.row_fields` names the columns a detector needs,
:meth:`Detector.move_rows_to` copies its state there and keeps it there,
:meth:`Detector.step_rows` scores and learns one round on gathered rows. The ensemble
only ever uses these public methods; the state arrays stay private to the detector.

>>> import numpy as np
>>> from riskwatch.detectors.robust import RobustZScore
>>> det = RobustZScore(alpha=0.1, warmup=5)
>>> run_stream(det, np.zeros(3, np.int32), np.array([1.0, 1.0, 1.0]))
array([0., 0., 0.])
>>> float(np.round(z_score_to_unit(np.array([4.42]))[0], 2))
0.5
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

try:  # the [scipy] extra: exact; without it a numpy twin good to 1.2e-7 (relative)
    from scipy.special import log_ndtr
except ImportError:  # pragma: no cover - depends on the install
    from riskwatch.detectors.special import log_ndtr

__all__ = [
    "Detector",
    "GroupedDetector",
    "HyperParameterError",
    "rounds",
    "run_stream",
    "z_score_to_unit",
    "z_to_decades",
]

_LN10 = float(np.log(10.0))


class HyperParameterError(ValueError):
    """A detector constructor argument is out of its domain (names the parameter)."""

    def __init__(self, param: str, message: str) -> None:
        self.param, self.message = param, message
        super().__init__(f"{param}: {message}")


def z_to_decades(z: np.ndarray) -> np.ndarray:
    """Surprise of ``|z|`` in decades: ``-log10`` of the two-sided Gaussian tail (>= 0).

    >>> z_to_decades(np.array([0.0, 4.4172, 40.0])).round(1).tolist()
    [0.0, 5.0, 349.1]
    """
    z = np.abs(np.asarray(z, dtype=np.float64))
    out = log_ndtr(np.negative(z))
    out += np.log(2.0)  # the same operations as below, in place (a hot path)
    np.negative(out, out=out)
    out /= _LN10
    np.maximum(out, 0.0, out=out)
    out += 0.0
    nan = np.isnan(z)
    if nan.any():
        out[nan] = 0.0
    return out


def z_score_to_unit(z: np.ndarray) -> np.ndarray:
    """Map ``|z|`` to ``min(1, -log10(two-sided Gaussian tail) / 10)``.

    >>> z_score_to_unit(np.array([0.0, 3.0, 20.0])).round(3).tolist()
    [0.0, 0.257, 1.0]
    """
    z = np.abs(np.asarray(z, dtype=np.float64))
    logp = np.log(2.0) + log_ndtr(-z)
    out = np.clip(-logp / (10.0 * _LN10), 0.0, 1.0) + 0.0  # + 0.0: no negative zero
    out[np.isnan(z)] = 0.0
    return out


def z_score_to_unit_scalar(z: float) -> float:
    """Scalar twin of :func:`z_score_to_unit` (reference implementations use it)."""
    if z != z:
        return 0.0
    return float(z_score_to_unit(np.array([z]))[0])


def check(cond: bool, name: str, msg: str) -> None:
    """Raise :class:`HyperParameterError` naming ``name`` unless ``cond``."""
    if not cond:
        raise HyperParameterError(name, msg)


class Detector(ABC):
    """Base of the vectorised detectors: river's contract over whole columns.

    Subclasses declare ``state_fields`` (name -> (dtype, initial value)); the arrays grow
    on demand when a larger sensor id arrives. Hyper-parameters are constructor arguments,
    validated there (:class:`HyperParameterError` names the parameter); learned state is
    private. Subclasses implement :meth:`_surprise` (pure) and :meth:`_learn`; row-state
    subclasses also the fused :meth:`step_rows`.

    Parameters
    ----------
    warmup : int
        Readings of a sensor before its scores may be non-zero.
    threshold : float
        The default alert threshold on the score, in (0, 1].
    """

    kind: ClassVar[str] = ""
    #: Whether results do not depend on the order of sensors within a round (True for
    #: per-sensor state). False lets ensembles keep the order :func:`rounds` gives.
    round_order_free: ClassVar[bool] = True
    state_fields: ClassVar[dict[str, tuple[Any, float]]] = {}
    #: Whether the state is one number per sensor and field and :meth:`step_rows` is
    #: implemented: an ensemble then keeps the fields as columns of one per-sensor row
    #: block (:meth:`move_rows_to`) and moves the state of all members with one gather
    #: and one scatter per round.
    row_state: ClassVar[bool] = False
    #: Whether :meth:`step_rows` honours ``need``: the costly exact surprise is then
    #: only computed where it can reach one decade or where the caller needs it.
    lazy_low: ClassVar[bool] = False
    #: Whether the surprise is already judged against the sensor's own long-run spread
    #: of the statistic it watches (a control chart), so an ensemble's tail calibration
    #: passes it through. A chart's surprise is also autocorrelated: one event keeps it
    #: high for many readings, and the calibrator would count that one event many times
    #: and take the next one like it for routine.
    self_calibrated: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # a row-state detector without its fused step would only fail at its first round
        super().__init_subclass__(**kwargs)
        if cls.row_state and cls.step_rows is Detector.step_rows:
            raise TypeError(f"{cls.__name__}: row_state = True needs step_rows")

    def __init__(self, *, warmup: int = 30, threshold: float = 0.5) -> None:
        check(isinstance(warmup, int) and warmup >= 0, "warmup", "must be an integer >= 0")
        check(0.0 < threshold <= 1.0, "threshold", "must be in (0, 1]")
        self.warmup = warmup
        self.threshold = threshold
        self._n = 0
        self._fields = self._state_fields()
        self._s: dict[str, np.ndarray] = {
            k: np.full(0, init, dtype=dt) for k, (dt, init) in self._fields.items()
        }

    def _state_fields(self) -> dict[str, tuple[Any, float]]:
        """This instance's state fields (the class's ``state_fields`` unless a
        hyper-parameter switches some off)."""
        return dict(self.state_fields)

    # -- state -----------------------------------------------------------------------
    @property
    def n_sensors(self) -> int:
        """How many sensor ids have state (ids ``0 .. n_sensors - 1``)."""
        return self._n

    def _grow(self, sensor: np.ndarray) -> None:
        if len(sensor) == 0:
            return
        need = int(sensor.max()) + 1
        if need <= self._n:
            return
        cap = max(need, 2 * self._n, 16)
        for k, (dt, init) in self._fields.items():
            old = self._s[k]
            new = np.full((cap, *old.shape[1:]), init, dtype=dt)
            new[: len(old)] = old
            self._s[k] = new
        self._n = cap

    def reserve(self, n: int) -> None:
        """Size the state for sensor ids ``< n`` now (no growth copies later). A detector
        bound to a row block is sized by the block's owner first, so this is a no-op."""
        if n > 0:
            self._grow(np.array([n - 1]))

    def forget(self, sensor: np.ndarray) -> None:
        """Reset the learned state of these sensors (e.g. after recalibration)."""
        sensor = np.asarray(sensor, dtype=np.int64)
        sensor = sensor[sensor < self._n]
        for k, (_, init) in self._fields.items():
            self._s[k][sensor] = init

    def hyper_parameters(self) -> dict[str, Any]:
        """Constructor arguments, for logs and fingerprints."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def state_nbytes(self) -> int:
        """Bytes of per-sensor state this detector holds in its own arrays (the columns
        it keeps in a row block belong to the block)."""
        return sum(a.nbytes for a in self._s.values())

    # -- the contract ----------------------------------------------------------------
    def score(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] for one round (each sensor at most once); never changes state."""
        return np.minimum(self.surprise(sensor, value, time) / 10.0, 1.0)

    def surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Uncapped surprise in decades (``10 * score`` before clipping); never changes state.

        NaN readings and anything not finite-but-NaN score 0; an infinite surprise (a
        quiet sensor that moved) stays infinite here and is 1 as a score.
        """
        sensor = np.asarray(sensor, dtype=np.int64)
        if len(sensor) == 0:
            return np.zeros(0)
        self._grow(sensor)
        value = np.asarray(value, dtype=np.float64)
        out = self._surprise(sensor, value, np.asarray(time))
        return np.where(np.isnan(out) | np.isnan(value), 0.0, out)

    def learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        """Update the state with one round; NaN values are skipped (a gap, not a reading)."""
        sensor = np.asarray(sensor, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        ok = np.isfinite(value)
        if not ok.all():
            sensor, value, time = sensor[ok], value[ok], np.asarray(time)[ok]
        if len(sensor) == 0:
            return
        self._grow(sensor)
        self._learn(sensor, value, np.asarray(time, dtype=np.int64))

    def surprise_learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        """:meth:`surprise` of one round, then :meth:`learn` it, in one call.

        Exactly the numbers of the two calls (score first, then learn), but a detector
        may fuse them (:meth:`_surprise_learn`) so each state column is read and
        written once per round and shared terms are computed once: the ensemble's hot
        path. Rounds with a NaN or infinite value take the two-call path.
        """
        sensor = np.asarray(sensor, dtype=np.int64)
        if len(sensor) == 0:
            return np.zeros(0)
        value = np.asarray(value, dtype=np.float64)
        time = np.asarray(time, dtype=np.int64)
        if not np.isfinite(value).all():
            out = self.surprise(sensor, value, time)
            self.learn(sensor, value, time)
            return out
        self._grow(sensor)
        out = self._surprise_learn(sensor, value, time)
        bad = np.isnan(out)
        if bad.any():
            out = np.where(bad, 0.0, out)
        return out

    def _surprise_learn(
        self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray
    ) -> np.ndarray:
        """Fused score-then-learn over finite values (override for speed)."""
        if self.row_state:
            gathered = {k: a.take(sensor) for k, a in self._s.items()}
            out = self.step_rows(gathered, value, time)
            for k, a in self._s.items():
                a[sensor] = gathered[k]
            return out
        out = self._surprise(sensor, value, time)
        self._learn(sensor, value, time)
        return out

    # -- the row block (row-state detectors inside an ensemble) ------------------------
    def row_fields(self) -> dict[str, float]:
        """The columns this detector keeps in a row block: state field -> initial value,
        in column order (row-state detectors only; integer fields such as counts are
        stored as float64 there, exactly).

        >>> from riskwatch.detectors.robust import RobustZScore
        >>> RobustZScore().row_fields()
        {'n': 0.0, 'loc': 0.0, 'mad': 0.0}
        """
        if not self.row_state:
            raise TypeError(f"{type(self).__name__} keeps no row state")
        return {k: float(init) for k, (_, init) in self._fields.items()}

    def move_rows_to(self, block: np.ndarray, first: int) -> None:
        """Copy the learned state into ``block[:, first : first + len(row_fields())]``
        (as many sensors as both hold; the caller filled the rest with the initial
        values) and keep the state there from now on: the detector's arrays become
        column views of ``block`` and its capacity is ``len(block)``. The owner of the
        block grows it (and calls this again) before a larger sensor id arrives.

        >>> from riskwatch.detectors.robust import RobustZScore
        >>> det = RobustZScore(warmup=0)
        >>> det.learn(np.array([1]), np.array([4.0]), np.array([0]))
        >>> block = np.zeros((3, 4))
        >>> det.move_rows_to(block, 1)
        >>> block[1].tolist(), det.n_sensors
        ([0.0, 1.0, 4.0, 0.0], 3)
        """
        cap = len(block)
        for i, name in enumerate(self.row_fields()):
            old = self._s[name][:cap]
            block[: len(old), first + i] = old
        self.bind_rows(block, first)

    def bind_rows(self, block: np.ndarray, first: int) -> None:
        """Keep the state in ``block``'s columns from ``first`` on without copying (the
        block already holds it, e.g. after a copy of the whole block)."""
        self._s = {name: block[:, first + i] for i, name in enumerate(self.row_fields())}
        self._n = len(block)

    def step_rows(
        self,
        st: dict[str, np.ndarray],
        value: np.ndarray,
        time: np.ndarray,
        need: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score then learn one round of finite values on gathered state.

        ``st[field]`` holds each reading's sensor state (writable 1-D arrays, possibly
        strided views of an ensemble's row block); the method overwrites them in place
        with the learned state and returns the surprises :meth:`_surprise` would have
        given. Required when ``row_state`` is True. With ``need`` (a mask) a
        ``lazy_low`` detector may return 0 instead of a surprise below one decade where
        ``need`` is False (the ensemble's decisions never depend on those values).
        Detectors without ``row_state`` never get here (checked at class creation).
        """
        raise NotImplementedError

    def block_kernel(self) -> tuple[int, tuple[float, ...]] | None:
        """This instance's member code and hyper-parameters for the compiled one-pass
        round (:func:`.kernels.step_block`), or None (then ensembles use the numpy
        :meth:`step_rows` path). Only row-state detectors with a kernel return one."""
        return None

    def finish_kernel(
        self, raw: np.ndarray, aux: np.ndarray, need: np.ndarray | None = None
    ) -> np.ndarray:
        """Surprises from the kernel's raw outputs of one round (the transcendental part,
        in numpy on the readings that need it); ``need`` as in :meth:`step_rows`. By
        default the raw output is the surprise itself (CUSUM's is)."""
        return raw

    @abstractmethod
    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None: ...


@runtime_checkable
class GroupedDetector(Protocol):
    """A detector whose model spans a group of sensors (an asset's sensors): the stage
    factorises the registry column ``group_by`` and hands it the group id of every
    sensor id with :meth:`bind_groups` (again whenever the registry changes)."""

    group_by: str

    def bind_groups(self, groups: np.ndarray) -> None: ...


def rounds(sensor: np.ndarray) -> Iterator[np.ndarray]:
    """Index arrays splitting a time-ordered batch so each sensor occurs once per round.

    >>> [r.tolist() for r in rounds(np.array([3, 1, 3, 3, 1]))]
    [[1, 0], [4, 2], [3]]
    """
    sensor = np.asarray(sensor)
    n = len(sensor)
    if n == 0:
        return
    order = np.argsort(sensor)  # unstable is much faster; equal to stable on unique ids
    s = sensor[order]
    if n == 1 or bool((s[1:] != s[:-1]).all()):
        yield order  # the usual engine batch: every sensor at most once
        return
    order = np.argsort(sensor, kind="stable")
    s = sensor[order]
    start = np.r_[True, s[1:] != s[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.arange(n) - first
    top = int(rank.max())
    if top == 0:
        yield order
        return
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(top + 2))
    for k in range(top + 1):
        yield order[by_rank[bounds[k] : bounds[k + 1]]]


def run_stream(
    det: Detector,
    sensor: np.ndarray,
    value: np.ndarray,
    time: np.ndarray | None = None,
) -> np.ndarray:
    """Score then learn a time-ordered batch, round by round; scores in input order."""
    sensor = np.asarray(sensor, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    t = np.arange(len(value), dtype=np.int64) if time is None else np.asarray(time, np.int64)
    out = np.zeros(len(value))
    for idx in rounds(sensor):
        out[idx] = det.score(sensor[idx], value[idx], t[idx])
        det.learn(sensor[idx], value[idx], t[idx])
    return out
