"""Streaming anomaly and drift detectors (numpy over all sensors at once, river adapters).

Public names live in their modules (``riskwatch.detectors.ensemble.Ensemble``,
``riskwatch.detectors.registry.DETECTORS``, ...); the package itself exports only
:func:`build_stage` (the engine's factory) and imports nothing heavy, so ``riskwatch
score`` loads only the modules it runs. See docs/detectors.md.

Modules, bottom up: ``base`` (the contract and the row-block methods), the detector
types (``robust``, ``seasonal_shift``, ``flatline``, ``cusum``, ``slow_level``,
``page_hinkley``, ``river_adapter``, ``cad_ose``; ``chart`` is the EWMA chart two of them share,
``kernels`` the compiled rounds of three), ``registry`` (the type table),
``expression``, ``calibrate``, ``decision``, ``ensemble``, ``config``, ``stage``,
``cli`` (``riskwatch score``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskwatch.catalog import SensorRegistry
    from riskwatch.config.engine import EngineConfig
    from riskwatch.detectors.stage import DetectorStage

__all__ = ["build_stage"]


def build_stage(cfg: EngineConfig, registry: SensorRegistry) -> DetectorStage | None:
    """The engine's detectors stage for ``cfg.detectors`` (paths relative to the config)."""
    if not cfg.detectors:
        return None
    from riskwatch.detectors.stage import DetectorStage

    return DetectorStage([cfg.path(p) for p in cfg.detectors], registry)
