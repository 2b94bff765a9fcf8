"""riskwatch.rules: the vectorised YAML rule engine.

Rule files (:mod:`~riskwatch.rules.parse`) compile against the sensor registry
(:mod:`~riskwatch.rules.compile`) into a :class:`~riskwatch.rules.evaluator.RuleSet`
whose per-(rule, sensor) state lives in numpy arrays; :class:`RuleStage` is the engine's
decision stage (with hot reload); :mod:`~riskwatch.rules.lint` and
:mod:`~riskwatch.rules.testing` back ``riskwatch rules check`` and ``riskwatch rules test``.
See docs/rules.md for the language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.parse import RuleFile, RuleSpec, load_rules, load_rules_text
from riskwatch.rules.stage import RuleStage, compile_files

if TYPE_CHECKING:
    from riskwatch.catalog import SensorRegistry
    from riskwatch.config.engine import EngineConfig

__all__ = [
    "RuleFile",
    "RuleSet",
    "RuleSpec",
    "RuleStage",
    "build_stage",
    "compile_files",
    "load_rules",
    "load_rules_text",
]


def build_stage(cfg: EngineConfig, registry: SensorRegistry) -> RuleStage | None:
    """The engine's rules stage for ``cfg.rules`` (paths relative to the config file)."""
    if not cfg.rules:
        return None
    return RuleStage([cfg.path(p) for p in cfg.rules], registry)
