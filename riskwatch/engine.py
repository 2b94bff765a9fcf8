"""The engine: MQTT ingest → micro-batches → stages → signals and storage, with manual acks.

This module wires the parts; each part does its own work:

- a :class:`~riskwatch.ingest.receiver.Receiver` (paho in a child process, or in a thread
  of this one) hands over received messages, stamped with the engine's clock, and takes
  acknowledgements back;
- the engine thread (:class:`~riskwatch.engine_loop.EngineLoop`) cuts them into
  micro-batches (:class:`~riskwatch.ingest.batcher.MicroBatcher`: by size, time and input
  going quiet), runs the :class:`~riskwatch.pipeline.Pipeline` (quality, rules,
  detectors) on each, hands the signals to the alert sink, fills the console's window and
  submits the batch to storage with the acks of its messages; it also drives timers
  (``tick``) and hot reload (:class:`~riskwatch.reloader.Reloader`);
- the storage thread (:class:`~riskwatch.storage.runner.StorageRunner`) writes or spools
  each batch, then acknowledges its messages (:class:`~riskwatch.ingest.acks.AckLedger`
  counts them in flight).

Time: the engine reads wall time only through ``clock`` (every stage gets ``now`` in its
context) and loop timing only through ``monotonic``; both are injected.

>>> from riskwatch.config.engine import load_engine_config_text
>>> eng = Engine(load_engine_config_text("storage: {influx: null}\\nmetrics: {listen: null}\\n"))
>>> eng.registry.strict, eng.check()
(False, {'sensors': 0, 'stages': ['quality']})
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from riskwatch.alerts import build_sink
from riskwatch.alerts.api import ApiServer
from riskwatch.alerts.lifecycle import AlertSink
from riskwatch.alerts.points import storage_listener
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock, SystemClock
from riskwatch.config.engine import EngineConfig
from riskwatch.console.server import ConsoleServer
from riskwatch.console.window import SeriesWindow
from riskwatch.detectors import build_stage as build_detector_stage
from riskwatch.engine_loop import EngineLoop
from riskwatch.errors import StorageError
from riskwatch.ingest.acks import AckLedger
from riskwatch.ingest.batcher import MicroBatch, MicroBatcher
from riskwatch.ingest.deadletter import DeadLetterSink
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.process_receiver import ProcessReceiver
from riskwatch.ingest.receiver import Ack, Message, Receiver
from riskwatch.ingest.thread_receiver import ThreadReceiver
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.metrics import IngestMetrics, StorageMetrics, serve_metrics
from riskwatch.model import Batch, Signal
from riskwatch.pipeline import Pipeline, Stage, StageContext
from riskwatch.quality import QualityStage
from riskwatch.reloader import Reloader
from riskwatch.rules import build_stage as build_rule_stage
from riskwatch.storage.influx import Writer, make_writer
from riskwatch.storage.influx_query import series_reader
from riskwatch.storage.lineproto import LineEncoder
from riskwatch.storage.runner import StorageRunner
from riskwatch.storage.spool import Spool

__all__ = ["Engine", "SinkFactory"]

log = logging.getLogger("riskwatch.engine")

_DEFAULT = object()

#: Builds the engine's signal sink: (config, registry, MQTT publisher, metrics registry,
#: clock) -> a sink with handle/tick/start/stop/add_listener (default: the alert lifecycle)
SinkFactory = Callable[[EngineConfig, SensorRegistry, Any, CollectorRegistry, Clock], Any]

#: The engine's decision stages, each built by its component's explicit factory.
STAGE_FACTORIES = (build_rule_stage, build_detector_stage)


class Engine:
    """One engine process. ``start()`` returns once everything runs; ``stop()`` flushes.

    ``writer`` overrides the InfluxDB writer (``None`` = storage off), for the demo's
    embedded store and for tests; ``sink_factory`` the alert sink (default
    :func:`riskwatch.alerts.build_sink`; benchmarks measure against a bare one).
    """

    def __init__(
        self,
        cfg: EngineConfig,
        *,
        clock: Clock | None = None,
        metrics_registry: CollectorRegistry | None = None,
        writer: Writer | object | None = _DEFAULT,
        sink_factory: SinkFactory | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.clock: Clock = clock or SystemClock()
        self._monotonic = monotonic
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.metrics_registry)
        self.storage_metrics = StorageMetrics(self.metrics_registry)
        self.registry = SensorRegistry(strict=cfg.ingest.strict)
        self.decoder = Decoder(
            self.registry,
            TopicTemplate(cfg.mqtt.topic_template),
            max_payload_bytes=cfg.mqtt.max_payload_bytes,
            min_time_ns=cfg.ingest.min_time_ns,
            max_future_s=cfg.ingest.max_future_s,
            late_after_s=cfg.ingest.late_after_s,
        )
        self.acks = AckLedger(self.metrics, self.clock)
        self.batcher = MicroBatcher(
            self._decode,
            max_readings=cfg.ingest.batch_max_readings,
            max_wait_s=cfg.ingest.batch_max_wait_ms / 1000,
            idle_s=cfg.ingest.batch_idle_ms / 1000,
            monotonic=monotonic,
        )
        self._writer_override = writer
        self._sink_factory: SinkFactory = sink_factory or build_sink
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._reloader: Reloader | None = None
        self.mqtt: Receiver | None = None
        self.storage: StorageRunner | None = None
        self.deadletter: DeadLetterSink | None = None
        self.pipeline = Pipeline([])
        self.sink: Any = None
        self.api: ApiServer | None = None
        self.api_url: str | None = None
        self.metrics_url: str | None = None
        self._metrics_server: Any = None
        self.window: SeriesWindow | None = None  # recent readings, when the console runs
        self.console: ConsoleServer | None = None
        self.console_url: str | None = None
        self.readings_total = 0
        self.first_received_ns: int | None = None  # arrival of the first message (benchmarks)
        self.started = threading.Event()

    @property
    def last_acked_ns(self) -> int | None:
        """The last acknowledgement handed to MQTT (benchmarks)."""
        return self.acks.last_acked_ns

    # ------------------------------------------------------------------ set-up
    def _build_writer(self) -> Writer | None:
        if self._writer_override is not _DEFAULT:
            return self._writer_override  # type: ignore[return-value]
        if self.cfg.storage.influx is None:
            return None
        return make_writer(self.cfg.storage.influx)

    def _build_stages(self) -> None:
        stages: list[Stage] = [QualityStage()]
        for build in STAGE_FACTORIES:
            stage = build(self.cfg, self.registry)
            if stage is not None:
                stages.append(stage)
                log.info("stage %s loaded", stage.name)
        self.pipeline = Pipeline(stages)

    def _open_receiver(self) -> Receiver:
        cfg = self.cfg
        if cfg.ingest.receiver == "process":
            return ProcessReceiver(
                cfg.mqtt, clock=self.clock, on_arrival=self.acks.arrived,
                max_buffered=cfg.ingest.queue_max_messages, on_connected=self._on_connected,
                log_level=logging.getLogger().getEffectiveLevel(),
            )  # fmt: skip
        return ThreadReceiver(
            cfg.mqtt, clock=self.clock, on_arrival=self.acks.arrived,
            max_buffered=cfg.ingest.queue_max_messages, on_connected=self._on_connected,
        )  # fmt: skip

    def _catalog_files(self) -> list[Any]:
        return [self.cfg.path(p) for p in self.cfg.catalog]

    def check(self) -> dict[str, Any]:
        """Load the catalogue, rules and detectors without connecting anywhere; raises
        :class:`ConfigErrors` naming file, line and key of every problem found."""
        if self.cfg.catalog:
            self.registry.load_catalog(self._catalog_files())
        self._build_stages()
        return {"sensors": len(self.registry), "stages": self.pipeline.names()}

    def start(self) -> None:
        cfg = self.cfg
        if cfg.catalog:
            n = self.registry.load_catalog(self._catalog_files())
            log.info("sensor catalogue: %d sensors from %s", n, ", ".join(cfg.catalog))
        writer = self._build_writer()
        spool = Spool(cfg.path(cfg.storage.spool_dir), cfg.storage.spool_max_bytes)
        self.mqtt = self._open_receiver()
        dl_cfg = cfg.ingest.deadletter
        self.deadletter = DeadLetterSink(
            cfg.path(dl_cfg.file) if dl_cfg.file else None,
            dl_cfg.topic,
            self.mqtt,
            self.metrics,
            max_file_bytes=dl_cfg.max_file_bytes,
        )
        self.storage = StorageRunner(
            writer,
            LineEncoder(self.registry),
            spool,
            self.storage_metrics,
            queue_max_batches=cfg.storage.queue_max_batches,
            write_max_points=cfg.storage.write_max_points,
            retry_initial_s=cfg.storage.retry_initial_s,
            retry_max_s=cfg.storage.retry_max_s,
            on_reject=self._storage_rejected,
        )
        self._build_stages()
        self.sink = self._sink_factory(
            self.cfg, self.registry, self.mqtt, self.metrics_registry, self.clock
        )
        self.sink.add_listener(storage_listener(self.storage))
        self._reloader = Reloader(self.registry, self._catalog_files(), self.pipeline)
        if cfg.metrics.listen:
            self._metrics_server, _, self.metrics_url = serve_metrics(
                cfg.metrics.listen, self.metrics_registry
            )
            log.info("metrics at %s", self.metrics_url)
        if writer is None:
            log.warning("storage is off (storage.influx: null): readings are not stored")
        else:
            log.info(
                "writing readings to %s (api %s)",
                writer.url,
                cfg.storage.influx.api if cfg.storage.influx else "custom",
            )
        self.storage.start()
        self.sink.start()
        if cfg.alerts.api.listen and isinstance(self.sink, AlertSink):
            self.api = ApiServer(self.sink, cfg.alerts.api)
            self.api.start()
            self.api_url = self.api.url
        if cfg.console.listen:
            self._start_console()
        loop = EngineLoop(
            self.mqtt, self.batcher, on_batch=self._process, on_tick=self._tick,
            on_reload=self._reload, tick_s=cfg.ingest.tick_ms / 1000,
            reload_check_s=cfg.ingest.reload_check_s, stop=self._stop,
            reload_requested=self._reload_requested, monotonic=self._monotonic,
        )  # fmt: skip
        self._thread = threading.Thread(target=loop.run, name="riskwatch-engine", daemon=True)
        self._thread.start()
        self.mqtt.start()
        log.info(
            "engine started: MQTT %s topics %s, batches of up to %d readings / %d ms",
            cfg.mqtt.url, ", ".join(cfg.mqtt.topics), cfg.ingest.batch_max_readings,
            cfg.ingest.batch_max_wait_ms,
        )  # fmt: skip
        self.started.set()

    def _start_console(self) -> None:
        cfg = self.cfg
        self.window = SeriesWindow(cfg.console.window_readings)
        self.console = ConsoleServer(
            cfg.console, sink=self.sink, registry=self.registry, window=self.window,
            stored=series_reader(cfg.storage.influx), users_path=cfg.path(cfg.console.users),
            request_reload=self.request_reload, clock=self.clock,
        )  # fmt: skip
        self.console.start()
        self.console_url = self.console.url
        log.info("console at %s", self.console_url)

    def stop(self) -> None:
        """Graceful stop: stop receiving, flush batches, write/spool everything, ack, leave."""
        if self._thread is None:
            return
        log.info("stopping: flushing queued readings")
        assert self.mqtt is not None and self.storage is not None
        self.mqtt.stop_receiving()
        self._stop.set()
        self._thread.join(60)
        if self.console is not None:
            self.console.stop()
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.storage.stop()
        self.sink.stop()
        time.sleep(0.2)  # let paho send the last acks
        self.mqtt.stop()
        if self.deadletter is not None:
            self.deadletter.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self._thread = None
        log.info("stopped; %d readings processed", self.readings_total)

    def request_reload(self) -> None:
        """Reload rules, detectors and the catalogue at the next loop turn (as SIGHUP does)."""
        self._reload_requested.set()

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads rules, detectors and the catalogue."""
        done = threading.Event()

        def on_term(signum: int, frame: Any) -> None:
            log.info("received %s", signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda s, f: self._reload_requested.set())
        self.start()
        try:
            while not done.wait(0.5):
                pass
        finally:
            self.stop()

    # ------------------------------------------------------------------ receiver's thread
    def _on_connected(self, up: bool) -> None:
        self.metrics.mqtt_connected.set(1 if up else 0)

    # ------------------------------------------------------------------ engine thread
    def _decode(self, messages: list[Message]) -> tuple[Batch, int]:
        """The batch of good readings, and how many readings the messages held."""
        if self.first_received_ns is None:
            self.first_received_ns = messages[0][2]
        decoded = self.decoder.decode_many([(m[0], m[1], m[2]) for m in messages])
        if decoded.deadletters and self.deadletter is not None:
            self.deadletter.write(decoded.deadletters, messages[-1][2])
        return decoded.batch, decoded.n_readings

    def _process(self, cut: MicroBatch) -> None:
        """One micro-batch through the pipeline, to the sink, the window and storage."""
        assert self.storage is not None and self.mqtt is not None
        batch = cut.batch
        now = self.clock.now_ns()
        ctx = StageContext(now_ns=now, registry=self.registry)
        signals: list[Signal] = []
        if len(batch):
            self.metrics.readings_in.inc(len(batch))
            self.metrics.batch_size.observe(len(batch))
            self.readings_total += len(batch)
            batch, signals = self.pipeline.run(batch, ctx, on_stage=self._stage_took)
        if signals:
            self._emit(signals, ctx)
        if self.window is not None and len(batch):
            self.window.add(batch)  # recent series for the console's sensor view
        oldest = int(batch.received.min()) if len(batch) else now
        self.storage.submit(batch, lambda: self._durable(cut.acks, oldest))
        self.metrics.queue_depth.set(self.mqtt.backlog())

    def _stage_took(self, stage: Stage, seconds: float) -> None:
        self.metrics.stage_seconds.labels(stage.name).observe(seconds)

    def _emit(self, signals: list[Signal], ctx: StageContext) -> None:
        for s in signals:
            self.metrics.signals.labels(s.source).inc()
        try:
            self.sink.handle(signals, ctx)
        except Exception:
            log.exception("alert sink failed on %d signals", len(signals))

    def _tick(self) -> None:
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        try:
            signals = self.pipeline.tick(ctx)
        except Exception:
            log.exception("stage tick failed")
            signals = []
        if signals:
            self._emit(signals, ctx)
        try:
            self.sink.tick(ctx)
        except Exception:
            log.exception("alert sink tick failed")

    def _reload(self, forced: bool) -> None:
        assert self._reloader is not None
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        self._reloader.check(ctx, force=forced)

    # ------------------------------------------------------------------ storage thread
    def _durable(self, acks: list[Ack], oldest_received_ns: int) -> None:
        """A batch is written or spooled: acknowledge its messages."""
        assert self.mqtt is not None
        self.mqtt.ack_many(acks)
        self.acks.settled(len(acks), oldest_received_ns)

    def _storage_rejected(self, body: bytes, exc: StorageError) -> None:
        if self.deadletter is not None:
            self.deadletter.write_rejected_batch(body, exc, self.clock.now_ns())

    # ------------------------------------------------------------------ helpers for tests
    def wait_idle(self, timeout: float = 30.0, received: int = 0) -> bool:
        """True once at least ``received`` messages reached the engine since start and
        nothing is queued or unacknowledged (tests and the demo).

        ``received`` closes a race: messages still on their way (in the broker, or in the
        receiver child's buffer) are invisible here, so "idle" alone can be true before
        they arrive. Give the number of messages published so far to wait for them too.
        """
        deadline = self._monotonic() + timeout
        while self._monotonic() < deadline:
            backlog = self.mqtt.backlog() if self.mqtt is not None else 0
            if backlog == 0 and self.acks.idle(received):
                return True
            time.sleep(0.005)
        return False
