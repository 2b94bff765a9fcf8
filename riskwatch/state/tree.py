"""The state a stage hands over, keyed so that it survives a restart.

Dense sensor ids are handed out afresh by each process (catalogue order, then arrival
order), so a stage's per-sensor arrays cannot be written as they are and read back by
position. A snapshot therefore carries the :class:`SensorTable` of the ids it was
written with (the sensor key of every id, and the metadata of sensors the catalogue
did not name), and a stage reading it gets a :class:`SensorMap`: for every id of the
snapshot, the id the same sensor has now (-1 when it is gone).

A stage's state is a :data:`StateTree`: nested dicts whose leaves are numpy arrays or
JSON values (numbers, strings, lists, None). Every per-sensor array in it is indexed by
the ids of the snapshot; :meth:`SensorMap.scatter` lays one out over today's ids.

>>> from riskwatch.catalog import SensorRegistry
>>> old = SensorRegistry(); _ = old.intern("m", "s", ["A", "B"], kinds=["ch4", "co"])
>>> table = SensorTable.capture(old)
>>> new = SensorRegistry(); _ = new.intern("m", "s", ["B"], kinds=["co"])
>>> sensors = table.bind(new)  # A was never seen here: registered again, with its kind
>>> sensors.new_id.tolist(), new.meta(1)["kind"]
([1, 0], 'ch4')
>>> sensors.scatter(np.array([10, 20]), -1).tolist()
[20, 10]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from riskwatch.catalog import SensorRegistry

__all__ = [
    "Durable",
    "Restored",
    "Resumes",
    "SensorMap",
    "SensorTable",
    "StateTree",
    "fields_of",
    "with_fields",
]

#: A stage's state: nested dicts of numpy arrays and JSON values.
StateTree = dict[str, Any]

_META = ("enterprise", "site", "sensor", "kind", "unit", "gateway")
_JSON_SCALARS = (int, float, str, bool, type(None))


@dataclass
class Restored:
    """What a stage took over from a snapshot (``counts``) and what it dropped, and why."""

    counts: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def merge(self, other: Restored, prefix: str = "") -> None:
        for k, v in other.counts.items():
            self.counts[prefix + k] = self.counts.get(prefix + k, 0) + v
        self.dropped += other.dropped


@runtime_checkable
class Durable(Protocol):
    """A stage whose state survives a restart (the engine's snapshots and journal).

    ``dump_state`` returns a copy (the engine keeps running while it is written);
    ``load_state`` takes over what still matches this stage's current definition and
    says what it dropped; it never raises on content it does not recognise.
    """

    name: str

    def dump_state(self) -> StateTree: ...

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored: ...


@runtime_checkable
class Resumes(Protocol):
    """A durable stage with clocks of the engine's own time: called once after the
    restore and the journal replay with the last time the engine is known to have run
    (``stopped_ns``) and its ``now``, so that the downtime between is not taken for
    something the sensors did (rules: arrival-clock no-data)."""

    def resume(self, stopped_ns: int, now_ns: int) -> None: ...


@dataclass(frozen=True)
class SensorMap:
    """Ids of a snapshot -> ids of today's registry (``new_id[old] == -1``: gone)."""

    new_id: np.ndarray  # int64, per snapshot id
    n_current: int

    @property
    def identity(self) -> bool:
        """Every sensor kept its id (the same catalogue, in the same order)."""
        n = len(self.new_id)
        return bool(n <= self.n_current and (self.new_id == np.arange(n)).all())

    @property
    def gone(self) -> int:
        return int((self.new_id < 0).sum())

    def ids(self, old: np.ndarray) -> np.ndarray:
        """Today's id of each snapshot id in ``old`` (-1 when gone or out of the table)."""
        old = np.asarray(old, dtype=np.int64)
        ok = (old >= 0) & (old < len(self.new_id))
        out = np.full(len(old), -1, np.int64)
        out[ok] = self.new_id[old[ok]]
        return out

    def scatter(self, values: np.ndarray, fill: Any, n: int | None = None) -> np.ndarray:
        """A per-sensor array over today's ids (``n`` of them, default all): the values of
        the snapshot's sensors that still exist, ``fill`` elsewhere."""
        values = np.asarray(values)
        n = self.n_current if n is None else n
        out = np.full((n, *values.shape[1:]), fill, dtype=values.dtype)
        m = min(len(values), len(self.new_id))
        dst = self.new_id[:m]
        ok = (dst >= 0) & (dst < n)
        out[dst[ok]] = values[:m][ok]
        return out


@dataclass
class SensorTable:
    """The sensor key of each id ``start .. start + len(keys) - 1``, and the metadata of
    the uncatalogued ones among them (so a restart can register them again with the kind
    and unit their payloads gave, before any reading arrives)."""

    keys: list[str]
    extra: dict[int, tuple[str, ...]] = field(default_factory=dict)  # id -> _META values
    start: int = 0

    @classmethod
    def capture(cls, registry: SensorRegistry, start: int = 0) -> SensorTable:
        """Ids ``start ..`` of ``registry`` as they are now."""
        n = len(registry)
        keys = [registry.key(i) for i in range(start, n)]
        extra: dict[int, tuple[str, ...]] = {}
        for i in range(start, n):
            if not registry.catalogued(i):
                meta = registry.meta(i)
                extra[i] = tuple(str(meta.get(c, "")) for c in _META)
        return cls(keys, extra, start)

    def extend(self, more: SensorTable) -> None:
        """Append the table of the ids that follow (``more.start == self.end``)."""
        assert more.start == self.end, (more.start, self.end)
        self.keys += more.keys
        self.extra.update(more.extra)

    @property
    def end(self) -> int:
        return self.start + len(self.keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "keys": self.keys,
            "extra": [[i, *m] for i, m in sorted(self.extra.items())],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SensorTable:
        keys = [str(k) for k in d["keys"]]
        extra = {int(r[0]): tuple(str(x) for x in r[1:]) for r in d.get("extra", [])}
        return cls(keys, extra, int(d.get("start", 0)))

    def bind(self, registry: SensorRegistry, into: np.ndarray | None = None) -> SensorMap:
        """Today's id of each sensor of the table, registering the uncatalogued ones this
        registry does not know yet (a strict registry refuses them: -1). ``into`` is a
        map to extend (ids before ``start``), as a journal segment's keys arrive."""
        new_id = np.full(self.end, -1, np.int64)
        if into is not None:
            m = min(len(into), self.start)
            new_id[:m] = into[:m]
        for j, key in enumerate(self.keys):
            i = self.start + j
            sid = registry.id_of(key)
            if sid is None and i in self.extra:
                e, s, sensor, kind, unit, gateway = self.extra[i]
                got = registry.intern(e, s, [sensor], kinds=[kind], units=[unit], gateway=gateway)
                sid = int(got[0]) if got[0] >= 0 else None
            new_id[i] = -1 if sid is None else sid
        return SensorMap(new_id, len(registry))


def fields_of(obj: Any) -> StateTree:
    """The fields of a dataclass of arrays (and JSON scalars), by name: the generic
    serialisation of a condition's or detector's columns, so that a field added later is
    written without code of its own. Arrays are copied."""
    out: StateTree = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            out[f.name] = v.copy()
        elif isinstance(v, _JSON_SCALARS):
            out[f.name] = v
        else:
            raise TypeError(f"{type(obj).__name__}.{f.name}: cannot serialise {type(v).__name__}")
    return out


def with_fields(template: Any, saved: Mapping[str, Any] | None) -> tuple[Any | None, list[str]]:
    """A copy of the dataclass ``template`` with the fields of ``saved``, or None with the
    names of the fields that are missing or of another kind (an older or newer layout):
    then the caller drops that state and says so."""
    if saved is None:
        return None, ["(none saved)"]
    names = [f.name for f in dataclasses.fields(template)]
    bad = []
    for n in names:
        cur, old = getattr(template, n), saved.get(n)
        if isinstance(cur, np.ndarray):
            if (
                not isinstance(old, np.ndarray)
                or old.dtype != cur.dtype
                or old.shape[1:] != cur.shape[1:]
            ):
                bad.append(n)
        elif n not in saved:
            bad.append(n)
    bad += sorted(set(saved) - set(names))
    if bad:
        return None, bad
    return dataclasses.replace(template, **{n: saved[n] for n in names}), []
