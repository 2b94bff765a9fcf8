from __future__ import annotations

import math
from pathlib import Path

import pytest

from riskwatch.catalog import SensorRegistry, load_catalog
from riskwatch.errors import ConfigErrors


def test_csv_setpoints_tags_and_columns(tmp_path: Path) -> None:
    p = tmp_path / "mine.csv"
    p.write_text(
        "enterprise,site,sensor,kind,unit,location,range_low,range_high,period_s,alarm,power_off,asset\n"
        "m1,f1,CH4-1,ch4,%,working_face,0,4,10,1.0,1.5,face-a\n"
        "m1,f1,CH4-2,ch4,%,return_airway,0,4,10,1.0,1.0,face-a\n"
        "m1,f1,FEED-1,feed,,working_face,0,1,10,,,\n"
    )
    reg = SensorRegistry()
    assert reg.load_catalog([p]) == 3
    assert reg.column("location").tolist() == ["working_face", "return_airway", "working_face"]
    pw = reg.column("power_off")
    assert pw[:2].tolist() == [1.5, 1.0] and math.isnan(pw[2])
    assert reg.column("asset").tolist() == ["face-a", "face-a", ""]
    assert reg.column("catalogued").all()
    # ids stay stable when a sensor reports later
    assert reg.intern("m1", "f1", ["CH4-2", "NEW"]).tolist() == [1, 3]
    assert not reg.column("catalogued")[3]


def test_yaml_catalogue(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("sensors:\n  - {enterprise: e, site: s, sensor: L1, kind: level, high: 80}\n")
    (e,) = load_catalog([p])
    assert e.setpoints == {"high": 80.0}


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(
        "enterprise,site,sensor,kind,range_low,range_high\ne,s,A,ch4,0,4\ne,s,,ch4,0,4\ne,s,B,ch4,x,4\ne,s,A,ch4,0,4\ne,s,C,ch4,5,4\n"
    )
    with pytest.raises(ConfigErrors) as ei:
        load_catalog([p])
    msgs = [str(e) for e in ei.value.errors]
    assert msgs == [
        f"{p}:3: sensor: missing required column value",
        f"{p}:4: range_low: expected a number, got 'x'",
        f"{p}:5: sensor: duplicate sensor e/s/A (first on line 2)",
        f"{p}:6: range_high: must be greater than range_low",
    ]


def test_columns_extend_when_only_sensors_were_added_and_rebuild_on_metadata() -> None:
    reg = SensorRegistry()
    reg.intern("e", "s", ["a", "b"], kinds=["ch4", "co"])
    assert reg.column("kind").tolist() == ["ch4", "co"]
    gen = reg.meta_generation
    reg.intern("e", "s", ["c"], kinds=["o2"])
    assert reg.meta_generation == gen  # an added sensor is not a metadata change
    assert reg.column("kind").tolist() == ["ch4", "co", "o2"]
    reg.set_meta(0, kind="temp")
    assert reg.column("kind").tolist() == ["temp", "co", "o2"]
