"""The rules decision stage: loads rule files, evaluates batches, hot-reloads.

Reload (SIGHUP or a changed file): the new files are parsed and compiled first; an
invalid set raises :class:`~riskwatch.errors.ConfigErrors` and the running set is kept.
Rules whose definition did not change keep their state (latched alerts stay latched).
A changed rule takes over what its predecessor had active (the same colours latched, or
pending; timers start anew), so the next reading resolves its alert when the new
condition no longer holds, and never before; the subjects it no longer watches end
(``unwatched``). The result (:class:`~riskwatch.pipeline.StageReload`) names the added,
changed and removed rules; the engine hands it to the alert sink, which ends the alerts
of removed rules (``rule_removed``). The log says which rules were added, changed,
removed.

>>> import tempfile, pathlib
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.pipeline import StageContext
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rule = "rules:\\n  - {name: hot, match: {kind: t}, level: red, above: 50}\\n"
>>> _ = (d / "r.yaml").write_text(rule)
>>> st = RuleStage([d / "r.yaml"], SensorRegistry())
>>> st.names()
['hot']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig
from riskwatch.config.yamldoc import YamlDoc
from riskwatch.model import Batch, EndReason, Signal, SignalSource, SignalState
from riskwatch.pipeline import StageContext, StageReload
from riskwatch.rules.evaluator import RuleSet, rule_fingerprint
from riskwatch.rules.parse import load_rules
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["RuleStage", "compile_files"]

log = logging.getLogger("riskwatch.rules")


def compile_files(paths: Sequence[str | Path], registry: SensorRegistry) -> RuleSet:
    """Parse and compile rule files into a :class:`RuleSet`; raises ConfigErrors."""
    loaded = load_rules(list(paths))
    docs: list[YamlDoc] = loaded.docs
    return RuleSet(
        loaded.files,
        registry,
        base_dirs=[Path(f.file).resolve().parent for f in loaded.files],
        docs=docs,
    )


class RuleStage:
    """A :class:`~riskwatch.pipeline.DecisionStage` over a set of rule files."""

    name = "rules"

    def __init__(self, paths: Sequence[str | Path], registry: SensorRegistry) -> None:
        self.paths = [Path(p) for p in paths]
        self.registry = registry
        self.ruleset = compile_files(self.paths, registry)
        log.info(
            "rules: %d loaded from %s", len(self.ruleset.specs), ", ".join(map(str, self.paths))
        )

    def names(self) -> list[str]:
        return [r.name for r in self.ruleset.specs]

    def process(self, batch: Batch, ctx: StageContext) -> list[Signal]:
        return self.ruleset.process(batch, ctx.now_ns)

    def tick(self, ctx: StageContext) -> list[Signal]:
        return self.ruleset.tick(ctx.now_ns)

    def watched_files(self) -> list[Path]:
        files = list(self.paths)
        for c in self.ruleset.calendars.values():
            files += c.files()
        return files

    def dump_state(self) -> StateTree:
        """The rule set's state (:meth:`RuleSet.dump_state`), for the engine's snapshots."""
        return self.ruleset.dump_state()

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        return self.ruleset.load_state(tree, sensors)

    def resume(self, stopped_ns: int, now_ns: int) -> None:
        gap = self.ruleset.resume(stopped_ns, now_ns)
        if gap:
            log.info("rules: %.1f s of engine downtime not counted as sensor silence "
                     "(no-data, arrival clock)", gap / 1e9)  # fmt: skip

    def reconfigure(self, cfg: EngineConfig) -> None:
        """The rule files of a re-read engine config (loaded by the next reload)."""
        self.paths = [cfg.path(p) for p in cfg.rules]

    def reload(self, ctx: StageContext) -> StageReload:
        """Swap in the rule files' current content; raise ConfigErrors to keep the old set."""
        new = compile_files(self.paths, self.registry)
        old = self.ruleset
        old_fp = {r.name: rule_fingerprint(r, old.calendars) for r in old.specs}
        new_fp = {r.name: rule_fingerprint(r, new.calendars) for r in new.specs}
        keep = {n for n, fp in new_fp.items() if old_fp.get(n) == fp}
        added = sorted(set(new_fp) - set(old_fp))
        removed = sorted(set(old_fp) - set(new_fp))
        changed = sorted(n for n in set(new_fp) & set(old_fp) if n not in keep)
        new.import_state(old.export_state(), keep, set(changed))
        ended = _unwatched(old, new, set(changed), ctx.now_ns)
        self.ruleset = new
        log.info(
            "rules reloaded: %d unchanged (state kept), changed (active subjects taken "
            "over): %s; added: %s; removed: %s",
            len(keep), ", ".join(changed) or "none", ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )  # fmt: skip
        return StageReload(self.name, SignalSource.RULE, added=tuple(added),
                           changed=tuple(changed), removed=tuple(removed), kept=len(keep),
                           ended=tuple(ended))  # fmt: skip


def _unwatched(old: RuleSet, new: RuleSet, changed: set[str], now_ns: int) -> list[Signal]:
    """``resolved`` signals (reason ``unwatched``) for what the changed rules had active
    and their new definitions no longer watch (a narrowed ``match``, another ``per``)."""
    if not changed:
        return []
    still = {(a.rule, a.subject) for a in new.active_subjects_full() if a.rule in changed}
    out = []
    for a in old.active_subjects_full():
        if a.rule in changed and (a.rule, a.subject) not in still:
            out.append(Signal(
                rule=a.rule, sensor=a.sensor, time=now_ns, state=SignalState.RESOLVED,
                level=None, value=float("nan"), threshold=float("nan"),
                message=f"{a.subject}: rule {a.rule} was changed by a reload and no longer "
                "watches it",
                group=a.group, reason=EndReason.UNWATCHED,
            ))  # fmt: skip
    return out
