"""Hot reload: the catalogue and reloadable stages reload when a watched file changes (or
when forced), a rejected reload keeps the running one and says why, and the watch is
taken again after each reload (a reloaded stage may watch other files)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig, load_engine_config
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.metrics import ReloadMetrics
from riskwatch.model import Batch, SignalSource
from riskwatch.pipeline import Pipeline, StageContext, StageReload
from riskwatch.quality import QualityStage
from riskwatch.reloader import FileWatch, Reloader
from riskwatch.rules import build_stage as build_rules
from riskwatch.rules.stage import RuleStage as RealRuleStage

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

    def reload(self, ctx: StageContext) -> StageReload:
        if self.reject:
            raise ConfigErrors([ConfigError("rules[0].abov", "unknown key", file="rules.yaml",
                                            line=2, col=53)])  # fmt: skip
        self.reloads += 1
        return StageReload(self.name, SignalSource.RULE)


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


# ---------------------------------------------------------------- engine.yaml's file lists

RULE = "rules:\n  - {{name: {name}, match: {{kind: temp}}, level: orange, above: {above}}}\n"


@dataclass
class EngineRig:
    reloader: Reloader
    engine: Path
    pipeline: Pipeline
    metrics: CollectorRegistry
    registry: SensorRegistry

    def count(self, result: str) -> float:
        v = self.metrics.get_sample_value("riskwatch_reload_total", {"result": result})
        return v or 0.0

    def stages(self) -> list[str]:
        return self.pipeline.names()

    def rules(self) -> RealRuleStage:
        (st,) = [s for s in self.pipeline.stages if isinstance(s, RealRuleStage)]
        return st


def engine_rig(tmp_path: Path, rules: list[str]) -> EngineRig:
    (tmp_path / "catalog.csv").write_text(HEADER + "m1,s1,T1,temp,C\n")
    (tmp_path / "a.yaml").write_text(RULE.format(name="hot_a", above=50))
    (tmp_path / "b.yaml").write_text(RULE.format(name="hot_b", above=30))
    engine = tmp_path / "engine.yaml"
    engine.write_text(engine_text(rules))
    cfg = load_engine_config(engine)
    registry = SensorRegistry()
    registry.load_catalog([cfg.path(p) for p in cfg.catalog])
    built = [build_rules(cfg, registry)]
    pipeline = Pipeline([QualityStage(), *[s for s in built if s is not None]])
    metrics = CollectorRegistry()
    reloader = Reloader(registry, [cfg.path(p) for p in cfg.catalog], pipeline, config=cfg,
                        factories=[build_rules], built=built,
                        metrics=ReloadMetrics(metrics))  # fmt: skip
    return EngineRig(reloader, engine, pipeline, metrics, registry)


def engine_text(rules: list[str], extra: str = "") -> str:
    return f"catalog: [catalog.csv]\nrules: [{', '.join(rules)}]\n{extra}"


def test_a_rules_file_added_to_engine_yaml_loads_on_sighup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = engine_rig(tmp_path, ["a.yaml"])
    assert rig.rules().names() == ["hot_a"]
    edit_unseen(rig.engine, engine_text(["a.yaml", "b.yaml"]))
    (result,) = rig.reloader.check(CTX, force=True)
    assert (result.added, result.removed, result.kept) == (("hot_b",), (), 1)
    assert rig.rules().names() == ["hot_a", "hot_b"]
    assert f"rules files: added {tmp_path / 'b.yaml'}; removed none" in caplog.text
    assert (rig.count("success"), rig.count("rejected")) == (1.0, 0.0)
    edit(tmp_path / "b.yaml", RULE.format(name="hot_b", above=35))  # now watched too
    (result,) = rig.reloader.check(CTX, force=False)
    assert result.changed == ("hot_b",)


def test_a_file_removed_from_engine_yaml_unloads_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = engine_rig(tmp_path, ["a.yaml", "b.yaml"])
    edit(rig.engine, engine_text(["b.yaml"]))  # no SIGHUP: engine.yaml is watched
    (result,) = rig.reloader.check(CTX, force=False)
    assert (result.removed, result.added) == (("hot_a",), ())
    assert rig.rules().names() == ["hot_b"]
    assert f"rules files: added none; removed {tmp_path / 'a.yaml'}" in caplog.text
    edit(tmp_path / "a.yaml", RULE.format(name="hot_a", above=1))  # no longer watched
    assert rig.reloader.check(CTX, force=False) == []


def test_a_stage_without_files_at_start_is_built_when_engine_yaml_names_some(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = engine_rig(tmp_path, [])
    assert rig.stages() == ["quality"]
    edit(rig.engine, engine_text(["b.yaml"]))
    assert rig.reloader.check(CTX, force=False) == []  # built, loaded: nothing to end
    assert rig.stages() == ["quality", "rules"] and rig.rules().names() == ["hot_b"]
    signals = rig.rules().process(Batch.from_arrays([1], [0], [40.0]), CTX)
    assert [(s.rule, s.state) for s in signals] == [("hot_b", "firing")]
    assert rig.pipeline.ticking[-1] is rig.rules()
    assert "stage rules loaded" in caplog.text


def test_an_invalid_engine_yaml_rejects_the_reload_and_keeps_the_running_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = engine_rig(tmp_path, ["a.yaml"])
    edit(rig.engine, engine_text(["a.yaml", "b.yaml"], "mqtt: {qos: 3}\n"))
    assert rig.reloader.check(CTX, force=True) == []
    assert rig.rules().names() == ["hot_a"]
    assert (rig.count("success"), rig.count("rejected")) == (0.0, 1.0)
    assert f"reload rejected: {rig.engine} is invalid, keeping the running set" in caplog.text
    assert f"{rig.engine}:3:13: mqtt.qos: must be 0, 1 or 2, got 3" in caplog.text
    assert rig.reloader.check(CTX, force=False) == []  # watched afresh: no retry loop


def test_a_rejected_rules_file_counts_as_rejected(tmp_path: Path) -> None:
    rig = engine_rig(tmp_path, ["a.yaml"])
    edit(tmp_path / "a.yaml", "rules:\n  - {name: x, match: {kind: temp}, abov: 1}\n")
    assert rig.reloader.check(CTX, force=False) == []
    assert (rig.count("success"), rig.count("rejected")) == (0.0, 1.0)
    assert rig.rules().names() == ["hot_a"]


def test_settings_that_need_a_restart_are_logged_and_not_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = engine_rig(tmp_path, ["a.yaml"])
    extra = ("mqtt: {url: 'mqtt://10.0.0.9:1883'}\nmetrics: {listen: '127.0.0.1:9999'}\n"
             "storage: {influx: null}\n")  # fmt: skip
    edit(rig.engine, engine_text(["a.yaml"], extra))
    (result,) = rig.reloader.check(CTX, force=False)
    assert (result.kept, result.changes_anything) == (1, False)
    for key in ("mqtt.url", "metrics.listen", "storage.influx"):
        assert f"{rig.engine}: {key} changed: needs a restart, not applied" in caplog.text
    cfg: EngineConfig | None = rig.reloader.config
    assert cfg is not None and cfg.mqtt.url == "mqtt://127.0.0.1:1883"
    assert cfg.metrics.listen == "127.0.0.1:9108" and cfg.storage.influx is not None
    assert rig.count("success") == 1.0


def test_emptying_the_rules_list_removes_every_rule(tmp_path: Path) -> None:
    rig = engine_rig(tmp_path, ["a.yaml", "b.yaml"])
    edit(rig.engine, engine_text([]))
    (result,) = rig.reloader.check(CTX, force=False)
    assert (result.removed, result.kept) == (("hot_a", "hot_b"), 0)
    assert rig.rules().names() == [] and rig.stages() == ["quality", "rules"]
