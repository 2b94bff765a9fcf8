"""Detector types by their YAML ``type:`` name (the extension point for new detectors).

>>> {'cusum', 'ewma', 'flatline', 'robust', 'seasonal'} <= set(DETECTORS)
True
>>> DETECTORS['cusum'] is Cusum
True
"""

from __future__ import annotations

from riskwatch.detectors.base import Detector
from riskwatch.detectors.cusum import Cusum
from riskwatch.detectors.ewma import EWMAZScore
from riskwatch.detectors.flatline import Flatline
from riskwatch.detectors.page_hinkley import PageHinkley
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.seasonal import SeasonalBaseline, SeasonalShift
from riskwatch.detectors.slow_level import SlowLevel

__all__ = ["DETECTORS", "register"]

DETECTORS: dict[str, type[Detector]] = {
    c.kind: c
    for c in (
        EWMAZScore,
        RobustZScore,
        Cusum,
        PageHinkley,
        Flatline,
        SeasonalBaseline,
        SeasonalShift,
        SlowLevel,
    )
}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector type under ``cls.kind``."""
    DETECTORS[cls.kind] = cls
    return cls


def _load_extra() -> None:
    from riskwatch.detectors import likelihood, prototype, river_adapter  # noqa: F401


_load_extra()
