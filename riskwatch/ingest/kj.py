"""KJ monitoring files (MT/T 1201.1 networking upload): ``CDDY`` point definitions,
``CDSS`` real-time values, ``YCBJ`` abnormal/alarm records, decoded into the engine's
batches, catalogue and signals.

The layouts are only partly confirmed (docs/ingest.md says which parts, and what we
assumed); the parser is tolerant where that is safe and precise where it is not:

- file name ``<mine code>_<TYPE>_<yyyyMMddHHmmss>.txt`` (the watcher refuses others);
- text in UTF-8 or GB18030 (GBK); records end with ``~`` (one per line is usual, but
  line breaks are not required), fields are separated by ``;``, the file may end with
  ``||`` (or ``‖``); blank lines and spaces around fields are ignored;
- an optional header record ``<mine code>;<file time>[;...]`` (first field the mine code
  of the file name, at most three fields);
- unknown trailing fields are ignored; too few fields for the type, or a field that does
  not parse, dead-letters that record alone, naming file, line, record and field.

``CDSS`` ``code;type;location;value;unit;state;time``: ``state`` is a bitmask (decimal or
``0x`` hex; assumed bits: 1 alarm, 2 power-off, 4 fault, 8 calibrating): fault and
calibrating become the readings' quality flags; a reading at or above the point's
power-off limit without the power-off bit means the mine's system did not cut power:
``kj_power_off_mismatch`` (red) fires on the point, and resolves when the two agree again.

``CDDY`` ``code;type;location;unit;range_low;range_high;alarm_high;alarm_low;
release_high;release_low;power_off;power_restore[;x;y;z]``: each point becomes a
catalogue entry (setpoints ``alarm``, ``low``, ``alarm_release``, ``power_off``,
``restore``); a limit looser than the regulatory cap of its kind (``adapters.kj.caps``)
is logged as a warning, counted, and replaced by the cap.

``YCBJ`` ``code;type;location;abnormal_type;start_time[;end_time;...]``: the mine's own
record becomes the ``kj_record`` signal on the point (yellow; resolved by an end time),
beside our own alerts.

>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.config.adapters import KjConfig
>>> from riskwatch.ingest.decode import Decoder
>>> from riskwatch.ingest.health import AdapterSignals
>>> from riskwatch.ingest.topics import TopicTemplate
>>> reg = SensorRegistry()
>>> json = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
>>> kj = KjDecoder(KjConfig(drop_dir="."), json, AdapterSignals())
>>> cddy = "M1;2026-12-04 10:00:00~\\nCH4-01;甲烷;回风巷;%;0;4;1.2;;1.0;;1.5;1.0~\\n||"
>>> out = kj.decode("kj/M1_CDDY_20261204100000.txt", cddy.encode(), 1_796_378_400_000_000_000)
>>> reg.meta(0)["kind"], reg.meta(0)["setpoints"]["alarm"]  # 1.2 is looser than the 1.0 cap
('ch4', 1.0)
>>> cdss = ("CH4-01;甲烷;回风巷;0.42;%;0;2026-12-04 10:00:10~\\n"
...         "CH4-01;甲烷;回风巷;x;%;0;2026-12-04 10:00:20~||")
>>> out = kj.decode("kj/M1_CDSS_20261204100010.txt", cdss.encode(), 1_796_378_420_000_000_000)
>>> out.batch.value.tolist(), [(d.reason.value, d.line, d.field) for d in out.deadletters]
([0.42], [('bad_field', 2, 'value')])
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from riskwatch.catalog import CatalogEntry
from riskwatch.config.adapters import KjCap, KjConfig
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.deadletter import DeadLetter
from riskwatch.ingest.decode import DecodedMessage, Decoder
from riskwatch.ingest.health import AdapterSignals
from riskwatch.model import Batch, Level, SignalState

__all__ = ["FILE_NAME", "KjDecoder", "KjFileType", "KjRecord", "parse_name", "split_records"]

log = logging.getLogger(__name__)

_MS = 1_000_000
#: ``<mine code>_<TYPE>_<yyyyMMddHHmmss>.txt`` (case of the extension ignored)
FILE_NAME = re.compile(r"^(?P<mine>[^_/\\]+)_(?P<type>[A-Za-z]{4})_(?P<time>\d{14})\.txt$",
                       re.IGNORECASE)  # fmt: skip
MISMATCH_RULE = "kj_power_off_mismatch"
RECORD_RULE = "kj_record"

# state bits (assumed; docs/ingest.md)
ALARM_BIT, POWER_OFF_BIT, FAULT_BIT, CALIBRATING_BIT = 1, 2, 4, 8

#: YCBJ abnormal-type codes 001..010 (secondary: names as consumer code prints them)
ABNORMAL_TYPES = {
    "001": "alarm", "002": "power-off", "003": "fault", "004": "calibrating",
    "005": "power-off failure", "006": "feed abnormal", "007": "overrange",
    "008": "communication lost", "009": "sub-station fault", "010": "other",
}  # fmt: skip


class KjFileType(StrEnum):
    CDDY = "CDDY"
    CDSS = "CDSS"
    YCBJ = "YCBJ"


@dataclass(frozen=True, slots=True)
class KjRecord:
    """One ``~``-terminated record: its fields, the line it starts on, its number (1-based)."""

    fields: list[str]
    line: int
    number: int
    text: str


def parse_name(name: str) -> tuple[str, str, str] | None:
    """(mine code, TYPE, time text) of a KJ file name, or None.

    >>> parse_name("620100001_CDSS_20261204101500.txt")
    ('620100001', 'CDSS', '20261204101500')
    >>> parse_name("notes.txt") is None
    True
    """
    m = FILE_NAME.match(name)
    return (m["mine"], m["type"].upper(), m["time"]) if m else None


def split_records(text: str) -> list[KjRecord]:
    """The records of a file, each with the line it starts on.

    >>> [(r.fields, r.line) for r in split_records("a;b~\\n\\nc; d ~e~\\n||")]
    [(['a', 'b'], 1), (['c', 'd'], 3), (['e'], 3)]
    """
    out: list[KjRecord] = []
    line = 1
    body = text.rstrip()
    for end in ("||", "‖"):
        if body.endswith(end):
            body = body[: -len(end)]
            break
    for chunk in body.split("~"):
        stripped = chunk.lstrip()
        start_line = line + chunk[: len(chunk) - len(stripped)].count("\n")
        line += chunk.count("\n")
        rec = stripped.strip()
        if not rec or rec in ("||", "‖"):
            continue
        fields = [f.strip() for f in rec.split(";")]
        out.append(KjRecord(fields, start_line, len(out) + 1, rec))
    return out


def _decode_text(data: bytes) -> str | None:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return None


class _BadField(Exception):
    def __init__(self, field: str, why: str) -> None:
        self.field = field
        self.why = why


def _num(fields: list[str], i: int, name: str, *, optional: bool = True) -> float:
    v = fields[i] if i < len(fields) else ""
    if v == "":
        if optional:
            return math.nan
        raise _BadField(name, "missing")
    try:
        x = float(v)
    except ValueError:
        raise _BadField(name, f"not a number: {v!r}") from None
    if not math.isfinite(x):
        raise _BadField(name, f"not a finite number: {v!r}")
    return x


class KjDecoder:
    """Turns one KJ file (the watcher's message) into readings, catalogue entries and
    signals; engine thread only."""

    CDSS_FIELDS = ("code", "type", "location", "value", "unit", "state", "time")
    CDDY_FIELDS = ("code", "type", "location", "unit", "range_low", "range_high",
                   "alarm_high", "alarm_low", "release_high", "release_low", "power_off",
                   "power_restore", "x", "y", "z")  # fmt: skip
    YCBJ_FIELDS = ("code", "type", "location", "abnormal_type", "start_time", "end_time")
    _MIN_FIELDS: ClassVar[dict[KjFileType, int]] = {
        KjFileType.CDSS: 7, KjFileType.CDDY: 12, KjFileType.YCBJ: 5,
    }

    def __init__(
        self, cfg: KjConfig, decoder: Decoder, signals: AdapterSignals, *,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.decoder = decoder
        self.signals = signals
        self.tz = timezone(timedelta(hours=cfg.utc_offset_h))
        self._mismatch: set[int] = set()  # sensor ids with kj_power_off_mismatch firing
        self._times: dict[str, int] = {}  # time text -> epoch ms
        reg = metrics_registry or CollectorRegistry()
        self.files = Counter("riskwatch_kj_files", "KJ files decoded by type", ["type"],
                             registry=reg)  # fmt: skip
        self.capped = Counter("riskwatch_kj_limits_capped",
                              "CDDY limits looser than the regulatory cap (the cap was used)",
                              ["setpoint"], registry=reg)  # fmt: skip
        self.records = Counter("riskwatch_kj_records", "YCBJ records by abnormal type",
                               ["type"], registry=reg)  # fmt: skip
        self.mismatches = Counter("riskwatch_kj_power_off_mismatches",
                                  "CDSS readings at or above power-off without the mine's "
                                  "power-off state", registry=reg)  # fmt: skip

    # ------------------------------------------------------------------ entry point
    def decode(self, topic: str, payload: bytes, received_ns: int) -> DecodedMessage:
        name = topic.rpartition("/")[2]
        parsed = parse_name(name)
        if parsed is None:
            return _whole(R.BAD_FILE_NAME, f"{name}: not <mine>_<TYPE>_<yyyyMMddHHmmss>.txt",
                          topic)  # fmt: skip
        mine, ftype, _ = parsed
        try:
            kind = KjFileType(ftype)
        except ValueError:
            log.info("%s: KJ file type %s is not read (only CDDY, CDSS, YCBJ)", name, ftype)
            return DecodedMessage(Batch.empty(), [], 0)
        text = _decode_text(payload)
        if text is None:
            return _whole(R.BAD_ENCODING, f"{name}: neither UTF-8 nor GB18030 text", topic)
        self.files.labels(kind.value).inc()
        records = split_records(text)
        if records and records[0].fields[0] == mine and len(records[0].fields) <= 3:
            records = records[1:]  # the header: mine code and file time
        enterprise = self.cfg.enterprises.get(mine, mine)
        dls: list[DeadLetter] = []
        good: list[KjRecord] = []
        need = self._MIN_FIELDS[kind]
        names = {KjFileType.CDSS: self.CDSS_FIELDS, KjFileType.CDDY: self.CDDY_FIELDS,
                 KjFileType.YCBJ: self.YCBJ_FIELDS}[kind]  # fmt: skip
        for r in records:
            if len(r.fields) < need:
                dls.append(self._dl(R.FIELD_COUNT, name, r, names[len(r.fields)],
                                    f"{len(r.fields)} fields, a {kind} record needs {need}"))
            else:
                good.append(r)
        if kind is KjFileType.CDDY:
            dls += self._cddy(name, enterprise, good)
            return DecodedMessage(Batch.empty(), dls, len(records))
        if kind is KjFileType.YCBJ:
            dls += self._ycbj(name, enterprise, good)
            return DecodedMessage(Batch.empty(), dls, len(records))
        out = self._cdss(topic, name, enterprise, good, received_ns)
        return DecodedMessage(out.batch, dls + out.deadletters, len(records))

    # ------------------------------------------------------------------ helpers
    def _dl(self, reason: R, name: str, r: KjRecord, field: str, why: str) -> DeadLetter:
        return DeadLetter(reason, f"{name}:{r.line}: record {r.number}: field {field}: {why}",
                          f"kj/{name}", r.number, field, r.text, line=r.line)  # fmt: skip

    def _time_ms(self, v: str, field: str) -> int:
        """Epoch ms of a KJ local time (cached: a file's records share a few times, which
        vendors truncate to tens of seconds)."""
        hit = self._times.get(v)
        if hit is not None:
            return hit
        if len(self._times) > 100_000:
            self._times.clear()
        ms = self._parse_time(v, field)
        self._times[v] = ms
        return ms

    def _parse_time(self, v: str, field: str) -> int:
        if len(v) == 19 and v[4] == "-" and v[10] in " T":  # the usual form, C-fast
            try:
                return int(datetime.fromisoformat(v).replace(tzinfo=self.tz).timestamp()) * 1000
            except ValueError:
                pass
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y/%m/%d %H:%M:%S",
                    "%Y-%m-%dT%H:%M:%S"):  # fmt: skip
            try:
                dt = datetime.strptime(v, fmt).replace(tzinfo=self.tz)
            except ValueError:
                continue
            return int(dt.timestamp()) * 1000
        raise _BadField(field, f"not a time yyyy-MM-dd HH:mm:ss: {v!r}")

    def _kind(self, type_text: str) -> str:
        return self.cfg.kinds.get(type_text, type_text.lower())

    # ------------------------------------------------------------------ CDDY
    def _cddy(self, name: str, enterprise: str, records: list[KjRecord]) -> list[DeadLetter]:
        dls: list[DeadLetter] = []
        entries: list[CatalogEntry] = []
        for r in records:
            f = r.fields
            try:
                nums = {n: _num(f, i, n) for i, n in enumerate(self.CDDY_FIELDS) if i >= 4}
            except _BadField as e:
                dls.append(self._dl(R.BAD_FIELD, name, r, e.field, e.why))
                continue
            if not f[0]:
                dls.append(self._dl(R.BAD_FIELD, name, r, "code", "empty point code"))
                continue
            lo, hi = nums["range_low"], nums["range_high"]
            if not (math.isnan(lo) or math.isnan(hi)) and lo >= hi:
                dls.append(self._dl(R.BAD_FIELD, name, r, "range_high",
                                    f"{hi:g} is not above range_low {lo:g}"))  # fmt: skip
                continue
            kind = self._kind(f[1])
            setpoints = {"alarm": nums["alarm_high"], "low": nums["alarm_low"],
                         "alarm_release": nums["release_high"], "power_off": nums["power_off"],
                         "restore": nums["power_restore"]}  # fmt: skip
            setpoints = {k: v for k, v in setpoints.items() if not math.isnan(v)}
            self._cap(setpoints, self.cfg.caps.get(kind), name, r, f[0])
            tags = {"kj_type": f[1]}
            for axis in ("x", "y", "z"):
                if not math.isnan(nums[axis]):
                    tags[axis] = f"{nums[axis]:g}"
            entries.append(CatalogEntry(
                enterprise=enterprise, site=self.cfg.site, sensor=f[0], kind=kind, unit=f[3],
                location=f[2], domain="coal_mine", range_low=lo, range_high=hi,
                setpoints=setpoints, tags=tags, file=name, line=r.line,
            ))  # fmt: skip
        if entries:
            self.decoder.registry.apply_catalog(entries)
            log.info("%s: %d KJ point definitions in the catalogue", name, len(entries))
        return dls

    def _cap(
        self, sp: dict[str, float], cap: KjCap | None, name: str, r: KjRecord, code: str
    ) -> None:
        if cap is None:
            return
        for key, limit, looser in (
            ("alarm", cap.alarm, lambda v, c: v > c),
            ("power_off", cap.power_off, lambda v, c: v > c),
            ("restore", cap.restore, lambda v, c: v > c),
            ("low", cap.low, lambda v, c: v < c),
        ):
            if limit is None or key not in sp or not looser(sp[key], limit):
                continue
            log.warning("%s:%d: point %s: the mine's %s limit %g is looser than the "
                        "regulatory cap %g: the cap is used", name, r.line, code, key,
                        sp[key], limit)  # fmt: skip
            self.capped.labels(key).inc()
            sp[key] = limit

    # ------------------------------------------------------------------ CDSS
    def _cdss(
        self, topic: str, name: str, enterprise: str, records: list[KjRecord], received_ns: int
    ) -> DecodedMessage:
        dls: list[DeadLetter] = []
        rows: list[KjRecord] = []
        sensors: list[str] = []
        values: list[float] = []
        ts: list[int] = []
        kinds: list[str] = []
        units: list[str] = []
        quality: list[str] = []
        states: list[int] = []
        for r in records:
            f = r.fields
            try:
                if not f[0]:
                    raise _BadField("code", "empty point code")
                v = _num(f, 3, "value", optional=False)
                st = f[5]
                try:
                    state = int(st, 16) if st.lower().startswith("0x") else int(st or "0")
                except ValueError:
                    raise _BadField("state", f"not a bitmask: {st!r}") from None
                t = self._time_ms(f[6], "time")
            except _BadField as e:
                dls.append(self._dl(R.BAD_FIELD, name, r, e.field, e.why))
                continue
            rows.append(r)
            sensors.append(f[0])
            values.append(v)
            ts.append(t)
            kinds.append(self._kind(f[1]))
            units.append(f[4])
            states.append(state)
            quality.append("fault" if state & FAULT_BIT else
                           "calibrating" if state & CALIBRATING_BIT else "ok")  # fmt: skip
        if not rows:
            return DecodedMessage(Batch.empty(), dls, len(dls))
        cols: dict[str, Any] = {"ts": ts, "sensor": sensors, "value": values, "kind": kinds,
                                "unit": units, "quality": quality}  # fmt: skip
        out = self.decoder.decode_columns(topic, cols, enterprise, self.cfg.site, "kj",
                                          received_ns)  # fmt: skip
        for d in out.deadletters:
            if d.index is not None and d.index < len(rows):
                r = rows[d.index]
                d.detail = f"{name}:{r.line}: record {r.number}: field {d.field}: {d.detail}"
                d.topic, d.index, d.line, d.reading = f"kj/{name}", r.number, r.line, r.text
        self._power_off_check(enterprise, sensors, values, states, ts)
        return DecodedMessage(out.batch, dls + out.deadletters, len(rows) + len(dls))

    def _power_off_check(
        self, enterprise: str, sensors: list[str], values: list[float], states: list[int],
        ts: list[int],
    ) -> None:  # fmt: skip
        """Our power-off limit against the mine's power-off state, over the file's columns;
        a signal only where a point's agreement changed (Python touches those alone)."""
        reg = self.decoder.registry
        if "power_off" not in reg.setpoint_names():
            return
        ids = reg.lookup([f"{enterprise}/{self.cfg.site}/"] * len(sensors), sensors)
        known = ids >= 0
        if not known.any():
            return
        sid, v = ids[known], np.asarray(values, dtype=np.float64)[known]
        st, t = np.asarray(states, dtype=np.int64)[known], np.asarray(ts, dtype=np.int64)[known]
        limit = reg.column("power_off")[sid]
        has = ~np.isnan(limit)
        if not has.any():
            return
        sid, v, st, t, limit = sid[has], v[has], st[has], t[has], limit[has]
        off = (st & POWER_OFF_BIT) != 0
        bad = (v >= limit) & ~off & ((st & FAULT_BIT) == 0)
        agree = (off | (v < limit)) & ~bad
        # per point: did any reading disagree (the first one fires), and does the file's
        # last reading of it agree (then it resolves); records are in time order
        uniq, inv = np.unique(sid, return_inverse=True)
        n = len(sid)
        first_bad = np.full(len(uniq), n)
        np.minimum.at(first_bad, inv[bad], np.flatnonzero(bad))
        last = np.zeros(len(uniq), dtype=np.int64)
        np.maximum.at(last, inv, np.arange(n))
        firing = np.fromiter((u in self._mismatch for u in uniq.tolist()), bool, len(uniq))
        fire = (first_bad < n) & ~firing
        resolve = (firing | fire) & agree[last]
        for k in np.flatnonzero(fire | resolve).tolist():  # only points that changed
            p = int(uniq[k])
            if fire[k]:
                j = int(first_bad[k])
                self._mismatch.add(p)
                self.mismatches.inc()
                self.signals.emit(
                    MISMATCH_RULE, "", int(t[j]) * _MS, SignalState.FIRING, Level.RED,
                    f"{reg.key(p)}: {v[j]:g} at or above power-off {limit[j]:g} but the "
                    "mine's KJ system reports no power-off",
                    sensor=p, value=float(v[j]), threshold=float(limit[j]),
                )
                log.warning("%s: %g >= power-off %g without the KJ power-off state",
                            reg.key(p), v[j], limit[j])  # fmt: skip
            if resolve[k]:
                i = int(last[k])
                self._mismatch.discard(p)
                self.signals.emit(
                    MISMATCH_RULE, "", int(t[i]) * _MS, SignalState.RESOLVED, None,
                    f"{reg.key(p)}: the mine's power-off state agrees again",
                    sensor=p, value=float(v[i]), threshold=float(limit[i]),
                )

    # ------------------------------------------------------------------ YCBJ
    def _ycbj(self, name: str, enterprise: str, records: list[KjRecord]) -> list[DeadLetter]:
        dls: list[DeadLetter] = []
        reg = self.decoder.registry
        for r in records:
            f = r.fields
            try:
                if not f[0]:
                    raise _BadField("code", "empty point code")
                code = f[3].zfill(3)
                if code not in ABNORMAL_TYPES:
                    raise _BadField("abnormal_type", f"not one of 001..010: {f[3]!r}")
                start = self._time_ms(f[4], "start_time")
                end = self._time_ms(f[5], "end_time") if len(f) > 5 and f[5] else None
            except _BadField as e:
                dls.append(self._dl(R.BAD_FIELD, name, r, e.field, e.why))
                continue
            what = ABNORMAL_TYPES[code]
            self.records.labels(code).inc()
            ids = reg.intern(enterprise, self.cfg.site, [f[0]], kinds=[self._kind(f[1])])
            sid = int(ids[0])
            key = f"{enterprise}/{self.cfg.site}/{f[0]}"
            group = "" if sid >= 0 else key
            msg = f"{key} ({f[2]}): the mine's KJ system recorded {what} ({code})"
            log.info("%s:%d: %s", name, r.line, msg)
            self.signals.emit(RECORD_RULE, group, start * _MS, SignalState.FIRING,
                              Level.YELLOW, msg, sensor=sid)  # fmt: skip
            if end is not None:
                self.signals.emit(RECORD_RULE, group, end * _MS, SignalState.RESOLVED, None,
                                  f"{msg}: ended", sensor=sid)  # fmt: skip
        return dls


def _whole(reason: R, detail: str, topic: str) -> DecodedMessage:
    return DecodedMessage(Batch.empty(), [DeadLetter(reason, detail, topic)], 0)
