"""The primary host's view of Sparkplug B edge nodes: BIRTH aliases, ``seq``, ``bdSeq``.

Topics are ``spBv1.0/<group_id>/<NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH>/<edge_node_id>
[/<device_id>]``. Readings are keyed ``enterprise = group_id``, ``site = edge_node_id``,
``sensor = metric name`` (``device_id/metric name`` for a device's metrics), so a node's
state is its site's and the partition key is ``group_id/edge_node_id``.

- NBIRTH resets the node's session: its ``bdSeq``, ``seq`` and alias table (alias -> name
  and datatype, for the node's and its devices' metrics); DBIRTH adds a device's. Each
  declared numeric metric is registered as a sensor (kind, unit and location from the
  metric's properties ``kind``, ``engUnit``/``unit``, ``location`` when given); BIRTH
  values are readings too.
- NDATA/DDATA carry values by alias (or by name); ``timestamp`` of the metric, else the
  payload's, in ms. A metric no BIRTH declared is dead-lettered ``unknown_alias``.
- NDEATH (the node's MQTT will; its ``bdSeq`` must match the live session, else it is a
  stale will of an older session and ignored) and DDEATH mark the node or device
  offline: the ``sparkplug_offline`` signal fires on the group ``group/node[/device]``;
  the next BIRTH resolves it.
- ``seq`` counts 0..255 per node over every message but NDEATH; a gap (lost or reordered
  messages), or DATA from a node whose BIRTH we never saw, means our alias table may be
  wrong: the host publishes an NCMD ``Node Control/Rebirth = true`` (at most one per
  ``rebirth_min_interval_s`` per node). The data itself is still used when its aliases
  are known: an alias never changes meaning within a session.

>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.ingest.decode import Decoder
>>> from riskwatch.ingest.health import AdapterSignals
>>> from riskwatch.ingest.topics import TopicTemplate
>>> from riskwatch.ingest.sparkplug.payloads import Payload
>>> sent = []
>>> class Pub:
...     def publish(self, topic, payload, qos=1, retain=False): sent.append(topic)
>>> reg = SensorRegistry()
>>> dec = SparkplugDecoder(Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}")),
...                        AdapterSignals(), Pub())
>>> birth = Payload(timestamp=1_795_880_000_000, seq=0)
>>> m = birth.metrics.add(name="CH4", alias=1, datatype=9, float_value=0.25)
>>> m = birth.metrics.add(name="bdSeq", datatype=8, long_value=0)
>>> t0 = 1_795_880_000_000_000_000
>>> out = dec.decode("spBv1.0/mine1/NBIRTH/face1", birth.SerializeToString(), t0)
>>> reg.key(int(out.batch.sensor[0])), out.batch.value.tolist()
('mine1/face1/CH4', [0.25])
>>> data = Payload(timestamp=1_795_880_001_000, seq=5)  # 1 expected: a gap
>>> m = data.metrics.add(alias=1, datatype=9, float_value=0.5)
>>> dec.decode("spBv1.0/mine1/NDATA/face1", data.SerializeToString(), t0).batch.value.tolist()
[0.5]
>>> sent
['spBv1.0/mine1/NCMD/face1']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import DecodeError as ProtobufDecodeError
from prometheus_client import CollectorRegistry, Counter

from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.deadletter import DeadLetter
from riskwatch.ingest.decode import DecodedMessage, Decoder
from riskwatch.ingest.health import AdapterSignals
from riskwatch.ingest.sparkplug.payloads import (
    NUMERIC,
    SIGNED_BITS,
    DataType,
    Payload,
    rebirth_request,
)
from riskwatch.model import Batch, Level, SignalState

__all__ = ["OFFLINE_RULE", "SparkplugDecoder", "SparkplugTopic", "parse_topic"]

log = logging.getLogger(__name__)

#: the health signal of a node or device that went offline (NDEATH / DDEATH)
OFFLINE_RULE = "sparkplug_offline"
NAMESPACE = "spBv1.0"
_DATA_TYPES = ("NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH")
_NOT_DATA = ("NCMD", "DCMD")  # commands (ours, echoed by a "#" subscription): not data
_MS = 1_000_000
#: metrics of the node's own bookkeeping, never readings
_CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/")


class SparkplugTopic(NamedTuple):
    group: str
    type: str
    node: str
    device: str  # "" for node messages


def parse_topic(topic: str) -> SparkplugTopic | None:
    """The parts of a Sparkplug data topic; None when it is not one.

    >>> parse_topic("spBv1.0/g1/DDATA/n1/d1")
    SparkplugTopic(group='g1', type='DDATA', node='n1', device='d1')
    >>> parse_topic("spBv1.0/g1/DDATA/n1") is None, parse_topic("spBv1.0/g1/NDATA/n1/x") is None
    (True, True)
    """
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts[1:]):
        return None
    kind = parts[2]
    if kind not in _DATA_TYPES:
        return None
    device = parts[4] if len(parts) == 5 else ""
    if (kind[0] == "D") != bool(device):
        return None
    return SparkplugTopic(parts[1], kind, parts[3], device)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...


@dataclass
class _Metric:
    sensor: str  # our sensor name: "metric" or "device/metric"
    datatype: int
    kind: str = ""
    unit: str = ""
    location: str = ""


@dataclass
class _Node:
    """One edge node's session, as the host saw it."""

    born: bool = False
    bd_seq: int | None = None
    next_seq: int | None = None
    aliases: dict[int, _Metric] = field(default_factory=dict)
    names: dict[str, _Metric] = field(default_factory=dict)  # sensor name -> metric
    offline: bool = False  # sparkplug_offline is firing for the node
    devices_offline: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    last_rebirth_ns: int | None = None


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _value(m: Any, datatype: int) -> float | None:
    """The metric's value as a float (None: no value in the payload)."""
    which = m.WhichOneof("value")
    if which is None or m.is_null:
        return None
    if which in ("int_value", "long_value"):
        v = int(getattr(m, which))
        bits = SIGNED_BITS.get(datatype)
        return float(_signed(v, bits) if bits else v)
    if which in ("float_value", "double_value"):
        return float(getattr(m, which))
    if which == "boolean_value":
        return 1.0 if m.boolean_value else 0.0
    raise ValueError(which)


def _props(m: Any) -> dict[str, str]:
    """String properties of a metric (``engUnit``, ``kind``, ``location``)."""
    ps = m.properties
    out = {}
    for k, v in zip(ps.keys, ps.values, strict=False):
        if v.WhichOneof("value") == "string_value":
            out[k] = v.string_value
    return out


class SparkplugDecoder:
    """Decodes Sparkplug B messages (engine thread); keeps each node's session."""

    def __init__(
        self,
        decoder: Decoder,
        signals: AdapterSignals,
        publisher: Publisher | None,
        *,
        offline_level: Level = Level.ORANGE,
        rebirth_min_interval_s: float = 5.0,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.decoder = decoder
        self.signals = signals
        self.publisher = publisher
        self.offline_level = offline_level
        self.rebirth_min_interval_ns = int(rebirth_min_interval_s * 1e9)
        self.nodes: dict[tuple[str, str], _Node] = {}
        reg = metrics_registry or CollectorRegistry()
        self.messages = Counter("riskwatch_sparkplug_messages", "Sparkplug messages by type",
                                ["type"], registry=reg)  # fmt: skip
        self.rebirths = Counter("riskwatch_sparkplug_rebirth_requests",
                                "NCMD Node Control/Rebirth requests sent",
                                registry=reg)  # fmt: skip
        self.seq_gaps = Counter("riskwatch_sparkplug_seq_gaps", "seq gaps seen", registry=reg)

    # ------------------------------------------------------------------ entry point
    def decode(self, topic: str, payload: bytes, received_ns: int) -> DecodedMessage:
        """One Sparkplug message: readings of BIRTH/DATA; node state of every type."""
        t = parse_topic(topic)
        if t is None:
            if topic.split("/")[2:3] in (["STATE"], ["NCMD"], ["DCMD"]) or topic.startswith(
                f"{NAMESPACE}/STATE/"
            ):
                return DecodedMessage(Batch.empty(), [], 0)  # host states, commands
            return _dead(R.BAD_TOPIC, "not spBv1.0/<group>/<N|D><BIRTH|DATA|DEATH>/<node>"
                         "[/<device>] (a device type needs a device id)", topic)  # fmt: skip
        try:
            p = Payload.FromString(payload)
        except ProtobufDecodeError as exc:
            return _dead(R.BAD_PROTOBUF, f"not a Sparkplug B payload: {exc}", topic)
        self.messages.labels(t.type).inc()
        node = self.nodes.setdefault((t.group, t.node), _Node())
        if t.type == "NDEATH":
            self._ndeath(t, p, node, received_ns)
            return DecodedMessage(Batch.empty(), [], 0)
        if t.type == "NBIRTH":
            return self._nbirth(t, p, node, topic, received_ns)
        self._check_seq(t, p, node, received_ns)
        if not node.born:
            self._rebirth(t, node, received_ns, "no NBIRTH seen for this session")
        if t.type == "DDEATH":
            self._ddeath(t, p, node, received_ns)
            return DecodedMessage(Batch.empty(), [], 0)
        if t.type == "DBIRTH":
            return self._dbirth(t, p, node, topic, received_ns)
        return self._data(t, p, node, topic, received_ns)

    # ------------------------------------------------------------------ message types
    def _nbirth(
        self, t: SparkplugTopic, p: Any, node: _Node, topic: str, received_ns: int
    ) -> DecodedMessage:
        node.born = True
        node.aliases.clear()
        node.names.clear()
        node.devices.clear()
        node.next_seq = (int(p.seq) + 1) % 256 if p.HasField("seq") else None
        node.bd_seq = None
        for m in p.metrics:
            if m.name == "bdSeq":
                v = _value(m, m.datatype or DataType.UINT64)
                node.bd_seq = int(v) if v is not None else None
        ts = _time_ns(p, received_ns)
        if node.offline:
            node.offline = False
            self.signals.emit(OFFLINE_RULE, f"{t.group}/{t.node}", ts, SignalState.RESOLVED,
                              None, f"{t.group}/{t.node}: Sparkplug edge node back online "
                              "(NBIRTH)")  # fmt: skip
        return self._birth_metrics(t, p, node, topic, received_ns, prefix="")

    def _dbirth(
        self, t: SparkplugTopic, p: Any, node: _Node, topic: str, received_ns: int
    ) -> DecodedMessage:
        node.devices.add(t.device)
        if t.device in node.devices_offline:
            node.devices_offline.discard(t.device)
            g = f"{t.group}/{t.node}/{t.device}"
            self.signals.emit(OFFLINE_RULE, g, _time_ns(p, received_ns), SignalState.RESOLVED,
                              None, f"{g}: Sparkplug device back online (DBIRTH)")  # fmt: skip
        return self._birth_metrics(t, p, node, topic, received_ns, prefix=f"{t.device}/")

    def _birth_metrics(
        self, t: SparkplugTopic, p: Any, node: _Node, topic: str, received_ns: int,
        prefix: str,
    ) -> DecodedMessage:  # fmt: skip
        dls: list[DeadLetter] = []
        declared: list[_Metric] = []
        for i, m in enumerate(p.metrics):
            if not m.name or m.name == "bdSeq" or m.name.startswith(_CONTROL_PREFIXES):
                continue
            if m.datatype not in NUMERIC:
                dls.append(DeadLetter(R.UNSUPPORTED_TYPE, f"metric {m.name!r} has datatype "
                                      f"{m.datatype}: only numbers and booleans are monitored",
                                      topic, i, f"metrics[{i}].datatype"))  # fmt: skip
                continue
            props = _props(m)
            meta = _Metric(prefix + m.name, int(m.datatype), props.get("kind", ""),
                           props.get("engUnit", props.get("unit", "")),
                           props.get("location", ""))  # fmt: skip
            declared.append(meta)
            node.names[meta.sensor] = meta
            if m.HasField("alias"):
                node.aliases[int(m.alias)] = meta
        if declared:  # register every declared metric, with or without a value
            ids = self.decoder.registry.intern(
                t.group, t.node, [d.sensor for d in declared], kinds=[d.kind for d in declared],
                units=[d.unit for d in declared], gateway=t.node,
            )  # fmt: skip
            reg = self.decoder.registry
            for d, sid in zip(declared, ids.tolist(), strict=True):
                if sid >= 0 and d.location and not reg.meta(sid)["catalogued"]:
                    reg.set_meta(sid, location=d.location)  # the catalogue's word wins
        out = self._values(t, p, node, topic, received_ns, names_only=True, prefix=prefix)
        out.deadletters[:0] = dls
        return out

    def _data(
        self, t: SparkplugTopic, p: Any, node: _Node, topic: str, received_ns: int
    ) -> DecodedMessage:
        prefix = f"{t.device}/" if t.device else ""
        return self._values(t, p, node, topic, received_ns, names_only=False, prefix=prefix)

    def _values(
        self, t: SparkplugTopic, p: Any, node: _Node, topic: str, received_ns: int, *,
        names_only: bool, prefix: str,
    ) -> DecodedMessage:  # fmt: skip
        """The readings of a BIRTH or DATA payload, through the shared column decoder."""
        dls: list[DeadLetter] = []
        rows: list[int] = []  # metric index of each row
        sensors: list[str] = []
        values: list[float | None] = []
        ts: list[int] = []
        default_ms = int(p.timestamp) if p.HasField("timestamp") else received_ns // _MS
        for i, m in enumerate(p.metrics):
            if m.name == "bdSeq" or m.name.startswith(_CONTROL_PREFIXES):
                continue
            meta: _Metric | None
            if m.HasField("alias") and not names_only:
                meta = node.aliases.get(int(m.alias))
            else:
                meta = node.names.get(prefix + m.name) if m.name else None
            if meta is None:
                if not names_only:
                    what = f"alias {m.alias}" if m.HasField("alias") else f"name {m.name!r}"
                    dls.append(DeadLetter(R.UNKNOWN_ALIAS, f"{what} was not declared by the "
                                          "node's BIRTH (rebirth requested)", topic, i,
                                          f"metrics[{i}].alias"))  # fmt: skip
                continue
            if meta.datatype not in NUMERIC:
                continue
            try:
                v = _value(m, meta.datatype)
            except ValueError:
                dls.append(DeadLetter(R.UNSUPPORTED_TYPE, f"{meta.sensor}: a "
                                      f"{m.WhichOneof('value')} for datatype {meta.datatype}",
                                      topic, i, f"metrics[{i}]"))  # fmt: skip
                continue
            if v is None:
                if names_only:
                    continue  # a BIRTH may declare a metric without a current value
                dls.append(DeadLetter(R.MISSING_VALUE, f"{meta.sensor}: no value (is_null)",
                                      topic, i, f"metrics[{i}].value"))  # fmt: skip
                continue
            rows.append(i)
            sensors.append(meta.sensor)
            values.append(v)
            ts.append(int(m.timestamp) if m.HasField("timestamp") else default_ms)
        if any(d.reason is R.UNKNOWN_ALIAS for d in dls):
            self._rebirth(t, node, received_ns, "DATA with an undeclared alias")
        if not sensors:
            return DecodedMessage(Batch.empty(), dls, len(dls))
        cols = {"ts": ts, "sensor": sensors, "value": values}
        out = self.decoder.decode_columns(topic, cols, t.group, t.node, t.node, received_ns)
        for d in out.deadletters:  # the row -> the metric's index in the payload
            if d.index is not None and d.index < len(rows):
                d.index = rows[d.index]
                d.field = f"metrics[{d.index}].{d.field or 'value'}"
        return DecodedMessage(out.batch, dls + out.deadletters, out.n_readings + len(dls))

    def _ndeath(self, t: SparkplugTopic, p: Any, node: _Node, received_ns: int) -> None:
        bd = None
        for m in p.metrics:
            if m.name == "bdSeq":
                v = _value(m, m.datatype or DataType.UINT64)
                bd = int(v) if v is not None else None
        if node.born and node.bd_seq is not None and bd is not None and bd != node.bd_seq:
            log.info("%s/%s: NDEATH of an older session (bdSeq %s, live %s) ignored",
                     t.group, t.node, bd, node.bd_seq)  # fmt: skip
            return
        node.born = False
        node.next_seq = None
        ts = _time_ns(p, received_ns)
        if not node.offline:
            node.offline = True
            self.signals.emit(OFFLINE_RULE, f"{t.group}/{t.node}", ts, SignalState.FIRING,
                              self.offline_level, f"{t.group}/{t.node}: Sparkplug edge node "
                              "offline (NDEATH): its sensors are not monitored")  # fmt: skip
        log.warning("%s/%s: Sparkplug edge node offline (NDEATH)", t.group, t.node)

    def _ddeath(self, t: SparkplugTopic, p: Any, node: _Node, received_ns: int) -> None:
        if t.device in node.devices_offline:
            return
        node.devices_offline.add(t.device)
        g = f"{t.group}/{t.node}/{t.device}"
        self.signals.emit(OFFLINE_RULE, g, _time_ns(p, received_ns), SignalState.FIRING,
                          self.offline_level, f"{g}: Sparkplug device offline (DDEATH): its "
                          "sensors are not monitored")  # fmt: skip
        log.warning("%s: Sparkplug device offline (DDEATH)", g)

    # ------------------------------------------------------------------ seq and rebirth
    def _check_seq(self, t: SparkplugTopic, p: Any, node: _Node, received_ns: int) -> None:
        if not p.HasField("seq"):
            return
        seq = int(p.seq) % 256
        if node.next_seq is not None and seq != node.next_seq:
            self.seq_gaps.inc()
            self._rebirth(t, node, received_ns,
                          f"seq {seq} where {node.next_seq} was due")  # fmt: skip
        node.next_seq = (seq + 1) % 256

    def _rebirth(self, t: SparkplugTopic, node: _Node, now_ns: int, why: str) -> None:
        last = node.last_rebirth_ns
        if last is not None and now_ns - last < self.rebirth_min_interval_ns:
            return
        node.last_rebirth_ns = now_ns
        topic = f"{NAMESPACE}/{t.group}/NCMD/{t.node}"
        log.warning("%s/%s: %s: requesting a rebirth (%s)", t.group, t.node, why, topic)
        self.rebirths.inc()
        if self.publisher is not None:
            try:
                self.publisher.publish(topic, rebirth_request(now_ns // _MS), 0, False)
            except Exception:
                log.exception("publishing the rebirth request on %s failed", topic)


def _time_ns(p: Any, received_ns: int) -> int:
    return int(p.timestamp) * _MS if p.HasField("timestamp") else received_ns


def _dead(reason: R, detail: str, topic: str) -> DecodedMessage:
    return DecodedMessage(Batch.empty(), [DeadLetter(reason, detail, topic)], 0)

