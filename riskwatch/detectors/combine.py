"""Ensemble of detectors and the decision that turns scores into one alert per window.

Members score every reading on the common [0, 1] scale (see :mod:`.base`); a combine
expression merges them: ``any`` takes the maximum (any member's evidence suffices),
``all`` the minimum (a reading is anomalous only if *no* model explains it — e.g. a
value that is both far from the recent level and far from its time-of-day profile).

The decision keeps, per sensor, whether an anomaly *window* is open. A window opens on
the first reading whose score reaches ``threshold`` (one raise), stays open while hot
readings keep coming, and closes once ``hold_ns`` has passed since the last hot
reading (one clear). Everything in between is suppressed, so an episode raises one
alert, not one per reading.

The *decision score* (what ``riskwatch score`` writes) reports a window's opening reading
and 0 for its repeats. Below the threshold there is no window, so at a lower cut-off
(NAB picks its own) every reading of a weak episode would count again; with
``repeat_floor`` set, a reading at or above the floor outside any such episode opens a
quiet episode that lasts until ``repeat_hold_ns`` passes without another one, and the
episode's later readings below the threshold report 0. At every cut-off from the floor
up, an episode then counts once (plus the alert, if it grows into one). Alerts, windows
and scores are unchanged by it.

>>> import numpy as np
>>> from riskwatch.detectors.ewma import EWMAZScore
>>> ens = Ensemble({"z": EWMAZScore(alpha=0.1, warmup=5)}, threshold=0.5, hold_ns=3)
>>> x = np.r_[np.tile([0.0, 1.0], 10), 30.0, 31.0, 30.0, np.tile([0.0, 1.0], 3)]
>>> out = ens.process(np.zeros(len(x), np.int32), x, np.arange(len(x)))
>>> np.flatnonzero(out.raised).tolist(), np.flatnonzero(out.cleared).tolist()
([20], [23])
>>> bool(out.decision[21] == 0.0)  # the repeats inside the window are suppressed
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from riskwatch.detectors import kernels
from riskwatch.detectors.base import Detector, rounds

__all__ = [
    "Combine",
    "Ensemble",
    "EnsembleOutput",
    "TailCalibrator",
    "evaluate",
    "members_of",
    "pooled",
]

_BIN = 0.5  # half-decade bins of surprise for the calibration
_NBINS = 41  # 0 .. 20 decades, the last bin takes everything >= 20
_LO = 2  # bins below one decade: never looked up, not stored
_NEVER = np.iinfo(np.int64).min // 2  # "no reading yet" (time minus it cannot overflow)

Combine = Union[str, tuple[str, Sequence["Combine"]]]  # noqa: UP007 - recursive alias


def members_of(expr: Combine) -> list[str]:
    """Member names an expression refers to.

    >>> members_of(("any", ["flat", ("all", ["ewma", "seasonal"])]))
    ['flat', 'ewma', 'seasonal']
    """
    if isinstance(expr, str):
        return [expr]
    out: list[str] = []
    for e in expr[1]:
        out += members_of(e)
    return out


def pooled(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``any``, or the pooled evidence of the two strongest parts where that is stronger.

    With surprises ``u1 >= u2`` (decades, ``10 * score``) of the two strongest of ``n``
    parts, Fisher's method gives ``s - log10(1 + s ln 10)`` for ``s = u1 + u2`` (the tail
    of the product of two independent uniform tails), and ``log10(n (n - 1) / 2)``
    pays for having picked the best of the pairs (Bonferroni). Two members that are each
    only moderately surprised (a day-profile chart and a level shift at 3 decades each)
    then make a decision neither makes alone; one member's strong evidence still
    suffices, as in ``any``, and the score is never below ``any``'s.

    >>> a, b = np.array([0.3, 0.6, 0.3]), np.array([0.3, 0.0, 0.1])
    >>> pooled([a, b, np.zeros(3)]).round(3).tolist()  # 3 parts, 3 pairs
    [0.435, 0.6, 0.3]
    """
    n = len(parts)
    if n == 1:
        return parts[0]
    u = np.stack(parts) * 10.0
    top = np.partition(u, n - 2, axis=0)[n - 2 :]  # the two largest (unordered)
    s = top[0] + top[1]
    pair = s - np.log10(1.0 + s * np.log(10.0)) - np.log10(n * (n - 1) / 2.0)
    return np.minimum(np.maximum(np.maximum.reduce(parts), pair / 10.0), 1.0)


def evaluate(expr: Combine, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """``any`` = element-wise max, ``all`` = element-wise min of the member scores,
    ``pooled`` = ``any`` or the two strongest members' pooled evidence (:func:`pooled`)."""
    if isinstance(expr, str):
        return scores[expr]
    op, args = expr
    parts = [evaluate(e, scores) for e in args]
    if op == "pooled":
        return pooled(parts)
    red = np.maximum if op == "any" else np.minimum
    out = parts[0]
    for p in parts[1:]:
        out = red(out, p)
    return out


def _aligned_rows(cap: int, width: int) -> np.ndarray:
    """An uninitialised ``(cap, w)`` float64 block, ``w`` = ``width`` rounded up to whole
    64-byte cache lines, starting on a line: a sensor's row then costs exactly
    ``w / 8`` line fetches (a 15-field row at an odd offset straddles three)."""
    w = -(-width // 8) * 8
    buf = np.zeros(cap * w + 8)
    off = (-buf.ctypes.data % 64) // 8
    return buf[off : off + cap * w].reshape(cap, w)


def _unique(sensor: np.ndarray) -> bool:
    """Whether no sensor id repeats (one sort; cheaper than splitting into rounds)."""
    s = np.sort(sensor)
    return bool((s[1:] != s[:-1]).all())


class TailCalibrator:
    """Scores a member against this sensor's own history of that member's surprises.

    ``u`` (:meth:`Detector.surprise`) is the surprise in decades (``-log10`` of a tail
    probability under the member's model). Its empirical tail is learned per sensor
    (exponentially decayed counts in half-decade bins, weight ``alpha``) and mixed with
    the model tail ``10**-u`` as a prior worth ``prior`` readings:
    ``p = (count(past u' >= u) + prior * 10**-u) / (total + prior)`` and the calibrated
    score is ``min(u, -log10 p) / 10``. A series whose deviations are heavy-tailed (daily
    edges, routine spikes) thus learns that they are ordinary, while a never-seen
    deviation keeps its model probability; calibration only ever lowers a score.
    Readings below one decade (score < 0.1, never a decision) skip the tail look-up.

    Cost: decay is lazy (each sensor's increments grow by ``1/(1-alpha)`` per reading and
    rows are renormalised when the weight gets large), so learning is one scatter-add,
    and only for readings of one decade or more: a look-up only ever sums the bins at and
    above its own (>= 2), so bins 0 and 1 are not stored. One calibrator serves all
    ``members`` of an ensemble: every member sees the same readings, so the total and
    the increment weight are shared per sensor and only the bins are per member.

    >>> cal = TailCalibrator(alpha=0.01, prior=10.0)
    >>> s = np.zeros(1, np.int64)
    >>> [round(float(cal.score_learn(s, np.array([6.0]))[0]), 2) for _ in range(3)]
    [0.6, 0.1, 0.08]
    """

    def __init__(self, alpha: float, prior: float, members: int = 1) -> None:
        self.alpha, self.prior, self.members = alpha, prior, members
        # bins 40 .. 2 (highest first) per member; 156 bytes per sensor and member
        self._cnt = np.zeros((0, members, _NBINS - _LO), dtype=np.float32)
        self._tot = np.zeros(0)
        self._w = np.ones(0)  # weight of the next increment, per sensor

    def reserve(self, n: int) -> None:
        m = len(self._tot)
        if n > m:
            cap = max(n, 2 * m, 16)
            more = np.zeros((cap - m, self.members, _NBINS - _LO), dtype=np.float32)
            self._cnt = np.concatenate([self._cnt, more])
            self._tot = np.r_[self._tot, np.zeros(cap - m)]
            self._w = np.r_[self._w, np.ones(cap - m)]

    def nbytes(self) -> int:
        return self._cnt.nbytes + self._tot.nbytes + self._w.nbytes

    def score_learn(self, sensor: np.ndarray, surprise: np.ndarray) -> np.ndarray:
        """Calibrated scores for one round, then learn the surprises (score, then learn)."""
        return self.score_learn_many(sensor, [surprise])[0]

    def score_learn_many(
        self, sensor: np.ndarray, surprises: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """:meth:`score_learn` for every member at once (``surprises[k]``: member k)."""
        sensor = np.asarray(sensor, dtype=np.int64)
        if len(sensor) == 0:
            return [np.zeros(0) for _ in surprises]
        self.reserve(int(sensor.max()) + 1)
        outs, tot, w = self.score_learn_rows(
            sensor, self._tot.take(sensor), self._w.take(sensor), surprises
        )
        self._tot[sensor] = tot
        self._w[sensor] = w
        return outs

    def score_learn_rows(
        self,
        sensor: np.ndarray,
        tot: np.ndarray,
        w: np.ndarray,
        surprises: Sequence[np.ndarray],
        need: np.ndarray | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Core of :meth:`score_learn_many` on gathered per-sensor ``tot`` and ``w``
        (capacity reserved by the caller): returns the calibrated scores and the new
        ``tot`` and ``w`` for the caller to store; updates the bins itself.

        With ``need`` (a mask over the readings) the tail look-up, most of the cost, is
        done only there; elsewhere the score stays the raw ``u / 10``, an upper bound of
        the calibrated one. Learning is the same either way (every surprise of one
        decade or more is counted), so later scores do not depend on ``need``."""
        if len(surprises) != self.members:
            raise ValueError(f"expected {self.members} surprise arrays, got {len(surprises)}")
        keep = 1.0 - self.alpha
        nb = _NBINS - _LO
        bins = self._cnt.reshape(-1, nb)  # (sensor, member) rows
        flat = self._cnt.reshape(-1)
        n = len(sensor)
        u = np.stack(surprises) if surprises else np.zeros((0, n))  # members x readings
        out = u / 10.0
        np.maximum(out, 0.0, out=out)
        out += 0.0  # no negative zero
        seen = np.flatnonzero(u >= 1.0)  # all members' surprises of a decade or more
        if len(seen):
            m, i = np.divmod(seen, n)
            ul = np.minimum(u.reshape(-1)[seen], 1e6)
            b = nb - 1 - (np.minimum((ul / _BIN).astype(np.int64), _NBINS - 1) - _LO)
            row = sensor[i] * self.members + m
            w_seen = w[i]
            sel = slice(None) if need is None else np.flatnonzero(need[i])
            look, il, ull, bl, rowl = seen[sel], i[sel], ul[sel], b[sel], row[sel]
            if len(look):
                w_last = w_seen[sel] * keep  # weight of the latest increment = real unit
                # Bins are stored highest first; the tail sum adds them from the top down
                # to the reading's own bin, in the order a running sum would, one vector
                # add per bin over all look-ups (np.cumsum over these small rows is ~10x
                # slower): with the look-ups ordered by their bin, those still adding are
                # a prefix.
                order = np.argsort(-bl, kind="stable")
                g = bins.take(rowl[order], axis=0).T.astype(np.float64, order="C")
                upto = np.searchsorted(-bl[order], -np.arange(nb), side="right")  # b >= j
                acc = g[0].copy()
                for j in range(1, nb):
                    c = int(upto[j])
                    if c == 0:
                        break
                    acc[:c] += g[j, :c]
                ge = np.empty(len(look))
                ge[order] = acc
                out.reshape(-1)[look] = self._tail_scores(ge, w_last, tot[il], ull)
            flat[row * nb + b] += w_seen
        outs = list(out)
        tot = tot + w
        w = w / (1.0 - self.alpha)
        big = w > 1e30  # float32 counts: renormalise long before overflow
        if big.any():
            self._cnt[sensor[big]] /= w[big, None, None]
            tot[big] /= w[big]
            w[big] = 1.0
        return outs, tot, w

    def _tail_scores(
        self, ge: np.ndarray, w_last: np.ndarray, tot: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """Calibrated scores of look-ups: ``ge`` the decayed count at and above each
        surprise ``u``, ``tot`` the decayed total, both in units of ``w_last``."""
        p = (ge / w_last + self.prior * 10.0 ** (-u)) / (tot / w_last + self.prior)
        with np.errstate(divide="ignore"):
            return np.clip(np.minimum(u, -np.log10(p)) / 10.0, 0.0, 1.0) + 0.0

    def score_learn_block(
        self,
        rows: np.ndarray,
        tcol: int,
        tw: np.ndarray,
        sensor: np.ndarray,
        surprises: Sequence[np.ndarray],
        need: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """:meth:`score_learn_rows` with total and weight in ``rows[:, tcol:tcol + 2]``
        (the ensemble's row block), already advanced by :func:`.kernels.step_block`,
        which left their previous values in ``tw``: counting and learning in one
        compiled pass (:func:`.kernels.calibrate_block`), the tail probability in numpy
        on the look-ups. Same numbers."""
        n = len(sensor)
        u = np.stack(surprises) if surprises else np.zeros((0, n))
        out, ge = np.empty((self.members, n)), np.empty(self.members * n)
        look = np.empty(self.members * n, np.int64)
        k, _ = kernels.calibrate_block(
            rows, tcol, self._cnt, sensor, u, np.zeros(0, bool) if need is None else need,
            need is not None, self.alpha, tw, out, look, ge,
        )  # fmt: skip
        if k:
            look = look[:k]
            i = look % n
            ul = np.minimum(u.reshape(-1)[look], 1e6)
            w_last = tw[1][i] * (1.0 - self.alpha)  # weight of the latest increment
            out.reshape(-1)[look] = self._tail_scores(ge[:k], w_last, tw[0][i], ul)
        return list(out)

    def forget(self, sensor: np.ndarray) -> None:
        s = sensor[sensor < len(self._tot)]
        self._cnt[s] = 0.0
        self._tot[s] = 0.0
        self._w[s] = 1.0


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


class Ensemble:
    """Several detectors, one combine expression and the windowed decision."""

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
        jit: bool | None = None,
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = dict(members)
        self.combine: Combine = combine if combine is not None else ("any", list(self.members))
        unknown = [m for m in members_of(self.combine) if m not in self.members]
        if unknown:
            raise ValueError(f"combine refers to unknown members: {', '.join(unknown)}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if hold_ns < 0:
            raise ValueError(f"hold must be >= 0, got {hold_ns}")
        if not 0.0 <= calibrate_alpha < 1.0:
            raise ValueError(f"calibrate_alpha must be in [0, 1), got {calibrate_alpha}")
        if calibrate_prior <= 0.0:
            raise ValueError(f"calibrate_prior must be > 0, got {calibrate_prior}")
        if repeat_floor is not None and not 0.0 < repeat_floor < threshold:
            raise ValueError(
                f"repeat_floor must be in (0, threshold = {threshold}), got {repeat_floor}"
            )
        if repeat_hold_ns < 0:
            raise ValueError(f"repeat_hold must be >= 0, got {repeat_hold_ns}")
        self.threshold = threshold
        self.hold_ns = int(hold_ns)
        self.repeat_floor = repeat_floor
        self.repeat_hold_ns = int(repeat_hold_ns)
        self.calibrate_alpha = calibrate_alpha
        self.calibrate_prior = calibrate_prior
        # members whose surprise the calibrator re-scores (charts judge themselves)
        self._cal_members = [
            k for k, d in enumerate(self.members.values()) if not d.self_calibrated
        ]
        self._cal = (
            TailCalibrator(calibrate_alpha, calibrate_prior, len(self._cal_members))
            if calibrate_alpha > 0.0 and self._cal_members
            else None
        )
        self._order_free = all(d.round_order_free for d in self.members.values())
        self._active = np.zeros(0, dtype=bool)
        self._last_hot = np.zeros(0, dtype=np.int64)
        self._peak = np.zeros(0)
        # time of the last reading >= repeat_floor (sub-threshold episodes); only with a floor
        self._quiet_last = np.zeros(0, dtype=np.int64)
        self._scratch = np.zeros(0, np.uint8)  # all zero between calls (_unique)
        # The row block: one float64 row per sensor holding every scalar state field of
        # the row-state members, then the calibrator's total and weight. A round moves
        # all of it with one gather and one scatter (memory traffic, not arithmetic, is
        # most of a round's cost); members and calibrator see their columns as views.
        self._layout = [
            (k, f, float(init))
            for k, d in self.members.items()
            if d.row_state
            for f, (_, init) in d._fields.items()
        ]
        if self._layout and self._cal is not None:
            self._layout += [("", "tot", 0.0), ("", "w", 1.0)]
        self._rows = np.zeros((0, len(self._layout)))
        # Compiled kernels step the row-state members in place on the block (no gather,
        # no scatter; same numbers): ``jit`` None = whenever numba is there.
        use = bool(self._layout) and (jit is None or jit) and kernels.ready()
        plan = [(k, d.block_kernel()) for k, d in enumerate(self.members.values()) if d.row_state]
        self.jit = use and all(kern is not None for _, kern in plan)
        self._kern_members = [k for k, _ in plan]
        # each member's first column in the row block; the calibrator's two follow
        widths = [len(d._fields) if d.row_state else 0 for d in self.members.values()]
        self._cols = np.cumsum([0, *widths])[:-1].tolist()
        self._tail_col = sum(widths)
        self._kern_cols = np.array([self._cols[k] for k, _ in plan], dtype=np.int64)
        self._kern_codes = np.array([kern[0] for _, kern in plan if kern], dtype=np.int64)
        self._kern_params = np.zeros((len(plan), 6))
        for m, (_, kern) in enumerate(plan):
            if kern:
                self._kern_params[m, : len(kern[1])] = kern[1]
        if self._layout:
            self._resize_rows(max(d.n_sensors for d in self.members.values()))

    def _resize_rows(self, cap: int) -> None:
        """Grow the row block to ``cap`` sensors (copying what members and calibrator
        hold) and point their state at its columns."""
        rows = _aligned_rows(cap, len(self._layout))
        rows[:, : len(self._layout)] = np.array([init for _, _, init in self._layout])
        j = 0
        for det in self.members.values():
            if not det.row_state:
                continue
            for f in det._fields:
                old = det._s[f][:cap]
                rows[: len(old), j] = old
                j += 1
        if self._cal is not None:
            old_tot, old_w = self._cal._tot[:cap], self._cal._w[:cap]
            self._cal.reserve(cap)
            rows[: len(old_tot), j] = old_tot
            rows[: len(old_w), j + 1] = old_w
        self._rows = rows
        self._bind()

    def _bind(self) -> None:
        cap = len(self._rows)
        j = 0
        for det in self.members.values():
            if det.row_state:
                det._s = {f: self._rows[:, j + i] for i, f in enumerate(det._fields)}
                det._n = cap
                j += len(det._fields)
        if self._cal is not None:
            self._cal._tot, self._cal._w = self._rows[:, j], self._rows[:, j + 1]

    def __setstate__(self, state: dict[str, Any]) -> None:
        # copy/pickle give members' views their own memory: point them at the block again
        self.__dict__.update(state)
        if self._layout:
            rows = _aligned_rows(*self._rows.shape)
            rows[:] = self._rows
            self._rows = rows
            self._bind()

    def _unique(self, sensor: np.ndarray) -> bool:
        """Whether no sensor id repeats: a compiled two-pass check over a per-sensor
        scratch array when the kernels are in use (4x cheaper than a sort)."""
        if self.jit and len(sensor) and sensor.dtype in (np.int32, np.int64):
            self._grow(sensor)  # ids are >= 0 (registry ids); capacity for the largest
            return bool(kernels.all_unique(sensor, self._scratch))
        return _unique(sensor)

    def _grow(self, sensor: np.ndarray) -> None:
        need = int(sensor.max()) + 1 if len(sensor) else 0
        n = len(self._active)
        if need > n:
            cap = max(need, 2 * n, 16)
            self._active = np.r_[self._active, np.zeros(cap - n, dtype=bool)]
            self._last_hot = np.r_[self._last_hot, np.zeros(cap - n, dtype=np.int64)]
            self._peak = np.r_[self._peak, np.zeros(cap - n)]
            if self.repeat_floor is not None:
                self._quiet_last = np.r_[self._quiet_last, np.full(cap - n, _NEVER, np.int64)]
            self._scratch = np.zeros(cap, np.uint8)
            if self._layout and cap > len(self._rows):
                self._resize_rows(cap)

    def reserve(self, n: int) -> None:
        """Pre-size every per-sensor array for ids ``< n`` (avoids growth copies later)."""
        if n <= 0:
            return
        ids = np.array([n - 1])
        self._grow(ids)
        for det in self.members.values():
            det._grow(ids)
        if self._cal is not None:
            self._cal.reserve(n)

    def active(self, sensor: np.ndarray) -> np.ndarray:
        """Whether each sensor has an open anomaly window."""
        sensor = np.asarray(sensor, dtype=np.int64)
        out = np.zeros(len(sensor), dtype=bool)
        ok = sensor < len(self._active)
        out[ok] = self._active[sensor[ok]]
        return out

    def peak(self, sensor: np.ndarray) -> np.ndarray:
        """Highest score seen in each sensor's current (or last) window."""
        self._grow(np.asarray(sensor))
        return self._peak[np.asarray(sensor, dtype=np.int64)]

    def step(
        self,
        sensor: np.ndarray,
        value: np.ndarray,
        time: np.ndarray,
        *,
        exact_low: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One round (unique sensors): score, learn, decide (``exact_low``: see
        :meth:`process`)."""
        sensor = np.asarray(sensor, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        time = np.asarray(time, dtype=np.int64)
        n = len(sensor)
        self._grow(sensor)
        act = self._active.take(sensor)
        if self._layout and n and bool(np.isfinite(value).all()):
            lazy = not exact_low and self.threshold >= 0.1
            us, cal = self._step_rows(sensor, value, time, act if lazy else None)
        else:  # gaps (NaN) and the rare infinite value: each member on its own
            us = [det.surprise_learn(sensor, value, time) for det in self.members.values()]
            cal = None
            if self._cal is not None:
                cal = self._cal.score_learn_many(sensor, [us[k] for k in self._cal_members])
        if cal is None:
            ms = {k: np.minimum(u / 10.0, 1.0) for k, u in zip(self.members, us, strict=True)}
        else:  # calibrated members' scores, the others' (charts) as they are
            it = iter(cal)
            ms = {
                k: np.minimum(u / 10.0, 1.0) if d.self_calibrated else next(it)
                for (k, d), u in zip(self.members.items(), us, strict=True)
            }
        score = evaluate(self.combine, ms) if n else np.zeros(0)
        if any(score is v for v in ms.values()):
            score = score.copy()
        hot = score >= self.threshold
        raised = hot & ~act
        cleared = np.zeros(n, dtype=bool)
        decision = np.where(act, 0.0, score) if act.any() else score.copy()
        # Only sensors with a window open or opening change window state (few per round).
        work = np.flatnonzero(hot | act)
        if len(work):
            sw, h, a, t, sc = sensor[work], hot[work], act[work], time[work], score[work]
            last = np.where(h, t, self._last_hot[sw])
            cl = ~h & (t - last >= self.hold_ns)
            cleared[work] = cl
            self._active[sw] = ~cl
            self._last_hot[sw] = last
            self._peak[sw] = np.where(raised[work], sc, np.maximum(self._peak[sw], sc * a))
        if self.repeat_floor is not None and exact_low and n:
            self._quiet_repeats(sensor, time, score, hot, decision)
        return score, decision, raised, cleared, ms

    def _quiet_repeats(
        self,
        sensor: np.ndarray,
        time: np.ndarray,
        score: np.ndarray,
        hot: np.ndarray,
        decision: np.ndarray,
    ) -> None:
        """Sub-threshold repeat suppression of the decision score (in place): a reading
        below the threshold inside a quiet episode (one ``repeat_hold_ns`` from the
        sensor's last reading >= ``repeat_floor``) reports 0; then readings at or above
        the floor extend (or open) their sensor's episode."""
        assert self.repeat_floor is not None
        last = self._quiet_last.take(sensor)
        decision[(time - last < self.repeat_hold_ns) & ~hot] = 0.0
        low = np.flatnonzero(score >= self.repeat_floor)
        if len(low):
            self._quiet_last[sensor[low]] = time[low]

    def _step_rows(
        self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray, act: np.ndarray | None
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Members' surprises and calibrated scores of a round of finite values, the row
        block gathered and scattered once.

        With ``act`` (open windows) one ``lazy_low`` member runs last and computes exact
        surprises only where they can matter: at one decade or more, in open windows,
        and where another member's raw surprise could make the reading hot (a calibrated
        score never exceeds the raw one). Everywhere else its score is below 0.1 <= the
        threshold, and neither the decision, the window peak nor any signal reads it.
        """
        dets = list(self.members.values())
        cols, j = self._cols, self._tail_col
        block = self.jit  # one compiled pass, in place on the whole block
        raw = aux = tw = np.zeros((0, 0))
        if block:
            rows = self._rows
            value = np.ascontiguousarray(value)  # one compiled specialisation
            raw, aux = np.empty((2, len(self._kern_members), len(sensor)))
            tw = np.empty((2, len(sensor)))
            cal_alpha = 0.0 if self._cal is None else self._cal.alpha
            kernels.step_block(
                rows, sensor, value, self._kern_codes, self._kern_cols, self._kern_params,
                raw, aux, -1 if self._cal is None else j, cal_alpha, tw,
            )  # fmt: skip
        else:
            # Whole rows as opaque records: one memcpy per sensor each way (element-wise
            # fancy indexing of the 2-D block costs about twice as much).
            rec = np.dtype((np.void, self._rows.shape[1] * self._rows.itemsize))
            rows = self._rows.view(rec).reshape(-1)[sensor].view(np.float64)
            rows = rows.reshape(len(sensor), self._rows.shape[1])
        lazy = -1
        if act is not None:
            lazy = next((k for k, d in enumerate(dets) if d.row_state and d.lazy_low), -1)
        us: list[np.ndarray] = [np.zeros(0)] * len(dets)
        for k in [k for k in range(len(dets)) if k != lazy] + ([lazy] if lazy >= 0 else []):
            det = dets[k]
            if not det.row_state:
                us[k] = det.surprise_learn(sensor, value, time)
                continue
            need = None
            if k == lazy:
                assert act is not None
                need = act.copy()
                for o, u in enumerate(us):
                    if o != k:
                        need |= u >= 10.0 * self.threshold
            if block:  # kernel members' surprises are never NaN on finite values
                m = self._kern_members.index(k)
                us[k] = det._block_finish(raw[m], aux[m], need)
                continue
            st = {f: rows[:, cols[k] + i] for i, f in enumerate(det._fields)}
            u = det._step_rows(st, value, time, need)
            bad = np.isnan(u)
            us[k] = np.where(bad, 0.0, u) if bad.any() else u
        cal = None
        if self._cal is not None:
            look = None
            if act is not None:  # calibrated scores only where a decision can read them
                look = act.copy()
                for u in us:
                    look |= u >= 10.0 * self.threshold
            cu = [us[k] for k in self._cal_members]
            if block:
                cal = self._cal.score_learn_block(rows, j, tw, sensor, cu, look)
            else:
                cal, rows[:, j], rows[:, j + 1] = self._cal.score_learn_rows(
                    sensor, rows[:, j], rows[:, j + 1], cu, look
                )
        if not block:
            self._rows.view(rec).reshape(-1)[sensor] = rows.view(rec).reshape(-1)
        return us, cal

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

    def expire(self, now_ns: int) -> np.ndarray:
        """Close windows whose hold ran out without new readings; returns their sensor ids.

        The engine's tick calls this so a sensor that went quiet during an anomaly still
        gets its window resolved.
        """
        gone = np.flatnonzero(self._active & (now_ns - self._last_hot >= self.hold_ns))
        self._active[gone] = False
        return gone

    def forget(self, sensor: np.ndarray) -> None:
        """Reset every member's state and the window of these sensors."""
        for det in self.members.values():
            det.forget(sensor)
        s = np.asarray(sensor, dtype=np.int64)
        s = s[s < len(self._active)]
        self._active[s] = False
        if self.repeat_floor is not None:
            self._quiet_last[s] = _NEVER
        if self._cal is not None:
            self._cal.forget(s)

    def state_nbytes(self) -> int:
        """Bytes of per-sensor state held by the members, calibration and windows."""
        n = sum(a.nbytes for d in self.members.values() if not d.row_state for a in d._s.values())
        n += self._rows.nbytes  # row-state members, calibrator total/weight, padding
        if self._cal is not None:
            n += self._cal._cnt.nbytes
            if not self._layout:
                n += self._cal._tot.nbytes + self._cal._w.nbytes
        n += self._scratch.nbytes + self._quiet_last.nbytes
        return n + self._active.nbytes + self._last_hot.nbytes + self._peak.nbytes

    def describe(self) -> dict[str, Any]:
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
        }
