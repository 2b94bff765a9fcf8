"""Hazardous-chemical major hazard source: tank farms (危险化学品重大危险源;
docs/regulations.md §2).

Each tank farm (a ``site`` with one gateway) has four tanks; each tank has a level,
temperature and pressure transmitter with DCS limits (high / high-high / low / low-low),
three combustible-gas detectors (%LEL, GB/T 50493 level 1 <= 25, level 2 <= 50) grouped by
the ``asset`` tag for 2-out-of-3 voting, and one toxic-gas detector (%OEL, 100 / 200).
The farm has one O2 detector (19.5 / 23.5 %VOL). Points carry ``domain=hazchem`` so the
coal-mine O2 and temperature rules leave them alone.

>>> from riskwatch.sensors_sim.scenario import PlantSpec
>>> t = build(PlantSpec(type="hazchem", enterprise="chem1")).build()
>>> len(t), sorted(set(t.kind))
(29, ['lel', 'level', 'o2', 'pressure', 'temp', 'toxic'])
"""

from __future__ import annotations

from riskwatch.sensors_sim.plants.base import Pattern, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["build"]

TANKS_PER_FARM = 4


def build(spec: PlantSpec) -> TableBuilder:
    """``scale`` tank farms of four tanks; points report every 10 s by default."""
    period = spec.period.seconds if spec.period is not None else 10.0
    b = TableBuilder()
    ent = spec.enterprise
    dom = {"domain": "hazchem"}
    for f in range(1, spec.scale + 1):
        site = f"tankfarm{f}"
        gw = f"GW-{site}"
        for k in range(1, TANKS_PER_FARM + 1):
            tank = f"TK{f}{k:02d}"
            asset = {"asset": tank, **dom}
            b.add(
                ent, site, gw, f"{tank}-LT", "level", "%", "tank", (0, 100), period,
                base=40.0 + 5 * k, sd=0.05, rho=0.99, pattern=Pattern.TANK, amp=12.0,
                phase=k * 5000.0, decimals=1,
                setpoints={"high": 85, "high_high": 90, "low": 15, "low_low": 10}, tags=asset,
            )  # fmt: skip
            b.add(
                ent, site, gw, f"{tank}-TT", "temp", "°C", "tank", (-20, 150), period,
                base=24.0, sd=0.1, rho=0.98, pattern=Pattern.DAILY, amp=3.0, decimals=1,
                setpoints={"high": 45, "high_high": 55}, tags=asset,
            )  # fmt: skip
            b.add(
                ent, site, gw, f"{tank}-PT", "pressure", "MPa", "tank", (0, 1.6), period,
                base=0.30, sd=0.004, rho=0.95, pattern=Pattern.DAILY, amp=0.02, decimals=3,
                setpoints={"high": 0.6, "high_high": 0.8, "low": 0.05, "low_low": 0.02},
                tags=asset,
            )  # fmt: skip
            for d in range(1, 4):
                b.add(
                    ent, site, gw, f"{tank}-GD{d}", "lel", "%LEL", "dike", (0, 100), period,
                    base=0.8, sd=0.3, rho=0.7, decimals=1, setpoints={"level1": 25, "level2": 50},
                    tags=asset,
                )  # fmt: skip
            b.add(
                ent, site, gw, f"{tank}-TX", "toxic", "%OEL", "dike", (0, 400), period,
                base=3.0, sd=1.0, rho=0.7, decimals=1, setpoints={"level1": 100, "level2": 200},
                tags=asset,
            )  # fmt: skip
        b.add(
            ent, site, gw, f"O2-{site}", "o2", "%VOL", "control_room", (0, 30), period,
            base=20.9, sd=0.03, decimals=1, setpoints={"low": 19.5, "high": 23.5}, tags=dom,
        )  # fmt: skip
    return b
