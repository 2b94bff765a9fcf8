"""Durations in rule files are parsed once, at load, into Durations (ns that keep their
text): every duration key, its spelling in messages, and the error each bad one gives."""

from __future__ import annotations

import pytest
from rules_helpers import S, registry, ruleset, series

from riskwatch.durations import Duration
from riskwatch.errors import ConfigErrors
from riskwatch.model import Batch
from riskwatch.rules.parse import RuleSpec, Setpoint, load_rules_text

BASE = "{name: r, match: {kind: t}, "

FIELDS = [
    ("for", BASE + "level: red, above: 1, for: 90s}", lambda r: r.for_, 90, "90s"),
    ("level for", BASE + "levels: [{level: red, above: 1, for: 1m30s}]}",
     lambda r: r.levels[0].for_, 90, "1m30s"),
    ("keep_firing_for", BASE + "level: red, above: 1, keep_firing_for: 2m}",
     lambda r: r.keep_firing_for, 120, "2m"),
    ("per", BASE + "of: rate, per: 1m, level: red, above: 1}", lambda r: r.per, 60, "1m"),
    ("per default", BASE + "of: rate, level: red, above: 1}", lambda r: r.per, 1, "1s"),
    ("window", BASE + "of: change, window: 30s, level: red, above: 1}",
     lambda r: r.window, 30, "30s"),
    ("frozen.for", BASE + "frozen: {for: 2h}}", lambda r: r.frozen.for_, 7200, "2h"),
    ("frozen.for default", BASE + "frozen: {}}", lambda r: r.frozen.for_, 4 * 3600, "4h"),
    ("out_of_range.for", BASE + "out_of_range: {for: 10s}}",
     lambda r: r.out_of_range.for_, 10, "10s"),
    ("calibration.max", BASE + "calibration: {max: 90m}}",
     lambda r: r.calibration.max, 5400, "90m"),
    ("no_data.after", BASE + "no_data: {after: 45s}}", lambda r: r.no_data.limit, 45, "45s"),
    ("no_data.after seconds", BASE + "no_data: {after: 45}}",
     lambda r: r.no_data.limit, 45, "45s"),
    ("no_data.default", BASE + "no_data: {default: 5m}}", lambda r: r.no_data.default, 300, "5m"),
    ("compound for", "{name: r, for: 10s, compound: {any: [{match: {kind: t}, above: 1}]}}",
     lambda r: r.for_, 10, "10s"),
]  # fmt: skip


@pytest.mark.parametrize("case,rule,get,seconds,text", FIELDS, ids=[f[0] for f in FIELDS])
def test_durations_are_parsed_at_load(case, rule: str, get, seconds: int, text: str) -> None:
    d = get(load_rules_text(f"rules: [{rule}]").rules[0])
    assert isinstance(d, Duration)
    assert (int(d), str(d)) == (seconds * S, text)


def test_no_data_after_may_be_a_catalogue_number() -> None:
    r: RuleSpec = load_rules_text("rules: [" + BASE + "no_data: {}}]").rules[0]
    assert r.no_data is not None
    assert r.no_data.limit == Setpoint(setpoint="period_s", factor=3.0)
    reg = registry({"sensor": "A", "kind": "t", "period_s": 10}, {"sensor": "B", "kind": "t"})
    rs = ruleset("rules: [" + BASE + "no_data: {after: 2 * catalog.period_s, default: 50s}}]", reg)
    assert rs.members[1].after.tolist() == [20 * S, 50 * S]  # type: ignore[attr-defined]


def test_messages_quote_the_rules_own_spelling() -> None:
    rs = ruleset("rules: [" + BASE + "level: red, above: 1, for: 1m30s}]",
                 registry({"sensor": "T", "kind": "t"}))  # fmt: skip
    (sig,) = rs.process(Batch.from_arrays([0], [0], [2.0]), 0)
    assert sig.message == "m1/s1/T: t 2 >= red 1 (pending for 1m30s) [r, pending]"
    rs = ruleset("rules: [" + BASE + "frozen: {for: 90}}]", registry({"sensor": "T", "kind": "t"}))
    assert series(rs, 0, [1.0, 1.0, 1.0], step=60)[-1][3] == "firing"
    assert rs.readings.slots.for_ns.max() == 90 * S


BAD = [
    ("for", BASE + "level: red, above: 1, for: 5 minutes}", "rules[0].for"),
    ("level for", BASE + "levels: [{level: red, above: 1, for: 5 minutes}]}",
     "rules[0].levels[0].for"),
    ("keep_firing_for", BASE + "level: red, above: 1, keep_firing_for: soon}",
     "rules[0].keep_firing_for"),
    ("per", BASE + "of: rate, per: 1 minute, level: red, above: 1}", "rules[0].per"),
    ("window", BASE + "of: change, window: -5s, level: red, above: 1}", "rules[0].window"),
    ("frozen.for", BASE + "frozen: {for: long}}", "rules[0].frozen.for"),
    ("out_of_range.for", BASE + "out_of_range: {for: 1x}}", "rules[0].out_of_range.for"),
    ("calibration.max", BASE + "calibration: {max: 2hours}}", "rules[0].calibration.max"),
    ("no_data.after", BASE + "no_data: {after: 5 minutes}}", "rules[0].no_data.after"),
    ("no_data.default", BASE + "no_data: {default: 1y}}", "rules[0].no_data.default"),
]  # fmt: skip


@pytest.mark.parametrize("case,rule,key", BAD, ids=[b[0] for b in BAD])
def test_a_bad_duration_names_file_line_and_key(case, rule: str, key: str) -> None:
    with pytest.raises(ConfigErrors) as exc:
        load_rules_text(f"rules:\n  - {rule}\n", file="r.yaml")
    (err,) = exc.value.errors
    assert (err.file, err.line, err.key_path) == ("r.yaml", 2, key)
    assert err.message.startswith("bad duration '")


def test_a_bad_catalogue_number_in_no_data_after() -> None:
    with pytest.raises(ConfigErrors) as exc:
        load_rules_text("rules:\n  - " + BASE + "no_data: {after: x * catalog.period_s}}\n")
    (err,) = exc.value.errors
    assert err.key_path == "rules[0].no_data.after"
    assert err.message.startswith("expected a number, 'catalog.NAME' or 'K * catalog.NAME'")
