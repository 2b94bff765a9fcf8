"""Streaming anomaly and drift detectors (numpy over all sensors at once, river adapters).

Public names: the detector classes, :class:`Ensemble`, :class:`DetectorStage`, the
config loader and :func:`build_stage` (the engine's factory). See docs/detectors.md.
"""

from __future__ import annotations

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig
from riskwatch.detectors.base import Detector, HyperParameterError, rounds, run_stream
from riskwatch.detectors.combine import Ensemble, TailCalibrator
from riskwatch.detectors.config import DetectorSpec, load_detector_file, load_detector_text
from riskwatch.detectors.cusum import Cusum
from riskwatch.detectors.ewma import EWMAZScore
from riskwatch.detectors.flatline import Flatline
from riskwatch.detectors.page_hinkley import PageHinkley
from riskwatch.detectors.registry import DETECTORS, register
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.seasonal import SeasonalBaseline, SeasonalShift
from riskwatch.detectors.stage import DetectorStage

__all__ = [
    "DETECTORS",
    "Cusum",
    "Detector",
    "DetectorSpec",
    "DetectorStage",
    "EWMAZScore",
    "Ensemble",
    "Flatline",
    "HyperParameterError",
    "PageHinkley",
    "RobustZScore",
    "SeasonalBaseline",
    "SeasonalShift",
    "TailCalibrator",
    "build_stage",
    "load_detector_file",
    "load_detector_text",
    "register",
    "rounds",
    "run_stream",
]


def build_stage(cfg: EngineConfig, registry: SensorRegistry) -> DetectorStage | None:
    """The engine's detectors stage for ``cfg.detectors`` (paths relative to the config)."""
    if not cfg.detectors:
        return None
    return DetectorStage([cfg.path(p) for p in cfg.detectors], registry)
