"""A plain per-reading Python evaluator of the same compiled rules (dict state, if/else).

It exists to check the vectorised :class:`~riskwatch.rules.evaluator.RuleSet` (tests feed
both the same readings and compare transitions) and as the baseline of
``bench/bench_rules.py``. It covers the per-reading condition kinds (threshold on value,
rate and windowed change, N-of-M, ``for``/``keep_firing_for``, frozen, range,
calibration) without calendars. Not for production use: it is slow on purpose-free code.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.rules.parse import load_rules_text
>>> from riskwatch.rules.evaluator import RuleSet
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "T", "temp")])
>>> rf = load_rules_text("rules: [{name: hot, match: {kind: temp}, level: red, above: 30}]")
>>> rs = RuleSet([rf], reg)
>>> ref = ScalarRules(rs)
>>> ref.feed(1, 0, 31.0, 0), ref.feed(2, 0, 29.0, 0)
([('hot', 0, 1, 'firing', 1)], [('hot', 0, 2, 'resolved', None)])
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from riskwatch.model import PROCESS_SKIP, RAISE_ONLY, Flags
from riskwatch.rules.conditions import ChangeColumns, RangeColumns, RateColumns
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.slots import LEVEL_COLUMNS

__all__ = ["ScalarRules"]

_CAL = int(Flags.CALIBRATING)
_FAULT = int(Flags.FAULT)
_SKIP = int(PROCESS_SKIP)
_RAISE_ONLY = int(RAISE_ONLY)
_DUP, _CONFLICT = int(Flags.DUPLICATE), int(Flags.CONFLICTING)
K_RATE, K_CHANGE, K_FROZEN = ConditionKind.RATE, ConditionKind.CHANGE, ConditionKind.FROZEN
K_RANGE, K_CALIB = ConditionKind.OUT_OF_RANGE, ConditionKind.CALIBRATION


class ScalarRules:
    """Per-reading evaluation with Python dicts; ``feed`` returns transitions as tuples
    ``(rule, sensor, time, state, level or None)``.

    ``feed`` takes readings in order; ``feed_batch`` takes a batch the way the rule set
    does: its in-order readings in time order, then its raise-only ones
    (:mod:`~riskwatch.rules.raise_only`), whose transitions collapse to the last one
    per (rule, sensor), as the vectorised pass emits one per slot.
    """

    def __init__(self, rs: RuleSet) -> None:
        s = rs.readings.slots
        rate = s.columns.get(K_RATE)
        change = s.columns.get(K_CHANGE)
        rng = s.columns.get(K_RANGE)
        assert rate is None or isinstance(rate, RateColumns)
        assert change is None or isinstance(change, ChangeColumns)
        assert rng is None or isinstance(rng, RangeColumns)
        self.by_sensor: dict[int, list[dict[str, Any]]] = {}
        for i in range(s.n):
            p: dict[str, Any] = {
                "rule": rs.readings.rules[int(s.rule[i])].name,
                "kind": int(s.kind[i]),
                "per": float(rate.per_ns[i]) if rate is not None else 1e9,
                "window": int(change.window_ns[i]) if change is not None else 0,
                "rises": bool(change.sign[i] > 0) if change is not None else True,
                "low": float(rng.low[i]) if rng is not None else math.nan,
                "high": float(rng.high[i]) if rng is not None else math.nan,
                "n": int(s.count_n[i]),
                "m": int(s.count_m[i]),
                "levels": [
                    (
                        k,
                        float(s.sign[i, k]),
                        float(s.trigger[i, k]),
                        float(s.clear[i, k]),
                        bool(s.strict[i, k]),
                        bool(s.clear_inclusive[i, k]),
                        int(s.for_ns[i, k]),
                        int(s.keep_ns[i, k]),
                    )
                    for k in range(LEVEL_COLUMNS)
                    if s.enabled[i, k]
                ],
            }

            p.update(latch={}, trun={}, tsince={}, crun={}, csince={}, hist={}, status=0)
            p.update(last_t=None, last_v=math.nan, window_readings=[])
            self.by_sensor.setdefault(int(s.sensor[i]), []).append(p)

    def feed(self, t: int, sensor: int, v: float, flags: int) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for p in self.by_sensor.get(sensor, ()):
            kind = p["kind"]
            if kind == K_CALIB:
                if flags & _RAISE_ONLY:
                    continue
            elif kind in (K_FROZEN, K_RANGE):
                if flags & (_CAL | _RAISE_ONLY):
                    continue
            elif flags & _SKIP:
                continue
            lt, lv = p["last_t"], p["last_v"]
            anchor = t
            if kind == K_RATE:
                x = (v - lv) / (t - lt) * p["per"] if lt is not None and t > lt else math.nan
            elif kind == K_FROZEN:
                x = abs(v - lv) if lt is not None else math.nan
                if lt is not None:
                    anchor = lt
            elif kind == K_RANGE:
                lo, hi = p["low"], p["high"]
                cands = [d for d in (lo - v, v - hi) if not math.isnan(d)]
                x = max(cands) if cands else math.nan
            elif kind == K_CALIB:
                x = 1.0 if flags & _CAL else 0.0
            elif kind == K_CHANGE:
                # every reading of the window, kept as long as the window holds it
                seen = p["window_readings"]
                seen.append((t, v))
                seen[:] = [(rt, rv) for rt, rv in seen if rt >= t - p["window"]]
                vals = [rv for _, rv in seen]
                x = v - (min(vals) if p["rises"] else max(vals))
            else:
                x = v
            status = 0
            pend = 0
            for k, sign, T, C, strict, cincl, for_ns, keep_ns in reversed(p["levels"]):
                xs = x * sign
                trig = xs > T or (not strict and xs == T)
                clr = xs < C or (cincl and xs == C)
                if p["m"]:
                    h = p["hist"].setdefault(k, deque(maxlen=p["m"]))
                    h.append(1 if trig else 0)
                    cnt = sum(h)
                    trig, clr = cnt >= p["n"], cnt < p["n"] and clr
                if trig:
                    if not p["trun"].get(k):
                        p["tsince"][k] = anchor
                    p["trun"][k] = True
                else:
                    p["trun"][k] = False
                set_evt = trig and t - p["tsince"][k] >= for_ns
                if clr:
                    if not p["crun"].get(k):
                        p["csince"][k] = t
                    p["crun"][k] = True
                else:
                    p["crun"][k] = False
                reset_evt = clr and not trig and t - p["csince"][k] >= keep_ns
                if set_evt:
                    p["latch"][k] = True
                elif reset_evt:
                    p["latch"][k] = False
                if p["latch"].get(k):
                    status = k + 1
                elif trig and kind < K_FROZEN:
                    pend = k + 11
            status = status or pend
            p["last_t"], p["last_v"] = t, v
            if status != p["status"]:
                if status == 0:
                    out.append((p["rule"], sensor, t, "resolved", None))
                elif status > 10:
                    out.append((p["rule"], sensor, t, "pending", status - 10))
                else:
                    out.append((p["rule"], sensor, t, "firing", status))
                p["status"] = status
        return out

    def feed_batch(self, rows: list[tuple[int, int, float, int]]) -> list[tuple[Any, ...]]:
        """A batch of ``(time, sensor, value, flags)`` rows, evaluated as RuleSet.process does."""
        rows = sorted(rows, key=lambda r: r[0])  # stable, like Batch.sorted_by_time
        out: list[tuple[Any, ...]] = []
        for t, sensor, v, f in rows:
            out += self.feed(t, sensor, v, f)
        late: dict[tuple[str, int], tuple[Any, ...]] = {}
        for t, sensor, v, f in rows:
            for tr in self.feed_raise_only(t, sensor, v, f):
                late[(tr[0], tr[1])] = tr
        return out + list(late.values())

    def feed_raise_only(self, t: int, sensor: int, v: float, flags: int) -> list[tuple[Any, ...]]:
        """One raise-only reading: it may latch immediate colours (N-of-M: with the last
        M-1 in-order bits) and make `for` colours pending; it never resets anything."""
        if not flags & _RAISE_ONLY or (flags & _DUP and not flags & _CONFLICT):
            return []
        out: list[tuple[Any, ...]] = []
        for p in self.by_sensor.get(sensor, ()):
            kind = p["kind"]
            if kind == ConditionKind.VALUE:
                if flags & (_CAL | _FAULT):
                    continue
                x, pends = v, True
            elif kind == K_RANGE:
                if flags & _CAL:
                    continue
                cands = [d for d in (p["low"] - v, v - p["high"]) if not math.isnan(d)]
                x, pends = (max(cands) if cands else math.nan), False
            else:
                continue
            pend = 0
            for k, sign, T, _C, strict, _cincl, for_ns, _keep in p["levels"]:
                xs = x * sign
                trig = xs > T or (not strict and xs == T)
                if p["m"]:
                    h = list(p["hist"].get(k, ()))
                    before = h[max(0, len(h) - (p["m"] - 1)) :] if p["m"] > 1 else []
                    trig = trig and sum(before) + 1 >= p["n"]
                if not trig or p["latch"].get(k):
                    continue
                if for_ns == 0:
                    p["latch"][k] = True
                    p["crun"][k] = False
                elif pends and not pend:
                    pend = k + 11  # levels are in colour order: the first is the most severe
            latched = [k for k, on in p["latch"].items() if on]
            status = min(latched) + 1 if latched else pend
            if _rank(status) < _rank(p["status"]):
                p["status"] = status
                if status > 10:
                    out.append((p["rule"], sensor, t, "pending", status - 10))
                else:
                    out.append((p["rule"], sensor, t, "firing", status))
        return out


def _rank(status: int) -> int:
    """Severity rank of a status code: firing 1..4, pending 11..14, inactive last."""
    return 255 if status == 0 else status
