"""Helpers for integration tests of the engine spine (real Mosquitto and InfluxDB)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def now_ms() -> int:
    """Now in epoch ms; call it when a test starts (a module-level constant goes stale and
    readings older than ingest.late_after_s get flagged late)."""
    return int(time.time() * 1000)


NOW_MS = now_ms()  # import-time value, kept for tests that only need "recently"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def influx_query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """Rows of an InfluxQL query as dicts (epoch ns times)."""
    qs = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{qs}", timeout=10) as r:
        data = json.load(r)
    rows: list[dict[str, Any]] = []
    for res in data.get("results", []):
        for s in res.get("series", []) or []:
            tags = s.get("tags", {})
            for v in s["values"]:
                rows.append({**tags, **dict(zip(s["columns"], v, strict=True))})
    return rows


def influx_count(url: str, db: str, where: str = "") -> int:
    try:
        rows = influx_query(url, db, f"SELECT count(value) FROM reading {where}")
    except OSError:
        return -1
    return int(rows[0]["count"]) if rows else 0


def wait_for(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Publisher:
    """A plain paho QoS 1 publisher (what a gateway does)."""

    def __init__(self, host: str, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub-"))
        self.c.max_inflight_messages_set(1000)
        self.c.connect(host, port)
        self.c.loop_start()

    def send(self, topic: str, payload: Any, qos: int = 1) -> None:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self.c.publish(topic, body, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Collector:
    """Subscribes to a topic filter and keeps what arrives."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("col-"))
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.connect(host, port)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        time.sleep(0.3)

    def json(self) -> list[dict[str, Any]]:
        return [orjson.loads(p) for _, p in self.messages]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def engine_yaml(
    tmp: Path,
    *,
    mqtt_port: int,
    root: str,
    influx: str | None,
    extra: str = "",
    client_id: str | None = None,
) -> Path:
    """Write an engine config for a test; topics under ``root``."""
    storage = f"  influx: {influx}\n" if influx else "  influx: null\n"
    text = (
        f"mqtt:\n  url: mqtt://127.0.0.1:{mqtt_port}\n  client_id: {client_id or unique('rw-')}\n"
        f"  topics: ['{root}/#']\n  topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'\n"
        f"storage:\n{storage}  spool_dir: {tmp}/spool\n  retry_initial_s: 0.2\n  retry_max_s: 1.0\n"
        f"ingest:\n  batch_max_wait_ms: 50\n  deadletter: {{file: {tmp}/deadletter.jsonl, topic: {root}-dl}}\n"
        f"metrics: {{listen: '127.0.0.1:0'}}\n" + extra
    )
    p = tmp / "engine.yaml"
    p.write_text(text)
    return p
