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

from riskwatch.model import PROCESS_SKIP, Flags
from riskwatch.rules.conditions import ChangeColumns, RangeColumns, RateColumns
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.slots import LEVEL_COLUMNS

__all__ = ["ScalarRules"]

_CAL = int(Flags.CALIBRATING)
_SKIP = int(PROCESS_SKIP)
K_RATE, K_CHANGE, K_FROZEN = ConditionKind.RATE, ConditionKind.CHANGE, ConditionKind.FROZEN
K_RANGE, K_CALIB = ConditionKind.OUT_OF_RANGE, ConditionKind.CALIBRATION


class ScalarRules:
    """Per-reading evaluation with Python dicts; ``feed`` returns transitions as tuples
    ``(rule, sensor, time, state, level or None)``."""

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
                pass
            elif kind in (K_FROZEN, K_RANGE):
                if flags & _CAL:
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
