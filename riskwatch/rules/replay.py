"""Replay recorded history through a rule set, and diff two rule sets on the same history.

History is a CSV with columns ``time`` (ISO 8601 or epoch milliseconds), ``value`` and
either ``enterprise, site, sensor`` or a full key ``sensor = enterprise/site/sensor``;
an optional ``quality`` column (``ok``, ``calibrating``, ``fault``) sets the flags. The
same evaluation code runs as in the engine, on the recorded timestamps: readings go in
batches in time order and the timers (no-data, compound) tick every ``tick`` of event
time, so a replay of the same history always gives the same transitions.

>>> import io
>>> from riskwatch.catalog import SensorRegistry
>>> reg = SensorRegistry()
>>> csv = "time,sensor,value\\n1000,m/s/T,20\\n2000,m/s/T,35\\n3000,m/s/T,10\\n"
>>> batch = load_history(io.StringIO(csv), reg)
>>> batch.time.tolist(), reg.key(0)
([1000000000, 2000000000, 3000000000], 'm/s/T')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.extras import require
from riskwatch.model import Batch, Flags, Signal
from riskwatch.rules.evaluator import RuleSet

__all__ = ["Transition", "diff", "load_history", "replay"]

_QUALITY = {"": 0, "ok": 0, "calibrating": int(Flags.CALIBRATING), "fault": int(Flags.FAULT)}


def load_history(src: str | Path | IO[str], registry: SensorRegistry) -> Batch:
    """Read a history CSV into one time-sorted batch (sensors interned in ``registry``)."""
    require("pandas", "offline", "riskwatch replay")
    import pandas as pd

    name = str(src) if isinstance(src, (str, Path)) else "<history>"
    try:
        df = pd.read_csv(src, dtype={"enterprise": str, "site": str, "sensor": str})
    except (OSError, ValueError) as exc:
        raise ConfigErrors([ConfigError("", f"cannot read history: {exc}", file=name)]) from exc
    missing = [c for c in ("time", "sensor", "value") if c not in df.columns]
    if missing:
        raise ConfigErrors(
            [ConfigError(missing[0], f"history needs columns time, sensor, value (have: "
                         f"{', '.join(map(str, df.columns))})", file=name, line=1)]
        )  # fmt: skip
    if pd.api.types.is_numeric_dtype(df["time"]):
        t = df["time"].to_numpy(np.int64) * 1_000_000
    else:
        dt = pd.to_datetime(df["time"], utc=True, format="ISO8601")
        t = dt.dt.as_unit("ns").astype("int64").to_numpy()
    if "enterprise" in df.columns and "site" in df.columns:
        keys = (df["enterprise"] + "/" + df["site"] + "/" + df["sensor"]).to_numpy()
    else:
        keys = df["sensor"].to_numpy()
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    ids = np.empty(len(uniq), np.int32)
    for i, k in enumerate(uniq.tolist()):  # once per distinct sensor, not per reading
        parts = k.split("/")
        if len(parts) != 3:
            raise ConfigErrors([ConfigError("sensor", f"sensor {k!r} is not enterprise/site/sensor",
                                            file=name)])  # fmt: skip
        ids[i] = registry.intern(parts[0], parts[1], [parts[2]])[0]
    if (ids < 0).any():
        raise ConfigErrors([ConfigError("sensor", "unknown sensor(s) in a strict registry",
                                        file=name)])  # fmt: skip
    flags = np.zeros(len(df), np.uint8)
    if "quality" in df.columns:
        q = df["quality"].fillna("").astype(str).str.lower()
        bad = sorted(set(q.unique()) - set(_QUALITY))
        if bad:
            raise ConfigErrors(
                [ConfigError("quality", f"unknown quality value(s) {bad}", file=name)]
            )
        flags = q.map(_QUALITY).to_numpy(np.uint8)
    return Batch.from_arrays(t, ids[inv], df["value"].to_numpy(np.float64), flags).sorted_by_time()


def replay(
    rs: RuleSet, history: Batch, *, batch_size: int = 10_000, tick_ns: int = 10 * 10**9
) -> list[Signal]:
    """Feed ``history`` through ``rs`` in time order; timers tick every ``tick_ns``."""
    out: list[Signal] = []
    n = len(history)
    if not n:
        return out
    next_tick = int(history.time[0]) + tick_ns
    i = 0
    while i < n:
        j = min(i + batch_size, n)
        # never let a batch run past the next tick (timers fire in event-time order)
        cut = int(np.searchsorted(history.time, next_tick, side="left"))
        if i < cut < j:
            j = cut
        if cut == i:
            out += rs.tick(next_tick)
            next_tick += tick_ns
            continue
        part = history.take(np.arange(i, j))
        out += rs.process(part, int(part.time[-1]))
        i = j
    out += rs.tick(next_tick)
    return out


@dataclass(frozen=True, order=True)
class Transition:
    """A signal reduced to what a diff compares."""

    time: int
    rule: str
    subject: str
    state: str
    level: str

    @classmethod
    def of(cls, s: Signal, registry: SensorRegistry) -> Transition:
        subject = s.group if s.group is not None else registry.key(s.sensor)
        return cls(s.time, s.rule, subject, s.state, s.level.colour if s.level else "-")


def diff(
    a: Sequence[Transition], b: Sequence[Transition]
) -> tuple[list[Transition], list[Transition]]:
    """Transitions only in ``a`` and only in ``b`` (multiset difference, time-sorted)."""
    from collections import Counter

    ca, cb = Counter(a), Counter(b)
    only_a = sorted((ca - cb).elements())
    only_b = sorted((cb - ca).elements())
    return only_a, only_b


def summary(ts: Sequence[Transition]) -> dict[str, dict[str, Any]]:
    """Per rule: number of firing transitions and of distinct subjects that fired."""
    out: dict[str, dict[str, Any]] = {}
    for t in ts:
        d = out.setdefault(t.rule, {"firing": 0, "subjects": set()})
        if t.state == "firing":
            d["firing"] += 1
            d["subjects"].add(t.subject)
    return out
