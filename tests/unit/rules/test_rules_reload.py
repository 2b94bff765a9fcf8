"""Hot reload: unchanged rules keep their state, changed rules start fresh (and the log says
so), an invalid rule set is rejected with its reasons and the running one is kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rules_helpers import S, brief, registry

from riskwatch.config.engine import load_engine_config_text
from riskwatch.errors import ConfigErrors
from riskwatch.model import Batch, EndReason, SignalSource
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
        ("new_one",),
        ("change_me",),
        (),
        1,
        (),
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


# ---------------------------------------------------------------- changed rules' alerts
def stage_with(tmp_path: Path, text: str, *rows: dict) -> tuple[RuleStage, Path, object]:
    f = tmp_path / "r.yaml"
    f.write_text(text)
    reg = registry(*rows) if rows else registry({"sensor": "T", "kind": "t"})
    return RuleStage([f], reg), f, reg


HOT = "rules:\n  - {name: hot, match: {kind: t}, level: red, above: ABOVE CLEAR}\n"


@pytest.mark.parametrize(
    ("above", "clear", "readings", "expected"),
    [
        # threshold raised above the current value: the next reading resolves
        (60, "", [(2, 40)], [(2.0, "hot", 0, "resolved", None)]),
        # still above the new threshold: stays firing, no signal
        (45, "", [(2, 50), (3, 44)], [(3.0, "hot", 0, "resolved", None)]),
        # the new restore value holds the latch (40 is above clear_below 30): safety first
        (60, ", clear_below: 30", [(2, 40), (3, 35), (4, 25)], [(4.0, "hot", 0, "resolved", None)]),
    ],
    ids=["raised-above-value", "still-holds", "new-restore-value-holds"],
)
def test_changed_threshold_resolves_only_when_the_new_condition_clears(
    tmp_path: Path, above: float, clear: str, readings: list, expected: list
) -> None:
    st, f, reg = stage_with(tmp_path, HOT.replace("ABOVE", "35").replace(" CLEAR", ""))
    assert brief(st.process(batch(0, 50), ctx(reg, 0))) == [(0.0, "hot", 0, "firing", "red")]
    f.write_text(HOT.replace("ABOVE", str(above)).replace(" CLEAR", clear))
    result = st.reload(ctx(reg, 1))
    assert (result.changed, result.removed, result.ended) == (("hot",), (), ())
    out = []
    for t, v in readings:
        out += brief(st.process(batch(t, v), ctx(reg, t)))
    assert out == expected


def test_changed_rule_without_the_latched_colour_keeps_alarming_at_its_worst(
    tmp_path: Path,
) -> None:
    text = (
        "rules:\n  - name: ch4\n    match: {kind: t}\n    levels:\n"
        "      - {level: orange, above: 1.0}\n      - {level: red, above: 1.5}\n"
    )
    st, f, reg = stage_with(tmp_path, text)
    assert brief(st.process(batch(0, 1.6), ctx(reg, 0))) == [(0.0, "ch4", 0, "firing", "red")]
    f.write_text(text.replace("      - {level: red, above: 1.5}\n", ""))  # red dropped
    st.reload(ctx(reg, 1))
    # the latch moves to orange (the rule's worst colour now); 1.2 holds it: a level signal
    assert brief(st.process(batch(2, 1.2), ctx(reg, 2))) == [(2.0, "ch4", 0, "firing", "orange")]
    assert brief(st.process(batch(3, 0.9), ctx(reg, 3))) == [(3.0, "ch4", 0, "resolved", None)]


def test_changed_pending_rule_resolves_its_pending_alert(tmp_path: Path) -> None:
    text = "rules:\n  - {name: slow, match: {kind: t}, level: red, above: 30, for: 10s}\n"
    st, f, reg = stage_with(tmp_path, text)
    assert brief(st.process(batch(0, 40), ctx(reg, 0))) == [(0.0, "slow", 0, "pending", "red")]
    f.write_text(text.replace("above: 30", "above: 50"))
    st.reload(ctx(reg, 1))
    assert brief(st.process(batch(2, 40), ctx(reg, 2))) == [(2.0, "slow", 0, "resolved", None)]


def test_changed_pending_rule_that_still_holds_stays_pending_and_fires_on_time(
    tmp_path: Path,
) -> None:
    text = "rules:\n  - {name: slow, match: {kind: t}, level: red, above: 30, for: 10s}\n"
    st, f, reg = stage_with(tmp_path, text)
    st.process(batch(0, 40), ctx(reg, 0))
    f.write_text(text.replace("for: 10s", "for: 5s"))
    st.reload(ctx(reg, 1))
    # the `for` run starts anew at the first reading after the reload (2 s): fires at 7 s
    assert brief(st.process(batch(2, 40), ctx(reg, 2))) == []
    assert brief(st.process(batch(6, 40), ctx(reg, 6))) == []
    assert brief(st.process(batch(7, 40), ctx(reg, 7))) == [(7.0, "slow", 0, "firing", "red")]


def test_narrowed_match_ends_the_subjects_it_no_longer_watches(tmp_path: Path) -> None:
    text = "rules:\n  - {name: hot, match: {kind: t}, level: red, above: 30}\n"
    st, f, reg = stage_with(tmp_path, text, {"sensor": "T1", "kind": "t", "location": "a"},
                            {"sensor": "T2", "kind": "t", "location": "b"})  # fmt: skip
    fired = st.process(Batch.from_arrays([0, 0], [0, 1], [40.0, 40.0]), ctx(reg, 0))
    assert brief(fired) == [(0.0, "hot", 0, "firing", "red"), (0.0, "hot", 1, "firing", "red")]
    f.write_text(text.replace("{kind: t}", "{kind: t, location: a}"))
    result = st.reload(ctx(reg, 1))
    assert [(s.rule, s.sensor, s.state, s.reason, s.time) for s in result.ended] == [
        ("hot", 1, "resolved", EndReason.UNWATCHED, 1 * S)
    ]
    assert "no longer watches it" in result.ended[0].message
    assert brief(st.process(batch(2, 10), ctx(reg, 2))) == [(2.0, "hot", 0, "resolved", None)]


def test_removed_rule_is_named_in_the_result(tmp_path: Path) -> None:
    st, f, reg = stage_with(tmp_path, V1)
    st.process(batch(0, 50), ctx(reg, 0))
    f.write_text(V1.replace("  - {name: change_me, match: {kind: t}, level: red, above: 40, "
                            "clear_below: 20}\n", ""))  # fmt: skip
    result = st.reload(ctx(reg, 1))
    assert (result.source, result.removed, result.changed, result.kept) == (
        SignalSource.RULE, ("change_me",), (), 1,
    )  # fmt: skip


def test_changed_no_data_rule_resolves_on_the_next_reading(tmp_path: Path) -> None:
    text = "rules:\n  - {name: quiet, match: {kind: t}, level: yellow, no_data: {after: 30s}}\n"
    st, f, reg = stage_with(tmp_path, text)
    st.process(batch(0, 1), ctx(reg, 0))
    assert brief(st.tick(ctx(reg, 30))) == [(30.0, "quiet", 0, "firing", "yellow")]
    f.write_text(text.replace("after: 30s", "after: 60s"))
    st.reload(ctx(reg, 31))
    assert brief(st.tick(ctx(reg, 32))) == []  # still silent: no second alarm
    assert brief(st.process(batch(40, 1), ctx(reg, 40))) == [(40.0, "quiet", 0, "resolved", None)]


def test_changed_compound_rule_keeps_firing_while_it_holds_then_resolves(tmp_path: Path) -> None:
    text = (
        "rules:\n  - {name: hi, match: {kind: t}, level: red, above: 30}\n"
        "  - name: both\n    level: red\n    compound:\n      all:\n"
        "        - {rule: hi}\n        - {match: {kind: f}, above: 0.5}\n"
    )
    st, f, reg = stage_with(tmp_path, text, {"sensor": "T", "kind": "t"},
                            {"sensor": "F", "kind": "f"})  # fmt: skip
    out = st.process(Batch.from_arrays([0, 0], [0, 1], [40.0, 1.0]), ctx(reg, 0))
    assert [(s.rule, s.state, s.group) for s in out] == [
        ("hi", "firing", None), ("both", "firing", "m1/s1"),
    ]  # fmt: skip
    f.write_text(text.replace("level: red\n    compound", "level: orange\n    compound"))
    assert st.reload(ctx(reg, 1)).changed == ("both",)
    assert st.process(Batch.from_arrays([2], [1], [1.0]), ctx(reg, 2)) == []
    out = st.process(Batch.from_arrays([3], [1], [0.0]), ctx(reg, 3))
    assert [(s.rule, s.state, s.group) for s in out] == [("both", "resolved", "m1/s1")]
