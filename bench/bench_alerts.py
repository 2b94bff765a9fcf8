#!/usr/bin/env python3
"""Alert lifecycle benchmark, against a baseline measured in the same run.

(a) baseline: a bare paho publisher -> Mosquitto -> subscriber, N JSON messages of the
    alert size (QoS 1): the transport floor.
(b) the alert sink alone: N signals (batches of 500, firing/resolved alternating over
    5000 sensors) through ``AlertSink.handle`` -> transitions stored (SQLite WAL,
    synchronous=FULL; then PostgreSQL) -> MQTT notifier -> the subscriber has them all.
    Printed as signals/s and as a ratio to (a).
(c) end to end through the engine (``riskwatch.engine.Engine`` with the bundled coal-mine
    pack): a publisher process sends 50 000 readings/s (5000 CH4 sensors at 10 Hz, column
    payloads of 500 readings) where 1 % of the readings flip their sensor across the 1.0 %
    alarm level (500 alert transitions/s); a subscriber process timestamps every alert
    message. Latency = arrival of the alert message at the subscriber - the reading's
    timestamp (taken by the publisher just before publishing), so it includes both broker
    hops, decoding, batching, rules, the store's fsync and the notifier.

Starts its own Mosquitto (mosquitto on PATH). PostgreSQL at $RW_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432/test; set it empty to skip).

    python bench/bench_alerts.py            # full run (about a minute)
    python bench/bench_alerts.py --quick
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

PG = os.environ.get("RW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PACK = Path(__file__).resolve().parents[1] / "riskwatch" / "config" / "rules" / "coal_mine.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rw-bench-mosq-"))
        conf = self.dir / "m.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            "max_queued_bytes 0\nmax_inflight_messages 0\nmemory_limit 0\n"
        )
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Counter:
    """Subscriber counting messages (and keeping their arrival times)."""

    def __init__(self, port: int, topic: str) -> None:
        self.n = 0
        self.done = threading.Event()
        self.target = 0
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cnt-{uuid.uuid4().hex[:8]}")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        time.sleep(0.3)

    def _on(self, c, u, m) -> None:  # type: ignore[no-untyped-def]
        self.n += 1
        if self.target and self.n >= self.target:
            self.done.set()

    def expect(self, n: int) -> None:
        self.n, self.target = 0, n
        self.done.clear()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Pub:
    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.c.max_inflight_messages_set(0)
        self.c.max_queued_messages_set(0)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=qos, retain=retain)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def baseline(port: int, n: int) -> float:
    cnt = Counter(port, "base/#")
    pub = Pub(port)
    body = orjson.dumps({"id": "0123456789abcdef", "event": "0123456789abcdef:1", "rule": "ch4",
                         "level": "orange", "state": "firing", "message": "x" * 60,
                         "enterprise": "m1", "site": "face1", "sensor": "CH4-0001",
                         "value": 1.2, "threshold": 1.0, "ts": 0, "since": 0})  # fmt: skip
    cnt.expect(n)
    t = time.perf_counter()
    for _ in range(n):
        pub.publish("base/m1", body)
    cnt.done.wait(120)
    dt = time.perf_counter() - t
    pub.close()
    cnt.close()
    return n / dt


def sink_rate(port: int, n: int, store: str, label: str) -> float:
    from prometheus_client import CollectorRegistry

    from riskwatch.alerts.sink import AlertSink
    from riskwatch.alerts.store import AlertStore
    from riskwatch.catalog import SensorRegistry
    from riskwatch.clock import ManualClock
    from riskwatch.config.alerts import AlertsConfig, FlappingConfig, NotifierConfig
    from riskwatch.model import Level, Signal
    from riskwatch.pipeline import StageContext

    root = f"bs{uuid.uuid4().hex[:6]}"
    n_sensors = 5000
    reg = SensorRegistry()
    reg.intern("m1", "face1", [f"CH4-{i:04d}" for i in range(n_sensors)])
    cfg = AlertsConfig(
        store=store,
        notify=[NotifierConfig(kind="mqtt", topic=root + "/{enterprise}", summary_topic=None)],
        flapping=FlappingConfig(high=10**6, low=1),
    )
    clock = ManualClock(1_795_880_000 * 10**9)
    prefix = f"b{uuid.uuid4().hex[:6]}_"
    st = AlertStore(store, prefix=prefix)
    pub = Pub(port)
    sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock, store=st)
    sink.start()
    cnt = Counter(port, f"{root}/#")
    cnt.expect(n)
    batch = 500
    t = time.perf_counter()
    for k in range(0, n, batch):
        clock.advance(0.01)
        now = clock.now_ns()
        sigs = []
        for j in range(k, min(n, k + batch)):
            sid = j % n_sensors
            firing = (j // n_sensors) % 2 == 0
            sigs.append(Signal("ch4", sid, now, "firing" if firing else "resolved",
                               Level.ORANGE if firing else None, 1.2, 1.0, "CH4 1.2 % >= 1 %"))  # fmt: skip
        sink.handle(sigs, StageContext(now, reg))
    cnt.done.wait(300)
    dt = time.perf_counter() - t
    ok = cnt.n >= n
    sink.stop()
    pub.close()
    cnt.close()
    if "://" in store:
        import sqlalchemy as sa

        eng = sa.create_engine(store.replace("postgresql://", "postgresql+psycopg://"))
        with eng.begin() as c:
            for tb in ("alerts", "transitions", "outbox", "silences"):
                c.exec_driver_sql(f'DROP TABLE IF EXISTS "{prefix}{tb}"')
        eng.dispose()
    print(f"  sink [{label}]: {n} signals -> stored + on MQTT in {dt:.2f} s = {n / dt:,.0f} "
          f"signals/s{'' if ok else ' (INCOMPLETE: ' + str(cnt.n) + ')'}")  # fmt: skip
    return n / dt


def sink_latency(port: int, seconds: float, write: str) -> float:
    """Signal handed to the sink -> alert message at a subscriber, paced at 500 signals/s
    in batches of 10 (what the engine hands over at 50k readings/s, 1 % state changes)."""
    from prometheus_client import CollectorRegistry

    from riskwatch.alerts.sink import AlertSink
    from riskwatch.catalog import SensorRegistry
    from riskwatch.clock import SystemClock
    from riskwatch.config.alerts import AlertsConfig, FlappingConfig, NotifierConfig
    from riskwatch.model import Level, Signal
    from riskwatch.pipeline import StageContext

    root = f"bl{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-lat-"))
    reg = SensorRegistry()
    reg.intern("m1", "face1", [f"CH4-{i:04d}" for i in range(5000)])
    cfg = AlertsConfig(
        store=str(tmp / "a.sqlite"), write=write,  # type: ignore[arg-type]
        notify=[NotifierConfig(kind="mqtt", topic=root + "/{enterprise}", summary_topic=None)],
        flapping=FlappingConfig(high=10**6, low=1),
    )  # fmt: skip
    clock = SystemClock()
    pub = Pub(port)
    sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock)
    sink.start()
    lat: list[float] = []

    def on(c, u, m) -> None:  # type: ignore[no-untyped-def]
        lat.append(time.time() * 1000 - orjson.loads(m.payload)["ts"])

    cnt = Counter(port, f"{root}/#")
    cnt.c.on_message = on
    t0 = time.perf_counter()
    k = 0
    j = 0
    while time.perf_counter() - t0 < seconds:
        now = clock.now_ns()
        sigs = []
        for _ in range(10):
            firing = (j // 5000) % 2 == 0
            sigs.append(Signal("ch4", j % 5000, now, "firing" if firing else "resolved",
                               Level.ORANGE if firing else None, 1.2, 1.0, "CH4"))  # fmt: skip
            j += 1
        sink.handle(sigs, StageContext(now, reg))
        k += 1
        d = t0 + k * 0.02 - time.perf_counter()
        if d > 0:
            time.sleep(d)
    sink.wait_idle(30)
    time.sleep(0.5)
    sink.stop()
    pub.close()
    cnt.close()
    shutil.rmtree(tmp, ignore_errors=True)
    a = np.asarray(lat)
    print(f"  sink [{write} writes]: {j:,} signals, signal -> MQTT latency (ms): "
          f"p50 {np.percentile(a, 50):.1f}  p99 {np.percentile(a, 99):.1f}  max {a.max():.1f}")  # fmt: skip
    return float(np.percentile(a, 99))


# ---------------------------------------------------------------------- end to end
def _publisher(port: int, root: str, n_sensors: int, rate: int, seconds: float,
               flip: float, q: mp.Queue) -> None:  # fmt: skip
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:8]}")
    c.max_inflight_messages_set(0)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    rng = np.random.default_rng(7)
    high = np.zeros(n_sensors, dtype=bool)
    names = np.array([f"CH4-{i:04d}" for i in range(n_sensors)], dtype=object)
    tick = 0.02
    per_tick = int(rate * tick)
    per_msg = 500
    pos = 0
    flips = 0
    sent = 0
    t_start = time.perf_counter()
    k = 0
    while time.perf_counter() - t_start < seconds:
        idx = (pos + np.arange(per_tick)) % n_sensors
        pos = (pos + per_tick) % n_sensors
        f = rng.random(per_tick) < flip
        # a flip changes the sensor's state from this reading on (one flip per sensor per tick)
        high[idx[f]] = ~high[idx[f]]
        flips += int(f.sum())
        vals = np.where(high[idx], 1.2, 0.5)
        ts = int(time.time() * 1000)
        for s in range(0, per_tick, per_msg):
            body = orjson.dumps({"ts": [ts] * len(idx[s : s + per_msg]),
                                 "sensor": names[idx[s : s + per_msg]].tolist(),
                                 "value": vals[s : s + per_msg].tolist()})  # fmt: skip
            c.publish(f"{root}/m1/face1/GW-1", body, qos=1)
        sent += per_tick
        k += 1
        delay = t_start + k * tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    dt = time.perf_counter() - t_start
    time.sleep(1)
    c.disconnect()
    c.loop_stop()
    q.put({"sent": sent, "flips": flips, "seconds": dt})


def _subscriber(port: int, topic: str, seconds: float, q: mp.Queue, ready: mp.Event) -> None:  # type: ignore[type-arg]
    lat: list[int] = []
    rules: dict[str, int] = {}

    def on(c, u, m) -> None:  # type: ignore[no-untyped-def]
        now = time.time() * 1000
        d = orjson.loads(m.payload)
        rules[d["rule"]] = rules.get(d["rule"], 0) + 1
        if d["rule"] == "ch4_face":
            lat.append(now - d["ts"])

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"con-{uuid.uuid4().hex[:8]}")
    c.on_message = on
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    time.sleep(0.5)
    ready.set()
    time.sleep(seconds)
    c.disconnect()
    c.loop_stop()
    q.put({"lat": lat, "rules": rules})


class PublishSink:
    """The baseline sink: each signal published as JSON on the alert topic (QoS 1), with
    no store, no state machine and no notifier thread."""

    def __init__(self, topic: str, registry: Any, publisher: Any) -> None:
        self.topic, self.registry, self.publisher = topic, registry, publisher

    @classmethod
    def build(cls, cfg: Any, registry: Any, publisher: Any, metrics: Any, clock: Any) -> Any:
        return cls(cfg.alerts.topic, registry, publisher)

    def handle(self, signals: Any, ctx: Any) -> None:
        for s in signals:
            meta = self.registry.meta(s.sensor)
            body = {"rule": s.rule, "state": str(s.state), "sensor": meta["sensor"],
                    "ts": s.time // 1_000_000, "value": s.value}  # fmt: skip
            topic = self.topic.format(enterprise=meta["enterprise"], site=meta["site"])
            self.publisher.publish(topic, orjson.dumps(body), 1, False)

    def tick(self, ctx: Any) -> None:
        return None

    def add_listener(self, fn: Any) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


def end_to_end(port: int, seconds: float, rate: int, lifecycle: bool = True,
               store_dir: str | None = None, write: str = "async") -> float:  # fmt: skip
    """One paced run; returns the p99 latency in ms. ``lifecycle=False`` runs
    :class:`PublishSink` instead (no store, no state machine): the baseline."""
    from riskwatch.config.engine import load_engine_config_text
    from riskwatch.engine import Engine

    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-alerts-"))
    root = f"rwb{uuid.uuid4().hex[:6]}"
    n_sensors = 5000
    rows = ["enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high"]
    rows += [f"m1,face1,CH4-{i:04d},ch4,%,working_face,GW-1,60,0,4" for i in range(n_sensors)]
    (tmp / "catalog.csv").write_text("\n".join(rows) + "\n")
    text = (
        f"mqtt: {{url: 'mqtt://127.0.0.1:{port}', client_id: {root}, topics: ['{root}/#'],"
        f" topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 20, deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
        f"metrics: {{listen: null}}\ncatalog: ['{tmp}/catalog.csv']\nrules: ['{PACK}']\n"
        f"alerts: {{store: '{store_dir or tmp}/{root}.sqlite', topic: '{root}-al/{{enterprise}}',"
        f" flapping: {{high: 1000000, low: 1}}, write: {write}}}\n"
    )
    cfg_path = tmp / "engine.yaml"
    cfg_path.write_text(text)
    eng = Engine(load_engine_config_text(text, file=str(cfg_path)),
                 sink_factory=None if lifecycle else PublishSink.build)  # fmt: skip
    eng.start()
    assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
    ctx = mp.get_context("spawn")
    q_pub: mp.Queue = ctx.Queue()
    q_sub: mp.Queue = ctx.Queue()
    ready = ctx.Event()
    sub = ctx.Process(target=_subscriber, args=(port, f"{root}-al/#", seconds + 8, q_sub, ready))
    sub.start()
    ready.wait(20)
    pub = ctx.Process(target=_publisher, args=(port, root, n_sensors, rate, seconds, 0.01, q_pub))
    pub.start()
    p = q_pub.get(timeout=seconds + 60)
    s = q_sub.get(timeout=seconds + 60)
    pub.join()
    sub.join()
    readings = eng.readings_total
    eng.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    lat = np.asarray(s["lat"], dtype=np.float64)
    print(f"  published {p['sent']:,} readings in {p['seconds']:.1f} s = "
          f"{p['sent'] / p['seconds']:,.0f} readings/s; engine processed {readings:,}")  # fmt: skip
    print(f"  state flips (1 % of readings): {p['flips']:,}; alert messages received: "
          f"{s['rules']}")  # fmt: skip
    if not len(lat):
        return float("nan")
    print(f"  reading -> alert on MQTT latency (ms): p50 {np.percentile(lat, 50):.0f}  "
          f"p90 {np.percentile(lat, 90):.0f}  p99 {np.percentile(lat, 99):.0f}  "
          f"max {lat.max():.0f}  (n={len(lat):,})")  # fmt: skip
    return float(np.percentile(lat, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--write", choices=["async", "sync"], default="async")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = 5_000 if args.quick else 20_000
    broker = Broker()
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-sink-"))
    try:
        print(f"alert sink throughput ({n:,} signals, batches of 500, 5000 sensors)")
        base = baseline(broker.port, n)
        print(f"  baseline: bare paho publish -> Mosquitto -> subscriber: {base:,.0f} msgs/s")
        r = sink_rate(broker.port, n, str(tmp / "alerts.sqlite"), "SQLite WAL, FULL sync")
        print(f"  ratio sink/baseline: {r / base:.2f}")
        if PG:
            r = sink_rate(broker.port, n, PG, "PostgreSQL")
            print(f"  ratio sink/baseline: {r / base:.2f}")
        print("\nalert sink latency alone (500 signals/s in batches of 10, real broker)")
        for mode in ("sync", "async"):
            sink_latency(broker.port, 5.0 if args.quick else 10.0, mode)
        if not args.skip_e2e:
            secs = args.seconds or (8.0 if args.quick else 20.0)
            print(f"\nend to end through the engine: {args.rate:,} readings/s for {secs:.0f} s, "
                  "1 % of readings change alert state")  # fmt: skip
            print(" baseline: a bare publishing sink (no store, no lifecycle)")
            base_p99 = end_to_end(broker.port, secs, args.rate, lifecycle=False)
            print(" riskwatch.alerts sink (SQLite WAL, synchronous=FULL, outbox, notifier thread)")
            p99 = end_to_end(broker.port, secs, args.rate, write=args.write)
            print(f"  p99 ratio lifecycle/baseline: {p99 / base_p99:.2f}; target p99 <= 100 ms: "
                  f"{'met' if p99 <= 100 else 'NOT met'}")  # fmt: skip
    finally:
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
