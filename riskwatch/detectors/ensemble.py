"""An ensemble: several detectors over the same readings, one combined score, one decision.

Each round (each sensor at most once, see :func:`.base.rounds`) every member scores and
then learns its readings; the members' surprises are re-scored by one shared
:class:`~.calibrate.TailCalibrator` (members that are control charts pass through), the
combine expression (:mod:`.expression`) merges them, and the window decision
(:mod:`.decision`) turns the combined score into one raise and one clear per episode.

The members' scalar state lives in one *row block*: one float64 row per sensor holding
every state field of the row-state members, then the calibrator's total and weight.
Memory traffic, not arithmetic, is most of a round's cost, so a round moves all of it
with one gather and one scatter (or, with the compiled kernels of :mod:`.kernels`, in
place). The block is handed out through the detectors' public row-block methods
(:meth:`.base.Detector.move_rows_to`); the ensemble never touches a member's state.

>>> import numpy as np
>>> from riskwatch.detectors.robust import RobustZScore
>>> ens = Ensemble({"level": RobustZScore(alpha=0.1, warmup=5)}, threshold=0.5, hold_ns=3)
>>> x = np.r_[np.tile([0.0, 1.0], 10), 30.0, 31.0, 30.0, np.tile([0.0, 1.0], 3)]
>>> out = ens.process(np.zeros(len(x), np.int32), x, np.arange(len(x)))
>>> np.flatnonzero(out.raised).tolist(), np.flatnonzero(out.cleared).tolist()
([20], [25])
>>> float(out.decision[21])  # the repeats inside the window are suppressed
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, rounds
from riskwatch.detectors.calibrate import TailCalibrator
from riskwatch.detectors.decision import WindowDecision
from riskwatch.detectors.expression import Combine, evaluate, members_of

__all__ = ["Ensemble", "EnsembleOutput"]

_MAX_KERNEL_PARAMS = 6  # hyper-parameters per member in kernels.step_block


@dataclass(frozen=True)
class EnsembleOutput:
    """Per reading (input order): combined ``score``, the ``decision`` score with repeats
    inside an open window set to 0, and whether the reading ``raised`` or ``cleared`` a
    window; ``members`` holds each member's own score."""

    score: np.ndarray
    decision: np.ndarray
    raised: np.ndarray
    cleared: np.ndarray
    members: dict[str, np.ndarray]


def _aligned_rows(cap: int, width: int) -> np.ndarray:
    """An uninitialised ``(cap, w)`` float64 block, ``w`` = ``width`` rounded up to whole
    64-byte cache lines, starting on a line: a sensor's row then costs exactly
    ``w / 8`` line fetches (a 15-field row at an odd offset straddles three)."""
    w = -(-width // 8) * 8
    buf = np.zeros(cap * w + 8)
    off = (-buf.ctypes.data % 64) // 8
    return buf[off : off + cap * w].reshape(cap, w)


def _sorted_unique(sensor: np.ndarray) -> bool:
    """Whether no sensor id repeats (one sort; cheaper than splitting into rounds)."""
    s = np.sort(sensor)
    return bool((s[1:] != s[:-1]).all())


class Ensemble:
    """Several detectors, one combine expression, tail calibration and the windowed
    decision.

    Parameters
    ----------
    members : mapping of str to Detector
        The members by name (the names the combine expression and signals use).
    combine : Combine or None
        How member scores merge (:mod:`.expression`); None is ``any`` over all members.
    threshold, hold_ns, repeat_floor, repeat_hold_ns, min_history, clear_below, clear_after
        The window decision (:class:`~.decision.WindowDecision`).
    calibrate_alpha : float
        Weight of the tail calibration's decayed counts, in [0, 1); 0 switches it off.
    calibrate_prior : float
        How many readings the model's own tail is worth in the calibration (> 0).
    jit : bool or None
        Use the compiled kernels (None: whenever numba is there and every row-state
        member has one). Settable later: ``ens.jit = False`` forces the numpy path.
    """

    def __init__(
        self,
        members: Mapping[str, Detector],
        combine: Combine | None = None,
        *,
        threshold: float = 0.5,
        hold_ns: int = 3_600_000_000_000,
        calibrate_alpha: float = 0.0,
        calibrate_prior: float = 10.0,
        repeat_floor: float | None = None,
        repeat_hold_ns: int = 3_600_000_000_000,
        min_history: int = 0,
        clear_below: float | None = None,
        clear_after: int = 0,
        jit: bool | None = None,
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = dict(members)
        self.combine: Combine = combine if combine is not None else ("any", list(self.members))
        unknown = [m for m in members_of(self.combine) if m not in self.members]
        if unknown:
            raise ValueError(f"combine refers to unknown members: {', '.join(unknown)}")
        self.decision = WindowDecision(
            threshold, hold_ns, repeat_floor, repeat_hold_ns, min_history, clear_below,
            clear_after,
        )  # fmt: skip
        if not 0.0 <= calibrate_alpha < 1.0:
            raise ValueError(f"calibrate_alpha must be in [0, 1), got {calibrate_alpha}")
        if calibrate_prior <= 0.0:
            raise ValueError(f"calibrate_prior must be > 0, got {calibrate_prior}")
        self.calibrate_alpha = calibrate_alpha
        self.calibrate_prior = calibrate_prior
        dets = list(self.members.values())
        # members whose surprise the calibrator re-scores (charts judge themselves)
        self._cal_members = [k for k, d in enumerate(dets) if not d.self_calibrated]
        self._cal = (
            TailCalibrator(calibrate_alpha, calibrate_prior, len(self._cal_members))
            if calibrate_alpha > 0.0 and self._cal_members
            else None
        )
        self._order_free = all(d.round_order_free for d in dets)
        self._scratch = np.zeros(0, np.uint8)  # all zero between calls (_unique)
        # The row block's columns: each row-state member's fields, then the
        # calibrator's total and weight.
        row_fields = [d.row_fields() if d.row_state else {} for d in dets]
        self._layout_inits = [init for fields in row_fields for init in fields.values()]
        if self._layout_inits and self._cal is not None:
            self._layout_inits += list(TailCalibrator.row_fields().values())
        self._rows = np.zeros((0, len(self._layout_inits)))
        widths = [len(fields) for fields in row_fields]
        self._first_col = np.cumsum([0, *widths])[:-1].tolist()  # per member
        self._tail_col = sum(widths)  # the calibrator's two columns
        self._row_members = [k for k, d in enumerate(dets) if d.row_state]
        # Compiled kernels step the row-state members in place on the block (no gather,
        # no scatter; same numbers): ``jit`` None = whenever numba is there.
        use = bool(self._layout_inits) and (jit is None or jit) and kernels.ready()
        plan = [dets[k].block_kernel() for k in self._row_members]
        self.jit = use and all(kern is not None for kern in plan)
        self._kern_cols = np.array([self._first_col[k] for k in self._row_members], np.int64)
        self._kern_codes = np.array([kern[0] for kern in plan if kern], dtype=np.int64)
        self._kern_params = np.zeros((len(plan), _MAX_KERNEL_PARAMS))
        for m, kern in enumerate(plan):
            if kern:
                self._kern_params[m, : len(kern[1])] = kern[1]
        if self._layout_inits:
            self._resize_rows(max(d.n_sensors for d in dets))

    # -- the decision's settings ---------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self.decision.threshold

    @property
    def hold_ns(self) -> int:
        return self.decision.hold_ns

    @property
    def repeat_floor(self) -> float | None:
        return self.decision.repeat_floor

    @property
    def repeat_hold_ns(self) -> int:
        return self.decision.repeat_hold_ns

    # -- the row block -------------------------------------------------------------------
    def _resize_rows(self, cap: int) -> None:
        """Grow the row block to ``cap`` sensors: initial values, then what members and
        calibrator hold, which keep their state in its columns from now on."""
        rows = _aligned_rows(cap, len(self._layout_inits))
        rows[:, : len(self._layout_inits)] = np.array(self._layout_inits)
        dets = list(self.members.values())
        for k in self._row_members:
            dets[k].move_rows_to(rows, self._first_col[k])
        if self._cal is not None:
            self._cal.move_rows_to(rows, self._tail_col)
        self._rows = rows

    def _bind_rows(self) -> None:
        dets = list(self.members.values())
        for k in self._row_members:
            dets[k].bind_rows(self._rows, self._first_col[k])
        if self._cal is not None:
            self._cal.bind_rows(self._rows, self._tail_col)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # copy/pickle give members' views their own memory: point them at the block again
        self.__dict__.update(state)
        if self._layout_inits:
            rows = _aligned_rows(*self._rows.shape)
            rows[:] = self._rows
            self._rows = rows
            self._bind_rows()

    # -- capacity ------------------------------------------------------------------------
    def _unique(self, sensor: np.ndarray) -> bool:
        """Whether no sensor id repeats: a compiled two-pass check over a per-sensor
        scratch array when the kernels are in use (4x cheaper than a sort)."""
        if self.jit and len(sensor) and sensor.dtype in (np.int32, np.int64):
            self._grow(sensor)  # ids are >= 0 (registry ids); capacity for the largest
            return bool(kernels.all_unique(sensor, self._scratch))
        return _sorted_unique(sensor)

    def _grow(self, sensor: np.ndarray) -> None:
        need = int(sensor.max()) + 1 if len(sensor) else 0
        n = self.decision.capacity
        if need > n:
            cap = max(need, 2 * n, 16)
            self.decision.reserve(cap)
            self._scratch = np.zeros(cap, np.uint8)
            if self._layout_inits and cap > len(self._rows):
                self._resize_rows(cap)

    def reserve(self, n: int) -> None:
        """Pre-size every per-sensor array for ids ``< n`` (avoids growth copies later)."""
        if n <= 0:
            return
        self._grow(np.array([n - 1]))
        for det in self.members.values():
            det.reserve(n)
        if self._cal is not None:
            self._cal.reserve(n)

    # -- windows -------------------------------------------------------------------------
    def active(self, sensor: np.ndarray) -> np.ndarray:
        """Whether each sensor has an open anomaly window."""
        return self.decision.active(sensor)

    def peak(self, sensor: np.ndarray) -> np.ndarray:
        """Highest score seen in each sensor's current (or last) window."""
        self._grow(np.asarray(sensor))
        return self.decision.peak(sensor)

    def open_ids(self) -> np.ndarray:
        """The sensor ids with an open anomaly window."""
        return self.decision.open_ids()

    def adopt_windows(self, old: Ensemble, sensor: np.ndarray) -> None:
        """Take over ``old``'s open windows of ``sensor`` (see
        :meth:`.decision.WindowDecision.adopt`); the members' state starts fresh."""
        sensor = np.asarray(sensor, dtype=np.int64)
        if len(sensor):
            self.reserve(int(sensor.max()) + 1)
            self.decision.adopt(old.decision, sensor)

    def expire(self, now_ns: int) -> np.ndarray:
        """Close windows whose hold ran out without new readings; returns their sensor
        ids (see :meth:`.decision.WindowDecision.expire`)."""
        return self.decision.expire(now_ns)

    # -- rounds --------------------------------------------------------------------------
    def step(
        self,
        sensor: np.ndarray,
        value: np.ndarray,
        time: np.ndarray,
        *,
        exact_low: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One round (unique sensors): score, learn, decide (``exact_low``: see
        :meth:`process`). Returns score, decision, raised, cleared, member scores."""
        sensor = np.asarray(sensor, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        time = np.asarray(time, dtype=np.int64)
        n = len(sensor)
        self._grow(sensor)
        was_open = self.decision.is_open(sensor)
        if self._layout_inits and n and bool(np.isfinite(value).all()):
            lazy = not exact_low and self.threshold >= 0.1
            surprises, calibrated = self._step_rows(sensor, value, time, was_open if lazy else None)
        else:  # gaps (NaN) and the rare infinite value: each member on its own
            surprises = [d.surprise_learn(sensor, value, time) for d in self.members.values()]
            calibrated = None
            if self._cal is not None:
                calibrated = self._cal.score_learn_many(
                    sensor, [surprises[k] for k in self._cal_members]
                )
        if calibrated is None:
            member_scores = {
                k: np.minimum(u / 10.0, 1.0) for k, u in zip(self.members, surprises, strict=True)
            }
        else:  # calibrated members' scores, the others' (charts) as they are
            next_calibrated = iter(calibrated)
            member_scores = {
                k: np.minimum(u / 10.0, 1.0) if d.self_calibrated else next(next_calibrated)
                for (k, d), u in zip(self.members.items(), surprises, strict=True)
            }
        score = evaluate(self.combine, member_scores) if n else np.zeros(0)
        if any(score is v for v in member_scores.values()):
            score = score.copy()
        out = self.decision.decide(sensor, time, score, was_open, exact_low=exact_low)
        return score, out.decision, out.raised, out.cleared, member_scores

    def _step_rows(
        self,
        sensor: np.ndarray,
        value: np.ndarray,
        time: np.ndarray,
        was_open: np.ndarray | None,
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Members' surprises and calibrated scores of a round of finite values, the row
        block gathered and scattered once (or stepped in place by the kernels).

        With ``was_open`` (open windows) one ``lazy_low`` member runs last and computes
        exact surprises only where they can matter: at one decade or more, in open
        windows, and where another member's raw surprise could make the reading hot (a
        calibrated score never exceeds the raw one). Everywhere else its score is below
        0.1 <= the threshold, and neither the decision, the window peak nor any signal
        reads it.
        """
        dets = list(self.members.values())
        hot_surprise = 10.0 * self.threshold
        tail_col = self._tail_col
        compiled = self.jit  # one compiled pass, in place on the whole block
        raw = aux = totals_before = np.zeros((0, 0))
        if compiled:
            rows = self._rows
            value = np.ascontiguousarray(value)  # one compiled specialisation
            raw, aux = np.empty((2, len(self._row_members), len(sensor)))
            totals_before = np.empty((2, len(sensor)))
            cal_alpha = 0.0 if self._cal is None else self._cal.alpha
            kernels.step_block(
                rows, sensor, value, self._kern_codes, self._kern_cols, self._kern_params,
                raw, aux, -1 if self._cal is None else tail_col, cal_alpha, totals_before,
            )  # fmt: skip
        else:
            # Whole rows as opaque records: one memcpy per sensor each way (element-wise
            # fancy indexing of the 2-D block costs about twice as much).
            record = np.dtype((np.void, self._rows.shape[1] * self._rows.itemsize))
            rows = self._rows.view(record).reshape(-1)[sensor].view(np.float64)
            rows = rows.reshape(len(sensor), self._rows.shape[1])
        lazy = -1
        if was_open is not None:
            lazy = next((k for k, d in enumerate(dets) if d.row_state and d.lazy_low), -1)
        surprises: list[np.ndarray] = [np.zeros(0)] * len(dets)
        order = [k for k in range(len(dets)) if k != lazy] + ([lazy] if lazy >= 0 else [])
        for k in order:
            det = dets[k]
            if not det.row_state:
                surprises[k] = det.surprise_learn(sensor, value, time)
                continue
            need = None
            if k == lazy:
                assert was_open is not None
                need = was_open.copy()
                for other, u in enumerate(surprises):
                    if other != k:
                        need |= u >= hot_surprise
            if compiled:  # kernel members' surprises are never NaN on finite values
                m = self._row_members.index(k)
                surprises[k] = det.finish_kernel(raw[m], aux[m], need)
                continue
            first = self._first_col[k]
            gathered = {f: rows[:, first + i] for i, f in enumerate(det.row_fields())}
            u = det.step_rows(gathered, value, time, need)
            bad = np.isnan(u)
            surprises[k] = np.where(bad, 0.0, u) if bad.any() else u
        calibrated = None
        if self._cal is not None:
            look = None
            if was_open is not None:  # calibrated scores only where a decision reads them
                look = was_open.copy()
                for u in surprises:
                    look |= u >= hot_surprise
            cal_in = [surprises[k] for k in self._cal_members]
            if compiled:
                calibrated = self._cal.score_learn_block(
                    rows, tail_col, totals_before, sensor, cal_in, look
                )
            else:
                calibrated, rows[:, tail_col], rows[:, tail_col + 1] = self._cal.score_learn_rows(
                    sensor, rows[:, tail_col], rows[:, tail_col + 1], cal_in, look
                )
        if not compiled:
            self._rows.view(record).reshape(-1)[sensor] = rows.view(record).reshape(-1)
        return surprises, calibrated

    def process(
        self,
        sensor: np.ndarray,
        value: np.ndarray,
        time: np.ndarray,
        *,
        exact_low: bool = True,
    ) -> EnsembleOutput:
        """A time-ordered batch, split into rounds; results in input order.

        ``exact_low=False`` (the engine stage, which only reads the readings that open
        or close a window) skips work whose result cannot matter: a member's exact
        surprise below one decade (``members`` may read 0 there) and the calibration
        look-up of readings that no member's raw score makes hot and that are in no
        window (their member scores stay the raw, uncalibrated ones, below the
        threshold), and the quiet episodes of ``repeat_floor`` (the decision score of
        readings below the threshold is then not the exact one). Raises, clears, window
        state, everything learned and the scores of hot, in-window and opening/closing
        readings are identical either way.
        """
        n = len(sensor)
        if n and self._order_free and self._unique(np.asarray(sensor)):
            # The usual engine batch (each sensor at most once): one round, input order.
            return EnsembleOutput(
                *self.step(sensor, np.asarray(value, np.float64), time, exact_low=exact_low)
            )
        sensor = np.asarray(sensor, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        time = np.asarray(time, dtype=np.int64)
        score, decision = np.zeros(n), np.zeros(n)
        raised, cleared = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        members = {k: np.zeros(n) for k in self.members}
        for idx in rounds(sensor):
            sc, de, ra, cl, ms = self.step(sensor[idx], value[idx], time[idx], exact_low=exact_low)
            score[idx], decision[idx], raised[idx], cleared[idx] = sc, de, ra, cl
            for k, v in ms.items():
                members[k][idx] = v
        return EnsembleOutput(score, decision, raised, cleared, members)

    def forget(self, sensor: np.ndarray) -> None:
        """Reset every member's state and the window of these sensors."""
        for det in self.members.values():
            det.forget(sensor)
        s = np.asarray(sensor, dtype=np.int64)
        s = s[s < self.decision.capacity]
        self.decision.forget(s)
        if self._cal is not None:
            self._cal.forget(s)

    def state_nbytes(self) -> int:
        """Bytes of per-sensor state held by the members, calibration and windows."""
        n = sum(d.state_nbytes() for d in self.members.values() if not d.row_state)
        n += self._rows.nbytes  # row-state members, calibrator total/weight, padding
        if self._cal is not None:
            n += self._cal.nbytes()
        return n + self._scratch.nbytes + self.decision.nbytes()

    def describe(self) -> dict[str, Any]:
        """Members (type and hyper-parameters), combine expression and decision settings."""
        return {
            "members": {
                k: {"type": d.kind, **d.hyper_parameters()} for k, d in self.members.items()
            },
            "combine": self.combine,
            "threshold": self.threshold,
            "hold_ns": self.hold_ns,
            "calibrate_alpha": self.calibrate_alpha,
            "repeat_floor": self.repeat_floor,
            "repeat_hold_ns": self.repeat_hold_ns,
            "min_history": self.decision.min_history,
            "clear_below": self.decision.clear_below,
            "clear_after": self.decision.clear_after,
        }
