"""Line protocol of whole batches: every field and tag, escapes, float and time text."""

from __future__ import annotations

import math

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch
from riskwatch.storage.lineproto import LineEncoder

FLOATS = [0.1, 1e-05, 1.5e-07, 1e16, 1e22, 123456789.123, 1 / 3, 2.5e-300, 5e-324,
          1.7976931348623157e308, -0.0, 100.0, -42.5, 12345678901234567890.0]  # fmt: skip


def _parse(line: str) -> tuple[str, float, int, int]:
    series, fields, t = line.rsplit(" ", 2)
    value, flags = fields.split(",")
    assert value.startswith("value=") and flags.startswith("flags=") and flags.endswith("i")
    return series, float(value[6:]), int(flags[6:-1]), int(t)


def test_values_times_and_flags_round_trip() -> None:
    reg = SensorRegistry()
    ids = reg.intern("mine 1", "face,3", ["CH4=1", "CO"], kinds=["ch4", None])
    n = len(FLOATS)
    times = [1_795_880_000_123_456_789 + i for i in range(n)]
    sensors = [int(ids[i % 2]) for i in range(n)]
    flags = [(i * 37) % 256 for i in range(n)]
    body = LineEncoder(reg).encode(Batch.from_arrays(times, sensors, FLOATS, flags))
    lines = body.decode().split("\n")
    assert len(lines) == n  # no trailing newline
    for i, line in enumerate(lines):
        series, value, fl, t = _parse(line)
        assert value == FLOATS[i] and math.copysign(1, value) == math.copysign(1, FLOATS[i])
        assert (fl, t) == (flags[i] & ~8, times[i])  # DUPLICATE (8) is not stored
        assert series == (
            r"reading,enterprise=mine\ 1,kind=ch4,sensor=CH4\=1,site=face\,3"
            if i % 2 == 0
            else r"reading,enterprise=mine\ 1,sensor=CO,site=face\,3"
        )


def test_sensors_interned_after_the_first_batch_get_their_series() -> None:
    reg = SensorRegistry()
    enc = LineEncoder(reg)
    a = int(reg.intern("e", "s", ["A"])[0])
    assert (
        enc.encode(Batch.from_arrays([1], [a], [1.0]))
        == b"reading,enterprise=e,sensor=A,site=s value=1.0,flags=0i 1"
    )
    b = int(reg.intern("e", "s", ["B"])[0])
    body = enc.encode(Batch.from_arrays([2, 3], [b, a], np.array([2.0, 3.0])))
    assert body.split(b"\n")[0].startswith(b"reading,enterprise=e,sensor=B,site=s value=2.0")


def test_the_stored_copy_of_a_redelivered_reading_is_not_flagged_duplicate() -> None:
    from riskwatch.model import Flags

    reg = SensorRegistry()
    sid = int(reg.intern("e", "s", ["a"])[0])
    flags = np.array([int(Flags.DUPLICATE), int(Flags.DUPLICATE | Flags.LATE)], dtype=np.uint8)
    b = Batch(np.array([1, 2]), np.array([sid, sid], dtype=np.int32), np.array([1.0, 2.0]),
              flags, np.array([5, 5]))  # fmt: skip
    lines = LineEncoder(reg).encode(b).decode().splitlines()
    assert [x.split(",flags=")[1].split(" ")[0] for x in lines] == ["0i", f"{int(Flags.LATE)}i"]


def test_catalogue_unit_location_and_gateway_are_tags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cat = tmp_path / "site.csv"
    cat.write_text(
        "enterprise,site,sensor,kind,unit,location,gateway\n"
        "m1,f1,CH4-1,ch4,%,upper corner,GW 7\n"
        "m1,f1,T-1,temp,,,\n"
    )
    reg = SensorRegistry()
    reg.load_catalog([cat])
    a, b = (int(x) for x in reg.intern("m1", "f1", ["CH4-1", "T-1"]))
    body = LineEncoder(reg).encode(Batch.from_arrays([5, 6], [a, b], [0.5, 20.0])).decode()
    assert body.split("\n") == [
        r"reading,enterprise=m1,gateway=GW\ 7,kind=ch4,location=upper\ corner,sensor=CH4-1,"
        r"site=f1,unit=% value=0.5,flags=0i 5",
        "reading,enterprise=m1,kind=temp,sensor=T-1,site=f1 value=20.0,flags=0i 6",
    ]


def test_a_resolved_or_closed_alert_point_no_longer_carries_its_level() -> None:
    from riskwatch.storage.alert_points import AlertPoint, alert_lines

    base = dict(enterprise="m1", site="f1", sensor="S", rule="r", level="red", value=2.0,
                message="m", id="a1", time_ns=1)  # fmt: skip
    lines = alert_lines(
        AlertPoint(state=s, action=s, **base)  # type: ignore[arg-type]
        for s in ("firing", "acknowledged", "shelved", "resolved", "closed")
    )
    levels = [ln.split(" ")[0].split("level=")[1].split(",")[0] for ln in lines]
    assert levels == ["red", "red", "red", "none", "none"]
    assert all(ln.split(" ")[1].endswith(',alert_level="red"') for ln in lines)
