"""Encoding readings into the MQTT payload forms (README, "MQTT contract") and publishing them.

- :class:`Encoder` groups one tick's readings by gateway (topic
  ``rw/{enterprise}/{site}/{gateway}``) and encodes them as ``single`` readings, a
  ``list``, a gateway ``envelope`` or ``columns``, at most ``batch_size`` readings a
  message; damaged readings (malformed events) become broken payloads of their own.
  The columns form serialises numpy columns directly (``orjson.OPT_SERIALIZE_NUMPY``),
  with no Python object per reading.
- :class:`MqttSink` publishes with paho-mqtt 2.x; :class:`MemorySink` keeps messages
  (tests, in-process replay).
- :func:`run_scenario` paces a :class:`~riskwatch.sensors_sim.simulator.Simulator` at
  ``speed`` x real time (or as fast as possible) and reports whether it kept up.
- :func:`run_rate` is the load generator: payloads are encoded before the clock starts
  with a placeholder timestamp that is swapped for the current time at send time, and
  the report says plainly whether the asked rate was reached.

>>> import numpy as np
>>> from riskwatch.sensors_sim.simulator import Readings
>>> enc = Encoder(np.array(["A", "B"], dtype=object), np.array([0, 0], dtype=np.int32),
...               ["rw/m1/face1/GW-1"], form="columns")
>>> r = Readings(np.array([0, 1], np.int32), np.array([1795880000000, 1795880000500]),
...              np.array([0.42, 1.5]), np.zeros(2, np.uint8), np.zeros(2, np.uint8))
>>> for topic, payload in enc.encode(r):
...     print(topic, payload.decode())
rw/m1/face1/GW-1 {"ts":[1795880000000,1795880000500],"sensor":["A","B"],"value":[0.42,1.5]}
>>> Encoder(enc.names, enc.gw_of, enc.topics, form="single").encode(r.take(np.array([1])))
[('rw/m1/face1/GW-1', b'{"sensor":"B","ts":1795880000500,"value":1.5}')]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import numpy as np
import orjson

from riskwatch.errors import RiskwatchError
from riskwatch.sensors_sim.simulator import Readings, Simulator

__all__ = [
    "Encoder",
    "MemorySink",
    "MqttSink",
    "RateReport",
    "RunReport",
    "Sink",
    "encoder_for",
    "run_rate",
    "run_scenario",
]

log = logging.getLogger("riskwatch.sensors_sim")

Form = Literal["single", "list", "envelope", "columns"]
_NP = orjson.OPT_SERIALIZE_NUMPY
_QUALITY = np.array(["ok", "calibrating", "fault"], dtype=object)
TS_PLACEHOLDER = 9_999_999_999_999  # 13 digits, like every epoch-ms time until 2286
_TS_BYTES = str(TS_PLACEHOLDER).encode()


class SimulatorError(RiskwatchError):
    """The simulator cannot do what was asked (broker unreachable, bad options)."""


class Sink(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...

    def flush(self, timeout: float = 30.0) -> bool: ...

    def close(self) -> None: ...


class Encoder:
    """Readings → ``(topic, payload)`` messages in one of the four payload forms."""

    def __init__(
        self,
        names: np.ndarray,
        gw_of: np.ndarray,
        topics: Sequence[str],
        *,
        form: Form = "envelope",
        batch_size: int = 500,
        gateway_names: Sequence[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise SimulatorError(f"batch size must be >= 1, got {batch_size}")
        self.names = names
        self.gw_of = gw_of
        self.topics = list(topics)
        self.gateway_names = list(gateway_names or [t.rsplit("/", 1)[-1] for t in topics])
        self.form = form
        self.batch_size = batch_size

    def encode(self, r: Readings) -> list[tuple[str, bytes]]:
        """Messages for ``r``."""
        return [(t, p) for t, p, _ in self.encode_counted(r)]

    def encode_counted(
        self, r: Readings, *, ts_override: bool = False
    ) -> list[tuple[str, bytes, int]]:
        """``(topic, payload, readings in it)``; with ``ts_override`` every time is
        :data:`TS_PLACEHOLDER` (templates for the load generator)."""
        if not len(r):
            return []
        out: list[tuple[str, bytes, int]] = []
        bad = r.damage != 0
        if bad.any():
            out += self._damaged(r.take(bad))
            r = r.take(~bad)
            if not len(r):
                return out
        gw = self.gw_of[r.idx]
        order = np.argsort(gw, kind="stable")
        gws = gw[order]
        cuts = np.flatnonzero(np.diff(gws)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(gws)]))
        ts_all = r.ts_ms if not ts_override else np.full(len(r), TS_PLACEHOLDER, np.int64)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            g = int(gws[a])
            topic = self.topics[g]
            for c in range(a, b, self.batch_size):
                sl = order[c : min(b, c + self.batch_size)]
                out += self._encode_group(topic, g, r, sl, ts_all, ts_override)
        return out

    def _encode_group(
        self,
        topic: str,
        g: int,
        r: Readings,
        sl: np.ndarray,
        ts_all: np.ndarray,
        one_ts: bool,
    ) -> list[tuple[str, bytes, int]]:
        names = self.names[r.idx[sl]].tolist()
        ts = ts_all[sl]
        val = r.value[sl]
        q = r.quality[sl]
        form = self.form
        if form == "columns":
            doc: dict[str, Any] = {
                "ts": int(ts[0]) if one_ts else ts,
                "sensor": names,
                "value": val,
            }
            if q.any():
                doc["quality"] = _QUALITY[q].tolist()
            return [(topic, orjson.dumps(doc, option=_NP), len(sl))]
        tsl = ts.tolist()
        vl = val.tolist()
        ql = _QUALITY[q].tolist() if q.any() else None
        if form == "envelope":
            if one_ts:
                items = [{"sensor": n, "value": x} for n, x in zip(names, vl, strict=True)]
            else:
                items = [
                    {"sensor": n, "ts": t, "value": x}
                    for n, t, x in zip(names, tsl, vl, strict=True)
                ]
            if ql is not None:
                for it, qq in zip(items, ql, strict=True):
                    if qq != "ok":
                        it["quality"] = qq
            env = {"gateway": self.gateway_names[g], "ts": int(ts.max()), "readings": items}
            return [(topic, orjson.dumps(env), len(sl))]
        items = [{"sensor": n, "ts": t, "value": x} for n, t, x in zip(names, tsl, vl, strict=True)]
        if ql is not None:
            for it, qq in zip(items, ql, strict=True):
                if qq != "ok":
                    it["quality"] = qq
        if form == "list":
            return [(topic, orjson.dumps(items), len(sl))]
        return [(topic, orjson.dumps(it), 1) for it in items]

    def _damaged(self, r: Readings) -> list[tuple[str, bytes, int]]:
        out = []
        for i, t, v, d in zip(
            r.idx.tolist(), r.ts_ms.tolist(), r.value.tolist(), r.damage.tolist(), strict=True
        ):
            topic = self.topics[int(self.gw_of[i])]
            name = self.names[i]
            if d == 1:
                p = orjson.dumps({"sensor": name, "ts": t, "value": v})[:-7]
            elif d == 2:
                p = orjson.dumps({"sensor": name, "ts": t, "value": "n/a"})
            elif d == 3:
                p = orjson.dumps({"sensor": name, "ts": t})
            else:
                p = orjson.dumps({"sensor": name, "ts": "yesterday", "value": v})
            out.append((topic, p, 1))
        return out


def encoder_for(
    sim: Simulator,
    form: Form,
    batch_size: int,
    topic_template: str = "rw/{enterprise}/{site}/{gateway}",
) -> Encoder:
    """An encoder over a simulator's sensors and gateways."""
    topics, gws = [], []
    for key in sim.gateway_keys:
        e, s, g = key.split("/", 2)
        topics.append(topic_template.format(enterprise=e, site=s, gateway=g))
        gws.append(g)
    return Encoder(
        sim.table.sensor, sim.gw_of, topics, form=form, batch_size=batch_size, gateway_names=gws
    )


# ---------------------------------------------------------------------------- sinks
class MemorySink:
    """Keeps published messages in a list (tests, in-process replay)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))

    def flush(self, timeout: float = 30.0) -> bool:
        return True

    def close(self) -> None:
        return None


class MqttSink:
    """Publishes over MQTT with paho-mqtt 2.x; :meth:`flush` waits until the client has
    sent (QoS 0) or the broker acknowledged (QoS 1/2) everything."""

    def __init__(
        self,
        url: str,
        *,
        qos: int = 1,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 10.0,
        max_inflight: int = 1000,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        if qos not in (0, 1, 2):
            raise SimulatorError(f"QoS must be 0, 1 or 2, got {qos}")
        s = urlsplit(url if "://" in url else f"mqtt://{url}")
        if s.scheme not in ("mqtt", "tcp") or not s.hostname:
            raise SimulatorError(f"MQTT URL must look like mqtt://host:port, got {url!r}")
        self.url = url
        self.qos = qos
        self.max_backlog = 20_000
        self._sent = 0
        self._done = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._err: str | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        try:
            self.client.connect(s.hostname, s.port or 1883, keepalive=30)
        except OSError as exc:
            raise SimulatorError(f"cannot reach the MQTT broker at {url}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(connect_timeout):
            self.client.loop_stop()
            raise SimulatorError(
                f"MQTT broker at {url} did not accept the connection: {self._err or 'timeout'}"
            )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if getattr(rc, "is_failure", False):
            self._err = str(rc)
            return
        self._connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._lock:
            self._done += 1

    def publish(self, topic: str, payload: bytes) -> None:
        # bounded backlog: paho's message ids wrap at 65535, and memory must stay bounded
        if self._sent - self._done >= self.max_backlog:
            deadline = time.monotonic() + 60.0
            while self._sent - self._done >= self.max_backlog // 2:
                if time.monotonic() > deadline:
                    raise SimulatorError(f"broker at {self.url} stopped acknowledging messages")
                time.sleep(0.0005)
        info = self.client.publish(topic, payload, self.qos)
        if info.rc != 0:
            raise SimulatorError(f"publish to {topic} failed: rc={info.rc}")
        self._sent += 1

    @property
    def outstanding(self) -> int:
        return self._sent - self._done

    def flush(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.outstanding > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------- runners
@dataclass
class RunReport:
    """What a scenario run did; ``kept_up`` is False when publishing fell behind
    ``speed`` x real time by more than ``lag_tolerance_s`` at some point."""

    readings: int = 0
    messages: int = 0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    speed: float | None = None
    max_lag_s: float = 0.0
    kept_up: bool = True
    flushed: bool = True
    interrupted: bool = False

    def summary(self) -> str:
        rate = self.readings / self.wall_seconds if self.wall_seconds > 0 else 0.0
        s = (
            f"published {self.readings} readings in {self.messages} messages: "
            f"{self.sim_seconds:.0f} s of plant time in {self.wall_seconds:.1f} s "
            f"({rate:.0f} readings/s)"
        )
        if self.speed is not None and not self.kept_up:
            s += (
                f"; COULD NOT keep up with --speed {self.speed:g}: fell up to "
                f"{self.max_lag_s:.1f} s behind"
            )
        if not self.flushed:
            s += "; WARNING: not every message was acknowledged by the broker"
        return s


def run_scenario(
    sim: Simulator,
    encoder: Encoder,
    sink: Sink,
    *,
    speed: float | None = 1.0,
    stop: threading.Event | None = None,
    on_labels: Callable[[list[dict[str, Any]]], None] | None = None,
    on_tick: Callable[[Readings, RunReport], None] | None = None,
    lag_tolerance_s: float = 2.0,
) -> RunReport:
    """Publish a whole run at ``speed`` x real time (``None``: as fast as possible).

    ``on_labels`` gets each event's label records when the run reaches the event start,
    so an interrupted run's label file only names events that happened.
    """
    rep = RunReport(speed=speed)
    t0 = sim.t0_ns
    wall0 = time.monotonic()
    pending_labels = sorted(sim.labels, key=lambda lb: lb["start"])
    li = 0
    while not sim.done():
        if stop is not None and stop.is_set():
            rep.interrupted = True
            break
        if speed is None:
            sim.skip_idle()
        r = sim.step()
        now_sim = sim.t_ns
        if on_labels is not None and li < len(pending_labels):
            j = li
            while j < len(pending_labels) and pending_labels[j]["start"] * 1_000_000 < now_sim:
                j += 1
            if j > li:
                on_labels(pending_labels[li:j])
                li = j
        if speed is not None:
            target = wall0 + (now_sim - t0) / 1e9 / speed
            delay = target - time.monotonic()
            if delay > 0:
                if stop is not None:
                    stop.wait(delay)
                else:
                    time.sleep(delay)
            elif -delay > rep.max_lag_s:
                rep.max_lag_s = -delay
        msgs = encoder.encode(r)
        for topic, payload in msgs:
            sink.publish(topic, payload)
        rep.readings += len(r)
        rep.messages += len(msgs)
        if on_tick is not None:
            on_tick(r, rep)
    if on_labels is not None and li < len(pending_labels) and not rep.interrupted:
        on_labels(pending_labels[li:])
    rep.flushed = sink.flush()
    rep.sim_seconds = (min(sim.t_ns, sim.end_ns) - t0) / 1e9
    rep.wall_seconds = time.monotonic() - wall0
    rep.kept_up = rep.max_lag_s <= lag_tolerance_s
    return rep


@dataclass
class RateReport:
    """Outcome of a load-generator run: ``reached`` is True when the achieved rate is at
    least ``tolerance`` (95 %) of the asked rate, measured up to the last acknowledgement."""

    asked: float
    achieved: float = 0.0
    readings: int = 0
    messages: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    qos: int = 0
    form: str = ""
    tolerance: float = 0.95
    flushed: bool = True
    pool_messages: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.flushed and self.achieved >= self.tolerance * self.asked

    def summary(self) -> str:
        what = (
            f"{self.readings} readings in {self.messages} messages over {self.seconds:.2f} s "
            f"(form {self.form}, batch {self.batch_size}, QoS {self.qos})"
        )
        if self.reached:
            return f"rate reached: {self.achieved:.0f} readings/s of {self.asked:.0f} asked; {what}"
        why = (
            "the broker did not acknowledge everything in time"
            if not self.flushed
            else "publishing is the bottleneck: raise --batch-size, use --form columns, "
            "lower --qos, or run several simulator processes"
        )
        return (
            f"COULD NOT reach the asked rate: {self.achieved:.0f} readings/s of "
            f"{self.asked:.0f} asked ({100 * self.achieved / self.asked:.0f} %); {what}; {why}"
        )


def build_pool(
    sim: Simulator, encoder: Encoder, *, min_readings: int, max_ticks: int = 100_000
) -> list[tuple[str, list[bytes], int]]:
    """Pre-encoded messages for the load generator: (topic, payload split at the
    timestamp placeholder, readings in it), from the simulator's own readings."""
    pool: list[tuple[str, list[bytes], int]] = []
    n = 0
    ticks = 0
    while n < min_readings and ticks < max_ticks and not sim.done():
        sim.skip_idle()
        r = sim.step()
        ticks += 1
        r = r.take(r.damage == 0)
        if not len(r):
            continue
        for topic, payload, m in encoder.encode_counted(r, ts_override=True):
            pool.append((topic, payload.split(_TS_BYTES), m))
        n += len(r)
    if not pool:
        raise SimulatorError("the scenario produced no readings to build a load pool from")
    return pool


def run_rate(
    pool: list[tuple[str, list[bytes], int]],
    sink: Sink,
    *,
    rate: float,
    duration_s: float,
    batch_size: int,
    qos: int,
    form: str,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RateReport:
    """Publish pre-encoded messages at ``rate`` readings/s for ``duration_s`` seconds,
    stamping each with the current time; report whether the rate was reached."""
    if rate <= 0:
        raise SimulatorError(f"--rate must be > 0, got {rate}")
    rep = RateReport(asked=rate, batch_size=batch_size, qos=qos, form=form, pool_messages=len(pool))
    t0 = clock()
    end = t0 + duration_s
    sent = 0
    msgs = 0
    i = 0
    npool = len(pool)
    publish = sink.publish
    while True:
        now = clock()
        if now >= end or (stop is not None and stop.is_set()):
            break
        allowed = rate * (now - t0)
        if sent >= allowed:
            time.sleep(min(0.002, max(0.0, (sent - allowed) / rate)))
            continue
        ts = str(time.time_ns() // 1_000_000).encode()
        # publish a burst up to the allowance, re-reading the clock every 64 messages
        for _ in range(64):
            topic, parts, n = pool[i]
            publish(topic, ts.join(parts))
            i += 1
            if i == npool:
                i = 0
            sent += n
            msgs += 1
            if sent >= allowed:
                break
    rep.flushed = sink.flush(timeout=max(10.0, duration_s))
    rep.seconds = clock() - t0
    rep.readings = sent
    rep.messages = msgs
    rep.achieved = sent / rep.seconds if rep.seconds > 0 else 0.0
    return rep
