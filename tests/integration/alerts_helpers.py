"""Helpers for alert integration tests: a paho publisher (the engine's Publisher protocol),
a webhook receiver with failure modes, and a child process that runs a sink for kill -9
tests (``python -m tests.integration.alerts_helpers DB CONFIG.json``)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.spine_helpers import unique


class PahoPublisher:
    """What the engine's MQTT client does for the sink: ``publish(topic, payload, qos, retain)``."""

    def __init__(self, host: str, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("alpub-"))
        self.c.max_inflight_messages_set(0)
        self.c.max_queued_messages_set(0)
        self.c.connect(host, port)
        self.c.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=qos, retain=retain)

    def flush(self, timeout: float = 10.0) -> None:
        info = self.c.publish("rw-test/flush", b"", qos=1)
        info.wait_for_publish(timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class WebhookReceiver:
    """A real HTTP server. ``mode``: ``ok``, ``500`` or ``slow`` (sleeps ``slow_s`` then
    answers 200); ``fail_next`` answers 500 that many times first."""

    def __init__(self, port: int = 0, secret: bytes = b"s3cret") -> None:
        self.received: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.attempts = 0
        self.mode = "ok"
        self.slow_s = 2.0
        self.fail_next = 0
        self.secret = secret
        self.bad_signatures = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                if outer.fail_next > 0 or outer.mode == "500":
                    outer.fail_next = max(0, outer.fail_next - 1)
                    self.send_response(500)
                    self.end_headers()
                    return
                if outer.mode == "slow":
                    time.sleep(outer.slow_s)
                ts = self.headers.get("X-Riskwatch-Timestamp")  # signed as "<ts>.<body>"
                signed = body if ts is None else f"{ts}.".encode() + body
                want = "sha256=" + hmac.new(outer.secret, signed, hashlib.sha256).hexdigest()
                if self.headers.get("X-Riskwatch-Signature") != want:
                    outer.bad_signatures += 1
                outer.received.append((json.loads(body), dict(self.headers)))
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [b["event"] for b, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _child(db: str, cfg_path: str) -> None:  # pragma: no cover - runs in a subprocess
    """Run a sink; read JSON commands on stdin, answer one JSON line per command."""
    from prometheus_client import CollectorRegistry

    from riskwatch.alerts.sink import AlertSink
    from riskwatch.catalog import SensorRegistry
    from riskwatch.clock import ManualClock
    from riskwatch.config.alerts import AlertsConfig
    from riskwatch.config.schema import parse
    from riskwatch.config.yamldoc import YamlDoc
    from riskwatch.model import Level, Signal
    from riskwatch.pipeline import StageContext

    spec = json.loads(Path(cfg_path).read_text())
    cfg = parse(AlertsConfig, YamlDoc.from_text(json.dumps(spec["alerts"])))
    reg = SensorRegistry()
    reg.intern("m1", "face1", [f"CH4-{i:02d}" for i in range(10)])
    clock = ManualClock(spec["t0"])
    pub = PahoPublisher("127.0.0.1", spec["mqtt_port"])
    sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock)
    sink.start()
    for line in sys.stdin:
        cmd = json.loads(line)
        out: Any = "ok"
        op = cmd["op"]
        if op == "sig":
            lev = Level.from_name(cmd["level"]) if cmd.get("level") else None
            s = Signal(cmd["rule"], cmd["sensor"], clock.now_ns(), cmd["state"], lev,
                       cmd.get("value", 1.0), 1.0, f"{cmd['rule']} {cmd['state']}")  # fmt: skip
            sink.handle([s], StageContext(clock.now_ns(), reg))
        elif op == "tick":
            clock.advance(cmd["s"])
            sink.tick(StageContext(clock.now_ns(), reg))
        elif op == "ack":
            sink.ack(cmd["id"], "op1")
        elif op == "open":
            out = [
                {"id": a.id, "sensor": a.sensor, "state": a.state.value, "tier": a.tier,
                 "acked": a.acked}
                for a in sink.open_alerts()
            ]  # fmt: skip
        elif op == "idle":
            out = sink.runners["mqtt"].idle()
            pub.flush()
        print(json.dumps(out), flush=True)


if __name__ == "__main__":  # pragma: no cover
    _child(sys.argv[1], sys.argv[2])
