"""Hot reload: the catalogue and reloadable stages reload when a watched file changes (or
when forced), a rejected reload keeps the running one and says why, and the watch is
taken again after each reload (a reloaded stage may watch other files)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import Batch
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.reloader import FileWatch, Reloader

HEADER = "enterprise,site,sensor,kind,unit\n"
CTX = StageContext(now_ns=0, registry=SensorRegistry())


def edit(path: Path, text: str) -> None:
    """Write ``text`` with an mtime one second later than before (a visible change)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before, before + 1_000_000_000))


def edit_unseen(path: Path, text: str) -> None:
    """Write ``text`` and put the old mtime back (a change the watch cannot see)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before, before))


class RuleStage:
    name = "rules"

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.reloads = 0
        self.reject = False

    def process(self, batch: Batch, ctx: StageContext) -> list[object]:
        return []

    def watched_files(self) -> list[Path]:
        return list(self.files)

    def reload(self, ctx: StageContext) -> None:
        if self.reject:
            raise ConfigErrors([ConfigError("rules[0].abov", "unknown key", file="rules.yaml",
                                            line=2, col=53)])  # fmt: skip
        self.reloads += 1


@dataclass
class Rig:
    reloader: Reloader
    stage: RuleStage
    registry: SensorRegistry
    catalog: Path
    rules: Path


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    catalog, rules = tmp_path / "catalog.csv", tmp_path / "rules.yaml"
    catalog.write_text(HEADER + "m1,s1,T1,temp,C\n")
    rules.write_text("v1")
    registry = SensorRegistry()
    registry.load_catalog([catalog])
    stage = RuleStage([rules])
    pipeline = Pipeline([QualityStage(), stage])  # type: ignore[list-item]
    return Rig(Reloader(registry, [catalog], pipeline), stage, registry, catalog, rules)


TWO = HEADER + "m1,s1,T1,temp,C\nm1,s1,T2,temp,C\n"


def test_nothing_changed_nothing_reloaded(rig: Rig) -> None:
    rig.reloader.check(CTX, force=False)
    assert rig.stage.reloads == 0


def test_a_changed_rule_file_reloads_the_stages_not_the_catalogue(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    edit_unseen(rig.catalog, TWO)
    edit(rig.rules, "v2")
    rig.reloader.check(CTX, force=False)
    assert rig.stage.reloads == 1 and len(rig.registry) == 1
    assert f"reloading (changed: {rig.rules})" in caplog.text
    rig.reloader.check(CTX, force=False)  # watched afresh: no second reload
    assert rig.stage.reloads == 1


def test_a_changed_catalogue_reloads_the_registry(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    edit(rig.catalog, TWO)
    rig.reloader.check(CTX, force=False)
    assert len(rig.registry) == 2 and rig.stage.reloads == 1
    assert "catalogue reloaded: 2 sensors" in caplog.text


def test_a_forced_reload_reloads_everything(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    edit_unseen(rig.catalog, TWO)
    rig.reloader.check(CTX, force=True)
    assert len(rig.registry) == 2 and rig.stage.reloads == 1
    assert "reloading (SIGHUP)" in caplog.text


def test_a_rejected_reload_keeps_the_running_set_and_logs_why(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.stage.reject = True
    edit(rig.catalog, HEADER.strip() + ",range_low\nm1,s1,T1,temp,C,abc\n")  # broken too
    edit(rig.rules, "v2")
    rig.reloader.check(CTX, force=False)
    assert len(rig.registry) == 1 and rig.stage.reloads == 0
    assert "catalogue reload rejected, keeping the running one" in caplog.text
    assert "reload of rules rejected, keeping the running set:" in caplog.text
    assert "rules.yaml:2:53: rules[0].abov: unknown key" in caplog.text


def test_the_watch_follows_files_a_reload_adds(rig: Rig, tmp_path: Path) -> None:
    calendar = tmp_path / "calendar.csv"
    calendar.write_text("a")
    rig.stage.files.append(calendar)  # the edited rule pack now names a calendar
    edit(rig.rules, "v2")
    rig.reloader.check(CTX, force=False)
    edit(calendar, "b")
    rig.reloader.check(CTX, force=False)
    assert rig.stage.reloads == 2


def test_file_watch_counts_a_vanished_file_as_changed(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("1")
    watch = FileWatch([f, tmp_path / "never"])
    assert watch.changed() == []
    f.unlink()
    assert watch.changed() == [f]
