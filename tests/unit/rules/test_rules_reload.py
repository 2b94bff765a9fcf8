"""Hot reload: unchanged rules keep their state, changed rules start fresh (and the log says
so), an invalid rule set is rejected with its reasons and the running one is kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rules_helpers import S, brief, registry

from riskwatch.config.engine import load_engine_config_text
from riskwatch.errors import ConfigErrors
from riskwatch.model import Batch
from riskwatch.pipeline import StageContext
from riskwatch.rules import RuleStage, build_stage

V1 = """
rules:
  - {name: keep_me, match: {kind: t}, level: orange, above: 30, clear_below: 20}
  - {name: change_me, match: {kind: t}, level: red, above: 40, clear_below: 20}
"""
V2 = """
rules:
  - {name: keep_me, match: {kind: t}, level: orange, above: 30, clear_below: 20}
  - {name: change_me, match: {kind: t}, level: red, above: 45, clear_below: 20}
  - {name: new_one, match: {kind: t}, level: yellow, above: 10}
"""


def ctx(reg, t: float) -> StageContext:
    return StageContext(now_ns=round(t * S), registry=reg)


def batch(t: float, v: float) -> Batch:
    return Batch.from_arrays([round(t * S)], [0], [v])


def test_unchanged_rules_keep_state_changed_take_over_active(tmp_path: Path, caplog) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(V1)
    reg = registry({"sensor": "T", "kind": "t"})
    st = RuleStage([f], reg)
    assert brief(st.process(batch(0, 50), ctx(reg, 0))) == [
        (0.0, "keep_me", 0, "firing", "orange"),
        (0.0, "change_me", 0, "firing", "red"),
    ]
    f.write_text(V2)
    with caplog.at_level(logging.INFO, logger="riskwatch.rules"):
        result = st.reload(ctx(reg, 1))
    assert (
        "rules reloaded: 1 unchanged (state kept), changed (active subjects taken over): "
        "change_me; added: new_one; removed: none" in caplog.text
    )
    assert (result.added, result.changed, result.removed, result.kept, result.ended) == (
        ("new_one",), ("change_me",), (), 1, ()
    )
    # 25: keep_me stays latched (25 is not below its clear 20) so no signal; change_me
    # took over its latched red, and 25 is not below its (new) clear 20 either; new_one fires
    assert brief(st.process(batch(2, 25), ctx(reg, 2))) == [(2.0, "new_one", 0, "firing", "yellow")]
    assert brief(st.process(batch(3, 15), ctx(reg, 3))) == [
        (3.0, "keep_me", 0, "resolved", None),
        (3.0, "change_me", 0, "resolved", None),
    ]


def test_invalid_rule_set_is_rejected_and_running_set_kept(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(V1)
    reg = registry({"sensor": "T", "kind": "t"})
    st = RuleStage([f], reg)
    st.process(batch(0, 50), ctx(reg, 0))
    f.write_text(V1.replace("above: 40", "abov: 40"))
    with pytest.raises(ConfigErrors) as exc:
        st.reload(ctx(reg, 1))
    assert f"{f}:4:53: rules[1].abov: unknown key" in str(exc.value)
    assert st.names() == ["keep_me", "change_me"]
    assert brief(st.process(batch(2, 10), ctx(reg, 2))) == [
        (2.0, "keep_me", 0, "resolved", None),
        (2.0, "change_me", 0, "resolved", None),
    ]


def test_build_stage_resolves_paths_and_watches_calendar_files(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "orders.csv").write_text("enterprise,site,start,end,reason\n")
    (tmp_path / "rules" / "r.yaml").write_text(
        "calendars:\n  shutdown: {file: orders.csv}\nrules:\n"
        "  - {name: a, match: {kind: t}, level: red, above: 1, calendar: {inside: [shutdown]}}\n"
    )
    cfg = load_engine_config_text("rules: [rules/r.yaml]\n")
    from dataclasses import replace

    cfg = replace(cfg, source=str(tmp_path / "engine.yaml"))
    st = build_stage(cfg, registry({"sensor": "T", "kind": "t"}))
    assert st is not None and st.name == "rules"
    assert st.watched_files() == [tmp_path / "rules" / "r.yaml", tmp_path / "rules" / "orders.csv"]
    assert build_stage(load_engine_config_text("{}\n"), registry()) is None
