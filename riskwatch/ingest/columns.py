"""The readings of many messages gathered column by column, for one decode call.

:class:`ColumnAccumulator` takes the parsed JSON of each message (reading objects, or a
column payload) and appends its fields to flat lists — sensors, values, timestamps and
the optional ``kind``, ``unit``, ``quality`` columns (kept as None until a message has
them) — plus, per message, where its rows start, its tags and its arrival time. The
:class:`~riskwatch.ingest.decode.Decoder` then validates the lists as whole arrays.

>>> acc = ColumnAccumulator()
>>> acc.add_rows([{"sensor": "A", "value": 1}], 5, b"...", "rw/m/s/g", "m", "s", "g", 9)
>>> columns = {"sensor": ["B", "C"], "value": [2, 3], "kind": "ch4"}
>>> acc.add_columns(columns, b"...", "rw/m/s/g", "m", "s", "g", 10)
>>> acc.sensors, acc.ts, acc.kinds, acc.msg_count, acc.msg_received
(['A', 'B', 'C'], [5, None, None], [None, 'ch4', 'ch4'], [1, 2], [9, 10])
"""

from __future__ import annotations

import contextlib
from typing import Any

from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.deadletter import DeadLetter

__all__ = ["BadText", "ColumnAccumulator"]


class BadText:
    """Stands in for a reading whose text is not valid UTF-8 (a lone surrogate): the row
    is dead-lettered as ``bad_text`` and the message's other readings pass."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where


def _extend_optional(column: list[Any] | None, values: list[Any] | None, n: int, base: int
                     ) -> list[Any] | None:  # fmt: skip
    """An optional column after ``n`` more rows: None while no message had it, else the
    ``base`` rows before padded with None."""
    if values is None:
        if column is not None:
            column.extend([None] * n)
        return column
    if column is None:
        column = [None] * base
    column.extend(values)
    return column


class ColumnAccumulator:
    """Columns accumulated over the messages of one decode call: the readings' fields as
    parsed (validated later, whole-array), and per message its rows, tags and arrival."""

    __slots__ = (
        "bad_rows",
        "bad_text_rows",
        "kinds",
        "msg_count",
        "msg_pos",
        "msg_prefix",
        "msg_received",
        "msg_rows",
        "msg_tags",
        "msg_topic",
        "pos",
        "quality",
        "sensors",
        "ts",
        "units",
        "values",
    )  # fmt: skip

    def __init__(self) -> None:
        self.sensors: list[Any] = []
        self.values: list[Any] = []
        self.ts: list[Any] = []
        self.msg_prefix: list[str] = []  # "enterprise/site/", the registry key prefix
        self.kinds: list[Any] | None = None
        self.units: list[Any] | None = None
        self.quality: list[Any] | None = None
        self.bad_rows: list[int] = []
        self.bad_text_rows: list[int] = []
        self.msg_count: list[int] = []
        self.msg_received: list[int] = []
        self.msg_topic: list[str] = []
        self.msg_rows: list[Any] = []
        self.msg_tags: list[tuple[str, str, str]] = []
        self.msg_pos: list[int] = []
        self.pos = 0

    def _message(
        self, n: int, rows: Any, topic: str, ent: str, site: str, gw: str, received: int
    ) -> None:
        self.msg_prefix.append(f"{ent}/{site}/")
        self.msg_count.append(n)
        self.msg_received.append(received)
        self.msg_topic.append(topic)
        self.msg_rows.append(rows)
        self.msg_tags.append((ent, site, gw))
        self.msg_pos.append(self.pos)

    def add_rows(
        self,
        rs: list[Any],
        env_ts: Any,
        payload: bytes,
        topic: str,
        ent: str,
        site: str,
        gw: str,
        received: int,
    ) -> None:
        n = len(rs)
        if n == 0:
            return
        base = len(self.values)
        ts: list[Any] | None = None
        try:
            sensors = [r["sensor"] for r in rs]
            values = [r["value"] for r in rs]
            get_rs = rs
            # Common shapes, told apart by key counts alone (a C-level pass): every
            # reading is {sensor, value} (ts from the envelope) or {sensor, value, ts}.
            # Then there is no kind/unit/quality to look for either.
            n_keys = set(map(len, rs))
            if n_keys == {2}:
                ts = [env_ts] * n
            elif n_keys == {3}:
                with contextlib.suppress(KeyError):
                    ts = [r["ts"] for r in rs]
        except (KeyError, TypeError, IndexError):
            get_rs = [r if type(r) is dict else {} for r in rs]
            self.bad_rows.extend(base + i for i, r in enumerate(rs) if type(r) is not dict)
            self.bad_text_rows.extend(base + i for i, r in enumerate(rs) if type(r) is BadText)
            sensors = [r.get("sensor") for r in get_rs]
            values = [r.get("value") for r in get_rs]
        plain = ts is not None
        if ts is None:
            if b'"ts"' in payload:
                try:  # a subscript is several times cheaper than .get
                    ts = [r["ts"] for r in get_rs]
                except KeyError:
                    if env_ts is None:
                        ts = [r.get("ts") for r in get_rs]
                    else:
                        ts = [r.get("ts", env_ts) for r in get_rs]
            else:
                ts = [None] * n
        self.sensors.extend(sensors)
        self.values.extend(values)
        self.ts.extend(ts)
        # the optional fields, looked for only where the payload names them
        kinds = None if plain or b'"kind"' not in payload else [r.get("kind") for r in get_rs]
        units = None if plain or b'"unit"' not in payload else [r.get("unit") for r in get_rs]
        quality = (None if plain or b'"quality"' not in payload
                   else [r.get("quality") for r in get_rs])  # fmt: skip
        self.kinds = _extend_optional(self.kinds, kinds, n, base)
        self.units = _extend_optional(self.units, units, n, base)
        self.quality = _extend_optional(self.quality, quality, n, base)
        self._message(n, payload, topic, ent, site, gw, received)

    def add_columns(
        self,
        obj: dict[str, Any],
        payload: bytes,
        topic: str,
        ent: str,
        site: str,
        gw: str,
        received: int,
    ) -> DeadLetter | None:
        sensors = obj.get("sensor")
        values = obj.get("value")
        if type(sensors) is not list or type(values) is not list:
            return DeadLetter(R.BAD_SHAPE, "columns need 'sensor' and 'value' lists", topic)
        n = len(values)
        if len(sensors) != n:
            return DeadLetter(
                R.BAD_SHAPE, f"column 'sensor' has {len(sensors)} rows, 'value' has {n}",
                topic, None, "sensor",
            )  # fmt: skip
        cols: dict[str, list[Any] | None] = {}
        for name in ("ts", "kind", "unit", "quality"):
            v = obj.get(name)
            if type(v) is list:
                if len(v) != n:
                    return DeadLetter(
                        R.BAD_SHAPE, f"column '{name}' has {len(v)} rows, 'value' has {n}",
                        topic, None, name,
                    )  # fmt: skip
                cols[name] = v
            elif v is None:
                cols[name] = None
            else:
                cols[name] = [v] * n
        if n == 0:
            return None
        base = len(self.values)
        self.sensors.extend(sensors)
        self.values.extend(values)
        self.ts.extend(cols["ts"] if cols["ts"] is not None else [None] * n)
        self.kinds = _extend_optional(self.kinds, cols["kind"], n, base)
        self.units = _extend_optional(self.units, cols["unit"], n, base)
        self.quality = _extend_optional(self.quality, cols["quality"], n, base)
        self._message(n, payload, topic, ent, site, gw, received)
        return None
