"""Decode MQTT payloads (the four forms of DESIGN.md) into columnar batches.

1. one reading ``{"sensor": "CH4-0101", "ts": 1795880000123, "value": 0.42}``
2. a list of readings ``[{...}, {...}]``
3. a gateway envelope ``{"gateway": "GW-7", "ts": ..., "readings": [{...}]}`` (a reading
   without ``ts`` takes the envelope's)
4. columns ``{"ts": [...], "sensor": [...], "value": [...]}`` (``ts`` may be one value
   for all rows; optional ``kind``, ``unit``, ``quality`` columns or scalars)

``ts`` is epoch milliseconds or RFC 3339 text with an offset. Optional per reading:
``kind``, ``unit``, ``quality`` (``ok``, ``calibrating``, ``fault``).

Values must be JSON numbers (``true``/``false`` count as 1/0, for status points);
text such as ``"0.42"`` is rejected as non-numeric rather than guessed at.

Every unusable reading becomes a :class:`DeadLetter` with a reason; the good readings of
the same message still pass. Validation is whole-array numpy; the only per-reading
Python work is pulling fields out of the JSON objects (a comprehension), and the column
form needs none.

>>> from riskwatch.catalog import SensorRegistry
>>> dec = Decoder(SensorRegistry(), TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
>>> msg = dec.decode("rw/m1/f1/gw", b'[{"sensor":"A","ts":1795880000000,"value":0.4},'
...                  b'{"sensor":"B","ts":1795880000000,"value":"x"}]', 1795880000500000000)
>>> msg.batch.value.tolist(), [d.reason.value for d in msg.deadletters]
([0.4], ['non_numeric_value'])
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import Batch, Flags

__all__ = ["DeadLetter", "DecodedMessage", "Decoder"]

_MS = 1_000_000
_QUALITY = {None: 0, "ok": 0, "calibrating": int(Flags.CALIBRATING), "fault": int(Flags.FAULT)}


@dataclass(slots=True)
class DeadLetter:
    """One rejected reading (``index`` into the message) or a whole message (index None)."""

    reason: R
    detail: str
    topic: str
    index: int | None = None
    field: str | None = None
    reading: Any = None

    def to_json(self, received_ns: int) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "topic": self.topic,
            "index": self.index,
            "field": self.field,
            "reading": self.reading,
            "received": received_ns // _MS,
        }


@dataclass(slots=True)
class DecodedMessage:
    batch: Batch
    deadletters: list[DeadLetter] = field(default_factory=list)
    n_readings: int = 0  # readings in the message, good or bad


def _parse_rfc3339(s: str) -> int | None:
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:  # RFC 3339 requires an offset
        return None
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


class Decoder:
    """Turns (topic, payload) into a :class:`DecodedMessage`; thread-safe for one caller."""

    def __init__(
        self,
        registry: SensorRegistry,
        template: TopicTemplate,
        *,
        max_payload_bytes: int = 1_048_576,
        min_time_ns: int = 946_684_800_000_000_000,  # 2000-01-01
        max_future_s: float = 300.0,
        late_after_s: float = 120.0,
    ) -> None:
        self.registry = registry
        self.template = template
        self.max_payload_bytes = max_payload_bytes
        self.min_time_ns = min_time_ns
        self.max_future_ns = int(max_future_s * 1e9)
        self.late_after_ns = int(late_after_s * 1e9)

    # ------------------------------------------------------------------ entry point
    def decode(self, topic: str, payload: bytes, received_ns: int) -> DecodedMessage:
        if len(payload) > self.max_payload_bytes:
            return self._reject(
                R.TOO_LARGE, f"{len(payload)} bytes > limit {self.max_payload_bytes}", topic
            )
        tags = self.template.match(topic)
        if tags is None:
            return self._reject(
                R.TOPIC_MISMATCH, f"topic does not match {self.template.template!r}", topic
            )
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            # orjson refuses NaN/Infinity, which many gateways emit: let the stdlib parse
            # them so the non-finite reading alone is dead-lettered, not the whole message.
            try:
                obj = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                return self._reject(R.INVALID_JSON, str(exc), topic, reading=_preview(payload))
        enterprise = tags.get("enterprise", "")
        site = tags.get("site", "")
        gateway = tags.get("gateway", "")
        if isinstance(obj, dict):
            if "readings" in obj:
                rs = obj["readings"]
                if not isinstance(rs, list):
                    return self._reject(R.BAD_SHAPE, "'readings' must be a list", topic, "readings")
                gw = obj.get("gateway")
                if isinstance(gw, str) and gw:
                    gateway = gw
                return self._rows(rs, obj.get("ts"), topic, enterprise, site, gateway, received_ns)
            if isinstance(obj.get("value"), list) or isinstance(obj.get("sensor"), list):
                return self._columns(obj, topic, enterprise, site, gateway, received_ns)
            return self._rows([obj], None, topic, enterprise, site, gateway, received_ns)
        if isinstance(obj, list):
            return self._rows(obj, None, topic, enterprise, site, gateway, received_ns)
        return self._reject(
            R.BAD_SHAPE, "payload must be a reading, a list, an envelope or columns", topic
        )

    def _reject(
        self, reason: R, detail: str, topic: str, fld: str | None = None, reading: Any = None
    ) -> DecodedMessage:
        return DecodedMessage(
            Batch.empty(), [DeadLetter(reason, detail, topic, None, fld, reading)], 0
        )

    # ------------------------------------------------------------------ row forms
    def _rows(
        self,
        rs: list[Any],
        env_ts: Any,
        topic: str,
        enterprise: str,
        site: str,
        gateway: str,
        received_ns: int,
    ) -> DecodedMessage:
        n = len(rs)
        if n == 0:
            return DecodedMessage(Batch.empty(), [], 0)
        if all(type(r) is dict for r in rs):
            sensors = [r.get("sensor") for r in rs]
            values = [r.get("value") for r in rs]
            if env_ts is None:
                ts = [r.get("ts") for r in rs]
            else:
                ts = [r.get("ts", env_ts) for r in rs]
            has_meta = any(len(r) > 3 for r in rs)
            if has_meta:
                kinds = [r.get("kind") for r in rs]
                units = [r.get("unit") for r in rs]
                quality = [r.get("quality") for r in rs]
            else:
                kinds = units = quality = None
            bad_rows = np.zeros(n, dtype=bool)
        else:
            bad_rows = np.array([type(r) is not dict for r in rs])
            good = [r if type(r) is dict else {} for r in rs]
            sensors = [r.get("sensor") for r in good]
            values = [r.get("value") for r in good]
            ts = [r.get("ts", env_ts) for r in good]
            kinds = [r.get("kind") for r in good]
            units = [r.get("unit") for r in good]
            quality = [r.get("quality") for r in good]
        return self._finish(
            rs, sensors, values, ts, kinds, units, quality, bad_rows,
            topic, enterprise, site, gateway, received_ns,
        )  # fmt: skip

    # ------------------------------------------------------------------ column form
    def _columns(
        self,
        obj: dict[str, Any],
        topic: str,
        enterprise: str,
        site: str,
        gateway: str,
        received_ns: int,
    ) -> DecodedMessage:
        sensors = obj.get("sensor")
        values = obj.get("value")
        if not isinstance(sensors, list) or not isinstance(values, list):
            return self._reject(R.BAD_SHAPE, "columns need 'sensor' and 'value' lists", topic)
        n = len(values)
        cols: dict[str, list[Any] | None] = {}
        for name in ("ts", "kind", "unit", "quality"):
            v = obj.get(name)
            if isinstance(v, list):
                if len(v) != n:
                    return self._reject(
                        R.BAD_SHAPE, f"column '{name}' has {len(v)} rows, 'value' has {n}",
                        topic, name,
                    )  # fmt: skip
                cols[name] = v
            elif v is None:
                cols[name] = None
            else:
                cols[name] = [v] * n
        if len(sensors) != n:
            return self._reject(
                R.BAD_SHAPE, f"column 'sensor' has {len(sensors)} rows, 'value' has {n}",
                topic, "sensor",
            )  # fmt: skip
        ts = cols["ts"] if cols["ts"] is not None else [None] * n
        rows = _ColumnRows(obj)
        return self._finish(
            rows, sensors, values, ts, cols["kind"], cols["unit"], cols["quality"],
            np.zeros(n, dtype=bool), topic, enterprise, site, gateway, received_ns,
        )  # fmt: skip

    # ------------------------------------------------------------------ shared
    def _finish(
        self,
        rs: Sequence[Any],
        sensors: list[Any],
        values: list[Any],
        ts: list[Any],
        kinds: list[Any] | None,
        units: list[Any] | None,
        quality: list[Any] | None,
        bad_rows: np.ndarray,
        topic: str,
        enterprise: str,
        site: str,
        gateway: str,
        received_ns: int,
    ) -> DecodedMessage:
        n = len(values)
        reason = np.zeros(n, dtype=np.int16)  # 0 = ok, else index into _REASONS (+1)
        detail_field: dict[int, str] = {}

        def mark(mask: np.ndarray, r: R) -> None:
            m = mask & (reason == 0)
            if m.any():
                reason[m] = _REASON_CODE[r]

        mark(bad_rows, R.BAD_SHAPE)
        # sensor names
        sensor_ok = np.fromiter((type(s) is str and s != "" for s in sensors), bool, n)
        mark(~sensor_ok, R.MISSING_SENSOR)
        # values
        val = _to_float(values)
        if val is None:
            val = np.empty(n, dtype=np.float64)
            missing = np.zeros(n, dtype=bool)
            nonnum = np.zeros(n, dtype=bool)
            for i, v in enumerate(values):
                t = type(v)
                if t is float or t is int or t is bool:
                    val[i] = v
                elif v is None:
                    missing[i] = True
                    val[i] = math.nan
                else:
                    nonnum[i] = True
                    val[i] = math.nan
            mark(missing, R.MISSING_VALUE)
            mark(nonnum, R.NON_NUMERIC_VALUE)
        mark(~np.isfinite(val), R.NON_FINITE_VALUE)
        # timestamps
        t_ns, ts_bad = self._times(ts, n)
        mark(ts_bad, R.BAD_TIMESTAMP)
        absurd = (t_ns < self.min_time_ns) | (t_ns > received_ns + self.max_future_ns)
        mark(absurd & ~ts_bad, R.ABSURD_TIMESTAMP)
        # quality flags
        flags = np.zeros(n, dtype=np.uint8)
        if quality is not None:
            try:
                flags[:] = [_QUALITY[q] for q in quality]
            except (KeyError, TypeError):
                qbad = np.zeros(n, dtype=bool)
                for i, q in enumerate(quality):
                    code = _QUALITY.get(q) if isinstance(q, (str, type(None))) else None
                    if code is None:
                        qbad[i] = True
                    else:
                        flags[i] = code
                mark(qbad, R.BAD_QUALITY)
        late = (received_ns - t_ns) > self.late_after_ns
        flags[late] |= int(Flags.LATE)
        # sensor ids (only for rows still good)
        good = reason == 0
        ids = np.full(n, -1, dtype=np.int32)
        if good.any():
            gi = np.flatnonzero(good)
            all_good = len(gi) == n
            names = sensors if all_good else [sensors[i] for i in gi]
            k = None if kinds is None else (kinds if all_good else [kinds[i] for i in gi])
            u = None if units is None else (units if all_good else [units[i] for i in gi])
            got = self.registry.intern(enterprise, site, names, kinds=k, units=u, gateway=gateway)
            ids[gi] = got
            mark(good & (ids < 0), R.UNKNOWN_SENSOR)
            good = reason == 0
        dls: list[DeadLetter] = []
        if not good.all():
            for i in np.flatnonzero(~good).tolist():
                r = _REASONS[reason[i] - 1]
                dls.append(
                    DeadLetter(
                        r,
                        _DETAIL[r],
                        topic,
                        i,
                        detail_field.get(i, _FIELD_OF[r]),
                        _jsonable(rs[i]),
                    )
                )
            idx = np.flatnonzero(good)
            batch = Batch(
                t_ns[idx], ids[idx], val[idx], flags[idx], np.full(len(idx), received_ns, np.int64)
            )
        else:
            batch = Batch(t_ns, ids, val, flags, np.full(n, received_ns, np.int64))
        return DecodedMessage(batch, dls, n)

    def _times(self, ts: list[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch-ms ints / floats or RFC 3339 strings -> ns, plus a bad mask."""
        try:
            arr = np.array(ts, dtype=np.int64)
            if len(arr) == n and not any(type(x) is bool for x in ts):
                return arr * _MS, np.zeros(n, dtype=bool)
        except (TypeError, ValueError, OverflowError):
            pass
        out = np.zeros(n, dtype=np.int64)
        bad = np.zeros(n, dtype=bool)
        for i, t in enumerate(ts):
            tt = type(t)
            if tt is int:
                if -(2**62) // _MS < t < 2**62 // _MS:
                    out[i] = t * _MS
                else:
                    bad[i] = True
            elif tt is float and math.isfinite(t) and abs(t) < 2**62 / _MS:
                out[i] = round(t * _MS)
            elif tt is str:
                v = _parse_rfc3339(t)
                if v is None:
                    bad[i] = True
                else:
                    out[i] = v
            else:
                bad[i] = True
        return out, bad


def _to_float(values: list[Any]) -> np.ndarray | None:
    """Fast path: every value is a JSON number (or bool)."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1:
        return None
    # np.array turns numeric strings like "1.5" into floats and None into nan: recheck
    if arr.dtype == np.float64 and not all(
        type(v) is float or type(v) is int or type(v) is bool for v in values
    ):
        return None
    return arr


class _ColumnRows:
    """Lazy row view of a column payload, for dead-letter records only."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def __len__(self) -> int:
        return len(self.obj.get("value") or [])

    def __getitem__(self, i: int) -> dict[str, Any]:
        out = {}
        for k, v in self.obj.items():
            out[k] = v[i] if isinstance(v, list) and i < len(v) else v
        return out


def _jsonable(x: Any) -> Any:
    try:
        orjson.dumps(x)
        return x
    except TypeError:
        return repr(x)


def _preview(payload: bytes, limit: int = 512) -> str:
    return payload[:limit].decode("utf-8", "replace")


_REASONS = list(R)
_REASON_CODE = {r: i + 1 for i, r in enumerate(_REASONS)}
_FIELD_OF: dict[R, str | None] = {
    R.MISSING_VALUE: "value",
    R.NON_NUMERIC_VALUE: "value",
    R.NON_FINITE_VALUE: "value",
    R.MISSING_SENSOR: "sensor",
    R.BAD_TIMESTAMP: "ts",
    R.ABSURD_TIMESTAMP: "ts",
    R.UNKNOWN_SENSOR: "sensor",
    R.BAD_QUALITY: "quality",
}
_DETAIL: dict[R, str] = {
    R.BAD_SHAPE: "reading is not a JSON object",
    R.MISSING_VALUE: "reading has no 'value'",
    R.NON_NUMERIC_VALUE: "'value' is not a JSON number",
    R.NON_FINITE_VALUE: "'value' is not finite",
    R.MISSING_SENSOR: "reading has no 'sensor' (non-empty string)",
    R.BAD_TIMESTAMP: "'ts' is neither epoch milliseconds nor RFC 3339 text with an offset",
    R.ABSURD_TIMESTAMP: "'ts' is before ingest.min_time or too far in the future",
    R.UNKNOWN_SENSOR: "sensor is not in the catalogue (ingest.strict is on)",
    R.BAD_QUALITY: "'quality' must be ok, calibrating or fault",
}
for _r in R:
    _FIELD_OF.setdefault(_r, None)
    _DETAIL.setdefault(_r, _r.value)
