"""Hot reload of the sensor catalogue and the pipeline's reloadable stages.

The engine thread asks :meth:`Reloader.check` every ``ingest.reload_check_s`` and on
request (SIGHUP, the console's reload button): the catalogue and the stages reload when
one of the watched files changed on disk (its mtime moved), or always when forced. A
rejected reload (:class:`~riskwatch.errors.ConfigErrors`) is logged with every error
and the running catalogue or stage set is kept. After each reload the watch is taken
again, since a reloaded stage may watch other files (a rule pack naming a new calendar).

>>> import tempfile, pathlib, os
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.pipeline import Pipeline, StageContext
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rules = d / "rules.yaml"; _ = rules.write_text("v1")
>>> class Stage:
...     name = "rules"
...     def process(self, batch, ctx): return []
...     def watched_files(self): return [rules]
...     def reload(self, ctx): print("reloaded at", ctx.now_ns)
>>> reloader = Reloader(SensorRegistry(), [], Pipeline([Stage()]))
>>> ctx = StageContext(now_ns=7, registry=SensorRegistry())
>>> reloader.check(ctx, force=False)  # nothing changed: nothing happens
False
>>> os.utime(rules, (1, 1))
>>> reloader.check(ctx, force=False)
reloaded at 7
True
>>> reloader.check(ctx, force=False)
False
>>> reloader.check(ctx, force=True)
reloaded at 7
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import ConfigErrors
from riskwatch.pipeline import Pipeline, Reloadable, StageContext

__all__ = ["FileWatch", "Reloader"]

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
    """Reloads ``catalog_files`` into ``registry`` and every Reloadable stage of ``pipeline``."""

    def __init__(
        self, registry: SensorRegistry, catalog_files: list[Path], pipeline: Pipeline
    ) -> None:
        self.registry = registry
        self.catalog_files = catalog_files
        self.pipeline = pipeline
        self._watch = self._take_watch()

    def _take_watch(self) -> FileWatch:
        return FileWatch([*self.catalog_files, *self.pipeline.watched_files()])

    def check(self, ctx: StageContext, *, force: bool) -> bool:
        """Reload if a watched file changed, or whatever changed when ``force``; True
        when it did (the engine then snapshots its state)."""
        changed = self._watch.changed()
        if not force and not changed:
            return False
        log.info(
            "reloading (%s)", "SIGHUP" if force else "changed: " + ", ".join(map(str, changed))
        )
        if self.catalog_files and (force or any(f in changed for f in self.catalog_files)):
            try:
                n = self.registry.load_catalog(self.catalog_files)
                log.info("catalogue reloaded: %d sensors", n)
            except ConfigErrors as exc:
                log.error("catalogue reload rejected, keeping the running one:\n%s", exc)
        for stage in self.pipeline.stages:
            if not isinstance(stage, Reloadable):
                continue
            try:
                stage.reload(ctx)
            except ConfigErrors as exc:
                log.error("reload of %s rejected, keeping the running set:\n%s", stage.name, exc)
        self._watch = self._take_watch()
        return True


def _mtime(p: Path) -> float:
    try:
        return os.stat(p).st_mtime
    except OSError:
        return -1.0
