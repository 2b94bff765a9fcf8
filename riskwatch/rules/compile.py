"""Compiling rule specs against the sensor registry: selectors and per-sensor numbers.

Selectors are evaluated once per registry generation over whole columns: each distinct
column value is matched once (globs with :mod:`fnmatch`) and the result is broadcast
back, so a selector over 100k sensors costs one ``np.unique``.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CH4-1", "ch4", location="working_face",
...                                 setpoints={"alarm": 0.8}),
...                    CatalogEntry("m1", "s1", "CH4-2", "ch4", location="return_airway"),
...                    CatalogEntry("m1", "s1", "CO-1", "co")])
>>> select(reg, {"kind": "ch4", "location": ["working_*", "heading_face"]}).tolist()
[True, False, False]
>>> from riskwatch.rules.parse import Setpoint
>>> resolve_number(reg, Setpoint(setpoint="alarm", default=1.0, cap=1.0), np.arange(3), 1).tolist()
[0.8, 1.0, 1.0]
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.rules.parse import Setpoint

__all__ = ["resolve_number", "select", "unknown_columns"]


def _patterns(v: Any) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return [_norm(v)]


def _norm(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _match_column(
    col: np.ndarray,
    pats: list[str],
    cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    name: str = "",
) -> np.ndarray:
    if col.dtype == bool:
        want = {p.lower() in ("true", "1", "yes") for p in pats}
        return np.isin(col, list(want))
    if col.dtype.kind == "f":
        if "*" in pats:
            return ~np.isnan(col)
        vals = []
        for p in pats:
            try:
                vals.append(float(p))
            except ValueError:
                continue
        return np.isin(col, vals)
    hit = cache.get(name) if cache is not None else None
    if hit is None:
        hit = np.unique(col.astype(str), return_inverse=True)
        if cache is not None:
            cache[name] = hit
    uniq, inv = hit
    ok = np.array([any(fnmatch.fnmatchcase(u, p) for p in pats) for u in uniq.tolist()], dtype=bool)
    return ok[inv] if len(uniq) else np.zeros(len(col), dtype=bool)


def select(
    registry: SensorRegistry,
    match: Mapping[str, Any],
    exclude: Mapping[str, Any] | None = None,
    cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Boolean mask over sensor ids: every ``match`` key matches and no ``exclude`` key does.

    A value is a string, a number or a list (any of); strings may be globs. A column the
    registry does not have matches nothing (``rules check`` reports it). ``cache`` keeps
    each text column's distinct values between calls of one registry generation.
    """
    n = len(registry)
    mask = np.ones(n, dtype=bool)
    cols = set(registry.columns)
    for k, v in match.items():
        if k not in cols:
            return np.zeros(n, dtype=bool)
        mask &= _match_column(registry.column(k), _patterns(v), cache, k)
    for k, v in (exclude or {}).items():
        if k in cols:
            mask &= ~_match_column(registry.column(k), _patterns(v), cache, k)
    return mask


def unknown_columns(registry: SensorRegistry, match: Mapping[str, Any]) -> list[str]:
    cols = set(registry.columns)
    return [k for k in match if k not in cols]


def resolve_number(
    registry: SensorRegistry, sp: Setpoint | None, ids: np.ndarray, direction: int
) -> np.ndarray:
    """Per-sensor values of a number spec for sensors ``ids`` (NaN where undefined).

    ``direction`` is +1 for an upper trigger (cap = minimum) and -1 for a lower one.
    """
    if sp is None:
        return np.full(len(ids), np.nan)
    if sp.value is not None:
        out = np.full(len(ids), sp.value * sp.factor, dtype=np.float64)
    else:
        assert sp.setpoint is not None
        if registry.has_column(sp.setpoint):
            col = registry.column(sp.setpoint)
            if col.dtype.kind != "f":
                out = np.full(len(ids), np.nan)
            else:
                out = col[ids].astype(np.float64) * sp.factor
        else:
            out = np.full(len(ids), np.nan)
        if sp.default is not None:
            out = np.where(np.isnan(out), sp.default, out)
    if sp.cap is not None:
        out = np.minimum(out, sp.cap) if direction > 0 else np.maximum(out, sp.cap)
    return out


def looser_than_cap(
    registry: SensorRegistry, sp: Setpoint | None, ids: np.ndarray, direction: int
) -> np.ndarray:
    """Mask over ``ids``: the catalogue value is looser than the regulatory cap."""
    if sp is None or sp.cap is None or sp.setpoint is None or not registry.has_column(sp.setpoint):
        return np.zeros(len(ids), dtype=bool)
    col = registry.column(sp.setpoint)
    if col.dtype.kind != "f":
        return np.zeros(len(ids), dtype=bool)
    raw = col[ids] * sp.factor
    with np.errstate(invalid="ignore"):
        return (raw > sp.cap) if direction > 0 else (raw < sp.cap)
