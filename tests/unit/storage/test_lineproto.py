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
