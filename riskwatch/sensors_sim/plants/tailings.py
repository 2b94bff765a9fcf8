"""Tailings pond online monitoring (尾矿库在线监测, GB 51108-2015, docs/regulations.md §3).

Per pond (a ``site``): four phreatic-line piezometers (burial depth, m; red = minimum
depth, orange = 1.1 x red), one dry-beach length gauge (m), one pond water level gauge
(m elevation; control level and design maximum flood level), four surface displacement
points (mm; orange = 0.8 x red) creeping slowly, and one rain gauge (24 h accumulation,
mm; yellow = rainstorm grade 50 mm). Points report every 10 min by default.

>>> from riskwatch.sensors_sim.scenario import PlantSpec
>>> t = build(PlantSpec(type="tailings", enterprise="pond1")).build()
>>> len(t), t.setpoints["red"][t.kind == "phreatic"].tolist()[0]
(11, 6.0)
"""

from __future__ import annotations

from riskwatch.sensors_sim.plants.base import Pattern, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["build"]


def build(spec: PlantSpec) -> TableBuilder:
    """``scale`` ponds of the same enterprise."""
    period = spec.period.seconds if spec.period is not None else 600.0
    b = TableBuilder()
    ent = spec.enterprise
    for p in range(1, spec.scale + 1):
        site = f"pond{p}"
        gw = f"GW-{site}"
        for k in range(1, 5):
            b.add(
                ent, site, gw, f"P{p}-PZ{k}", "phreatic", "m", f"section{k}", (0, 40), period,
                base=9.0 + 0.8 * k, sd=0.03, rho=0.99, decimals=2, setpoints={"red": 6.0},
            )  # fmt: skip
        b.add(
            ent, site, gw, f"P{p}-BEACH", "beach", "m", "dam_crest", (0, 500), period,
            base=160.0, sd=0.5, rho=0.99, decimals=1, setpoints={"red": 70, "orange": 90},
        )  # fmt: skip
        b.add(
            ent, site, gw, f"P{p}-LEVEL", "pond_level", "m", "pond", (1500, 1540), period,
            base=1521.5, sd=0.01, rho=0.995, decimals=2,
            setpoints={"control": 1525.0, "flood_max": 1528.0},
        )  # fmt: skip
        for k in range(1, 5):
            b.add(
                ent, site, gw, f"P{p}-GNSS{k}", "displacement", "mm", f"section{k}",
                (-50, 500), period, base=3.0 + k, sd=0.3, rho=0.6, pattern=Pattern.CREEP,
                amp=0.05, decimals=1, setpoints={"red": 50},
            )  # fmt: skip
        b.add(
            ent, site, gw, f"P{p}-RAIN", "rainfall", "mm", "dam_crest", (0, 500), period,
            base=0.5, sd=1.0, rho=0.95, pattern=Pattern.RAIN, decimals=1,
            setpoints={"yellow": 50},
        )  # fmt: skip
    return b
