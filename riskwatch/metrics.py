"""Prometheus metrics of the data path, on an injected registry.

Components create their metrics on the :class:`prometheus_client.CollectorRegistry`
they are given (never the global one), so tests can build as many engines as they like.

>>> from prometheus_client import CollectorRegistry
>>> m = IngestMetrics(CollectorRegistry())
>>> m.readings_in.inc(3)
"""

from __future__ import annotations

import hmac
import logging
import threading
from enum import StrEnum
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from riskwatch.errors import DeadLetterReason

log = logging.getLogger("riskwatch.engine")

__all__ = ["IngestMetrics", "ReloadMetrics", "ReloadOutcome", "StorageMetrics", "serve_metrics"]

_LAT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_SIZE_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages_in = Counter(
            "riskwatch_messages_received", "MQTT messages received", registry=registry
        )
        self.readings_in = Counter(
            "riskwatch_readings_received", "Readings decoded into batches", registry=registry
        )
        self.deadletters = Counter(
            "riskwatch_deadletters",
            "Readings or messages sent to the dead-letter sink, by reason",
            ["reason"],
            registry=registry,
        )
        for r in DeadLetterReason:
            self.deadletters.labels(r.value)
        self.batch_size = Histogram(
            "riskwatch_batch_readings",
            "Readings per micro-batch",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.pipeline_latency = Histogram(
            "riskwatch_pipeline_latency_seconds",
            "Arrival of a reading to its batch handed to storage",
            buckets=_LAT_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "riskwatch_stage_seconds",
            "Time spent in pipeline stages per batch",
            ["stage"],
            buckets=_LAT_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "riskwatch_ingest_queue_messages",
            "Decoded messages waiting for the batcher",
            registry=registry,
        )
        self.mqtt_connected = Gauge(
            "riskwatch_mqtt_connected", "1 while connected to the broker", registry=registry
        )
        self.unacked = Gauge(
            "riskwatch_mqtt_unacked_messages",
            "Messages received but not yet acknowledged (waiting for durable storage)",
            registry=registry,
        )
        self.deadletter_publish_failures = Counter(
            "riskwatch_deadletter_publish_failures_total",
            "Dead letters that could not be published on the dead-letter topic (they are "
            "still in the dead-letter file)",
            registry=registry,
        )
        self.sensors = Gauge(
            "riskwatch_registered_sensors",
            "Sensors the engine knows (catalogued and first seen in telemetry); each costs "
            "memory until a restart",
            registry=registry,
        )
        self.batch_errors = Counter(
            "riskwatch_batch_errors_total",
            "Micro-batches on which a stage failed (the readings are stored, the failure "
            "logged with its traceback; the engine goes on)",
            registry=registry,
        )
        self.signals = Counter(
            "riskwatch_signals",
            "Signals emitted by rules and detectors",
            ["source"],
            registry=registry,
        )


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.points_written = Counter(
            "riskwatch_storage_points_written", "Points written to InfluxDB", registry=registry
        )
        self.write_errors = Counter(
            "riskwatch_storage_write_errors",
            "Failed writes, by kind",
            ["kind"],
            registry=registry,
        )
        self.write_latency = Histogram(
            "riskwatch_storage_write_seconds",
            "Latency of one write request",
            buckets=_LAT_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "riskwatch_storage_queue_batches", "Batches waiting to be written", registry=registry
        )
        self.spool_bytes = Gauge(
            "riskwatch_spool_bytes", "Bytes in the on-disk spool", registry=registry
        )
        self.spool_full = Counter(
            "riskwatch_spool_full",
            "Times the spool was full and ingest had to wait",
            registry=registry,
        )
        self.spooled_points = Counter(
            "riskwatch_spooled_points", "Points written to the spool", registry=registry
        )
        self.replayed_points = Counter(
            "riskwatch_replayed_points", "Spooled points replayed to InfluxDB", registry=registry
        )


class ReloadOutcome(StrEnum):
    """How a reload ended (the ``result`` label of ``riskwatch_reload_total``)."""

    SUCCESS = "success"  # everything it read was applied
    REJECTED = "rejected"  # a file was invalid: that part kept its running set


class ReloadMetrics:
    """``riskwatch_reload_total{result}``: reloads (SIGHUP, a changed file, the console).

    >>> from prometheus_client import CollectorRegistry
    >>> reg = CollectorRegistry()
    >>> ReloadMetrics(reg).count(ReloadOutcome.REJECTED)
    >>> reg.get_sample_value("riskwatch_reload_total", {"result": "rejected"})
    1.0
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reloads = Counter(
            "riskwatch_reload",
            "Reloads of the engine config's files, by result (rejected: one part kept its "
            "running set)",
            ["result"],
            registry=registry,
        )
        for r in ReloadOutcome:
            self.reloads.labels(r.value)

    def count(self, outcome: ReloadOutcome) -> None:
        self.reloads.labels(outcome.value).inc()


def serve_metrics(
    listen: str, registry: CollectorRegistry, *, token: str | None = None
) -> tuple[WSGIServer, threading.Thread, str]:
    """Serve ``/metrics`` on ``host:port`` (port 0 picks a free one); returns the URL.

    With ``token``, a scrape must send ``Authorization: Bearer <token>`` (else 401)."""
    host, _, port = listen.rpartition(":")
    app = make_wsgi_app(registry)
    if token is not None:
        app = _bearer_only(app, token)
    server = make_server(host or "127.0.0.1", int(port), app, _ThreadingServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="riskwatch-metrics", daemon=True)
    thread.start()
    real_port = server.server_address[1]
    if token is None and (host or "127.0.0.1") not in ("127.0.0.1", "localhost", "::1"):
        log.warning("metrics on %s without a token: every enterprise's figures are readable "
                    "there (set metrics.token_env or keep it on loopback)", listen)  # fmt: skip
    return server, thread, f"http://{host or '127.0.0.1'}:{real_port}/metrics"


def _bearer_only(app: Any, token: str) -> Any:
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        if not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer"),
                                                ("Content-Type", "text/plain")])  # fmt: skip
            return [b"a bearer token is required\n"]
        return app(environ, start_response)

    return guarded


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass
