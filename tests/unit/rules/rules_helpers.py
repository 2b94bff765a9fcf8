"""Small helpers for rule tests: a registry from rows, a RuleSet from YAML text."""

from __future__ import annotations

from typing import Any

import numpy as np

from riskwatch.catalog import CatalogEntry, SensorRegistry
from riskwatch.model import Batch, Signal
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.parse import load_rules_text

S = 10**9


def registry(*rows: dict[str, Any]) -> SensorRegistry:
    reg = SensorRegistry()
    entries = []
    for r in rows:
        r = dict(r)
        base = {k: r.pop(k) for k in ("enterprise", "site", "sensor", "kind") if k in r}
        base.setdefault("enterprise", "m1")
        base.setdefault("site", "s1")
        text = {k: r.pop(k) for k in ("unit", "location", "gateway") if k in r}
        nums = {k: float(r.pop(k)) for k in ("range_low", "range_high", "period_s") if k in r}
        setpoints = {k: float(v) for k, v in r.items() if isinstance(v, (int, float))}
        tags = {k: str(v) for k, v in r.items() if not isinstance(v, (int, float))}
        entries.append(CatalogEntry(**base, **text, **nums, setpoints=setpoints, tags=tags))
    reg.apply_catalog(entries)
    return reg


def ruleset(text: str, reg: SensorRegistry) -> RuleSet:
    return RuleSet([load_rules_text(text)], reg)


def feed(rs: RuleSet, readings: list[tuple[float, int, float]] | list[tuple[float, int, float, int]],
         now: float | None = None) -> list[Signal]:  # fmt: skip
    """Readings (t seconds, sensor, value[, flags]) as one batch."""
    t = [round(r[0] * S) for r in readings]
    f = [r[3] if len(r) > 3 else 0 for r in readings]  # type: ignore[misc]
    b = Batch.from_arrays(t, [r[1] for r in readings], [r[2] for r in readings], f).sorted_by_time()
    return rs.process(b, round((now if now is not None else max(r[0] for r in readings)) * S))


def brief(sigs: list[Signal]) -> list[tuple[float, str, int, str, str | None]]:
    return [
        (s.time / S, s.rule, s.sensor, s.state, s.level.colour if s.level else None) for s in sigs
    ]


def series(rs: RuleSet, sensor: int, values: list[float], step: float = 1.0, t0: float = 0.0,
           flags: list[int] | None = None) -> list[tuple[float, str, int, str, str | None]]:  # fmt: skip
    rd = [(t0 + i * step, sensor, v, (flags or [0] * len(values))[i]) for i, v in enumerate(values)
          if not (isinstance(v, float) and np.isnan(v))]  # fmt: skip
    return brief(feed(rs, rd))  # type: ignore[arg-type]
