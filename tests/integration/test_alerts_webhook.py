"""A webhook receiver that is down, slow, or answers 500: alerting (MQTT) goes on, and the
webhook catches up in order, each notification once, signed; a 4xx is not retried."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from riskwatch.alerts.sink import AlertSink
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import ManualClock
from riskwatch.config.alerts import AlertsConfig, NotifierConfig
from riskwatch.model import Level, Signal
from riskwatch.pipeline import StageContext
from tests.conftest import free_port
from tests.integration.alerts_helpers import PahoPublisher, WebhookReceiver
from tests.integration.spine_helpers import Collector, unique, wait_for

pytestmark = pytest.mark.integration

T0 = 1_795_880_000 * 10**9


def _sink(tmp_path: Path, root: str, url: str, mqtt_addr: tuple[str, int]):  # type: ignore[no-untyped-def]
    os.environ["RW_TEST_HOOK_SECRET"] = "s3cret"
    cfg = AlertsConfig(
        store=str(tmp_path / "a.sqlite"),
        notify=[
            NotifierConfig(kind="mqtt", topic=f"{root}/{{enterprise}}", summary_topic=None),
            NotifierConfig(kind="webhook", name="hook", url=url, secret_env="RW_TEST_HOOK_SECRET",
                           timeout_s=0.3, retry_initial_s=0.05, retry_max_s=0.2, queue_max=3),
        ],
    )  # fmt: skip
    reg = SensorRegistry()
    reg.intern("m1", "face1", [f"S{i}" for i in range(20)])
    clock = ManualClock(T0)
    pub = PahoPublisher(*mqtt_addr)
    sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock)
    sink.start()

    def fire(i: int) -> None:
        s = Signal("ch4", i, clock.now_ns(), "firing", Level.ORANGE, 1.2, 1.0, "high")
        sink.handle([s], StageContext(clock.now_ns(), reg))

    return sink, pub, fire


def test_down_then_500_then_slow_then_catches_up(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("rww")
    port = free_port()
    col = Collector(*mqtt_addr, f"{root}/#")
    sink, pub, fire = _sink(tmp_path, root, f"http://127.0.0.1:{port}/hook", mqtt_addr)
    try:
        for i in range(8):  # webhook down; its queue holds 3, the rest waits in the outbox
            fire(i)
        wait_for(lambda: len(col.messages) == 8, timeout=10, what="MQTT alerts while hook is down")
        assert sink.runners["hook"].sent_total == 0
        hook = WebhookReceiver(port=port)
        hook.fail_next = 5  # comes back answering 500 five times
        wait_for(lambda: len(hook.received) >= 2, timeout=15, what="first webhook deliveries")
        hook.mode = "slow"  # slower than the 0.3 s timeout: retried
        hook.slow_s = 0.6
        for i in range(8, 12):
            fire(i)
        wait_for(lambda: len(col.messages) == 12, timeout=10, what="MQTT alerts while hook is slow")
        hook.mode = "ok"
        wait_for(lambda: sink.wait_idle(0.1) and len(hook.received) >= 12, timeout=30,
                 what="webhook caught up")  # fmt: skip
        mqtt_events = [orjson.loads(p)["event"] for _, p in col.messages]
        got = hook.events()
        # slow answers may arrive after the client gave up: the receiver then sees a repeat
        # (same X-Riskwatch-Delivery), never a loss and never out of order
        assert list(dict.fromkeys(got)) == mqtt_events
        assert hook.bad_signatures == 0
        assert {h["X-Riskwatch-Delivery"] for _, h in hook.received} == {
            f"{e}:hook" for e in mqtt_events}  # fmt: skip
        assert sink.store.delivery_counts() == {("mqtt", "delivered"): 12,
                                                ("hook", "delivered"): 12}  # fmt: skip
        assert sink.runners["hook"].failed_total == 0
        hook.close()
    finally:
        sink.stop()
        pub.close()
        col.close()


def test_a_4xx_is_given_up_not_retried(tmp_path: Path, mqtt_addr: tuple[str, int]) -> None:
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        calls = 0

        def log_message(self, *a: object) -> None:
            return None

        def do_POST(self) -> None:
            H.calls += 1
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(400)
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sink, pub, fire = _sink(tmp_path, unique("rwx"), f"http://127.0.0.1:{srv.server_address[1]}/",
                            mqtt_addr)  # fmt: skip
    try:
        fire(0)
        wait_for(lambda: sink.runners["hook"].failed_total == 1, timeout=10, what="give up")
        assert H.calls == 1
        assert sink.store.delivery_counts()[("hook", "failed")] == 1
        assert "answered 400" in (sink.runners["hook"].last_error or "")
    finally:
        sink.stop()
        pub.close()
        srv.shutdown()
