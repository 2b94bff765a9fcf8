"""The engine: MQTT ingest → micro-batches → stages → signals and storage, with manual acks.

Threads (see docs/ARCHITECTURE.md):

- paho's network thread decodes each message (:class:`~riskwatch.ingest.decode.Decoder`),
  writes its dead letters, and puts the good readings on a bounded queue — when the
  queue is full the callback blocks, paho stops reading the socket and the broker holds
  the rest (backpressure, bounded memory);
- the engine thread decodes, cuts micro-batches by size (``ingest.batch_max_readings``),
  time (``ingest.batch_max_wait_ms``) and input going quiet (``ingest.batch_idle_ms``),
  runs the pipeline (rules, detectors), hands signals to the alert sink, encodes the batch
  to line protocol and submits it to storage together with the acks of its messages; it
  also drives timers (``tick``) and hot reload;
- the storage thread writes or spools each batch, then acknowledges its messages.

This is the only module that reads the clock; every stage gets ``now`` in its context.

>>> from riskwatch.config.engine import load_engine_config_text
>>> eng = Engine(load_engine_config_text("storage: {influx: null}\\nmetrics: {listen: null}\\n"))
>>> eng.registry.strict
False
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from riskwatch.alerts import build_sink
from riskwatch.alerts.api import ApiServer
from riskwatch.alerts.points import storage_listener
from riskwatch.alerts.sink import AlertSink
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock, SystemClock
from riskwatch.config.engine import EngineConfig
from riskwatch.errors import ConfigErrors, DeadLetterReason, StorageError
from riskwatch.ingest.client import MqttClient
from riskwatch.ingest.deadletter import DeadLetterSink
from riskwatch.ingest.decode import DeadLetter, Decoder
from riskwatch.ingest.receiver import ReceiverProcess
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.metrics import IngestMetrics, StorageMetrics, serve_metrics
from riskwatch.model import Batch, Signal, concat_batches
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.storage.influx import Writer, make_writer
from riskwatch.storage.lineproto import LineEncoder
from riskwatch.storage.runner import StorageRunner
from riskwatch.storage.spool import Spool

__all__ = ["Engine", "SinkFactory"]

log = logging.getLogger("riskwatch.engine")

_DEFAULT = object()


# (topic, payload, received_ns, mid, qos): one received MQTT message, not yet decoded
_Msg = tuple[str, bytes, int, int, int]

#: Builds the engine's signal sink: (config, registry, MQTT publisher, metrics registry,
#: clock) -> a sink with handle/tick/start/stop/add_listener (default: the alert lifecycle)
SinkFactory = Callable[[EngineConfig, SensorRegistry, Any, CollectorRegistry, Clock], Any]


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
    ) -> None:
        self.cfg = cfg
        self.clock: Clock = clock or SystemClock()
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.metrics_registry)
        self.storage_metrics = StorageMetrics(self.metrics_registry)
        self.registry = SensorRegistry(strict=cfg.ingest.strict)
        min_time = datetime.fromisoformat(cfg.ingest.min_time.replace("Z", "+00:00"))
        self.decoder = Decoder(
            self.registry,
            TopicTemplate(cfg.mqtt.topic_template),
            max_payload_bytes=cfg.mqtt.max_payload_bytes,
            min_time_ns=int(min_time.timestamp() * 1e9),
            max_future_s=cfg.ingest.max_future_s,
            late_after_s=cfg.ingest.late_after_s,
        )
        self._writer_override = writer
        self._sink_factory: SinkFactory = sink_factory or build_sink
        self._q: queue.Queue[_Msg] = queue.Queue(maxsize=cfg.ingest.queue_max_messages)
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._unacked = 0
        self._received = 0  # messages handed to the engine since start (wait_idle)
        self._unacked_lock = threading.Lock()
        self.mqtt: MqttClient | ReceiverProcess | None = None
        self.storage: StorageRunner | None = None
        self.deadletter: DeadLetterSink | None = None
        self.pipeline = Pipeline([])
        self.sink: Any = None
        self.api: ApiServer | None = None
        self.api_url: str | None = None
        self.metrics_url: str | None = None
        self._metrics_server: Any = None
        self.console: Any = None  # riskwatch.console.app.ConsoleServer when console.listen
        self.console_url: str | None = None
        self._watched: dict[Path, float] = {}
        self.readings_total = 0
        self.first_received_ns: int | None = None  # arrival of the first message (benchmarks)
        self.last_acked_ns: int | None = None  # last acknowledgement handed to MQTT (benchmarks)
        self.started = threading.Event()

    # ------------------------------------------------------------------ set-up
    def _build_writer(self) -> Writer | None:
        if self._writer_override is not _DEFAULT:
            return self._writer_override  # type: ignore[return-value]
        if self.cfg.storage.influx is None:
            return None
        return make_writer(self.cfg.storage.influx)

    def _build_stages(self) -> None:
        import importlib

        stages = []
        for modname in ("riskwatch.rules", "riskwatch.detectors"):
            mod = importlib.import_module(modname)
            build = getattr(mod, "build_stage", None)
            if build is None:
                continue
            stage = build(self.cfg, self.registry)
            if stage is not None:
                stages.append(stage)
                log.info("stage %s loaded", getattr(stage, "name", modname))
        self.pipeline = Pipeline([QualityStage(), *stages])

    def _build_sink(self) -> None:
        self.sink = self._sink_factory(
            self.cfg, self.registry, self.mqtt, self.metrics_registry, self.clock
        )
        if self.storage is not None:
            self.sink.add_listener(storage_listener(self.storage))

    def _watch(self) -> None:
        files = [self.cfg.path(p) for p in self.cfg.catalog]
        for st in self.pipeline.stages:
            wf = getattr(st, "watched_files", None)
            if wf is not None:
                files += list(wf())
        self._watched = {f: _mtime(f) for f in files}

    def check(self) -> dict[str, Any]:
        """Load the catalogue, rules and detectors without connecting anywhere; raises
        :class:`ConfigErrors` naming file, line and key of every problem found."""
        if self.cfg.catalog:
            self.registry.load_catalog([self.cfg.path(p) for p in self.cfg.catalog])
        self._build_stages()
        return {
            "sensors": len(self.registry),
            "stages": [getattr(s, "name", "?") for s in self.pipeline.stages],
        }

    def start(self) -> None:
        cfg = self.cfg
        if cfg.catalog:
            n = self.registry.load_catalog([cfg.path(p) for p in cfg.catalog])
            log.info("sensor catalogue: %d sensors from %s", n, ", ".join(cfg.catalog))
        writer = self._build_writer()
        spool = Spool(cfg.path(cfg.storage.spool_dir), cfg.storage.spool_max_bytes)
        dl_cfg = cfg.ingest.deadletter
        if cfg.ingest.receiver == "process":
            self.mqtt = ReceiverProcess(
                cfg.mqtt,
                max_buffered=cfg.ingest.queue_max_messages,
                on_connected=self._on_connected,
                log_level=logging.getLogger().getEffectiveLevel(),
            )
        else:
            self.mqtt = MqttClient(cfg.mqtt, self._on_message, on_connected=self._on_connected)
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
        self._build_sink()
        self._watch()
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
            from riskwatch.console.app import ConsoleServer

            self.console = ConsoleServer(self, cfg.console)
            self.console.start()
            self.console_url = self.console.url
            log.info("console at %s", self.console_url)
        self._thread = threading.Thread(target=self._loop, name="riskwatch-engine", daemon=True)
        self._thread.start()
        self.mqtt.start()
        log.info(
            "engine started: MQTT %s topics %s, batches of up to %d readings / %d ms",
            cfg.mqtt.url, ", ".join(cfg.mqtt.topics), cfg.ingest.batch_max_readings,
            cfg.ingest.batch_max_wait_ms,
        )  # fmt: skip
        self.started.set()

    def stop(self) -> None:
        """Graceful stop: stop receiving, flush batches, write/spool everything, ack, leave."""
        if self._thread is None:
            return
        log.info("stopping: flushing queued readings")
        assert self.mqtt is not None and self.storage is not None
        if isinstance(self.mqtt, MqttClient):
            self.mqtt.client.on_message = None  # nothing new enters the queue
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

    # ------------------------------------------------------------------ MQTT thread
    def _on_connected(self, up: bool) -> None:
        self.metrics.mqtt_connected.set(1 if up else 0)

    def _on_message(self, msg: Any) -> None:
        # Keep the network thread light: decoding happens in the engine thread, many
        # messages at a time. put() blocks when the queue is full (backpressure).
        self.metrics.messages_in.inc()
        with self._unacked_lock:
            self._unacked += 1
            self._received += 1
        self._q.put((msg.topic, msg.payload, self.clock.now_ns(), msg.mid, msg.qos))

    def _receive(self, timeout: float) -> list[_Msg]:
        """Messages waiting to be decoded, blocking up to ``timeout`` s for the first."""
        if isinstance(self.mqtt, ReceiverProcess):
            if self._stop.is_set():
                return []  # unread messages stay unacknowledged: the broker redelivers them
            raw = self.mqtt.receive(timeout)
            if raw:
                self.metrics.messages_in.inc(len(raw))
                with self._unacked_lock:
                    self._unacked += len(raw)
                    self._received += len(raw)
            return raw
        raw = []
        try:
            raw.append(self._q.get(timeout=timeout))
            while len(raw) < 5000:  # take what is already there without waiting
                raw.append(self._q.get_nowait())
        except queue.Empty:
            pass
        return raw

    # ------------------------------------------------------------------ engine thread
    def _loop(self) -> None:
        cfg = self.cfg.ingest
        max_n = cfg.batch_max_readings
        max_wait = cfg.batch_max_wait_ms / 1000
        idle = cfg.batch_idle_ms / 1000
        last_arrival = 0.0
        per_msg = 100.0  # readings per message, learnt from each decode
        tick_s = cfg.tick_ms / 1000
        batches: list[Batch] = []
        acks: list[tuple[int, int]] = []
        n = 0
        first = 0.0
        next_tick = time.monotonic() + tick_s
        next_reload_check = time.monotonic() + self.cfg.ingest.reload_check_s
        while True:
            now = time.monotonic()
            timeout = min(next_tick, (first + max_wait) if acks else next_tick) - now
            if acks and idle > 0:
                timeout = min(timeout, last_arrival + idle - now)
            raw = self._receive(max(0.0, timeout))
            # A backlog can hand over many thousand messages at once: decode them in
            # slices of about one batch, so that batches keep to batch_max_readings and
            # storage starts writing the first while the next is decoded.
            step = max(1, int(max_n / per_msg))
            for k in range(0, len(raw), step):
                part = raw[k : k + step] if len(raw) > step else raw
                batch, n_read = self._decode(part)
                per_msg = max(1.0, n_read / len(part))
                last_arrival = time.monotonic()
                if not acks:
                    first = last_arrival
                batches.append(batch)
                acks.extend((m[3], m[4]) for m in part)
                n += len(batch)
                if n >= max_n and k + step < len(raw):
                    self._flush(batches, acks)
                    batches, acks, n = [], [], 0
            now = time.monotonic()
            stopping = self._stop.is_set()
            input_idle = not raw and idle > 0 and now - last_arrival >= idle
            if acks and (n >= max_n or now - first >= max_wait or stopping or input_idle):
                self._flush(batches, acks)
                batches, acks, n = [], [], 0
            if now >= next_tick:
                self._tick()
                next_tick = now + tick_s
            if self._reload_requested.is_set() or now >= next_reload_check:
                self._maybe_reload(force=self._reload_requested.is_set())
                self._reload_requested.clear()
                next_reload_check = now + self.cfg.ingest.reload_check_s
            if stopping and self._q.empty() and not acks:
                return

    def _decode(self, raw: list[_Msg]) -> tuple[Batch, int]:
        """The batch of good readings, and how many readings the messages held."""
        if self.first_received_ns is None:
            self.first_received_ns = raw[0][2]
        decoded = self.decoder.decode_many([(m[0], m[1], m[2]) for m in raw])
        if decoded.deadletters and self.deadletter is not None:
            self.deadletter.write(decoded.deadletters, raw[-1][2])
        return decoded.batch, decoded.n_readings

    def _flush(self, batches: list[Batch], acks: list[tuple[int, int]]) -> None:
        assert self.storage is not None
        batch = concat_batches(batches).sorted_by_time()
        now = self.clock.now_ns()
        ctx = StageContext(now_ns=now, registry=self.registry)
        signals: list[Signal] = []
        if len(batch):
            self.metrics.readings_in.inc(len(batch))
            self.metrics.batch_size.observe(len(batch))
            self.readings_total += len(batch)
            for st in self.pipeline.stages:
                t0 = time.perf_counter()
                out = st.process(batch, ctx)
                self.metrics.stage_seconds.labels(getattr(st, "name", "stage")).observe(
                    time.perf_counter() - t0
                )
                if isinstance(out, Batch):
                    batch = out
                else:
                    signals.extend(out)
        if signals:
            self._emit(signals, ctx)
        if self.console is not None and len(batch):
            self.console.window.add(batch)  # recent series for the console's sensor view
        oldest = int(batch.received.min()) if len(batch) else now
        self.storage.submit(batch, self._make_ack(acks, oldest))
        self.metrics.queue_depth.set(self._q.qsize())

    def _emit(self, signals: list[Signal], ctx: StageContext) -> None:
        for s in signals:
            self.metrics.signals.labels(s.source).inc()
        try:
            self.sink.handle(signals, ctx)
        except Exception:
            log.exception("alert sink failed on %d signals", len(signals))

    def _make_ack(self, acks: list[tuple[int, int]], oldest_ns: int) -> Callable[[], None]:
        def done() -> None:
            assert self.mqtt is not None
            if isinstance(self.mqtt, ReceiverProcess):
                self.mqtt.ack_many(acks)
            else:
                for mid, qos in acks:
                    self.mqtt.ack(mid, qos)
            with self._unacked_lock:
                self._unacked -= len(acks)
                self.metrics.unacked.set(self._unacked)
            self.last_acked_ns = self.clock.now_ns()
            self.metrics.pipeline_latency.observe(max(0.0, (self.clock.now_ns() - oldest_ns) / 1e9))

        return done

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

    def _maybe_reload(self, force: bool) -> None:
        changed = [f for f, t in self._watched.items() if _mtime(f) != t]
        if not force and not changed:
            return
        log.info(
            "reloading (%s)", "SIGHUP" if force else "changed: " + ", ".join(map(str, changed))
        )
        ctx = StageContext(now_ns=self.clock.now_ns(), registry=self.registry)
        if self.cfg.catalog and (
            force or any(f in changed for f in map(self.cfg.path, self.cfg.catalog))
        ):
            try:
                n = self.registry.load_catalog([self.cfg.path(p) for p in self.cfg.catalog])
                log.info("catalogue reloaded: %d sensors", n)
            except ConfigErrors as exc:
                log.error("catalogue reload rejected, keeping the running one:\n%s", exc)
        for st in self.pipeline.stages:
            reload = getattr(st, "reload", None)
            if reload is None:
                continue
            try:
                reload(ctx)
            except ConfigErrors as exc:
                log.error("reload of %s rejected, keeping the running set:\n%s", st.name, exc)
        self._watch()

    def _storage_rejected(self, body: bytes, exc: StorageError) -> None:
        if self.deadletter is None:
            return
        text = body.decode("utf-8", "replace")
        self.deadletter.write(
            [
                DeadLetter(
                    DeadLetterReason.STORAGE_REJECTED, str(exc), "", None, None, text[:1_000_000]
                )
            ],
            self.clock.now_ns(),
        )

    # ------------------------------------------------------------------ helpers for tests
    def wait_idle(self, timeout: float = 30.0, received: int = 0) -> bool:
        """True once at least ``received`` messages reached the engine since start and
        nothing is queued or unacknowledged (tests and the demo).

        ``received`` closes a race: messages still on their way (in the broker, or in the
        receiver child's buffer) are invisible here, so "idle" alone can be true before
        they arrive. Give the number of messages published so far to wait for them too.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._received >= received and self._q.empty() and self._unacked == 0:
                return True
            time.sleep(0.005)
        return False


def _mtime(p: Path) -> float:
    try:
        return os.stat(p).st_mtime
    except OSError:
        return -1.0
