"""The snapshot file: round trip, format version, corrupt and truncated files (refused with
a SnapshotError, never another error), and the generic field serialisation."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import SnapshotError
from riskwatch.state import (
    FORMAT_VERSION,
    SensorTable,
    fields_of,
    read_snapshot,
    with_fields,
    write_snapshot,
)

TREE = {
    "quality": {"v": 1, "last": np.array([5, -7, 2**62], np.int64)},
    "rules": {
        "fingerprints": {"a": "x1"},
        "members": {
            "a": {
                "latch": np.array([[True, False]]),
                "names": ["g1", "g/2"],
                "nan": float("nan"),
                "none": None,
            }
        },
    },
}


def _write(path: Path, tree=TREE) -> int:
    table = SensorTable(["m/s/A", "m/s/B", "m/s/C"], {2: ("m", "s", "C", "ch4", "%", "GW")})
    return write_snapshot(path, tree, table, written_ns=123, journal_from=4)


def test_round_trip_keeps_arrays_exactly_and_json_values(tmp_path: Path) -> None:
    p = tmp_path / "state.snap"
    size = _write(p)
    snap = read_snapshot(p)
    assert size == p.stat().st_size == snap.size_bytes
    assert (snap.written_ns, snap.journal_from) == (123, 4)
    assert snap.sensors.keys == ["m/s/A", "m/s/B", "m/s/C"]
    assert snap.sensors.extra == {2: ("m", "s", "C", "ch4", "%", "GW")}
    last = snap.stages["quality"]["last"]
    assert last.dtype == np.int64 and last.tolist() == [5, -7, 2**62]
    m = snap.stages["rules"]["members"]["a"]
    assert m["latch"].tolist() == [[True, False]] and m["names"] == ["g1", "g/2"]
    assert np.isnan(m["nan"]) and m["none"] is None
    assert not (tmp_path / "state.snap.tmp").exists()


def test_a_new_snapshot_replaces_the_old_one_whole(tmp_path: Path) -> None:
    p = tmp_path / "state.snap"
    _write(p)
    _write(p, {"quality": {"last": np.array([1])}})
    assert read_snapshot(p).stages == {"quality": {"last": np.array([1])}} or (
        read_snapshot(p).stages["quality"]["last"].tolist() == [1]
    )
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.snap"]


def test_another_format_version_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "state.snap"
    _write(p)
    with zipfile.ZipFile(p) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["meta.json"])
    meta["format"] = FORMAT_VERSION + 1
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(p, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(SnapshotError, match=f"format {FORMAT_VERSION + 1}, this riskwatch reads"):
        read_snapshot(p)


def test_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(tmp_path / "nope.snap")


def test_every_truncation_and_many_bit_flips_are_refused_never_crash(tmp_path: Path) -> None:
    p = tmp_path / "state.snap"
    _write(p)
    good = p.read_bytes()
    rng = np.random.default_rng(7)
    cuts = list(range(0, len(good), max(1, len(good) // 200)))
    for n in cuts:
        p.write_bytes(good[:n])
        with pytest.raises(SnapshotError):
            read_snapshot(p)
    p.write_bytes(good)
    want = read_snapshot(p)
    refused = 0
    for _ in range(300):
        bad = bytearray(good)
        i = int(rng.integers(len(bad)))
        bad[i] ^= 1 << int(rng.integers(8))
        p.write_bytes(bytes(bad))
        try:
            got = read_snapshot(p)
        except SnapshotError:
            refused += 1
            continue
        # a flip in a zip header field nobody reads (a time stamp, a version) is harmless:
        # what is read back is then exactly what was written
        assert got.sensors == want.sensors and got.journal_from == want.journal_from
        assert got.stages["quality"]["last"].tolist() == want.stages["quality"]["last"].tolist()
        assert got.stages["rules"]["fingerprints"] == want.stages["rules"]["fingerprints"]
    assert refused > 150


def test_sensor_table_binds_by_key_and_registers_uncatalogued_sensors_again() -> None:
    old = SensorRegistry()
    old.intern("m", "s", ["A", "B", "C"], kinds=["ch4", "co", "temp"], units=["%", "ppm", "C"],
               gateway="GW-1")  # fmt: skip
    table = SensorTable.capture(old)
    table = SensorTable.from_json(json.loads(json.dumps(table.to_json())))
    new = SensorRegistry()
    new.intern("m", "s", ["C"], kinds=["temp"])
    sensors = table.bind(new)
    assert sensors.new_id.tolist() == [1, 2, 0]
    assert new.meta(1)["kind"] == "ch4" and new.meta(1)["gateway"] == "GW-1"
    assert not sensors.identity and sensors.gone == 0
    strict = SensorRegistry(strict=True)
    assert table.bind(strict).new_id.tolist() == [-1, -1, -1]
    assert table.bind(old).identity


@dataclass
class Columns:
    window_ns: np.ndarray
    ring: np.ndarray
    cap: int = 64


@dataclass
class ColumnsV2:  # a later layout: one more state field
    window_ns: np.ndarray
    ring: np.ndarray
    cap: int = 64
    count: np.ndarray | None = None


def test_fields_serialise_generically_and_a_changed_layout_is_named() -> None:
    c = Columns(np.array([1, 2]), np.zeros((2, 3)))
    saved = fields_of(c)
    assert saved["cap"] == 64 and saved["ring"].shape == (2, 3)
    saved["ring"][0, 0] = 9.0  # a copy: the live state is not touched
    assert c.ring[0, 0] == 0.0
    back, bad = with_fields(Columns(np.zeros(0, int), np.zeros((0, 3))), saved)
    assert bad == [] and back.ring[0, 0] == 9.0 and back.window_ns.tolist() == [1, 2]
    v2 = ColumnsV2(np.zeros(0, int), np.zeros((0, 3)), count=np.zeros(0, np.int32))
    assert with_fields(v2, saved) == (None, ["count"])
    wider = Columns(np.zeros(0, int), np.zeros((0, 4)))  # other ring width
    assert with_fields(wider, saved) == (None, ["ring"])
    with pytest.raises(TypeError, match="cannot serialise"):
        fields_of(Columns(np.zeros(1), np.zeros((1, 1)), cap=object()))  # type: ignore[arg-type]
