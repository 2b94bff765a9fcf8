"""Sensor catalogue (测点表) and the :class:`SensorRegistry` that interns sensor keys.

The registry maps the full key ``enterprise/site/sensor`` to a dense int32 id that
indexes every per-sensor state array in the engine. Metadata (kind, unit, location,
measuring range, reporting period, gateway, per-point setpoints and free tags) is kept
as columns; :meth:`SensorRegistry.column` returns a numpy array over all ids, cached
until the registry changes (``generation`` increments), so rule selectors and
per-sensor parameter arrays are rebuilt only when sensors are added or the catalogue
reloads.

Catalogue files are CSV (header row) or YAML (a list of mappings, or ``sensors:`` list).
Columns ``enterprise, site, sensor, kind`` are required; ``unit, location, gateway,
name, domain`` are text (``domain`` names the rule pack's domain a point belongs to:
``coal_mine``, ``hazchem``, ``tailings``, ``electricity``; empty when not given, and every
registry has the column, so packs can select "this domain or none"); ``range_low,
range_high, period_s`` are numbers; any other column is a
setpoint if all its values are numbers (``alarm``, ``power_off``, ``restore``, ``high``,
``high_high`` ...) and a tag otherwise.

>>> reg = SensorRegistry()
>>> reg.intern("mine1", "face1", ["CH4-01", "CH4-02", "CH4-01"]).tolist()
[0, 1, 0]
>>> reg.key(1)
'mine1/face1/CH4-02'
>>> reg.set_meta(0, kind="ch4", unit="%")
>>> reg.column("kind").tolist()
['ch4', '']
"""

from __future__ import annotations

import csv
import math
import operator
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.config.yamldoc import YamlDoc
from riskwatch.errors import ConfigError, ConfigErrors

__all__ = ["CatalogEntry", "SensorRegistry", "load_catalog"]

TEXT_COLUMNS = (
    "enterprise", "site", "sensor", "kind", "unit", "location", "gateway", "name", "domain",
)  # fmt: skip
NUMBER_COLUMNS = ("range_low", "range_high", "period_s")
REQUIRED = ("enterprise", "site", "sensor", "kind")


@dataclass(frozen=True)
class CatalogEntry:
    """One row of a point table."""

    enterprise: str
    site: str
    sensor: str
    kind: str
    unit: str = ""
    location: str = ""
    gateway: str = ""
    name: str = ""
    domain: str = ""
    range_low: float = math.nan
    range_high: float = math.nan
    period_s: float = math.nan
    setpoints: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    file: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.enterprise}/{self.site}/{self.sensor}"


def _parse_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], file: str, errors: list[ConfigError]
) -> list[CatalogEntry]:
    rows = list(rows)
    # decide which extra columns are setpoints (all numeric) vs tags
    extra: dict[str, bool] = {}
    for _, row in rows:
        for k, v in row.items():
            if k in TEXT_COLUMNS or k in NUMBER_COLUMNS:
                continue
            numeric = extra.get(k, True)
            if v not in (None, "") and numeric:
                try:
                    float(v)
                except (TypeError, ValueError):
                    numeric = False
            extra[k] = numeric
    out: list[CatalogEntry] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        missing = [c for c in REQUIRED if row.get(c) in (None, "")]
        if missing:
            errors.append(
                ConfigError(missing[0], "missing required column value", file=file, line=line)
            )
            continue
        nums: dict[str, float] = {}
        bad = False
        for c in NUMBER_COLUMNS:
            v = row.get(c)
            if v in (None, ""):
                nums[c] = math.nan
                continue
            try:
                nums[c] = float(v)
            except (TypeError, ValueError):
                errors.append(ConfigError(c, f"expected a number, got {v!r}", file=file, line=line))
                bad = True
        if bad:
            continue
        setpoints = {
            k: float(v) for k, v in row.items() if extra.get(k) is True and v not in (None, "")
        }
        tags = {k: str(v) for k, v in row.items() if extra.get(k) is False and v not in (None, "")}
        e = CatalogEntry(
            enterprise=str(row["enterprise"]),
            site=str(row["site"]),
            sensor=str(row["sensor"]),
            kind=str(row["kind"]),
            unit=str(row.get("unit") or ""),
            location=str(row.get("location") or ""),
            gateway=str(row.get("gateway") or ""),
            name=str(row.get("name") or ""),
            domain=str(row.get("domain") or ""),
            setpoints=setpoints,
            tags=tags,
            file=file,
            line=line,
            **nums,
        )
        if e.key in seen:
            errors.append(
                ConfigError(
                    "sensor",
                    f"duplicate sensor {e.key} (first on line {seen[e.key]})",
                    file=file,
                    line=line,
                )
            )
            continue
        seen[e.key] = line
        if (
            not math.isnan(e.range_low)
            and not math.isnan(e.range_high)
            and e.range_low >= e.range_high
        ):
            errors.append(
                ConfigError("range_high", "must be greater than range_low", file=file, line=line)
            )
            continue
        out.append(e)
    return out


def load_catalog(paths: Sequence[str | Path]) -> list[CatalogEntry]:
    """Load CSV/YAML point tables; all errors of all files in one :class:`ConfigErrors`."""
    errors: list[ConfigError] = []
    entries: list[CatalogEntry] = []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".csv":
            try:
                with p.open(newline="", encoding="utf-8-sig") as fh:
                    reader = csv.DictReader(fh)
                    rows = [
                        (
                            reader.line_num,
                            {
                                k.strip(): (v.strip() if isinstance(v, str) else v)
                                for k, v in r.items()
                                if k
                            },
                        )
                        for r in reader
                    ]
            except OSError as exc:
                errors.append(
                    ConfigError("", f"cannot read catalogue: {exc.strerror}", file=str(p))
                )
                continue
            entries += _parse_rows(rows, str(p), errors)
        else:
            try:
                doc = YamlDoc.from_path(p)
            except ConfigErrors as exc:
                errors += exc.errors
                continue
            data = doc.data
            if isinstance(data, dict) and "sensors" in data:
                base: tuple[Any, ...] = ("sensors",)
                data = data["sensors"]
            else:
                base = ()
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                errors.append(
                    doc.error(base, "catalogue must be a list of mappings (one per sensor)")
                )
                continue
            yrows = [(doc.where((*base, i))[0] or 0, r) for i, r in enumerate(data)]
            entries += _parse_rows(yrows, str(p), errors)
    ConfigErrors.raise_if(errors)
    return entries


class SensorRegistry:
    """Interns sensor keys to dense ids and keeps per-sensor metadata columns.

    Thread-safe for interning (ingest runs in the MQTT thread, rules in the engine thread).
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._lock = threading.RLock()
        self._ids: dict[str, int] = {}
        self._by_site: dict[tuple[str, str], dict[str, int]] = {}
        self._cols: dict[str, list[Any]] = {c: [] for c in TEXT_COLUMNS}
        self._nums: dict[str, list[float]] = {c: [] for c in NUMBER_COLUMNS}
        self._setpoints: dict[str, dict[int, float]] = {}
        self._tags: dict[str, dict[int, str]] = {}
        self._catalogued: list[bool] = []
        self._cache: dict[str, tuple[int, int, np.ndarray]] = {}
        #: moves on every change: a sensor added or any metadata changed
        self.generation = 0
        #: moves only when metadata of sensors already known changes (catalogue, set_meta):
        #: while it stays, a change of ``generation`` only appended sensors, and per-sensor
        #: arrays can be extended by the new ids instead of rebuilt (adding a sensor is O(1))
        self.meta_generation = 0

    def __len__(self) -> int:
        return len(self._catalogued)

    # -- interning -----------------------------------------------------------------
    def intern(
        self,
        enterprise: str,
        site: str,
        sensors: Sequence[str],
        *,
        kinds: Sequence[str | None] | None = None,
        units: Sequence[str | None] | None = None,
        gateway: str = "",
    ) -> np.ndarray:
        """Ids for ``sensors`` of one site; unknown ones are registered (or -1 if strict)."""
        table = self._by_site.get((enterprise, site))
        if table is not None:
            get = table.get
            ids = [get(s, -1) for s in sensors]
            if -1 not in ids:
                return np.asarray(ids, dtype=np.int32)
        else:
            ids = [-1] * len(sensors)
        if self.strict:
            return np.asarray(ids, dtype=np.int32)
        with self._lock:
            for i, s in enumerate(sensors):
                if ids[i] == -1:
                    ids[i] = self._add(
                        enterprise,
                        site,
                        s,
                        kind=(kinds[i] if kinds else None) or "",
                        unit=(units[i] if units else None) or "",
                        gateway=gateway,
                        catalogued=False,
                    )
        return np.asarray(ids, dtype=np.int32)

    def _add(
        self, enterprise: str, site: str, sensor: str, *, catalogued: bool, **meta: Any
    ) -> int:
        key = f"{enterprise}/{site}/{sensor}"
        sid = self._ids.get(key)
        if sid is not None:
            return sid
        sid = len(self._catalogued)
        self._ids[key] = sid
        self._by_site.setdefault((enterprise, site), {})[sensor] = sid
        base = {"enterprise": enterprise, "site": site, "sensor": sensor}
        for c in TEXT_COLUMNS:
            self._cols[c].append(str(base.get(c, meta.get(c, "")) or ""))
        for c in NUMBER_COLUMNS:
            self._nums[c].append(float(meta.get(c, math.nan)))
        self._catalogued.append(catalogued)
        self.generation += 1
        return sid

    def lookup(self, prefixes: Sequence[str], sensors: Sequence[str]) -> np.ndarray:
        """Ids of ``prefix + sensor`` keys (prefix ``"enterprise/site/"``); -1 if unknown.

        >>> reg = SensorRegistry(); _ = reg.intern("e", "s", ["a"])
        >>> reg.lookup(["e/s/", "e/s/"], ["a", "b"]).tolist()
        [0, -1]
        """
        keys = map(operator.add, prefixes, sensors)
        return np.fromiter(map(self._ids.get, keys, repeat(-1)), dtype=np.int32, count=len(sensors))

    # -- metadata ------------------------------------------------------------------
    def set_meta(self, sid: int, **meta: Any) -> None:
        with self._lock:
            for k, v in meta.items():
                if k in TEXT_COLUMNS:
                    self._cols[k][sid] = str(v)
                elif k in NUMBER_COLUMNS:
                    self._nums[k][sid] = float(v)
                else:
                    raise KeyError(k)
            self.generation += 1
            self.meta_generation += 1

    def apply_catalog(self, entries: Iterable[CatalogEntry]) -> None:
        """Add or update catalogued sensors (ids of known sensors never change)."""
        with self._lock:
            for e in entries:
                sid = self._add(e.enterprise, e.site, e.sensor, catalogued=True)
                self._catalogued[sid] = True
                for c in TEXT_COLUMNS[3:]:
                    self._cols[c][sid] = str(getattr(e, c))
                if not e.domain and "domain" in e.tags:  # given as a tag (older tables)
                    self._cols["domain"][sid] = str(e.tags["domain"])
                for c in NUMBER_COLUMNS:
                    self._nums[c][sid] = float(getattr(e, c))
                for k, v in e.setpoints.items():
                    self._setpoints.setdefault(k, {})[sid] = float(v)
                for k, tag in e.tags.items():
                    if k in self._cols:
                        continue
                    self._tags.setdefault(k, {})[sid] = str(tag)
            self.generation += 1
            self.meta_generation += 1

    def load_catalog(self, paths: Sequence[str | Path]) -> int:
        entries = load_catalog(paths)
        self.apply_catalog(entries)
        return len(entries)

    # -- lookups -------------------------------------------------------------------
    def id_of(self, key: str) -> int | None:
        return self._ids.get(key)

    def catalogued(self, sid: int) -> bool:
        """Whether the catalogue names the sensor (else its payloads registered it)."""
        return self._catalogued[sid]

    def key(self, sid: int) -> str:
        c = self._cols
        return f"{c['enterprise'][sid]}/{c['site'][sid]}/{c['sensor'][sid]}"

    def meta(self, sid: int) -> dict[str, Any]:
        """All metadata of one sensor as a dict (for messages and the console, not the hot path)."""
        out: dict[str, Any] = {c: self._cols[c][sid] for c in TEXT_COLUMNS}
        out.update({c: self._nums[c][sid] for c in NUMBER_COLUMNS})
        out["setpoints"] = {k: d[sid] for k, d in self._setpoints.items() if sid in d}
        out["tags"] = {k: d[sid] for k, d in self._tags.items() if sid in d}
        out["catalogued"] = self._catalogued[sid]
        return out

    @property
    def columns(self) -> list[str]:
        return [*TEXT_COLUMNS, *NUMBER_COLUMNS, *self._setpoints, *self._tags, "catalogued"]

    def has_column(self, name: str) -> bool:
        return name in self.columns

    def column(self, name: str) -> np.ndarray:
        """A numpy array over all sensor ids (object for text, float64 with NaN for numbers).

        Cached until the registry changes; when only sensors were added since, the cached
        array is extended by the new ids rather than rebuilt.
        """
        hit = self._cache.get(name)
        if hit is not None and hit[0] == self.generation:
            return hit[2]
        with self._lock:
            n = len(self._catalogued)
            if hit is not None and hit[1] == self.meta_generation and len(hit[2]) <= n:
                old = hit[2]
                arr = np.concatenate([old, self._build(name, len(old), n)])
            else:
                arr = self._build(name, 0, n)
            self._cache[name] = (self.generation, self.meta_generation, arr)
            return arr

    def _build(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Column ``name`` for ids ``lo`` .. ``hi - 1``."""
        n = hi - lo
        if name in self._cols:
            return np.array(self._cols[name][lo:hi], dtype=object) if n else np.empty(0, object)
        if name in self._nums:
            return np.array(self._nums[name][lo:hi], dtype=np.float64)
        if name == "catalogued":
            return np.array(self._catalogued[lo:hi], dtype=bool)
        if name in self._setpoints:
            arr = np.full(n, np.nan)
            for k, v in self._setpoints[name].items():
                if lo <= k < hi:
                    arr[k - lo] = v
            return arr
        if name in self._tags:
            tags = np.full(n, "", dtype=object)
            for k, t in self._tags[name].items():
                if lo <= k < hi:
                    tags[k - lo] = t
            return tags
        raise KeyError(f"no sensor column {name!r} (have: {', '.join(self.columns)})")

    def setpoint_names(self) -> list[str]:
        return list(self._setpoints)
