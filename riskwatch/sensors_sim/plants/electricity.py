"""Work-safety electricity monitoring (安全生产电力监测, docs/regulations.md §4).

One 15-minute mean load meter (kW) per monitored enterprise, site ``power``. The load
follows a day/night/weekday production curve scaled by the enterprise's rated capacity
(``rated_kw``); during a shutdown order it drops to the idle floor (about 6 % of rated,
below the ``idle_kw`` setpoint of 10 %) unless a ``shutdown_production`` event says the
enterprise keeps producing (停产不停电).

>>> from riskwatch.sensors_sim.scenario import PlantSpec
>>> t = build(PlantSpec(type="electricity", enterprise="grid", enterprises=["mine1"])).build()
>>> t.enterprise.tolist(), t.kind.tolist(), t.period_s.tolist()
(['mine1'], ['load_kw'], [900.0])
"""

from __future__ import annotations

from riskwatch.sensors_sim.plants.base import Pattern, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["IDLE_SHARE", "build"]

IDLE_SHARE = 0.06  # actual load in a real shutdown, share of rated
IDLE_KW_SHARE = 0.10  # the idle_kw setpoint, share of rated


def build(spec: PlantSpec) -> TableBuilder:
    """Meters for ``enterprises`` (default ``{enterprise}01 ..`` ``8 x scale`` of them)."""
    period = spec.period.seconds if spec.period is not None else 900.0
    ents = spec.enterprises or [f"{spec.enterprise}{k:02d}" for k in range(1, 8 * spec.scale + 1)]
    b = TableBuilder()
    for k, ent in enumerate(ents):
        rated = float(500 * (1 + (k * 7) % 10))
        b.add(
            ent, "power", f"GW-{ent}-power", "LOAD-01", "load_kw", "kW", "main_meter",
            (0, 2 * rated), period, base=rated, sd=0.02 * rated, rho=0.8,
            pattern=Pattern.LOAD, amp=0.0, phase=(k * 600.0) % 3600, decimals=1,
            setpoints={"rated_kw": rated, "idle_kw": IDLE_KW_SHARE * rated},
        )  # fmt: skip
    return b
