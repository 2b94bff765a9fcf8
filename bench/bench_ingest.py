#!/usr/bin/env python3
"""Ingest and end-to-end benchmark of the engine spine, against baselines measured in the same run.

For each payload form (single readings, 100-reading envelopes, 100-reading column payloads):

(a) a bare paho-mqtt subscriber's receive rate (QoS 1, auto-ack, MQTT 3.1.1)
(b) riskwatch's ingest rate with storage switched off (decode, batch, ack; MQTT 3.1.1 like
    (a): paho parses MQTT 5 properties of every message in Python, ~20 µs a message more)
(c) a bare bulk writer's rate into InfluxDB 1.x (pre-encoded line protocol, 10k-point POSTs)
(d) riskwatch end to end: published → stored in InfluxDB (acknowledged after the write)

Consumers start against a broker that already holds the whole load for their persistent
session, so rates measure the consumer, not the publisher. Then a paced live run measures
publish-to-stored latency (p50/p99) per reading.

Run (needs mosquitto and influxd on PATH; starts its own Mosquitto with large queues and
uses the InfluxDB at $RW_BENCH_INFLUX, default http://127.0.0.1:18086 — `source .ci/services.sh`):

    python bench/bench_ingest.py            # full run
    python bench/bench_ingest.py --quick    # smaller loads
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.config.engine import load_engine_config_text
from riskwatch.engine import Engine

INFLUX = os.environ.get("RW_BENCH_INFLUX", "http://127.0.0.1:18086")
# riskwatch consumes with the protocol the bare subscriber (a) uses, so that (b)/(a) compares
# the engine's work with paho's, not MQTT 5 with MQTT 3.1.1
PROTOCOL = "3.1.1"
T0_MS = int(time.time() * 1000) - 3_600_000


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


def payloads(form: str, n_readings: int, live: bool = False) -> list[bytes]:
    out = []
    if form == "single":
        for i in range(n_readings):
            out.append(orjson.dumps({"sensor": f"S{i % 1000}", "ts": T0_MS + i, "value": i * 0.01}))
    elif form == "envelope":
        for k in range(0, n_readings, 100):
            out.append(
                orjson.dumps(
                    {
                        "gateway": "gw",
                        "ts": T0_MS,
                        "readings": [
                            {"sensor": f"S{i % 1000}", "ts": T0_MS + i, "value": i * 0.01}
                            for i in range(k, k + 100)
                        ],
                    }
                )
            )
    elif form == "columns":
        for k in range(0, n_readings, 100):
            out.append(
                orjson.dumps(
                    {
                        "ts": [T0_MS + i for i in range(k, k + 100)],
                        "sensor": [f"S{i % 1000}" for i in range(k, k + 100)],
                        "value": [i * 0.01 for i in range(k, k + 100)],
                    }
                )
            )
    return out


def preload(port: int, client_id: str, topic_root: str, bodies: list[bytes], v5: bool) -> None:
    """Create the consumer's persistent session, then publish the whole load into it."""
    if v5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(f"{topic_root}/#", qos=1)[1]
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub-" + uuid.uuid4().hex[:6])
    pub.max_inflight_messages_set(5000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    info = None
    for i, b in enumerate(bodies):
        info = pub.publish(f"{topic_root}/ent/site{i % 4}/gw", b, qos=1)
    assert info is not None
    info.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def _publish_all(port: int, topic_root: str, bodies: list[bytes]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="live-pub-" + uuid.uuid4().hex[:6])
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    info = None
    for i, b in enumerate(bodies):
        info = pub.publish(f"{topic_root}/ent/site{i % 4}/gw", b, qos=1)
    assert info is not None
    info.wait_for_publish(300)
    pub.disconnect()
    pub.loop_stop()


def live(port: int, n: int, bodies: list[bytes], consumer: str) -> float:
    """A publisher process sends the load as fast as it can while the consumer runs:
    readings/s from the first publish to the consumer having processed the last one."""
    import multiprocessing as mp

    root = "live" + uuid.uuid4().hex[:6]
    got = 0
    done = threading.Event()
    if consumer == "bare":

        def on_message(c, u, m):  # type: ignore[no-untyped-def]
            nonlocal got
            got += 1
            if got == len(bodies):
                done.set()

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="lb-" + root)
        c.on_message = on_message
        c.connect("127.0.0.1", port)
        c.subscribe(f"{root}/#", qos=1)
        c.loop_start()
        time.sleep(0.5)
        stop = lambda: (c.disconnect(), c.loop_stop())  # noqa: E731
        finished = lambda: done.is_set()  # noqa: E731
    else:
        eng = Engine(
            load_engine_config_text(
                engine_cfg(port, "lr-" + root, root, None, Path(tempfile.gettempdir()))
            )
        )
        eng.start()
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        stop = eng.stop
        finished = lambda: eng.readings_total >= n  # noqa: E731
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_publish_all, args=(port, root, bodies))
    t0 = time.perf_counter()
    proc.start()
    deadline = time.monotonic() + 600
    while not finished() and time.monotonic() < deadline:
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    proc.join(60)
    stop()
    return n / dt


def bare_subscriber(port: int, form: str, n: int, n_msgs: int, bodies: list[bytes]) -> float:
    cid = "bare-" + uuid.uuid4().hex[:6]
    preload(port, cid, "bare" + cid[-6:], bodies, v5=False)
    got = 0
    done = threading.Event()
    first = 0.0

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        nonlocal got, first
        if got == 0:
            first = time.time()
        got += 1
        if got == n_msgs:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"bare subscriber got {got}/{n_msgs}")
    dt = time.time() - first  # streaming time: first message to last
    del t0
    c.disconnect()
    c.loop_stop()
    return n / dt


def engine_cfg(port: int, cid: str, root: str, db: str | None, tmp: Path) -> str:
    influx = f"{{url: '{INFLUX}', database: {db}}}" if db else "null"
    rmax = ", receive_maximum: 65535" if PROTOCOL == "5" else ""
    return (
        f"mqtt: {{url: 'mqtt://127.0.0.1:{port}', client_id: {cid}, topics: ['{root}/#'], "
        f"topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}', protocol: '{PROTOCOL}'{rmax}}}\n"
        f"storage: {{influx: {influx}, spool_dir: '{tmp}/spool-{cid}'}}\n"
        f"ingest: {{deadletter: {{file: null, topic: null}}}}\n"
        "metrics: {listen: null}\n"
        f"alerts: {{store: '{tmp}/alerts-{cid}.sqlite'}}\n"
    )


def riskwatch_consume(port: int, n: int, bodies: list[bytes], db: str | None, tmp: Path) -> float:
    cid = "rw-" + uuid.uuid4().hex[:6]
    root = "rwb" + cid[-6:]
    preload(port, cid, root, bodies, v5=PROTOCOL == "5")
    eng = Engine(load_engine_config_text(engine_cfg(port, cid, root, db, tmp)))
    t0 = time.perf_counter()
    eng.start()
    deadline = time.monotonic() + 600
    while eng.readings_total < n and time.monotonic() < deadline:
        time.sleep(0.005)
    ok = eng.wait_idle(120)
    # streaming time: first message received to the last one acknowledged (start-up of the
    # engine and its receiver process is not counted, as the bare subscriber's is not);
    # both ends are timestamps the engine took, not the times this loop polled them
    assert eng.first_received_ns is not None and eng.last_acked_ns is not None
    dt = (eng.last_acked_ns - eng.first_received_ns) / 1e9
    del t0
    assert eng.storage is not None and (eng.storage.spool is None or len(eng.storage.spool) == 0)
    eng.stop()
    if eng.readings_total != n or not ok:
        raise RuntimeError(f"riskwatch processed {eng.readings_total}/{n}")
    if db:
        cnt = influx_count(db)
        if cnt != n:
            raise RuntimeError(f"InfluxDB holds {cnt}/{n} points")
    return n / dt


def influx_count(db: str) -> int:
    q = urllib.parse.urlencode({"db": db, "q": "SELECT count(value) FROM reading"})
    with urllib.request.urlopen(f"{INFLUX}/query?{q}", timeout=60) as r:
        data = orjson.loads(r.read())
    s = data["results"][0].get("series")
    return int(s[0]["values"][0][1]) if s else 0


def bare_writer(n: int, db: str) -> float:
    http = urllib3.PoolManager()
    http.request("POST", f"{INFLUX}/query", fields={"q": f'CREATE DATABASE "{db}"'})
    lines = [
        f"reading,enterprise=ent,kind=ch4,sensor=S{i % 1000},site=site{i % 4} value={i * 0.01!r},flags=0i {(T0_MS + i) * 1_000_000}"
        for i in range(n)
    ]
    bodies = ["\n".join(lines[k : k + 10_000]).encode() for k in range(0, n, 10_000)]
    url = f"{INFLUX}/write?db={db}&precision=ns"
    t0 = time.perf_counter()
    for b in bodies:
        r = http.request("POST", url, body=b)
        assert r.status == 204, r.data
    return n / (time.perf_counter() - t0)


def latency_run(
    port: int, form: str, rate: float, seconds: float, db: str, tmp: Path
) -> tuple[float, float, int]:
    """Publish live at ``rate`` readings/s; per reading, time from publish to durable write."""
    cid = "rwl-" + uuid.uuid4().hex[:6]
    root = "rwl" + cid[-6:]
    eng = Engine(
        load_engine_config_text(
            engine_cfg(port, cid, root, db, tmp).replace(
                "ingest: {", "ingest: {batch_max_wait_ms: 20, "
            )
        )
    )
    lat: list[np.ndarray] = []
    eng.start()
    assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
    assert eng.storage is not None
    orig_submit = eng.storage.submit

    def submit(batch, on_durable=None):  # type: ignore[no-untyped-def]
        def done() -> None:
            if on_durable:
                on_durable()
            if len(batch):
                lat.append((time.time_ns() - batch.time) / 1e6)

        orig_submit(batch, done)

    eng.storage.submit = submit  # type: ignore[method-assign]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="lat-pub-" + uuid.uuid4().hex[:6])
    pub.max_inflight_messages_set(5000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    per_msg = 1 if form == "single" else 100
    msgs_per_s = rate / per_msg
    n_msgs = int(msgs_per_s * seconds)
    t_start = time.perf_counter()
    for i in range(n_msgs):
        target = t_start + i / msgs_per_s
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ms = time.time_ns() // 1_000_000  # stamped at publish
        if per_msg == 1:
            body = orjson.dumps({"sensor": f"S{i % 1000}", "ts": ms, "value": 1.0})
        elif form == "envelope":
            body = orjson.dumps(
                {"ts": ms, "readings": [{"sensor": f"S{j}", "value": 1.0} for j in range(100)]}
            )
        else:
            body = orjson.dumps(
                {"ts": ms, "sensor": [f"S{j}" for j in range(100)], "value": [1.0] * 100}
            )
        pub.publish(f"{root}/ent/site/gw", body, qos=1)
    eng.wait_idle(60)
    pub.disconnect()
    pub.loop_stop()
    eng.stop()
    arr = np.concatenate(lat) if lat else np.zeros(1)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), len(arr)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller loads (for a smoke run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    scale = 0.2 if args.quick else 1.0
    loads = {
        "single": int(50_000 * scale),
        "envelope": int(500_000 * scale),
        "columns": int(500_000 * scale),
    }
    tmp = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    broker = Broker()
    results = {}
    live_results = {}
    try:
        for form, n in loads.items():
            bodies = payloads(form, n)
            a = bare_subscriber(broker.port, form, n, len(bodies), bodies)
            b = riskwatch_consume(broker.port, n, bodies, None, tmp)
            db = "bench_" + uuid.uuid4().hex[:8]
            c = bare_writer(n, db + "_bare")
            d = riskwatch_consume(broker.port, n, bodies, db, tmp)
            results[form] = (a, b, c, d)
            la = live(broker.port, n, bodies, "bare")
            lb = live(broker.port, n, bodies, "riskwatch")
            live_results[form] = (la, lb)
            print(
                f"{form:9s} (a) bare paho {a:10,.0f}/s  (b) riskwatch ingest {b:10,.0f}/s  "
                f"(c) bare writer {c:10,.0f}/s  (d) riskwatch end-to-end {d:10,.0f}/s  "
                f"b/a={b / a:.2f}  d/c={d / c:.2f}",
                flush=True,
            )
        lat = {}
        for form, rate in (("single", 2_000), ("envelope", 20_000), ("columns", 20_000)):
            lat[form] = latency_run(
                broker.port,
                form,
                rate * (0.5 if args.quick else 1),
                5 * scale + 3,
                "bench_lat",
                tmp,
            )
    finally:
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        "| payload | (a) bare paho sub | (b) riskwatch ingest | (b)/(a) | (c) bare InfluxDB writer | (d) riskwatch end-to-end | (d)/(c) | publish→stored p50 / p99 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for form, (a, b, c, d) in results.items():
        p50, p99, _ = lat[form]
        print(
            f"| {form} | {a:,.0f}/s | {b:,.0f}/s | {b / a:.2f} | {c:,.0f}/s | {d:,.0f}/s | {d / c:.2f} | {p50:.0f} ms / {p99:.0f} ms |"
        )
    print("\nlatency runs (live, paced): single 2k readings/s, envelope and columns 20k readings/s")
    print(
        "\nLive: a publisher process sends the same load as fast as it can while the consumer runs"
    )
    print("| payload | (a') bare paho sub, live | (b') riskwatch ingest, live | (b')/(a') |")
    print("|---|---|---|---|")
    for form, (la, lb) in live_results.items():
        print(f"| {form} | {la:,.0f}/s | {lb:,.0f}/s | {lb / la:.2f} |")


if __name__ == "__main__":
    main()
