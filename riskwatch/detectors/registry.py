"""Detector types by their YAML ``type:`` name: the one table of the extension point.

A new detector type is a :class:`~riskwatch.detectors.base.Detector` subclass with a
``kind``; adding it to :data:`DETECTORS` below makes it available in detector files and
to ``riskwatch score --detector``, and puts it under the tests that run over every type
(no look-ahead, score never changes state, false-alarm bound). Detector modules import
nothing from here: the table names them, they do not register themselves.

>>> sorted(DETECTORS)  # doctest: +NORMALIZE_WHITESPACE
['asset_mahalanobis', 'cad_ose', 'cusum', 'flatline', 'page_hinkley', 'river_asset_hst',
 'river_drift', 'river_hst', 'robust', 'seasonal_shift', 'slow']
>>> DETECTORS['cusum'] is Cusum
True
"""

from __future__ import annotations

from riskwatch.detectors.asset_mahalanobis import AssetMahalanobis
from riskwatch.detectors.base import Detector
from riskwatch.detectors.cad_ose import CadOse
from riskwatch.detectors.cusum import Cusum
from riskwatch.detectors.flatline import Flatline
from riskwatch.detectors.page_hinkley import PageHinkley
from riskwatch.detectors.river_adapter import RiverAssetHST, RiverDrift, RiverHST
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.seasonal_shift import SeasonalShift
from riskwatch.detectors.slow_level import SlowLevel

__all__ = ["DETECTORS"]

DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (
        RobustZScore,
        SeasonalShift,
        Flatline,
        Cusum,
        SlowLevel,
        PageHinkley,
        RiverHST,
        RiverAssetHST,
        RiverDrift,
        CadOse,
        AssetMahalanobis,
    )
}
