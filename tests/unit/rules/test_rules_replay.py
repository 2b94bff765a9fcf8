"""`riskwatch replay`: history through a rule set, and the diff of two rule sets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from riskwatch.cli import main

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))
HISTORY = """time,enterprise,site,sensor,value,quality
2026-03-02T08:00:00+08:00,mine1,w1,CH4-T1,0.5,ok
2026-03-02T08:00:10+08:00,mine1,w1,CH4-T1,1.1,ok
2026-03-02T08:00:20+08:00,mine1,w1,CH4-T1,1.6,ok
2026-03-02T08:00:30+08:00,mine1,w1,CH4-T1,1.2,calibrating
2026-03-02T08:00:40+08:00,mine1,w1,CH4-T1,0.9,ok
2026-03-02T08:00:50+08:00,mine1,w1,CH4-T1,1.3,ok
2026-03-02T08:02:00+08:00,mine1,w1,CH4-T1,0.2,ok
"""
CATALOG = (
    "enterprise,site,sensor,kind,unit,location,period_s\nmine1,w1,CH4-T1,ch4,%,working_face,10\n"
)
STRICTER = """
rules:
  - name: ch4_face
    match: {kind: ch4, location: working_face}
    levels:
      - {level: orange, label: alarm, above: 0.8}
      - {level: red, label: power-off, above: 1.2, clear_below: 0.8}
"""


def files(tmp_path: Path) -> tuple[str, str, str]:
    (tmp_path / "h.csv").write_text(HISTORY)
    (tmp_path / "cat.csv").write_text(CATALOG)
    (tmp_path / "new.yaml").write_text(STRICTER)
    return str(tmp_path / "h.csv"), str(tmp_path / "cat.csv"), str(tmp_path / "new.yaml")


def test_replay_prints_transitions_on_recorded_time(tmp_path: Path, capsys) -> None:
    h, cat, _ = files(tmp_path)
    assert main(["replay", h, "-r", str(PACK), "--catalog", cat]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "2026-03-02T00:00:10.000+00:00 ch4_face mine1/w1/CH4-T1 firing orange",
        "2026-03-02T00:00:20.000+00:00 ch4_face mine1/w1/CH4-T1 firing red",
        # the calibrating 1.2 at :30 is ignored; 0.9 < restore 1.0 resolves
        "2026-03-02T00:00:40.000+00:00 ch4_face mine1/w1/CH4-T1 resolved -",
        "2026-03-02T00:00:50.000+00:00 ch4_face mine1/w1/CH4-T1 firing orange",
        # 70 s without data: the no-data timer fires on the event-time tick at 01:20
        "2026-03-02T00:01:20.000+00:00 coal_no_data mine1/w1/CH4-T1 firing yellow",
        # ... and the whole gateway (here: site, no gateway column) after 60 s
        "2026-03-02T00:01:50.000+00:00 coal_gateway_silent mine1/w1 firing yellow",
        "2026-03-02T00:02:00.000+00:00 ch4_face mine1/w1/CH4-T1 resolved -",
        "2026-03-02T00:02:00.000+00:00 coal_no_data mine1/w1/CH4-T1 resolved -",
        "2026-03-02T00:02:00.000+00:00 coal_gateway_silent mine1/w1 resolved -",
    ]


def test_replay_diff_of_two_rule_sets(tmp_path: Path, capsys) -> None:
    h, cat, new = files(tmp_path)
    assert main(["replay", h, "-r", str(PACK), "--against", new, "--catalog", cat]) == 1
    cap = capsys.readouterr()
    assert cap.out.splitlines() == [
        "- 2026-03-02T00:00:40.000+00:00 ch4_face mine1/w1/CH4-T1 resolved -",
        "- 2026-03-02T00:00:50.000+00:00 ch4_face mine1/w1/CH4-T1 firing orange",
        "- 2026-03-02T00:01:20.000+00:00 coal_no_data mine1/w1/CH4-T1 firing yellow",
        "- 2026-03-02T00:01:50.000+00:00 coal_gateway_silent mine1/w1 firing yellow",
        "- 2026-03-02T00:02:00.000+00:00 coal_gateway_silent mine1/w1 resolved -",
        "- 2026-03-02T00:02:00.000+00:00 coal_no_data mine1/w1/CH4-T1 resolved -",
    ]
    assert "ch4_face: 3 (1) -> 2 (1)" in cap.err
    assert "6 only in the first set, 0 only in the second" in cap.err
    assert main(["replay", h, "-r", new, "--against", new, "--catalog", cat]) == 0


def test_replay_reports_bad_history(tmp_path: Path, capsys) -> None:
    (tmp_path / "h.csv").write_text("when,sensor,value\n1,a/b/c,1\n")
    assert main(["replay", str(tmp_path / "h.csv"), "-r", str(PACK)]) == 1
    err = capsys.readouterr().err
    assert (
        "h.csv:1: time: history needs columns time, sensor, value (have: when, sensor, value)"
        in err
    )
