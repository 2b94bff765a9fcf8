"""Decode MQTT payloads (the four forms of the README's MQTT contract) into columnar batches.

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
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import EngineConfig
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.columns import ColumnAccumulator as Columns
from riskwatch.ingest.deadletter import DeadLetter
from riskwatch.ingest.limits import SensorLimits
from riskwatch.ingest.text import bad_text, mark_bad_text, may_hold_surrogates
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import Batch, Flags, concat_batches

__all__ = ["DeadLetter", "DecodedMessage", "Decoder"]

log = logging.getLogger(__name__)

_MS = 1_000_000
#: A reading's time must fit int64 nanoseconds (1677-09-21 .. 2262-04-11); outside, it is
#: marked with this sentinel, below any ``min_time``, so it is dead-lettered as absurd.
_OUT_OF_RANGE_NS = np.iinfo(np.int64).min
_INT64_NS_MAX = np.iinfo(np.int64).max
_REFUSED = -2  # a new sensor the limits did not admit
_QUALITY = {None: 0, "ok": 0, "calibrating": int(Flags.CALIBRATING), "fault": int(Flags.FAULT)}


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
    ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    return ns if -_INT64_NS_MAX <= ns <= _INT64_NS_MAX else _OUT_OF_RANGE_NS


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
        max_deadletters_per_message: int = 100,
        limits: SensorLimits | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.max_deadletters_per_message = max_deadletters_per_message
        self.template = template
        self.max_payload_bytes = max_payload_bytes
        self.min_time_ns = min_time_ns
        self.max_future_ns = int(max_future_s * 1e9)
        self.late_after_ns = int(late_after_s * 1e9)
        # "enterprise/site/" -> {sensor: id}: ids of known keys never change, so hits are
        # cached for good; a lookup then costs one dict get per reading and no key string
        self._id_cache: dict[str, dict[str, int]] = {}

    @classmethod
    def from_config(cls, cfg: EngineConfig, registry: SensorRegistry) -> Decoder:
        """The decoder of ``mqtt.topic_template``, ``mqtt.max_payload_bytes`` and the
        ``ingest`` limits (``min_time``, ``max_future_s``, ``late_after_s``)."""
        return cls(
            registry, TopicTemplate(cfg.mqtt.topic_template),
            max_payload_bytes=cfg.mqtt.max_payload_bytes, min_time_ns=cfg.ingest.min_time_ns,
            max_future_s=cfg.ingest.max_future_s, late_after_s=cfg.ingest.late_after_s,
            max_deadletters_per_message=cfg.ingest.deadletter.max_per_message,
            limits=SensorLimits(per_enterprise=cfg.ingest.max_sensors_per_enterprise,
                                per_minute=cfg.ingest.max_new_sensors_per_minute),
        )  # fmt: skip

    # ------------------------------------------------------------------ entry points
    def decode(self, topic: str, payload: bytes, received_ns: int) -> DecodedMessage:
        """Decode one message."""
        return self.decode_many([(topic, payload, received_ns)])

    def decode_many(self, msgs: Sequence[tuple[str, bytes, int]]) -> DecodedMessage:
        """Decode many ``(topic, payload, received_ns)`` messages into one batch.

        Per message there is a little Python work (topic, JSON, shape); all validation,
        interning and flagging then runs once over the columns of every message, which
        is what makes small messages (one reading each) cheap.
        """
        try:
            return self._decode_many(msgs)
        except Exception:  # a decoder bug must not stop ingest: find the message, keep it
            if len(msgs) == 1:
                topic, payload, _ = msgs[0]
                log.exception("decoding a message on %s failed; dead-lettered", topic)
                return DecodedMessage(Batch.empty(), [DeadLetter(
                    R.DECODE_ERROR, "the decoder failed on this message (see the engine log)",
                    topic, None, None, _preview(payload),
                )], 0)  # fmt: skip
        parts = [self.decode_many([m]) for m in msgs]  # one by one: only the culprit is lost
        return DecodedMessage(
            concat_batches([p.batch for p in parts]),
            [d for p in parts for d in p.deadletters],
            sum(p.n_readings for p in parts),
        )

    def _decode_many(self, msgs: Sequence[tuple[str, bytes, int]]) -> DecodedMessage:
        acc = Columns()
        dls: list[tuple[int, DeadLetter]] = []  # (message position, dead letter)
        for pos, (topic, payload, received) in enumerate(msgs):
            acc.pos = pos
            err = self._parse_one(topic, payload, received, acc)
            if err is not None:
                dls.append((pos, err))
        if not acc.values:
            return DecodedMessage(Batch.empty(), [d for _, d in dls], 0)
        return self._finish(acc, dls)

    def _parse_one(
        self, topic: str, payload: bytes, received: int, acc: Columns
    ) -> DeadLetter | None:
        if len(payload) > self.max_payload_bytes:
            return DeadLetter(
                R.TOO_LARGE, f"{len(payload)} bytes > limit {self.max_payload_bytes}", topic
            )
        tags = self.template.match(topic)
        if tags is None:
            return DeadLetter(
                R.TOPIC_MISMATCH, f"topic does not match {self.template.template!r}", topic
            )
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if str(exc).startswith("depth limit"):
                return DeadLetter(R.TOO_DEEP, "JSON nested deeper than 1024 levels", topic,
                                  None, None, _preview(payload))  # fmt: skip
            # orjson refuses NaN/Infinity, which many gateways emit, and integers beyond 64
            # bits: let the stdlib parse them so the bad reading alone is dead-lettered, not
            # the whole message. The stdlib is laxer about text, so that is checked here.
            try:
                obj = json.loads(payload.decode("utf-8"))
            except RecursionError:
                return DeadLetter(R.TOO_DEEP, "JSON nested too deeply", topic, None, None,
                                  _preview(payload))  # fmt: skip
            except (ValueError, UnicodeDecodeError):
                return DeadLetter(R.INVALID_JSON, str(exc), topic, None, None, _preview(payload))
            if may_hold_surrogates(payload):
                where = mark_bad_text(obj)
                if where is not None:
                    return DeadLetter(R.BAD_TEXT, "text with a lone UTF-16 surrogate (not "
                                      "valid UTF-8)", topic, None, where, _preview(payload))
        enterprise = tags.get("enterprise", "")
        site = tags.get("site", "")
        gateway = tags.get("gateway", "")
        if type(obj) is dict:
            if "readings" in obj:
                rs = obj["readings"]
                if type(rs) is not list:
                    return DeadLetter(
                        R.BAD_SHAPE, "'readings' must be a list", topic, None, "readings"
                    )
                gw = obj.get("gateway")
                if isinstance(gw, str) and gw:
                    if gateway and gw != gateway:  # identity is the topic's (broker ACLs)
                        return DeadLetter(
                            R.TOPIC_MISMATCH, f"payload gateway {gw!r} contradicts the "
                            f"topic's {gateway!r}", topic, None, "gateway",
                        )  # fmt: skip
                    gateway = gw
                acc.add_rows(rs, obj.get("ts"), payload, topic, enterprise, site, gateway, received)
                return None
            if type(obj.get("value")) is list or type(obj.get("sensor")) is list:
                return acc.add_columns(obj, payload, topic, enterprise, site, gateway, received)
            acc.add_rows([obj], None, payload, topic, enterprise, site, gateway, received)
            return None
        if type(obj) is list:
            acc.add_rows(obj, None, payload, topic, enterprise, site, gateway, received)
            return None
        return DeadLetter(
            R.BAD_SHAPE, "payload must be a reading, a list, an envelope or columns", topic
        )

    def decode_columns(
        self, topic: str, cols: dict[str, Any], enterprise: str, site: str, gateway: str,
        received_ns: int,
    ) -> DecodedMessage:  # fmt: skip
        """Decode readings an adapter (Sparkplug, KJ files) already split into the column
        form (``ts`` in ms, ``sensor``, ``value``, optional ``kind``, ``unit``,
        ``quality``), with the identity the adapter decided: the same validation,
        interning, limits and dead letters as an MQTT message of that form on ``topic``
        (the dead letters' ``index`` is the row)."""
        acc = Columns()
        payload = orjson.dumps(cols)  # re-read only to show the rows of dead letters
        err = acc.add_columns(cols, payload, topic, enterprise, site, gateway, received_ns)
        if err is not None:
            return DecodedMessage(Batch.empty(), [err], 0)
        if not acc.values:
            return DecodedMessage(Batch.empty(), [], 0)
        return self._finish(acc, [])

    # ------------------------------------------------------------------ shared
    def _finish(self, acc: Columns, dls: list[tuple[int, DeadLetter]]) -> DecodedMessage:
        sensors, values, ts = acc.sensors, acc.values, acc.ts
        n = len(values)
        reason = np.zeros(n, dtype=np.int16)  # 0 = ok, else _REASON_CODE

        def mark(mask: np.ndarray, r: R) -> None:
            m = mask & (reason == 0)
            if m.any():
                reason[m] = _REASON_CODE[r]

        if acc.bad_text_rows:
            bad = np.zeros(n, dtype=bool)
            bad[acc.bad_text_rows] = True
            mark(bad, R.BAD_TEXT)
        if acc.bad_rows:
            bad = np.zeros(n, dtype=bool)
            bad[acc.bad_rows] = True
            mark(bad, R.BAD_SHAPE)
        received = np.repeat(
            np.asarray(acc.msg_received, dtype=np.int64), np.asarray(acc.msg_count)
        )
        # sensor names
        if set(map(type, sensors)) == {str} and "" not in sensors:  # C-level checks
            sensor_ok = None
        else:
            sensor_ok = np.fromiter(map(_is_name, sensors), bool, n)
        if sensor_ok is not None and not sensor_ok.all():
            mark(~sensor_ok, R.MISSING_SENSOR)
            sensors = [s if ok else "" for s, ok in zip(sensors, sensor_ok.tolist(), strict=True)]
        # values
        val = _to_float(values)
        if val is None:
            val = np.empty(n, dtype=np.float64)
            missing = np.zeros(n, dtype=bool)
            nonnum = np.zeros(n, dtype=bool)
            big = np.zeros(n, dtype=bool)
            for i, v in enumerate(values):
                t = type(v)
                if t is int and not -(2**1023) < v < 2**1023:
                    big[i] = True
                    val[i] = math.nan
                elif t is float or t is int or t is bool:
                    val[i] = v
                elif v is None:
                    missing[i] = True
                    val[i] = math.nan
                else:
                    nonnum[i] = True
                    val[i] = math.nan
            mark(missing, R.MISSING_VALUE)
            mark(nonnum, R.NON_NUMERIC_VALUE)
            mark(big, R.NUMBER_OUT_OF_RANGE)
        finite = np.isfinite(val)
        if not finite.all():
            mark(~finite, R.NON_FINITE_VALUE)
        # timestamps
        t_ns, ts_bad = self._times(ts, n)
        if ts_bad.any():
            mark(ts_bad, R.BAD_TIMESTAMP)
        absurd = (t_ns < self.min_time_ns) | (t_ns > received + self.max_future_ns)
        if absurd.any():
            mark(absurd & ~ts_bad, R.ABSURD_TIMESTAMP)
        # quality flags
        flags = np.zeros(n, dtype=np.uint8)
        if acc.quality is not None:
            quality = acc.quality
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
        late = (received - t_ns) > self.late_after_ns
        if late.any():
            flags[late] |= int(Flags.LATE)
        # sensor ids
        ids = self._lookup(acc, sensors)
        missing_id = ids < 0
        if missing_id.any():
            todo = np.flatnonzero(missing_id & (reason == 0))
            if len(todo):
                ids[todo] = new_ids = self._intern_new(acc, sensors, todo)
                self._cache_ids(acc, sensors, todo, new_ids)
                refused = ids == _REFUSED
                if refused.any():
                    mark(refused, R.SENSOR_LIMIT)
                    ids[refused] = -1
                mark(ids < 0, R.UNKNOWN_SENSOR)
        good = reason == 0
        if not good.all():
            self._deadletters(acc, reason, good, dls)
            idx = np.flatnonzero(good)
            batch = Batch(t_ns[idx], ids[idx], val[idx], flags[idx], received[idx])
        else:
            batch = Batch(t_ns, ids, val, flags, received)
        dls.sort(key=lambda x: x[0])  # stable: message order, then reading order
        return DecodedMessage(batch, [d for _, d in dls], n)

    def _deadletters(
        self, acc: Columns, reason: np.ndarray, good: np.ndarray,
        dls: list[tuple[int, DeadLetter]],
    ) -> None:  # fmt: skip
        """One record per bad reading, up to the cap per message; then one summary record
        per message with the count of the rest by reason (a loop over messages, not rows)."""
        starts = np.cumsum([0, *acc.msg_count[:-1]])
        bad = np.flatnonzero(~good)
        msg_of = np.searchsorted(starts, bad, side="right") - 1
        cap = self.max_deadletters_per_message
        cuts = np.flatnonzero(np.diff(msg_of)) + 1  # bad rows are in message order
        for rows in np.split(bad, cuts):
            m = int(msg_of[np.searchsorted(bad, rows[0])])
            src = _rows_of(acc.msg_rows[m])
            base = int(starts[m])
            for i in rows[:cap].tolist():
                r = _REASONS[reason[i] - 1]
                dls.append((acc.msg_pos[m], DeadLetter(
                    r, _DETAIL[r], acc.msg_topic[m], i - base,
                    bad_text(src[i - base]) if r is R.BAD_TEXT else _FIELD_OF[r],
                    _jsonable(src[i - base]),
                )))  # fmt: skip
            rest = rows[cap:]
            if len(rest):
                codes = np.bincount(reason[rest], minlength=len(_REASONS) + 1)
                top = int(codes.argmax())
                by = ", ".join(f"{_REASONS[c - 1].value} {int(codes[c])}"
                               for c in np.flatnonzero(codes).tolist())  # fmt: skip
                dls.append((acc.msg_pos[m], DeadLetter(
                    _REASONS[top - 1],
                    f"and {len(rest)} more bad readings in this message, not recorded one by "
                    f"one (ingest.deadletter.max_per_message = {cap}): {by}",
                    acc.msg_topic[m], int(rest[0]) - base, None, None, len(rest),
                )))  # fmt: skip

    def _lookup(self, acc: Columns, sensors: list[Any]) -> np.ndarray:
        """Sensor ids (-1 = unknown) for the readings of every message in ``acc``."""
        n = len(sensors)
        counts = acc.msg_count
        if n < 8 * len(counts):  # mostly single readings: one flat pass over full keys
            prefixes = list(chain.from_iterable(map(repeat, acc.msg_prefix, counts)))
            return self.registry.lookup(prefixes, sensors)
        cache = self._id_cache
        parts = []
        start = 0
        for prefix, cnt in zip(acc.msg_prefix, counts, strict=True):
            known = cache.get(prefix)
            if known is None:
                known = cache[prefix] = {}
            parts.append(map(known.get, sensors[start : start + cnt], repeat(-1)))
            start += cnt
        ids = np.fromiter(chain.from_iterable(parts), dtype=np.int32, count=n)
        miss = np.flatnonzero(ids < 0)
        if len(miss):  # first sighting in this decoder (or unknown): ask the registry
            msg_of = np.searchsorted(np.cumsum(counts), miss, side="right").tolist()
            got = self.registry.lookup(
                [acc.msg_prefix[m] for m in msg_of], [sensors[i] for i in miss.tolist()]
            )
            ids[miss] = got
            self._cache_ids(acc, sensors, miss, got)
        return ids

    def _cache_ids(
        self, acc: Columns, sensors: list[Any], rows: np.ndarray, ids: np.ndarray
    ) -> None:
        """Remember known ids of ``rows`` (rare: first sightings only)."""
        msg_of = np.searchsorted(np.cumsum(acc.msg_count), rows, side="right").tolist()
        for m, i, sid in zip(msg_of, rows.tolist(), ids.tolist(), strict=True):
            if sid >= 0:
                self._id_cache.setdefault(acc.msg_prefix[m], {})[sensors[i]] = sid

    def _times(self, ts: list[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch-ms ints / floats or RFC 3339 strings -> ns, plus a bad mask."""
        if set(map(type, ts)) == {int}:
            try:
                return np.array(ts, dtype=np.int64) * _MS, np.zeros(n, dtype=bool)
            except OverflowError:
                pass
        out = np.zeros(n, dtype=np.int64)
        bad = np.zeros(n, dtype=bool)
        for i, t in enumerate(ts):
            tt = type(t)
            if tt is int:
                out[i] = t * _MS if -(2**62) // _MS < t < 2**62 // _MS else _OUT_OF_RANGE_NS
            elif tt is float and math.isfinite(t):
                out[i] = round(t * _MS) if abs(t) < 2**62 / _MS else _OUT_OF_RANGE_NS
            elif tt is str:
                v = _parse_rfc3339(t)
                if v is None:
                    bad[i] = True
                else:
                    out[i] = v
            else:
                bad[i] = True
        return out, bad

    def _intern_new(self, acc: Columns, sensors: list[Any], todo: np.ndarray) -> np.ndarray:
        """Register first-seen sensors (or -1 in strict mode); rare, so a loop is fine.

        One registry call per run of readings from the same enterprise/site/gateway (in
        reading order, so ids are handed out in order of first appearance).
        """
        starts = np.cumsum([0, *acc.msg_count[:-1]])
        msg_of = (np.searchsorted(starts, todo, side="right") - 1).tolist()
        rows = todo.tolist()
        out = np.full(len(rows), -1, dtype=np.int32)
        j = 0
        while j < len(rows):
            tags = acc.msg_tags[msg_of[j]]
            k = j + 1
            while k < len(rows) and acc.msg_tags[msg_of[k]] == tags:
                k += 1
            run = rows[j:k]
            keep = self._admitted(tags[0], [sensors[i] for i in run], acc.msg_received[msg_of[j]])
            if keep is None:
                out[j:k] = self._intern_rows(acc, sensors, run, tags)
            else:  # refused rows: -2, dead-lettered as sensor_limit
                out[j:k][~keep] = _REFUSED
                pos = np.flatnonzero(keep)
                if len(pos):
                    out[j + pos] = self._intern_rows(acc, sensors, [run[p] for p in pos], tags)
            j = k
        return out

    def _admitted(self, enterprise: str, names: list[Any], now_ns: int) -> np.ndarray | None:
        """Which of these new sensors' rows the limits admit (None: all of them)."""
        if self.limits is None or self.registry.strict:
            return None
        new = list(dict.fromkeys(names))
        ok = self.limits.admit(enterprise, len(new), now_ns=now_ns)
        if ok == len(new):
            return None
        admitted = set(new[:ok])
        return np.fromiter((n in admitted for n in names), bool, len(names))

    def _intern_rows(
        self, acc: Columns, sensors: list[Any], run: list[int], tags: tuple[str, str, str]
    ) -> np.ndarray:
        """Register the sensors of ``run`` (rows of one enterprise/site/gateway)."""
        kinds = [acc.kinds[i] for i in run] if acc.kinds is not None else [None] * len(run)
        units = [acc.units[i] for i in run] if acc.units is not None else [None] * len(run)
        ent, site, gw = tags
        return self.registry.intern(
            ent, site, [sensors[i] for i in run],
            kinds=[x if isinstance(x, str) else None for x in kinds],
            units=[x if isinstance(x, str) else None for x in units], gateway=gw,
        )  # fmt: skip


def _is_name(s: Any) -> bool:
    return type(s) is str and s != ""


def _to_float(values: list[Any]) -> np.ndarray | None:
    """Fast path: every value is a JSON number (or bool); None sends the caller to the
    per-value path that tells missing from non-numeric."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None


_NUMBER_TYPES = frozenset((int, float, bool))


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


def _rows_of(payload: bytes) -> Any:
    """The readings of a payload, re-parsed for dead-letter records only.

    Batches keep the raw payload rather than the parsed objects, so parsed JSON is freed
    at once (keeping it alive makes the cyclic GC walk it over and over).
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        obj = json.loads(payload)
    if type(obj) is dict:
        if "readings" in obj:
            return obj["readings"]
        if type(obj.get("value")) is list or type(obj.get("sensor")) is list:
            return _ColumnRows(obj)
        return [obj]
    return obj


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
    R.NUMBER_OUT_OF_RANGE: "value",
    R.SENSOR_LIMIT: "sensor",
}
_DETAIL: dict[R, str] = {
    R.BAD_SHAPE: "reading is not a JSON object",
    R.BAD_TEXT: "reading has text with a lone UTF-16 surrogate (not valid UTF-8)",
    R.MISSING_VALUE: "reading has no 'value'",
    R.NON_NUMERIC_VALUE: "'value' is not a JSON number",
    R.NON_FINITE_VALUE: "'value' is not finite",
    R.MISSING_SENSOR: "reading has no 'sensor' (non-empty string)",
    R.BAD_TIMESTAMP: "'ts' is neither epoch milliseconds nor RFC 3339 text with an offset",
    R.ABSURD_TIMESTAMP: "'ts' is before ingest.min_time, too far in the future, or outside "
    "1677-2262 (int64 nanoseconds)",
    R.UNKNOWN_SENSOR: "sensor is not in the catalogue (ingest.strict is on)",
    R.BAD_QUALITY: "'quality' must be ok, calibrating or fault",
    R.NUMBER_OUT_OF_RANGE: "'value' is an integer too large for a float64",
    R.SENSOR_LIMIT: "a new sensor over ingest.max_sensors_per_enterprise or "
    "ingest.max_new_sensors_per_minute (not registered)",
}
for _r in R:
    _FIELD_OF.setdefault(_r, None)
    _DETAIL.setdefault(_r, _r.value)
