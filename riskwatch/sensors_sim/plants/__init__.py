"""Plant models: each ``build(spec)`` returns the sensor rows of one plant.

>>> sorted(BUILDERS)
['coal_mine', 'electricity', 'hazchem', 'tailings']
"""

from __future__ import annotations

from collections.abc import Callable

from riskwatch.sensors_sim.plants import coal, electricity, hazchem, tailings
from riskwatch.sensors_sim.plants.base import Pattern, SensorTable, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["BUILDERS", "Pattern", "SensorTable", "TableBuilder"]

BUILDERS: dict[str, Callable[[PlantSpec], TableBuilder]] = {
    "coal_mine": coal.build,
    "hazchem": hazchem.build,
    "tailings": tailings.build,
    "electricity": electricity.build,
}
