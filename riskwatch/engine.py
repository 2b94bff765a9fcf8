"""The engine: MQTT ingest → micro-batches → stages → signals and storage, with manual acks.

This module wires the parts; each part does its own work:

- a :class:`~riskwatch.ingest.receiver.Receiver` (paho in a child process, or in a thread
  of this one) hands over received messages, stamped with the engine's clock, and takes
  acknowledgements back;
- the engine thread (:class:`~riskwatch.engine_loop.EngineLoop`) cuts them into
  micro-batches (:class:`~riskwatch.ingest.batcher.MicroBatcher`: by size, time and input
  going quiet) and hands each to the :class:`~riskwatch.spine.Spine`, which runs the
  :class:`~riskwatch.pipeline.Pipeline` (quality, rules, detectors), hands the signals to
  the alert sink, fills the console's window and submits the batch to storage with the
  acks of its messages; the thread also drives timers (``tick``) and hot reload
  (:class:`~riskwatch.reloader.Reloader`);
- the storage thread (:class:`~riskwatch.storage.runner.StorageRunner`) writes or spools
  each batch, then acknowledges its messages (:class:`~riskwatch.ingest.acks.AckLedger`
  counts them in flight).

Time: the engine reads wall time only through ``clock`` (every stage gets ``now`` in its
context) and loop timing only through ``monotonic``; both are injected.

>>> from riskwatch.config.engine import load_engine_config_text
>>> eng = Engine(load_engine_config_text("storage: {influx: null}\\nmetrics: {listen: null}\\n"))
>>> eng.registry.strict, eng.check()
(False, {'sensors': 0, 'stages': ['quality', 'gateway_clock', 'sensor_limit'], 'warnings': []})
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from riskwatch.adapter_health import RULES as ADAPTER_RULES
from riskwatch.adapter_health import AdapterHealthStage
from riskwatch.alerts import build_sink
from riskwatch.alerts.api import ApiServer
from riskwatch.alerts.points import storage_listener
from riskwatch.alerts.sink import AlertSink
from riskwatch.alerts.transition_log import log_listener
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock, SystemClock
from riskwatch.config.alerts import unknown_rule_matchers
from riskwatch.config.engine import EngineConfig, MqttWill
from riskwatch.config.yamldoc import YamlDoc, format_path
from riskwatch.console.server import ConsoleServer
from riskwatch.console.window import SeriesWindow
from riskwatch.detectors import build_stage as build_detector_stage
from riskwatch.detectors.stage import DetectorStage
from riskwatch.durability import EngineState
from riskwatch.engine_loop import EngineLoop
from riskwatch.errors import ConfigError, ConfigErrors, SnapshotError, StorageError
from riskwatch.gateway_clock import RULE as GATEWAY_CLOCK_RULE
from riskwatch.gateway_clock import GatewayClockStage
from riskwatch.ingest.acks import AckLedger
from riskwatch.ingest.batcher import MicroBatcher
from riskwatch.ingest.channels import HTTP_CHANNEL, KJ_CHANNEL, LocalChannel, MultiReceiver
from riskwatch.ingest.deadletter import DeadLetterSink
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.health import AdapterSignals
from riskwatch.ingest.http import Decrypt, HttpIngest
from riskwatch.ingest.kj import KjDecoder
from riskwatch.ingest.kj_watch import KjWatcher
from riskwatch.ingest.receiver import Message, Receiver
from riskwatch.ingest.receivers import open_receiver
from riskwatch.ingest.router import FormatRouter
from riskwatch.ingest.sparkplug import SparkplugDecoder, state_payload
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.metrics import IngestMetrics, ReloadMetrics, StorageMetrics, serve_metrics
from riskwatch.model import Batch, Level
from riskwatch.pipeline import Pipeline, Stage, StageContext
from riskwatch.quality import QualityStage
from riskwatch.reloader import Reloader
from riskwatch.rules import build_stage as build_rule_stage
from riskwatch.rules.lint import Finding, check_files
from riskwatch.rules.stage import RuleStage
from riskwatch.sensor_limit_health import RULE as SENSOR_LIMIT_RULE
from riskwatch.sensor_limit_health import SensorLimitStage
from riskwatch.spine import Spine
from riskwatch.storage.influx import Writer, make_writer
from riskwatch.storage.influx_query import series_reader
from riskwatch.storage.runner import StorageRunner
from riskwatch.threads import guarded

__all__ = ["EXIT_FATAL", "Engine", "SinkFactory"]

#: exit status of ``riskwatch run`` when an engine thread died (sysexits' EX_SOFTWARE)
EXIT_FATAL = 70

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
        decrypt: Decrypt | None = None,
    ) -> None:
        self.cfg = cfg
        #: the HTTP ingest's payload decryption (adapters.http.encrypted_field)
        self._decrypt = decrypt
        self.clock: Clock = clock or SystemClock()
        self._monotonic = monotonic
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.metrics_registry)
        self.storage_metrics = StorageMetrics(self.metrics_registry)
        self.registry = SensorRegistry(strict=cfg.ingest.strict)
        self.decoder = Decoder.from_config(cfg, self.registry)
        #: the adapters' health signals (adapter_health stage) and their parts, if configured
        self.adapter_signals = AdapterSignals()
        self.router = FormatRouter(self.decoder)
        self.sparkplug: SparkplugDecoder | None = None
        self.kj_watcher: KjWatcher | None = None
        self.http: HttpIngest | None = None
        self.http_url: str | None = None
        self._state_ts_ms = 0  # the Sparkplug STATE's timestamp (the will carries it too)
        self.acks = AckLedger(self.metrics, self.clock)
        self.batcher = MicroBatcher.from_config(cfg.ingest, self._decode, monotonic)
        self._writer_override = writer
        self._sink_factory: SinkFactory = sink_factory or build_sink
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._fatal = threading.Event()
        #: the name of the engine thread that died, if one did (the process must exit)
        self.fatal: str | None = None
        self._thread: threading.Thread | None = None
        self._reloader: Reloader | None = None
        self._spine: Spine | None = None
        self.mqtt: Receiver | None = None
        self.storage: StorageRunner | None = None
        self.deadletter: DeadLetterSink | None = None
        self.pipeline = Pipeline([])
        self._built: list[Stage | None] = []  # per STAGE_FACTORIES entry: its stage or None
        self.sink: Any = None
        self.api: ApiServer | None = None
        self.api_url: str | None = None
        self.metrics_url: str | None = None
        self._metrics_server: Any = None
        self.window: SeriesWindow | None = None  # recent readings, when the console runs
        self.console: ConsoleServer | None = None
        self.console_url: str | None = None
        self.state: EngineState | None = None  # durable engine state (state.dir)
        self.first_received_ns: int | None = None  # arrival of the first message (benchmarks)
        self.started = threading.Event()

    @property
    def readings_total(self) -> int:
        """Readings that went through the pipeline since start."""
        return self._spine.readings_total if self._spine is not None else 0

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
        skew = self.cfg.ingest.max_clock_skew_s
        stages: list[Stage] = [
            QualityStage(skew),
            GatewayClockStage(skew, self.metrics_registry),
        ]
        if self.decoder.limits is not None:  # refused new sensors raise an alert
            stages.append(SensorLimitStage(self.decoder.limits, self.metrics_registry))
        ad = self.cfg.adapters
        if ad.sparkplug is not None or ad.kj is not None or ad.http is not None:
            stages.append(AdapterHealthStage(self.adapter_signals))
        self._built = []
        for build in STAGE_FACTORIES:
            stage = build(self.cfg, self.registry)
            self._built.append(stage)
            if stage is not None:
                stages.append(stage)
                log.info("stage %s loaded", stage.name)
        self.pipeline = Pipeline(stages)

    def _catalog_files(self) -> list[Path]:
        return [self.cfg.path(p) for p in self.cfg.catalog]

    def check(self) -> dict[str, Any]:
        """Load the catalogue, rules and detectors without connecting anywhere, and lint
        the rule files against the catalogue (``riskwatch rules check --catalog``); raises
        :class:`ConfigErrors` naming file, line and key of every problem found. Returns
        the counts and ``warnings`` (lint warnings, and alert matchers on rules that no
        loaded rule file or detector defines: they would never match)."""
        cfg = self.cfg
        if cfg.catalog:
            self.registry.load_catalog(self._catalog_files())
        self._build_stages()
        findings = self._lint_rules()
        errors = [f for f in findings if f.severity == "error"]
        ConfigErrors.raise_if([ConfigError(f.key, f.message, file=f.file, line=f.line,
                                           col=f.col) for f in errors])  # fmt: skip
        warnings = [str(f) for f in [*findings, *self._matcher_findings()]]
        return {"sensors": len(self.registry), "stages": self.pipeline.names(),
                "warnings": warnings}  # fmt: skip

    def _lint_rules(self) -> list[Finding]:
        """``rules check`` of the rule files against the catalogue files."""
        return check_files([self.cfg.path(p) for p in self.cfg.rules], self._catalog_files())

    def _matcher_findings(self) -> list[Finding]:
        """Alert matchers on ``rule`` names that no built stage defines (never match)."""
        cfg = self.cfg
        known: set[str] = {GATEWAY_CLOCK_RULE, SENSOR_LIMIT_RULE, *ADAPTER_RULES}  # own signals
        for stage in self.pipeline.stages:
            if isinstance(stage, (RuleStage, DetectorStage)):
                known |= set(stage.names())
        doc = YamlDoc.from_path(cfg.source) if cfg.source else None
        out = []
        for path, msg in unknown_rule_matchers(cfg.alerts, known):
            line, col = doc.where(path) if doc is not None else (None, None)
            out.append(Finding("warning", cfg.source or "<config>", line, col,
                               format_path(path), msg))  # fmt: skip
        return out

    def start(self) -> None:
        cfg = self.cfg
        if cfg.catalog:
            n = self.registry.load_catalog(self._catalog_files())
            log.info("sensor catalogue: %d sensors from %s", n, ", ".join(cfg.catalog))
        writer = self._build_writer()
        self.mqtt = self._open_receivers()
        dl_cfg = cfg.ingest.deadletter
        self.deadletter = DeadLetterSink.from_config(
            dl_cfg, cfg.path(dl_cfg.file) if dl_cfg.file else None, self.mqtt, self.metrics
        )
        self.storage = StorageRunner.from_config(
            cfg.storage, writer, self.registry, self.storage_metrics,
            spool_dir=cfg.path(cfg.storage.spool_dir), on_reject=self._storage_rejected,
            on_fatal=self._on_fatal,
        )  # fmt: skip
        self._build_stages()
        # what --check refuses is logged, not fatal here: a monitor that does not start
        # watches nothing (a misspelt setpoint still has its default or other levels)
        for f in [*self._lint_rules(), *self._matcher_findings()]:
            (log.error if f.severity == "error" else log.warning)("rules check: %s", f)
        self.sink = self._sink_factory(
            self.cfg, self.registry, self.mqtt, self.metrics_registry, self.clock
        )
        self.sink.add_listener(storage_listener(self.storage))
        if isinstance(self.sink, AlertSink):  # every transition in the log, as operators expect
            self.sink.add_listener(log_listener(logging.getLogger("riskwatch.alerts")))
        self._reloader = Reloader(
            self.registry, self._catalog_files(), self.pipeline, config=cfg,
            factories=STAGE_FACTORIES, built=self._built,
            metrics=ReloadMetrics(self.metrics_registry),
        )  # fmt: skip
        if cfg.metrics.listen:
            self._metrics_server, _, self.metrics_url = serve_metrics(
                cfg.metrics.listen, self.metrics_registry, token=cfg.metrics.token()
            )
            log.info("metrics at %s", self.metrics_url)
        if writer is None:
            log.warning("storage is off (storage.influx: null): readings are not stored")
        else:
            api = cfg.storage.influx.api if cfg.storage.influx else "custom"
            log.info("writing readings to %s (api %s)", writer.url, api)
        self.storage.start()
        self.sink.start()
        self._restore_state()  # before the first message, into a running sink
        if cfg.alerts.api.listen and isinstance(self.sink, AlertSink):
            api_tls = cfg.alerts.api.tls.paths(cfg.path) if cfg.alerts.api.tls else None
            self.api = ApiServer(self.sink, cfg.alerts.api, tls=api_tls)
            self.api.start()
            self.api_url = self.api.url
        if cfg.console.listen:
            self._start_console()
        self._spine = Spine(
            self.pipeline, self.sink, self.storage, self.mqtt, self.acks, self.metrics,
            self.registry, self.clock, window=self.window, journal=self.state,
        )  # fmt: skip
        loop = EngineLoop(
            self.mqtt, self.batcher, on_batch=self._spine.handle, on_tick=self._spine.tick,
            on_reload=self._reload, tick_s=cfg.ingest.tick_ms / 1000,
            reload_check_s=cfg.ingest.reload_check_s, stop=self._stop,
            reload_requested=self._reload_requested, monotonic=self._monotonic,
        )  # fmt: skip
        self._thread = threading.Thread(
            target=guarded(loop.run, name="riskwatch-engine", on_fatal=self._on_fatal),
            name="riskwatch-engine", daemon=True,
        )  # fmt: skip
        self._thread.start()
        self.mqtt.start()
        self._start_adapters()
        log.info(
            "engine started: MQTT %s topics %s, batches of up to %d readings / %d ms",
            cfg.mqtt.url, ", ".join(cfg.mqtt.topics), cfg.ingest.batch_max_readings,
            cfg.ingest.batch_max_wait_ms,
        )  # fmt: skip
        self.started.set()

    def _restore_state(self) -> None:
        """Durable engine state: load the snapshot and replay the journal into the stages
        (and the replayed signals into the sink) before the first message is taken."""
        folder = self.cfg.state_dir()
        if folder is None:
            log.warning(
                "engine state is not kept (state.dir is null or the config has no "
                "file to place it beside): a restart starts rules and detectors empty"
            )
            return
        state = EngineState(
            folder, self.pipeline, self.registry,
            snapshot_every_ns=int(self.cfg.state.snapshot_every), fsync=self.cfg.state.fsync,
        )  # fmt: skip
        try:
            state.restore(self.clock.now_ns(), self.sink)
        except SnapshotError as exc:  # the alarms matter more than surviving the next crash
            log.error("engine state is not kept: %s", exc)
            return
        self.state = state

    # ------------------------------------------------------------------ adapters
    def _open_receivers(self) -> Receiver:
        """The MQTT receiver (with the Sparkplug host's topics and will when configured),
        wrapped with the local channels of the KJ and HTTP adapters."""
        cfg = self.cfg
        ad = cfg.adapters
        mqtt_cfg = cfg.mqtt
        if ad.sparkplug is not None:
            sp = ad.sparkplug
            self._state_ts_ms = self.clock.now_ns() // 1_000_000
            will = MqttWill(sp.state_topic, state_payload(False, self._state_ts_ms).decode())
            topics = [*mqtt_cfg.topics, *(t for t in sp.topics() if t not in mqtt_cfg.topics)]
            mqtt_cfg = replace(mqtt_cfg, topics=topics, will=will if sp.publish_state else None)
        rx = open_receiver(replace(cfg, mqtt=mqtt_cfg), clock=self.clock,
                           on_arrival=self.acks.arrived,
                           on_connected=self._on_connected)  # fmt: skip
        channels: list[LocalChannel] = []
        kj_dec = None
        if ad.kj is not None:
            k = ad.kj
            drop = cfg.path(k.drop_dir)
            self.kj_watcher = KjWatcher(
                k, drop, cfg.path(k.archive_dir) if k.archive_dir else drop / "archive",
                cfg.path(k.rejected_dir) if k.rejected_dir else drop / "rejected",
                self.clock, self._write_deadletters,
            )  # fmt: skip
            channels.append(LocalChannel(KJ_CHANNEL, "kj", on_acked=self.kj_watcher.acked,
                                         on_arrival=self.acks.arrived))  # fmt: skip
            kj_dec = KjDecoder(k, self.decoder, self.adapter_signals,
                               metrics_registry=self.metrics_registry)  # fmt: skip
        on_http = None
        if ad.http is not None:
            tls = ad.http.tls.paths(cfg.path) if ad.http.tls else None
            self.http = HttpIngest(ad.http, TopicTemplate(cfg.mqtt.topic_template), self.clock,
                                   decrypt=self._decrypt, tls=tls)  # fmt: skip
            channels.append(LocalChannel(HTTP_CHANNEL, "http", on_acked=self.http.acked,
                                         on_arrival=self.acks.arrived))  # fmt: skip
            on_http = self.http.decoded
        receiver: Receiver = MultiReceiver(rx, channels) if channels else rx
        if ad.sparkplug is not None:
            self.sparkplug = SparkplugDecoder(
                self.decoder, self.adapter_signals, receiver,
                offline_level=Level.from_name(ad.sparkplug.offline_level),
                rebirth_min_interval_s=ad.sparkplug.rebirth_min_interval_s,
                metrics_registry=self.metrics_registry,
            )  # fmt: skip
        self.router = FormatRouter(self.decoder, sparkplug=self.sparkplug, kj=kj_dec,
                                   on_http=on_http)  # fmt: skip
        self._channels = {c.code: c for c in channels}
        return receiver

    def _start_adapters(self) -> None:
        if self.kj_watcher is not None:
            self.kj_watcher.start(self._channels[KJ_CHANNEL])
        if self.http is not None:
            self.http.start(self._channels[HTTP_CHANNEL])
            self.http_url = self.http.url

    def _publish_state(self, online: bool) -> None:
        """The primary host's STATE (retained, QoS 1), on every connect and at a stop."""
        sp = self.cfg.adapters.sparkplug
        if sp is None or not sp.publish_state or self.mqtt is None:
            return
        try:
            self.mqtt.publish(sp.state_topic, state_payload(online, self._state_ts_ms), 1, True)
        except Exception:
            log.exception("publishing the Sparkplug STATE on %s failed", sp.state_topic)

    def _write_deadletters(self, dls: list[Any], received_ns: int) -> None:
        if self.deadletter is not None:
            self.deadletter.write(dls, received_ns)

    def _start_console(self) -> None:
        cfg = self.cfg
        self.window = SeriesWindow(cfg.console.window_readings)
        self.console = ConsoleServer(
            cfg.console, sink=self.sink, registry=self.registry, window=self.window,
            stored=series_reader(cfg.storage.influx), users_path=cfg.path(cfg.console.users),
            request_reload=self.request_reload, clock=self.clock,
            tls=cfg.console.tls.paths(cfg.path) if cfg.console.tls else None,
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
        if self.kj_watcher is not None:
            self.kj_watcher.stop()  # no new files; the taken ones are flushed below
        self.mqtt.stop_receiving()
        self._stop.set()
        self.storage.begin_stop()  # a full spool must not keep the engine thread waiting
        self._thread.join(60)
        if self.console is not None:
            self.console.stop()
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.storage.stop()
        if self.state is not None:
            try:
                self.state.close(self.clock.now_ns())
            except Exception:  # the journal stays: the next start replays it
                log.exception("engine state: final snapshot failed")
        self.sink.stop()
        if self.http is not None:
            self.http.stop()
        self._publish_state(False)  # a graceful stop says so (the will is for a crash)
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

    def _on_fatal(self, thread: str) -> None:
        self.fatal = thread
        self._fatal.set()

    def run_forever(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads rules, detectors and the catalogue.

        Returns the process exit code: 0 after a requested stop, :data:`EXIT_FATAL` when an
        engine thread died (logged as CRITICAL): the supervisor should restart the engine.
        """
        done = self._fatal

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
        if self.fatal is not None:
            log.critical("exiting with status %d: thread %s died", EXIT_FATAL, self.fatal)
            return EXIT_FATAL
        return 0

    # ------------------------------------------------------------------ receiver's thread
    def _on_connected(self, up: bool) -> None:
        self.metrics.mqtt_connected.set(1 if up else 0)
        if up:
            self._publish_state(True)

    # ------------------------------------------------------------------ engine thread
    def _decode(self, messages: list[Message]) -> tuple[Batch, int]:
        """The batch of good readings, and how many readings the messages held."""
        if self.first_received_ns is None:
            self.first_received_ns = messages[0][2]
        decoded = self.router.decode_many(messages)
        if decoded.deadletters and self.deadletter is not None:
            self.deadletter.write(decoded.deadletters, messages[-1][2])
        return decoded.batch, decoded.n_readings

    def _reload(self, forced: bool) -> None:
        assert self._reloader is not None and self._spine is not None
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        reloads = self._reloader.check(ctx, force=forced)
        self._spine.reloaded(reloads)
        if reloads and self.state is not None:
            try:
                self.state.checkpoint(ctx.now_ns)  # the journal never spans two rule sets
            except Exception:
                log.exception("engine state: snapshot after the reload failed")

    # ------------------------------------------------------------------ storage thread
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
