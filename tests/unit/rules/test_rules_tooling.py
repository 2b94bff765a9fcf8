"""`riskwatch rules check` and `riskwatch rules test`: bundled packs pass, broken files
produce the exact messages (file:line:col: severity: key.path: message)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from riskwatch.cli import main
from riskwatch.rules.lint import check_files
from riskwatch.rules.testing import expand_series

PACKS = Path(str(resources.files("riskwatch") / "config" / "rules"))
RULE_FILES = sorted(p for p in PACKS.glob("*.yaml") if not p.name.endswith("_test.yaml"))
TEST_FILES = sorted(PACKS.glob("*_test.yaml"))


def test_bundled_packs_exist() -> None:
    names = {p.stem for p in RULE_FILES}
    assert {"coal_mine", "hazchem", "tailings", "electricity"} <= names
    assert {p.stem.removesuffix("_test") for p in TEST_FILES} == names


def test_bundled_packs_lint_clean(capsys) -> None:
    assert main(["rules", "check", *map(str, RULE_FILES)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().err


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_bundled_pack_tests_pass(path: Path, capsys) -> None:
    assert main(["rules", "test", str(path)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "PASS" in out


BROKEN = [
    (
        "unknown key",
        "rules:\n  - name: a\n    match: {kind: ch4}\n    level: red\n    abov: 1.0\n",
        "r.yaml:5:5: error: rules[0].abov: unknown key (known: ",
    ),
    (
        "wrong type",
        "rules:\n  - name: a\n    match: {kind: ch4}\n    level: red\n    above: [1]\n",
        "r.yaml:5:12: error: rules[0].above: expected number or string or mapping, got a list",
    ),
    (
        "unknown level colour",
        "rules:\n  - {name: a, match: {kind: x}, level: purple, above: 1}\n",
        "r.yaml:2:40: error: rules[0].level: must be one of red, orange, yellow, blue, got 'purple'",
    ),
    (
        "clear on the wrong side",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: 1, clear_below: 2}\n",
        "r.yaml:2:68: error: rules[0].clear_below: clear value 2 is above its trigger 1 "
        "(the alert could step down while still triggering)",
    ),
    (
        "clear on the wrong side of a below trigger",
        "rules:\n  - {name: a, match: {kind: x}, level: red, below: 1, clear_above: 0.5}\n",
        "r.yaml:2:68: error: rules[0].clear_above: clear value 0.5 is below its trigger 1",
    ),
    (
        "levels out of order",
        "rules:\n  - name: a\n    match: {kind: x}\n    levels:\n"
        "      - {level: orange, above: 2}\n      - {level: red, above: 1}\n",
        "r.yaml:5:7: error: rules[0].levels: red (trigger 1) is easier to reach than orange "
        "(trigger 2): a more severe level needs a stricter trigger",
    ),
    (
        "colour twice",
        "rules:\n  - name: a\n    match: {kind: x}\n    levels:\n"
        "      - {level: red, above: 2}\n      - {level: red, above: 3}\n",
        "r.yaml:6:9: error: rules[0].levels[1]: level red given twice",
    ),
    (
        "unknown calendar",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: 1, "
        "calendar: {inside: [shutdwn]}}\n",
        "r.yaml:2:75: error: rules[0].calendar.inside[0]: unknown calendar 'shutdwn' "
        "(known: none defined)",
    ),
    (
        "unknown rule in compound",
        "rules:\n  - {name: a, compound: {all: [{rule: nope}]}}\n",
        "r.yaml:2:39: error: rules[0].compound.all[0].rule: unknown rule 'nope'",
    ),
    (
        "two condition kinds",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: 1, frozen: {for: 1h}}\n",
        "r.yaml:2:5: error: rules[0]: a rule needs exactly one condition",
    ),
    (
        "bad duration",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: 1, for: 5 minutes}\n",
        "r.yaml:2:60: error: rules[0].for: bad duration '5 minutes'",
    ),
    (
        "bad setpoint reference",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: catalogue.alarm}\n",
        "r.yaml:2:52: error: rules[0].above: expected a number, 'catalog.NAME' or",
    ),
    (
        "duplicate rule names",
        "rules:\n  - {name: a, match: {kind: x}, level: red, above: 1}\n"
        "  - {name: a, match: {kind: x}, level: red, above: 2}\n",
        "r.yaml:3:12: error: rules[1].name: duplicate rule name 'a' (also rules[0])",
    ),
    (
        "invalid YAML",
        "rules:\n  - {name: a\n",
        "r.yaml:3:1: error: invalid YAML:",
    ),
]


@pytest.mark.parametrize("case,text,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_rule_files(tmp_path: Path, case: str, text: str, message: str, capsys) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(text)
    assert main(["rules", "check", str(f)]) == 1
    out = capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert message in out, out


CATALOG = (
    "enterprise,site,sensor,kind,unit,location,alarm,power_off,restore\n"
    "m1,w1,CH4-1,ch4,%,working_face,1.2,1.5,1.0\n"
    "m1,w1,CH4-2,ch4,%,working_face,,,\n"
)


def test_catalogue_aware_checks(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text(CATALOG)
    (tmp_path / "r.yaml").write_text(
        "rules:\n"
        "  - name: face\n"
        "    match: {kind: ch4, location: working_face}\n"
        "    levels:\n"
        "      - {level: orange, above: {setpoint: alarm, cap: 1.0}}\n"
        "  - {name: typo, match: {kind: cH4}, level: red, above: 1}\n"
        "  - {name: col, match: {kind: ch4, zone: a}, level: red, above: 1}\n"
    )
    got = [str(f).replace(str(tmp_path) + "/", "")
           for f in check_files([tmp_path / "r.yaml"], [tmp_path / "cat.csv"])]  # fmt: skip
    assert got == [
        "r.yaml:5:32: warning: rules[0].levels[0].above: catalogue setpoint 'alarm' is looser "
        "than the regulatory cap 1 for 1 sensor(s) (e.g. m1/w1/CH4-1); the cap 1 is used",
        "r.yaml:5:32: warning: rules[0].levels[0].above: 1 selected sensor(s) have no setpoint "
        "'alarm' and no default, so level orange is off for them (e.g. m1/w1/CH4-2)",
        "r.yaml:6:25: warning: rules[1].match: selects no sensor of the catalogue",
        "r.yaml:7:42: warning: rules[2].match.zone: no catalogue column 'zone', so this selects "
        "nothing (have: enterprise, site, sensor, kind, unit, location, gateway, name, domain, "
        "range_low, range_high, period_s, alarm, power_off, restore, catalogued)",
    ]


FAILING_TEST = """
rule_files: [r.yaml]
catalog:
  - {enterprise: m1, site: w1, sensor: T, kind: temp, unit: C}
tests:
  - name: hot
    interval: 10s
    series:
      - {sensor: m1/w1/T, values: "20 31 _ 25"}
    alerts:
      - at: 10s
        expect: [{rule: hot, sensor: m1/w1/T, level: orange, state: firing}]
      - at: 30s
        expect: [{rule: hot, sensor: m1/w1/T, level: red, state: firing}]
"""


def test_rules_test_prints_expected_vs_got(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {name: hot, match: {kind: temp}, level: red, above: 30}\n"
    )
    (tmp_path / "t.yaml").write_text(FAILING_TEST)
    assert main(["rules", "test", str(tmp_path / "t.yaml")]) == 1
    out = capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert out.splitlines() == [
        "FAIL t.yaml: hot",
        "  at 10s:",
        "    expected: hot m1/w1/T orange firing",
        "    got:      hot m1/w1/T red firing",
        "    missing:  hot m1/w1/T orange firing",
        "    extra:    hot m1/w1/T red firing",
        "  at 30s:",
        "    expected: hot m1/w1/T red firing",
        "    got:      (no alerts)",
        "    missing:  hot m1/w1/T red firing",
    ]


@pytest.mark.parametrize(
    "text,values",
    [
        ("1 2.5 -3", [1.0, 2.5, -3.0]),
        ("0.5+0.1x3", [0.5, 0.6, 0.7, 0.8]),
        ("5-1x2", [5.0, 4.0, 3.0]),
        ("7x2", [7.0, 7.0, 7.0]),
        ("_ _x2 1", [None, None, None, 1.0]),
    ],
)
def test_series_notation(text: str, values: list) -> None:
    assert [x if x is None else x[0] for x in expand_series(text)] == values


def test_series_notation_errors() -> None:
    with pytest.raises(ValueError, match="bad series token 'abc'"):
        expand_series("1 abc")
    with pytest.raises(ValueError, match="a\\+b needs xN"):
        expand_series("1+2")
