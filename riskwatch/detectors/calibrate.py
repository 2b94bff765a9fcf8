"""Tail calibration: a member's surprise re-scored against the sensor's own history of it.

A member's surprise ``u`` (:meth:`.base.Detector.surprise`, decades: ``-log10`` of a tail
probability under the member's model) assumes the model is right. Real series are
heavy-tailed in their own ways (daily edges, habitual spikes), so the same ``u`` is
routine on one sensor and alarming on another. :class:`TailCalibrator` learns, per
sensor and member, the empirical tail of ``u`` and replaces the model's probability by
a mix of the two, which puts the scores of very different series on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskwatch.detectors import kernels

__all__ = ["TailCalibrator"]

BIN_DECADES = 0.5  # half-decade bins of surprise
N_BINS = 41  # 0 .. 20 decades, the last bin takes everything >= 20
FIRST_STORED_BIN = 2  # bins below one decade: never looked up, not stored
_STORED = N_BINS - FIRST_STORED_BIN
_RENORMALISE_AT = 1e30  # float32 counts: renormalise long before overflow


class TailCalibrator:
    """Scores a member against this sensor's own history of that member's surprises.

    The empirical tail is learned per sensor (exponentially decayed counts in
    half-decade bins, weight ``alpha``) and mixed with the model tail ``10**-u`` as a
    prior worth ``prior`` readings:
    ``p = (count(past u' >= u) + prior * 10**-u) / (total + prior)`` and the calibrated
    score is ``min(u, -log10 p) / 10``. A series whose deviations are heavy-tailed thus
    learns that they are ordinary, while a never-seen deviation keeps its model
    probability; calibration only ever lowers a score. Readings below one decade
    (score < 0.1, never a decision) skip the tail look-up.

    Cost: decay is lazy (each sensor's increments grow by ``1/(1-alpha)`` per reading and
    rows are renormalised when the weight gets large), so learning is one scatter-add,
    and only for readings of one decade or more: a look-up only ever sums the bins at and
    above its own (>= 2), so bins 0 and 1 are not stored. One calibrator serves all
    ``members`` of an ensemble: every member sees the same readings, so the total and
    the increment weight are shared per sensor and only the bins are per member. The
    total and weight are row state: an ensemble keeps them in its row block
    (:meth:`move_rows_to`), like its members' state.

    Parameters
    ----------
    alpha : float
        Weight of a reading in the decayed counts (0.001 ~ the last 1000 readings).
    prior : float
        How many readings the model's own tail is worth in the mix.
    members : int
        How many members' surprises each call carries (one set of bins each).

    References
    ----------
    S. Ahmad, A. Lavin, S. Purdy, Z. Agha, "Unsupervised real-time anomaly detection
    for streaming data", *Neurocomputing* 262 (2017) 134-147 (scoring a model's raw
    anomaly score against its own recent distribution, the "anomaly likelihood"; here
    the empirical tail itself, with the model's tail as the prior).

    >>> cal = TailCalibrator(alpha=0.01, prior=10.0)
    >>> s = np.zeros(1, np.int64)
    >>> [round(float(cal.score_learn(s, np.array([6.0]))[0]), 2) for _ in range(3)]
    [0.6, 0.1, 0.08]
    """

    def __init__(self, alpha: float, prior: float, members: int = 1) -> None:
        self.alpha, self.prior, self.members = alpha, prior, members
        # bins 40 .. 2 (highest first) per member; 156 bytes per sensor and member
        self._cnt = np.zeros((0, members, _STORED), dtype=np.float32)
        self._tot = np.zeros(0)
        self._w = np.ones(0)  # weight of the next increment, per sensor
        self._bound = False  # total and weight live in a row block

    def reserve(self, n: int) -> None:
        """Size the state for sensor ids ``< n``."""
        m = len(self._tot)
        if n > m:
            cap = max(n, 2 * m, 16)
            more = np.zeros((cap - m, self.members, _STORED), dtype=np.float32)
            self._cnt = np.concatenate([self._cnt, more])
            self._tot = np.r_[self._tot, np.zeros(cap - m)]
            self._w = np.r_[self._w, np.ones(cap - m)]

    def nbytes(self) -> int:
        """Bytes of per-sensor state held by this calibrator (bins, and the total and
        weight unless a row block holds them)."""
        if self._bound:
            return self._cnt.nbytes
        return self._cnt.nbytes + self._tot.nbytes + self._w.nbytes

    # -- the row block -------------------------------------------------------------------
    @staticmethod
    def row_fields() -> dict[str, float]:
        """The two columns this calibrator keeps in a row block, with initial values."""
        return {"tot": 0.0, "w": 1.0}

    def move_rows_to(self, block: np.ndarray, first: int) -> None:
        """Copy the total and weight into ``block[:, first : first + 2]`` and keep them
        there (as :meth:`.base.Detector.move_rows_to`); the bins grow to the block's
        capacity."""
        cap = len(block)
        old_tot, old_w = self._tot[:cap], self._w[:cap]
        self.reserve(cap)
        block[: len(old_tot), first] = old_tot
        block[: len(old_w), first + 1] = old_w
        self.bind_rows(block, first)

    def bind_rows(self, block: np.ndarray, first: int) -> None:
        """Keep the total and weight in ``block``'s columns ``first``, ``first + 1``."""
        self._tot, self._w = block[:, first], block[:, first + 1]
        self._bound = True

    # -- scoring -------------------------------------------------------------------------
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
        nb = _STORED
        bin_rows = self._cnt.reshape(-1, nb)  # one row per (sensor, member)
        flat_bins = self._cnt.reshape(-1)
        n = len(sensor)
        u = np.stack(surprises) if surprises else np.zeros((0, n))  # members x readings
        out = u / 10.0
        np.maximum(out, 0.0, out=out)
        out += 0.0  # no negative zero
        seen = np.flatnonzero(u >= 1.0)  # all members' surprises of a decade or more
        if len(seen):
            member, reading = np.divmod(seen, n)
            u_seen = np.minimum(u.reshape(-1)[seen], 1e6)
            whole_bin = np.minimum((u_seen / BIN_DECADES).astype(np.int64), N_BINS - 1)
            stored_bin = nb - 1 - (whole_bin - FIRST_STORED_BIN)  # stored highest first
            bin_row = sensor[reading] * self.members + member
            w_seen = w[reading]
            sel = slice(None) if need is None else np.flatnonzero(need[reading])
            look = seen[sel]
            look_reading, look_u = reading[sel], u_seen[sel]
            look_bin, look_row = stored_bin[sel], bin_row[sel]
            if len(look):
                w_last = w_seen[sel] * keep  # weight of the latest increment = real unit
                # The tail sum adds the bins from the top down to the reading's own
                # bin, in the order a running sum would, one vector add per bin over all
                # look-ups (np.cumsum over these small rows is ~10x slower): with the
                # look-ups ordered by their bin, those still adding are a prefix.
                order = np.argsort(-look_bin, kind="stable")
                gathered = bin_rows.take(look_row[order], axis=0).T.astype(np.float64, order="C")
                # how many look-ups (in that order) reach down to bin j
                reach = np.searchsorted(-look_bin[order], -np.arange(nb), side="right")
                tail = gathered[0].copy()
                for j in range(1, nb):
                    still = int(reach[j])
                    if still == 0:
                        break
                    tail[:still] += gathered[j, :still]
                tail_count = np.empty(len(look))
                tail_count[order] = tail
                out.reshape(-1)[look] = self._tail_scores(
                    tail_count, w_last, tot[look_reading], look_u
                )
            flat_bins[bin_row * nb + stored_bin] += w_seen
        outs = list(out)
        tot = tot + w
        w = w / (1.0 - self.alpha)
        big = w > _RENORMALISE_AT
        if big.any():
            self._cnt[sensor[big]] /= w[big, None, None]
            tot[big] /= w[big]
            w[big] = 1.0
        return outs, tot, w

    def _tail_scores(
        self, tail_count: np.ndarray, w_last: np.ndarray, tot: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """Calibrated scores of look-ups: ``tail_count`` the decayed count at and above
        each surprise ``u``, ``tot`` the decayed total, both in units of ``w_last``."""
        p = (tail_count / w_last + self.prior * 10.0 ** (-u)) / (tot / w_last + self.prior)
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
        out, tail_count = np.empty((self.members, n)), np.empty(self.members * n)
        look = np.empty(self.members * n, np.int64)
        n_look, _ = kernels.calibrate_block(
            rows, tcol, self._cnt, sensor, u, np.zeros(0, bool) if need is None else need,
            need is not None, self.alpha, tw, out, look, tail_count,
        )  # fmt: skip
        if n_look:
            look = look[:n_look]
            reading = look % n
            look_u = np.minimum(u.reshape(-1)[look], 1e6)
            w_last = tw[1][reading] * (1.0 - self.alpha)  # weight of the latest increment
            out.reshape(-1)[look] = self._tail_scores(
                tail_count[:n_look], w_last, tw[0][reading], look_u
            )
        return list(out)

    def forget(self, sensor: np.ndarray) -> None:
        """Reset the counts of these sensors."""
        s = sensor[sensor < len(self._tot)]
        self._cnt[s] = 0.0
        self._tot[s] = 0.0
        self._w[s] = 1.0
