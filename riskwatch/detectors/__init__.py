"""Streaming anomaly and drift detectors (numpy over all sensors at once, river adapters).

Public names: the detector classes, :class:`Ensemble` (members, combine expression,
calibration, window decision), :class:`DetectorStage`, the config loader and
:func:`build_stage` (the engine's factory). See docs/detectors.md.

Modules, bottom up: ``base`` (the contract and the row-block methods), the detector
types (``robust``, ``seasonal_shift``, ``flatline``, ``cusum``, ``slow_level``,
``page_hinkley``, ``river_adapter``; ``chart`` is the EWMA chart two of them share,
``kernels`` the compiled rounds of three), ``registry`` (the type table),
``expression``, ``calibrate``, ``decision``, ``ensemble``, ``config``, ``stage``,
``cli`` (``riskwatch score``).
"""

from __future__ import annotations

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig
from riskwatch.detectors.base import Detector, HyperParameterError, rounds, run_stream
from riskwatch.detectors.calibrate import TailCalibrator
from riskwatch.detectors.config import DetectorSpec, load_detector_file, load_detector_text
from riskwatch.detectors.cusum import Cusum
from riskwatch.detectors.decision import WindowDecision
from riskwatch.detectors.ensemble import Ensemble, EnsembleOutput
from riskwatch.detectors.flatline import Flatline
from riskwatch.detectors.page_hinkley import PageHinkley
from riskwatch.detectors.registry import DETECTORS
from riskwatch.detectors.river_adapter import RiverAssetHST, RiverDrift, RiverHST
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.seasonal_shift import SeasonalShift
from riskwatch.detectors.slow_level import SlowLevel
from riskwatch.detectors.stage import DetectorStage

__all__ = [
    "DETECTORS",
    "Cusum",
    "Detector",
    "DetectorSpec",
    "DetectorStage",
    "Ensemble",
    "EnsembleOutput",
    "Flatline",
    "HyperParameterError",
    "PageHinkley",
    "RiverAssetHST",
    "RiverDrift",
    "RiverHST",
    "RobustZScore",
    "SeasonalShift",
    "SlowLevel",
    "TailCalibrator",
    "WindowDecision",
    "build_stage",
    "load_detector_file",
    "load_detector_text",
    "rounds",
    "run_stream",
]


def build_stage(cfg: EngineConfig, registry: SensorRegistry) -> DetectorStage | None:
    """The engine's detectors stage for ``cfg.detectors`` (paths relative to the config)."""
    if not cfg.detectors:
        return None
    return DetectorStage([cfg.path(p) for p in cfg.detectors], registry)
