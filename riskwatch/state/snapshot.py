"""The snapshot file: every durable stage's state, versioned, written atomically.

A snapshot is a zip of ``.npy`` arrays (numpy's ``.npz`` layout, read back with
``allow_pickle=False``) plus one JSON member, ``meta.json``, holding:

- ``format``: :data:`FORMAT_VERSION`; a file of another format is refused as a whole
  (:class:`~riskwatch.errors.SnapshotError`), which the engine logs before starting fresh;
- ``written_ns``: the engine's clock when it was taken (the log quotes the age);
- ``journal_from``: the first journal segment that is *not* in it (replayed on start);
- ``sensors``: the :class:`~riskwatch.state.tree.SensorTable` of its ids;
- ``stages``: each stage's :data:`~riskwatch.state.tree.StateTree`, with every array
  replaced by ``{"__array__": name}`` naming its member in the zip.

Writing goes to ``NAME.tmp`` in the same folder, is fsynced, renamed over ``NAME`` and
the folder fsynced, so a crash at any point leaves either the old snapshot or the new
one, never half of one. A truncated or corrupted file fails the zip's CRC or structure
checks and is refused.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "state.snap"
>>> tree = {"quality": {"last": np.array([5, 7]), "note": "x"}}
>>> _ = write_snapshot(p, tree, SensorTable(["m/s/A", "m/s/B"]), written_ns=9, journal_from=3)
>>> snap = read_snapshot(p)
>>> snap.stages["quality"]["last"].tolist(), snap.sensors.keys, snap.journal_from
([5, 7], ['m/s/A', 'm/s/B'], 3)
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.errors import SnapshotError
from riskwatch.state.tree import SensorTable, StateTree

__all__ = ["FORMAT_VERSION", "Snapshot", "fsync_dir", "read_snapshot", "write_snapshot"]

#: The snapshot layout this code writes and reads. Raise it when the container changes
#: (a stage's own tree changing is the stage's business: it loads what matches).
FORMAT_VERSION = 1

_ARRAY = "__array__"


@dataclass(frozen=True)
class Snapshot:
    written_ns: int
    journal_from: int
    sensors: SensorTable
    stages: dict[str, StateTree]
    size_bytes: int


def _flatten(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(node, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = node
        return {_ARRAY: name}
    if isinstance(node, dict):
        return {str(k): _flatten(v, arrays) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_flatten(v, arrays) for v in node]
    if isinstance(node, np.generic):
        return node.item()
    return node


def _unflatten(node: Any, arrays: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {_ARRAY}:
            return arrays[node[_ARRAY]]
        return {k: _unflatten(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_unflatten(v, arrays) for v in node]
    return node


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_snapshot(
    path: Path,
    stages: dict[str, StateTree],
    sensors: SensorTable,
    *,
    written_ns: int,
    journal_from: int,
    fsync: bool = True,
) -> int:
    """Write the snapshot atomically (see the module docstring); returns its size."""
    arrays: dict[str, np.ndarray] = {}
    meta = {
        "format": FORMAT_VERSION,
        "written_ns": int(written_ns),
        "journal_from": int(journal_from),
        "sensors": sensors.to_json(),
        "stages": _flatten(stages, arrays),
    }
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
            z.writestr("meta.json", json.dumps(meta, separators=(",", ":")))
            for name, arr in arrays.items():
                with z.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr),
                                              allow_pickle=False)  # fmt: skip
        f.flush()
        if fsync:
            os.fsync(f.fileno())
        size = f.tell()
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
    return size


def read_snapshot(path: Path) -> Snapshot:
    """Read a snapshot; raises :class:`SnapshotError` for anything unusable (a missing
    file included), never another error. Each array is read straight from the file into
    its own memory, and the zip checks each member's CRC as it reaches its end."""
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as exc:
        raise SnapshotError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        with f, zipfile.ZipFile(f) as z:
            meta = json.loads(z.read("meta.json"))
            if not isinstance(meta, dict):
                raise SnapshotError(str(path), "meta.json is not an object")
            version = meta.get("format")
            if version != FORMAT_VERSION:
                raise SnapshotError(
                    str(path), f"format {version!r}, this riskwatch reads {FORMAT_VERSION}"
                )
            arrays = {}
            for info in z.infolist():
                if info.filename.endswith(".npy"):
                    with z.open(info) as member:
                        arrays[info.filename[:-4]] = np.lib.format.read_array(
                            member, allow_pickle=False
                        )
                        if member.read(1):
                            raise SnapshotError(str(path), f"{info.filename}: trailing bytes")
            return Snapshot(
                written_ns=int(meta["written_ns"]),
                journal_from=int(meta["journal_from"]),
                sensors=SensorTable.from_json(meta["sensors"]),
                stages=_unflatten(meta["stages"], arrays),
                size_bytes=size,
            )
    except SnapshotError:
        raise
    except Exception as exc:  # whatever a damaged zip raises (the zip module is not picky)
        raise SnapshotError(str(path), f"unreadable ({type(exc).__name__}: {exc})") from exc
