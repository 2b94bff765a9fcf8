"""Plant models: each ``build(spec)`` returns the sensor rows of one plant. Every row
carries the catalogue ``domain`` of its plant type (the key in :data:`BUILDERS`), so each
bundled rule pack selects its own plants' points only.

>>> sorted(BUILDERS)
['coal_mine', 'electricity', 'hazchem', 'tailings']
"""

from __future__ import annotations

from collections.abc import Callable

from riskwatch.sensors_sim.plants import coal, electricity, hazchem, tailings
from riskwatch.sensors_sim.plants.base import Pattern, SensorTable, TableBuilder
from riskwatch.sensors_sim.scenario import PlantSpec

__all__ = ["BUILDERS", "Pattern", "SensorTable", "TableBuilder"]


def _in_domain(
    domain: str, build: Callable[[PlantSpec], TableBuilder]
) -> Callable[[PlantSpec], TableBuilder]:
    def built(spec: PlantSpec) -> TableBuilder:
        return build(spec).tag_all("domain", domain)

    return built


BUILDERS: dict[str, Callable[[PlantSpec], TableBuilder]] = {
    "coal_mine": _in_domain("coal_mine", coal.build),
    "hazchem": _in_domain("hazchem", hazchem.build),
    "tailings": _in_domain("tailings", tailings.build),
    "electricity": _in_domain("electricity", electricity.build),
}
