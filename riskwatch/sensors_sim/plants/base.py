"""The sensor table every plant builds, and the signal-model columns the simulator uses.

A plant is described once, at build time, as rows (one per sensor: catalogue metadata plus
the parameters of its signal model). :class:`TableBuilder` turns the rows into a
:class:`SensorTable` of numpy columns; from then on the simulator only does whole-array
work over the table, whatever the plant type.

>>> b = TableBuilder()
>>> b.add("mine1", "face1", "GW-face1", "CH4-T1", "ch4", "%", "working_face",
...       (0, 10), 10, base=0.3, sd=0.02, pattern=Pattern.CUTTING, amp=0.2, decimals=2,
...       setpoints={"alarm": 1.0})
>>> t = b.build()
>>> len(t), t.kind.tolist(), t.setpoints["alarm"].tolist()
(1, ['ch4'], [1.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = ["Pattern", "SensorTable", "TableBuilder"]


class Pattern(IntEnum):
    """Deterministic shape of a sensor's value over time (noise is added on top)."""

    FLAT = 0
    CUTTING = 1  # coal: production shifts with shearer cutting cycles (CH4, CO, dust)
    DAILY = 2  # daily sine, peak mid-afternoon (temperature)
    LOAD = 3  # electricity: day/night/weekday load curve, shutdown orders
    TANK = 4  # hazchem: fill/draw cycle of a tank
    CREEP = 5  # tailings: slow displacement creep
    RAIN = 6  # tailings: 24 h rainfall accumulation, non-negative
    FEED = 7  # coal: load-side power status, follows the controlled CH4 interlock


@dataclass
class SensorTable:
    """Columns over all simulated sensors (object arrays for text, float64 for numbers)."""

    enterprise: np.ndarray
    site: np.ndarray
    gateway: np.ndarray
    sensor: np.ndarray
    kind: np.ndarray
    unit: np.ndarray
    location: np.ndarray
    range_low: np.ndarray
    range_high: np.ndarray
    period_s: np.ndarray
    base: np.ndarray
    amp: np.ndarray
    sd: np.ndarray
    rho: np.ndarray
    phase: np.ndarray
    pattern: np.ndarray  # int8 Pattern
    decimals: np.ndarray  # int8
    setpoints: dict[str, np.ndarray] = field(default_factory=dict)
    tags: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sensor)

    def keys(self) -> np.ndarray:
        """``enterprise/site/sensor`` per row."""
        return np.array(
            [
                f"{e}/{s}/{n}"
                for e, s, n in zip(self.enterprise, self.site, self.sensor, strict=True)
            ],
            dtype=object,
        )

    def column(self, name: str) -> np.ndarray:
        if name in self.setpoints:
            return self.setpoints[name]
        if name in self.tags:
            return self.tags[name]
        return getattr(self, name)  # type: ignore[no-any-return]

    def catalog_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of the point table (catalogue CSV) for these sensors."""
        sp = list(self.setpoints)
        tg = list(self.tags)
        head = [
            "enterprise", "site", "sensor", "kind", "unit", "location", "gateway",
            "range_low", "range_high", "period_s", *sp, *tg,
        ]  # fmt: skip
        rows = []
        for i in range(len(self)):
            r = [
                self.enterprise[i], self.site[i], self.sensor[i], self.kind[i], self.unit[i],
                self.location[i], self.gateway[i], _num(self.range_low[i]),
                _num(self.range_high[i]), _num(self.period_s[i]),
            ]  # fmt: skip
            r += [_num(self.setpoints[k][i]) for k in sp]
            r += [str(self.tags[k][i]) for k in tg]
            rows.append(r)
        return head, rows


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(round(f, 6))


class TableBuilder:
    """Collects sensor rows at build time (not on the hot path)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        enterprise: str,
        site: str,
        gateway: str,
        sensor: str,
        kind: str,
        unit: str,
        location: str,
        rng: tuple[float, float],
        period_s: float,
        *,
        base: float,
        sd: float,
        pattern: Pattern = Pattern.FLAT,
        amp: float = 0.0,
        rho: float = 0.9,
        phase: float = 0.0,
        decimals: int = 2,
        setpoints: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.rows.append(
            dict(
                enterprise=enterprise, site=site, gateway=gateway, sensor=sensor, kind=kind,
                unit=unit, location=location, range_low=float(rng[0]), range_high=float(rng[1]),
                period_s=float(period_s), base=base, sd=sd, pattern=int(pattern), amp=amp,
                rho=rho, phase=phase, decimals=decimals, setpoints=setpoints or {},
                tags=tags or {},
            )
        )  # fmt: skip

    def tag_all(self, name: str, value: str) -> TableBuilder:
        """Give every row the tag ``name`` unless it has one (a plant's ``domain``)."""
        for r in self.rows:
            r["tags"].setdefault(name, value)
        return self

    def extend(self, other: TableBuilder) -> None:
        self.rows += other.rows

    def build(self) -> SensorTable:
        rows = self.rows

        def obj(k: str) -> np.ndarray:
            return np.array([r[k] for r in rows], dtype=object)

        def num(k: str, dt: Any = np.float64) -> np.ndarray:
            return np.array([r[k] for r in rows], dtype=dt)

        sp_names: list[str] = []
        tag_names: list[str] = []
        for r in rows:
            sp_names += [k for k in r["setpoints"] if k not in sp_names]
            tag_names += [k for k in r["tags"] if k not in tag_names]
        return SensorTable(
            enterprise=obj("enterprise"), site=obj("site"), gateway=obj("gateway"),
            sensor=obj("sensor"), kind=obj("kind"), unit=obj("unit"), location=obj("location"),
            range_low=num("range_low"), range_high=num("range_high"), period_s=num("period_s"),
            base=num("base"), amp=num("amp"), sd=num("sd"), rho=num("rho"), phase=num("phase"),
            pattern=num("pattern", np.int8), decimals=num("decimals", np.int8),
            setpoints={
                k: np.array([r["setpoints"].get(k, math.nan) for r in rows], dtype=np.float64)
                for k in sp_names
            },
            tags={
                k: np.array([r["tags"].get(k, "") for r in rows], dtype=object) for k in tag_names
            },
        )  # fmt: skip
