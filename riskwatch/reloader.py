"""Hot reload of the engine config's file lists, the sensor catalogue and the pipeline's
reloadable stages.

The engine thread asks :meth:`Reloader.check` every ``ingest.reload_check_s`` and on
request (SIGHUP, the console's reload button): the catalogue and the stages reload when
one of the watched files changed on disk (its mtime moved), or always when forced. A
rejected reload (:class:`~riskwatch.errors.ConfigErrors`) is logged with every error
and the running catalogue or stage set is kept. After each reload the watch is taken
again, since a reloaded stage may watch other files (a rule pack naming a new calendar).

With the engine config given, ``engine.yaml`` itself is watched and re-read on every
forced reload and whenever it changes: files added to its ``catalog``, ``rules`` and
``detectors`` lists load, removed ones unload (a stage without a file before is built
then), and the log names them. Every other setting (MQTT, storage, listen addresses,
alerts, ingest) is read once at start: a change is logged as needing a restart and not
applied. An invalid ``engine.yaml`` rejects the whole reload. Each reload counts in
``riskwatch_reload_total{result}`` (:class:`~riskwatch.metrics.ReloadOutcome`).

:meth:`Reloader.check` returns each stage's :class:`~riskwatch.pipeline.StageReload`
(added, changed, removed rules); the engine hands them to the alert sink, which ends
the alerts of removed rules.

>>> import tempfile, pathlib, os
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.model import SignalSource
>>> from riskwatch.pipeline import Pipeline, StageContext, StageReload
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rules = d / "rules.yaml"; _ = rules.write_text("v1")
>>> class Stage:
...     name = "rules"
...     def process(self, batch, ctx): return []
...     def watched_files(self): return [rules]
...     def reload(self, ctx):
...         print("reloaded at", ctx.now_ns)
...         return StageReload("rules", SignalSource.RULE)
>>> reloader = Reloader(SensorRegistry(), [], Pipeline([Stage()]))
>>> ctx = StageContext(now_ns=7, registry=SensorRegistry())
>>> reloader.check(ctx, force=False)  # nothing changed: nothing happens
[]
>>> os.utime(rules, (1, 1))
>>> [r.stage for r in reloader.check(ctx, force=False)]
reloaded at 7
['rules']
>>> reloader.check(ctx, force=False)
[]
>>> _ = reloader.check(ctx, force=True)
reloaded at 7
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig, load_engine_config
from riskwatch.errors import ConfigErrors
from riskwatch.metrics import ReloadMetrics, ReloadOutcome
from riskwatch.pipeline import (
    Pipeline,
    Reconfigurable,
    Reloadable,
    Stage,
    StageContext,
    StageReload,
)

__all__ = ["FileWatch", "Reloader", "StageFactory", "restart_needed"]

#: builds a stage from the engine config, or None when the config names no file for it
StageFactory = Callable[[EngineConfig, SensorRegistry], Stage | None]

#: the engine config's file lists that a reload applies; everything else needs a restart
RELOADED_LISTS = ("catalog", "rules", "detectors")

# the engine's own log: operators read reloads there, as they always have
log = logging.getLogger("riskwatch.engine")


class FileWatch:
    """The modification times of some files, to tell which of them changed since."""

    def __init__(self, files: Iterable[Path]) -> None:
        self._mtimes = {f: _mtime(f) for f in files}

    @property
    def files(self) -> list[Path]:
        return list(self._mtimes)

    def changed(self) -> list[Path]:
        """The files whose mtime is not what it was (a vanished file counts as changed)."""
        return [f for f, t in self._mtimes.items() if _mtime(f) != t]


class Reloader:
    """Reloads ``catalog_files`` into ``registry`` and every Reloadable stage of ``pipeline``.

    ``config`` (with its ``source`` file) turns on re-reading ``engine.yaml``;
    ``factories`` (aligned with ``built``, the stage each built at start or None) build
    a stage whose list was empty at start; ``metrics`` counts reloads by result.
    """

    def __init__(
        self,
        registry: SensorRegistry,
        catalog_files: list[Path],
        pipeline: Pipeline,
        *,
        config: EngineConfig | None = None,
        factories: Sequence[StageFactory] = (),
        built: Sequence[Stage | None] = (),
        metrics: ReloadMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.catalog_files = catalog_files
        self.pipeline = pipeline
        self.config = config
        self.factories = list(factories)
        self.built: list[Stage | None] = list(built) or [None] * len(self.factories)
        self.metrics = metrics
        self._engine_file = Path(config.source) if config and config.source else None
        self._watch = self._take_watch()

    def _take_watch(self) -> FileWatch:
        engine = [self._engine_file] if self._engine_file is not None else []
        return FileWatch([*engine, *self.catalog_files, *self.pipeline.watched_files()])

    def check(self, ctx: StageContext, *, force: bool) -> list[StageReload]:
        """Reload if a watched file changed, or whatever changed when ``force``; returns
        what each reloaded stage changed."""
        changed = self._watch.changed()
        if not force and not changed:
            return []
        log.info(
            "reloading (%s)", "SIGHUP" if force else "changed: " + ", ".join(map(str, changed))
        )
        rejected = False
        lists: set[str] = set()
        if self._engine_file is not None and (force or self._engine_file in changed):
            try:
                lists = self._reread_config()
            except ConfigErrors as exc:
                log.error("reload rejected: %s is invalid, keeping the running set:\n%s",
                          self._engine_file, exc)  # fmt: skip
                self._count(ReloadOutcome.REJECTED)
                self._watch = self._take_watch()
                return []
        catalog_due = force or "catalog" in lists or any(f in changed for f in self.catalog_files)
        if self.catalog_files and catalog_due:
            try:
                n = self.registry.load_catalog(self.catalog_files)
                log.info("catalogue reloaded: %d sensors", n)
            except ConfigErrors as exc:
                rejected = True
                log.error("catalogue reload rejected, keeping the running one:\n%s", exc)
        results: list[StageReload] = []
        new_stages = self._build_missing(lists)
        fresh = new_stages or set()
        for stage in self.pipeline.stages:
            if not isinstance(stage, Reloadable) or stage in fresh:
                continue
            try:
                results.append(stage.reload(ctx))
            except ConfigErrors as exc:
                rejected = True
                log.error("reload of %s rejected, keeping the running set:\n%s", stage.name, exc)
        rejected |= new_stages is None
        self._count(ReloadOutcome.REJECTED if rejected else ReloadOutcome.SUCCESS)
        self._watch = self._take_watch()
        return results

    def _count(self, outcome: ReloadOutcome) -> None:
        if self.metrics is not None:
            self.metrics.count(outcome)

    def _reread_config(self) -> set[str]:
        """Read ``engine.yaml`` again: apply its file lists (to the catalogue files and to
        each stage that takes them), log what needs a restart; returns the names of the
        lists that changed. Raises ConfigErrors (nothing applied) if it is invalid."""
        assert self._engine_file is not None and self.config is not None
        new = load_engine_config(self._engine_file)
        old = self.config
        lists = set()
        for name in RELOADED_LISTS:
            before = [old.path(p) for p in getattr(old, name)]
            after = [new.path(p) for p in getattr(new, name)]
            if before != after:
                lists.add(name)
                added = [str(p) for p in after if p not in before]
                removed = [str(p) for p in before if p not in after]
                log.info("%s: %s files: added %s; removed %s", self._engine_file, name,
                         ", ".join(added) or "none", ", ".join(removed) or "none")  # fmt: skip
        for key in restart_needed(old, new):
            log.warning("%s: %s changed: needs a restart, not applied", self._engine_file, key)
        # what runs keeps the settings it started with; only the file lists move
        self.config = dataclasses.replace(
            old, catalog=new.catalog, rules=new.rules, detectors=new.detectors
        )
        if "catalog" in lists:
            gone = [p for p in self.catalog_files if p not in
                    [self.config.path(c) for c in self.config.catalog]]  # fmt: skip
            self.catalog_files = [self.config.path(p) for p in self.config.catalog]
            if gone:
                log.warning(
                    "sensors of removed catalogue files stay registered until a restart "
                    "(sensor ids never change while running): %s", ", ".join(map(str, gone))
                )  # fmt: skip
        for stage in self.pipeline.stages:
            if isinstance(stage, Reconfigurable):
                stage.reconfigure(self.config)
        return lists

    def _build_missing(self, lists: set[str]) -> set[Stage] | None:
        """Build the stages a re-read config now names files for (a stage that had none at
        start); they load their files as they are built. None if one was rejected."""
        if not lists or self.config is None:
            return set()
        built: set[Stage] = set()
        ok = True
        for i, factory in enumerate(self.factories):
            if self.built[i] is not None:
                continue
            try:
                stage = factory(self.config, self.registry)
            except ConfigErrors as exc:
                ok = False
                log.error("new stage rejected, not started:\n%s", exc)
                continue
            if stage is not None:
                self.built[i] = stage
                self.pipeline.add(stage)
                built.add(stage)
                log.info("stage %s loaded", stage.name)
        return built if ok else None


def restart_needed(old: EngineConfig, new: EngineConfig) -> list[str]:
    """The settings (dotted keys) that differ between two engine configs and that a reload
    does not apply: everything except the file lists.

    >>> from riskwatch.config.engine import load_engine_config_text as load
    >>> restart_needed(load("mqtt: {url: 'mqtt://a:1883'}\\nrules: [a.yaml]\\n"),
    ...                load("mqtt: {url: 'mqtt://b:1883'}\\nrules: [b.yaml]\\n"))
    ['mqtt.url']
    """
    out: list[str] = []
    for f in dataclasses.fields(old):
        if f.name in RELOADED_LISTS or f.name == "source":
            continue
        out += _differences(getattr(old, f.name), getattr(new, f.name), f.name)
    return out


def _differences(old: Any, new: Any, key: str) -> list[str]:
    if dataclasses.is_dataclass(old) and type(old) is type(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            out += _differences(getattr(old, f.name), getattr(new, f.name), f"{key}.{f.name}")
        return out
    return [key] if old != new else []


def _mtime(p: Path) -> float:
    try:
        return os.stat(p).st_mtime
    except OSError:
        return -1.0
