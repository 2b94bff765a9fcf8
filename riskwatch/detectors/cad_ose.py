"""CAD OSE, the Contextual Anomaly Detector (open-source edition), one memory per sensor.

CAD OSE (M. Smirnov, 2016; NAB's ``contextOSE`` detector, NAB score 69.9 on the whole
corpus) learns which *contexts* follow one another. A reading is quantised into
``2**bits`` levels of the sensor's range and encoded as ``bits`` facts (bit ``k`` of the
level, as ``2k`` or ``2k + 1``). A context is a pair (left facts, right facts): the left
side is the previous reading's facts plus the *active neurons* (ids of the contexts that
fired on it); the right side the current reading's facts. Each step

1. stores the zero-level context (previous left facts, current facts) if it is new;
2. crosses the current facts with every stored context whose left side was fully
   present last step: a context is *selected* when its left side matched, *active*
   when its right side matches too; the partial crossings of zero-level contexts are
   remembered as new (smaller) contexts;
3. the active contexts with the most activations (at most ``max_active``) become the
   neurons of the next left side.

The anomaly score is ``(1 - active/selected + new/potential) / 2``: high when few of
the contexts that expected something saw it happen and many crossings were new. After
a score of ``base_threshold`` or more, the next ``rest_period`` scores are reported as 0
(one alarm per event, as the published detector does).

The memory is a graph of dicts and lists that grows with what the sensor has shown
(a few hundred contexts for a regular series, thousands for a noisy one); nothing of it
is shared between sensors, so :class:`CadOse` loops over the readings of a round in
Python. What is vectorised is everything around it: validation, the range, warm-up,
the encoding into levels. ``bench/bench_cad_ose.py`` measures the cost per reading.

Faithfulness: with the file's range and NAB's rest period, :func:`cad_ose_scores`
reproduces NAB's published ``contextOSE`` result files (``bench/cad_ose_faithful.py``
checks it file by file: bench/notes/detectors.md).

A square wave, then a level it never showed: the wave settles to low scores once its
contexts are learnt; the new level scores 1.

>>> import numpy as np
>>> x = np.r_[np.tile([0.0] * 5 + [1.0] * 5, 40), [0.5] * 3]
>>> s = cad_ose_scores(x, lo=0.0, hi=1.0, rest_period=30)
>>> round(float(s[300:400].mean()), 2), float(s[400])
(0.16, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from riskwatch.detectors.base import Detector, check

__all__ = ["CadMemory", "CadOse", "cad_ose_scores"]

_NEURON = 1 << 31  # neuron facts are offset so they never meet sensor facts


_M64 = (1 << 64) - 1


def tuple_hash(facts: tuple[int, ...]) -> int:
    """The hash the published detector keyed and ranked contexts by: CPython 2's tuple
    hash of small ints on a 64-bit build (CPython 3 hashes tuples differently). Ties
    between equally active contexts go to the larger hash, so which neurons are kept,
    and every later score, depend on it.

    >>> tuple_hash(()), tuple_hash((1, 2))
    (3527539, 3713081631934410656)
    """
    x, mult, n = 0x345678, 1000003, len(facts)
    for y in facts:
        n -= 1
        x = ((x ^ (-2 if y == -1 else y)) * mult) & _M64
        mult += 82520 + n + n
    x = (x + 97531) & _M64
    if x >= 1 << 63:
        x -= 1 << 64
    return -2 if x == -1 else x


class _SlotMap:
    """int -> int map that iterates in CPython 2's dict order (slot order of an open
    addressing table that grows 4x when 2/3 full, never deleted from). The published
    detector stores new contexts in the order it walks these maps, and the order of
    context ids reaches the neurons' facts; insertion order would drift off it."""

    __slots__ = ("keys", "used", "vals")

    def __init__(self) -> None:
        self.keys: list[int | None] = [None] * 8
        self.vals: list[int] = [0] * 8
        self.used = 0

    def _slot(self, keys: list[int | None], key: int) -> int:
        mask = len(keys) - 1
        i = key & mask
        perturb = key
        while True:
            k = keys[i]
            if k is None or k == key:
                return i
            i = (5 * i + perturb + 1) & mask
            perturb >>= 5

    def get(self, key: int) -> int | None:
        i = self._slot(self.keys, key)
        return None if self.keys[i] is None else self.vals[i]

    def put(self, key: int, val: int) -> None:
        """Insert a new key (the caller checked it is absent)."""
        i = self._slot(self.keys, key)
        self.keys[i], self.vals[i] = key, val
        self.used += 1
        if self.used * 3 >= len(self.keys) * 2:
            size = 8
            while size <= 4 * self.used:
                size <<= 1
            old = [(k, v) for k, v in zip(self.keys, self.vals, strict=True) if k is not None]
            self.keys, self.vals = [None] * size, [0] * size
            for k, v in old:
                j = self._slot(self.keys, k)
                self.keys[j], self.vals[j] = k, v

    def items(self) -> list[tuple[int, int]]:
        return [(k, v) for k, v in zip(self.keys, self.vals, strict=True) if k is not None]


class _Semi:
    """One side of stored contexts: its facts, and how many of them the last crossing
    saw. A left semi-context also maps right semi-context ids to context ids."""

    __slots__ = ("hits", "n_hit", "order", "right", "size")

    def __init__(self, order: int, size: int, left: bool) -> None:
        self.order = order  # position among its side's semi-contexts (creation order)
        self.hits: list[int] = []
        self.size = size
        self.n_hit = 0
        self.right: _SlotMap | None = _SlotMap() if left else None


class _Context:
    """A stored (left, right) pair: how often it was active, whether it is zero-level
    (made from two consecutive readings, not from a crossing), the sides' hashes (the
    published detector breaks ties between equally active contexts by them)."""

    __slots__ = ("active", "lhash", "rhash", "zero")

    def __init__(self, zero: bool, lhash: int, rhash: int) -> None:
        self.active = 0
        self.zero = zero
        self.lhash = lhash
        self.rhash = rhash


class CadMemory:
    """The context memory of one sensor: :meth:`step` takes a reading's facts and
    returns ``(active/selected, new/potential)``.

    Parameters
    ----------
    max_left : int
        Longest left side a crossing may store as a new context (published: 7).
    max_active : int
        Neurons carried into the next left side (published: 15).
    """

    __slots__ = (
        "_contexts",
        "_crossed",
        "_ids",
        "_index",
        "_left",
        "_new_id",
        "_semis",
        "max_active",
        "max_left",
    )

    def __init__(self, max_left: int = 7, max_active: int = 15) -> None:
        self.max_left, self.max_active = max_left, max_active
        self._ids: tuple[dict[int, int], dict[int, int]] = ({}, {})  # side hash -> id
        self._index: tuple[dict[int, list[_Semi]], dict[int, list[_Semi]]] = ({}, {})
        self._semis: tuple[list[_Semi], list[_Semi]] = ([], [])
        self._crossed: list[list[_Semi]] = [[], []]
        self._contexts: list[_Context] = []
        # The published code marks "no new context" with False and compares it to
        # context ids, so context 0 counts as new on every such step; 0 keeps that.
        self._new_id = 0
        self._left: tuple[int, ...] = ()

    @property
    def n_contexts(self) -> int:
        """Contexts stored so far (the memory grows with this)."""
        return len(self._contexts)

    def _semi(self, side: int, facts: tuple[int, ...]) -> tuple[int, int]:
        h = tuple_hash(facts)
        ids = self._ids[side]
        sid = ids.get(h)
        if sid is None:
            sid = ids[h] = len(self._semis[side])
            semi = _Semi(sid, len(facts), left=side == 0)
            self._semis[side].append(semi)
            index = self._index[side]
            for f in facts:
                index.setdefault(f, []).append(semi)
        return sid, h

    def _store(self, pairs: list[tuple[tuple[int, ...], tuple[int, ...]]], zero: bool) -> int:
        """Store the pairs that are new; returns how many were (for ``zero``: whether
        the one pair was, and it becomes the step's new context)."""
        added = 0
        for left, right in pairs:
            lid, lh = self._semi(0, left)
            rid, rh = self._semi(1, right)
            rmap = self._semis[0][lid].right
            assert rmap is not None
            cid = rmap.get(rid)
            if cid is None:
                cid = len(self._contexts)
                rmap.put(rid, cid)
                self._contexts.append(_Context(zero, lh, rh))
                added += 1
                if zero:
                    self._new_id = cid
                    return 1
            elif zero:
                self._contexts[cid].zero = True
                return 0
        return added

    def _cross(self, side: int, facts: tuple[int, ...]) -> None:
        for semi in self._crossed[side]:
            semi.hits = []
            semi.n_hit = 0
        index = self._index[side]
        touched: dict[int, _Semi] = {}
        for f in facts:
            for semi in index.get(f, ()):
                semi.hits.append(f)
                touched[semi.order] = semi
        # in creation order, as a walk over all of them would give (the published
        # code walks every semi-context; only the touched ones can have hits)
        crossed = [touched[k] for k in sorted(touched)]
        for semi in crossed:
            semi.n_hit = len(semi.hits)
        self._crossed[side] = crossed

    def step(self, facts: tuple[int, ...]) -> tuple[float, float]:
        """Learn one reading (its sorted facts); returns the two anomaly terms."""
        potential: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        new_zero = False
        if self._left and facts:
            pair = (self._left, facts)
            potential.add(pair)
            new_zero = self._store([pair], zero=True) == 1
        # right side: which stored contexts expected this reading
        self._cross(1, facts)
        active: list[tuple[int, int, int, int]] = []
        selected = 0
        crossings: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        rsemis = self._semis[1]
        for lsemi in self._crossed[0]:
            full_left = lsemi.size == lsemi.n_hit
            assert lsemi.right is not None
            for rid, cid in lsemi.right.items():
                if cid == self._new_id:
                    continue
                ctx = self._contexts[cid]
                rsemi = rsemis[rid]
                if full_left:
                    selected += 1
                    if rsemi.n_hit > 0:
                        if rsemi.size == rsemi.n_hit:
                            ctx.active += 1
                            active.append((ctx.active, ctx.lhash, ctx.rhash, cid))
                        elif ctx.zero and new_zero and lsemi.n_hit <= self.max_left:
                            crossings.append((tuple(lsemi.hits), tuple(rsemi.hits)))
                elif ctx.zero and new_zero and rsemi.n_hit > 0 and lsemi.n_hit <= self.max_left:
                    crossings.append((tuple(lsemi.hits), tuple(rsemi.hits)))
        self._new_id = 0
        potential.update(crossings)
        share_active = len(active) / selected if selected else 0.0
        active.sort()
        neurons = {_NEURON + a[3] for a in active[-self.max_active :]} if active else set()
        self._left = tuple(sorted(set(facts) | neurons))
        # left side: which stored contexts this reading (and its neurons) opens
        added = self._store(crossings, zero=False) if crossings else 0
        self._cross(0, self._left)
        added += 1 if new_zero else 0
        share_new = added / len(potential) if new_zero and potential else 0.0
        return share_active, share_new


def encode(level: int, bits: int) -> tuple[int, ...]:
    """The facts of a quantisation level: bit ``k`` as ``2k`` (0) or ``2k + 1`` (1),
    for at least ``bits`` bits (a level past the top has more).

    >>> encode(5, 3)
    (1, 2, 5)
    """
    n = max(bits, int(level).bit_length())
    return tuple(2 * k + ((level >> k) & 1) for k in range(n))


def cad_ose_scores(
    x: np.ndarray,
    *,
    lo: float,
    hi: float,
    rest_period: float,
    base_threshold: float = 0.75,
    max_left: int = 7,
    max_active: int = 15,
    bits: int = 3,
) -> np.ndarray:
    """Scalar reference: CAD OSE over one series with a fixed range, as NAB runs it.

    NAB gives the detector the file's minimum and maximum (``lo``, ``hi``) and
    ``rest_period = probation / 5`` (probation ``min(floor(0.15 n), 750)`` rows).
    """
    top = 2**bits - 1.0
    span = hi - lo
    step = (span if span != 0.0 else top) / top
    mem = CadMemory(max_left, max_active)
    out = np.zeros(len(x))
    history = [1.0]
    rest = int(rest_period)
    for i, v in enumerate(np.asarray(x, dtype=np.float64).tolist()):
        level = int((v - lo) / step)
        a, b = mem.step(encode(max(level, 0), bits))
        s = (1.0 - a + b) / 2.0
        recent = history[-rest:] if rest > 0 else history
        out[i] = s if max(recent) < base_threshold else 0.0
        history.append(s)
    return out


class CadOse(Detector):
    """CAD OSE per sensor as an ensemble member (surprise ``10 * score``).

    The published detector quantises by the whole file's range, known in advance. A
    stream has no such thing: give the sensor's range (``lo``, ``hi``, e.g. the
    transmitter's span; readings outside it take the end levels) or let it be the range
    of the sensor's readings so far, including the current one. Once a sensor has shown
    its extremes that is the published encoding exactly; each new extreme re-scales the
    levels (and is itself a reading never seen before). After a score of
    ``base_threshold`` or more the next ``rest_period`` readings score 0, and so do a
    sensor's first ``rest_period`` readings (the published rule).

    Parameters
    ----------
    lo, hi : float or None
        The value range quantised into ``2**bits`` levels (both or neither).
    rest_period : int
        Readings reported as 0 after a score of ``base_threshold`` (published: NAB's
        probation / 5, which is 150 for files of 5000 rows or more).
    base_threshold : float
        Published 0.75.
    max_left : int
        Published 7 (longest left side a crossing stores).
    max_active : int
        Published 15 (neurons carried forward).
    bits : int
        Published 3 (8 levels).
    warmup : int
        Readings before scoring (the rest period already silences the first
        ``rest_period``).
    threshold : float
        Default alert threshold on the score (the published ``base_threshold``).

    References
    ----------
    M. Smirnov, "Contextual Anomaly Detector - Open Source Edition" (2016), in
    numenta/NAB ``nab/detectors/context_ose``; NAB results "contextOSE".

    Examples
    --------
    A square wave learnt, then a level never seen (a sensor spanning 0..2):

    >>> from riskwatch.detectors.base import run_stream
    >>> x = np.r_[np.tile([0.0] * 5 + [1.0] * 5, 40), [2.0] * 3]
    >>> s = run_stream(CadOse(lo=0.0, hi=2.0, rest_period=30), np.zeros(len(x), np.int32), x)
    >>> round(float(s[370:400].max()), 2), float(s[400])
    (0.16, 1.0)
    """

    kind = "cad_ose"
    round_order_free = True

    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        rest_period: int = 150,
        base_threshold: float = 0.75,
        max_left: int = 7,
        max_active: int = 15,
        bits: int = 3,
        *,
        warmup: int = 0,
        threshold: float = 0.75,
    ) -> None:
        check((lo is None) == (hi is None), "lo", "give both lo and hi, or neither")
        if lo is not None and hi is not None:
            check(float(hi) >= float(lo), "hi", f"must be >= lo, got {hi} < {lo}")
        check(
            isinstance(rest_period, int) and rest_period >= 0,
            "rest_period",
            "must be an integer >= 0",
        )
        check(0.0 < base_threshold <= 1.0, "base_threshold", "must be in (0, 1]")
        check(isinstance(max_left, int) and max_left >= 1, "max_left", "must be an integer >= 1")
        check(
            isinstance(max_active, int) and max_active >= 1, "max_active", "must be an integer >= 1"
        )
        check(isinstance(bits, int) and 1 <= bits <= 16, "bits", "must be an integer in 1..16")
        super().__init__(warmup=warmup, threshold=threshold)
        self.lo = None if lo is None else float(lo)
        self.hi = None if hi is None else float(hi)
        self.rest_period = rest_period
        self.base_threshold = base_threshold
        self.max_left = max_left
        self.max_active = max_active
        self.bits = bits
        self._top = 2**bits - 1
        self._mem: dict[int, CadMemory] = {}
        self._seen = np.zeros(0, np.int64)
        self._lo = np.zeros(0)
        self._hi = np.zeros(0)
        self._quiet = np.zeros(0, np.int64)  # readings since the last score >= base
        # what score() computed for its round, for the learn() of the same round
        self._pending: tuple[bytes, bytes, dict[int, CadMemory], tuple[np.ndarray, ...]] | None
        self._pending = None

    # -- per-sensor arrays -------------------------------------------------------------
    def _grow_cad(self, sensor: np.ndarray) -> None:
        need = int(sensor.max()) + 1 if len(sensor) else 0
        if need <= len(self._seen):
            return
        cap = max(need, 2 * len(self._seen), 16)
        pad = cap - len(self._seen)
        self._seen = np.r_[self._seen, np.zeros(pad, np.int64)]
        self._lo = np.r_[self._lo, np.full(pad, np.inf)]
        self._hi = np.r_[self._hi, np.full(pad, -np.inf)]
        # the published history starts with a 1.0: the first rest period is quiet
        self._quiet = np.r_[self._quiet, np.zeros(pad, np.int64)]

    def forget(self, sensor: np.ndarray) -> None:
        sensor = np.asarray(sensor, dtype=np.int64)
        sensor = sensor[sensor < len(self._seen)]
        for s in sensor.tolist():
            self._mem.pop(int(s), None)
        self._seen[sensor] = 0
        self._lo[sensor] = np.inf
        self._hi[sensor] = -np.inf
        self._quiet[sensor] = 0
        self._pending = None

    def contexts(self, sensor: int) -> int:
        """Contexts a sensor's memory holds (its step cost grows with them)."""
        mem = self._mem.get(int(sensor))
        return 0 if mem is None else mem.n_contexts

    def state_nbytes(self) -> int:
        # arrays only; each memory holds Python objects (roughly 200 bytes a context)
        return int(self._seen.nbytes + self._lo.nbytes + self._hi.nbytes + self._quiet.nbytes)

    def _levels(self, sensor: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Quantisation levels of a round (vectorised), clipped to the range's levels."""
        if self.lo is not None and self.hi is not None:
            lo = np.full(len(sensor), self.lo)
            span = np.full(len(sensor), self.hi - self.lo)
        else:
            lo = self._lo[sensor]
            span = self._hi[sensor] - lo
        # the published arithmetic: step = range / top (top when the range is empty)
        step = np.where(span != 0.0, span, float(self._top)) / self._top
        lev = np.trunc((value - lo) / step)
        return np.clip(lev, 0, self._top).astype(np.int64)

    def _run(self, sensor: np.ndarray, value: np.ndarray, mems: dict[int, CadMemory]) -> np.ndarray:
        """Score then learn one round of finite values, stepping the memories in
        ``mems`` (missing ones are created there); the arrays are updated in place."""
        self._grow_cad(sensor)
        if self.lo is None:  # the range of the readings so far, this one included
            self._lo[sensor] = np.minimum(self._lo[sensor], value)
            self._hi[sensor] = np.maximum(self._hi[sensor], value)
        levels = self._levels(sensor, value)
        raw = np.empty(len(sensor))
        bits = self.bits
        for i, (s, lev) in enumerate(zip(sensor.tolist(), levels.tolist(), strict=True)):
            mem = mems.get(s)
            if mem is None:
                mem = mems[s] = CadMemory(self.max_left, self.max_active)
            a, b = mem.step(encode(lev, bits))
            raw[i] = (1.0 - a + b) / 2.0
        quiet = self._quiet[sensor]
        seen = self._seen[sensor]
        score = np.where((quiet >= self.rest_period) & (seen >= self.warmup), raw, 0.0)
        self._quiet[sensor] = np.where(raw >= self.base_threshold, 0, quiet + 1)
        self._seen[sensor] = seen + 1
        return score

    # -- the contract ----------------------------------------------------------------
    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        # A CAD step learns as it scores. The pure score of a round is that of copies of
        # the round's memories and arrays; a following learn of the same round adopts
        # them instead of stepping again. Ensembles take the fused path (one step).
        import copy

        out = np.zeros(len(sensor))
        ok = np.isfinite(value)
        s, v = sensor[ok], value[ok]
        self._grow_cad(s)
        saved = (self._seen.copy(), self._lo.copy(), self._hi.copy(), self._quiet.copy())
        mems = {k: copy.deepcopy(self._mem[k]) for k in s.tolist() if k in self._mem}
        out[ok] = self._run(s, v, mems)
        after = (self._seen, self._lo, self._hi, self._quiet)
        self._seen, self._lo, self._hi, self._quiet = saved
        self._pending = (s.tobytes(), v.tobytes(), mems, after)
        return 10.0 * out

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and pending[:2] == (sensor.tobytes(), value.tobytes()):
            self._mem.update(pending[2])
            self._seen, self._lo, self._hi, self._quiet = pending[3]
            return
        self._run(sensor, value, self._mem)

    def _surprise_learn(
        self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray
    ) -> np.ndarray:
        self._pending = None
        return 10.0 * self._run(sensor, value, self._mem)

    def hyper_parameters(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
