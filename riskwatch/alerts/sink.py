"""The alert sink: signals in, alert transitions stored, then notified.

:class:`AlertSink` is what the engine gets from :func:`riskwatch.alerts.build_sink`. It
only orchestrates; each job has its own module:

- ``handle(signals, ctx)``: each signal through the pure :func:`~riskwatch.alerts.apply.apply`
  (signal + open alert -> the alert after it and what to record);
- ``reloaded(reloads, ctx)``: what a reload of the rules or detectors changed
  (:class:`~riskwatch.pipeline.StageReload`): the open alerts of removed rules end
  (``resolved``, reason ``rule_removed``), and so do those of subjects a changed rule no
  longer watches (``unwatched``); they can then be closed;
- ``tick(ctx)``: each open alert through the pure :func:`~riskwatch.alerts.timers.due`
  (shelving and out-of-service expiry, flapping settling, escalation, repeats, notifying
  what a lifted silence or inhibition held back), then retention and the health snapshot;
- operator actions (:meth:`AlertSink.ack`, :meth:`AlertSink.shelve`, :meth:`AlertSink.close`,
  ...) through the pure :func:`~riskwatch.alerts.operator.operate`; silences kept in a
  :class:`~riskwatch.alerts.stages.Silencer`;
- every step's records through the :class:`~riskwatch.alerts.recorder.Recorder`, which
  asks the noise-control :class:`~riskwatch.alerts.stages.MuteSequence` and routes the
  notifications;
- what a call changed to the :class:`~riskwatch.alerts.outbox.Outbox` (group commit, then
  the notifier runners, listeners and :class:`~riskwatch.alerts.summaries.SiteSummaries`).

One lock guards the open alerts: the engine thread (``handle``, ``tick``), the writer
thread and the API thread (operator actions) take it. A published alert is never changed
in place; each step swaps in a new copy.

>>> import tempfile, os
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.config.alerts import NotifierConfig
>>> from riskwatch.model import Level, Signal
>>> from riskwatch.pipeline import StageContext
>>> from prometheus_client import CollectorRegistry
>>> reg = SensorRegistry(); sid = int(reg.intern("m1", "face1", ["CH4-01"])[0])
>>> cfg = AlertsConfig(store=os.path.join(tempfile.mkdtemp(), "a.sqlite"),
...                    notify=[NotifierConfig(kind="log")])
>>> sink = AlertSink(cfg, reg, None, CollectorRegistry(), ManualClock(0))
>>> sink.handle([Signal("ch4", sid, 1, "firing", Level.ORANGE, 1.1, 1.0, "CH4 high")],
...             StageContext(10, reg))
>>> [(a.rule, a.state.value, a.level) for a in sink.open_alerts()]
[('ch4', 'firing', 2)]
>>> a = sink.ack(sink.open_alerts()[0].id, who="li")
>>> (a.state.value, a.acked_by)
('acknowledged', 'li')
>>> [(t.action, t.muted) for t in sink.store.transitions(a.id)]
[('firing', ''), ('ack', '')]
>>> sink.stop()
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from riskwatch.alerts.apply import SIGNAL_EVENTS, Subject, apply, removed_rule_signal, subject_of
from riskwatch.alerts.changes import Changes, TransitionListener
from riskwatch.alerts.health import HealthTracker
from riskwatch.alerts.index import OpenAlerts
from riskwatch.alerts.metrics import AlertMetrics
from riskwatch.alerts.notifiers import MqttNotifier, NotifierMetrics, NotifierRunner, build_notifier
from riskwatch.alerts.operator import (
    check_close,
    check_out_of_service,
    check_shelve,
    new_silence,
    operate,
    until,
)
from riskwatch.alerts.outbox import Outbox
from riskwatch.alerts.recorder import Recorder
from riskwatch.alerts.records import Outcome, Step
from riskwatch.alerts.stages import (
    FlappingStage,
    HiddenStage,
    InhibitionStage,
    Inhibitor,
    Muter,
    MuteSequence,
    Router,
    Silencer,
    SilenceStage,
)
from riskwatch.alerts.state import Alert, AlertState, Event, IllegalTransition
from riskwatch.alerts.store import AlertStore, Silence
from riskwatch.alerts.summaries import SiteSummaries
from riskwatch.alerts.timers import Cadence, TimerPolicy, due
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock
from riskwatch.config.alerts import AlertsConfig, NotifierConfig
from riskwatch.config.engine import EngineConfig
from riskwatch.errors import AlertNotFound, AlertStoreError, NotOwned
from riskwatch.model import Signal
from riskwatch.pipeline import StageContext, StageReload

__all__ = ["AlertSink", "TransitionListener"]

log = logging.getLogger(__name__)

S = 1_000_000_000
SILENCES_KEPT_NS = 7 * 24 * 3600 * S  # ended silences stay in memory this long
RETENTION_EVERY_NS = 3600 * S
HEALTH_EVERY_NS = 10 * S  # the Prometheus collector's snapshot, in engine time


class AlertSink:
    """The engine's signal sink with the whole operator lifecycle. See the module doc."""

    def __init__(
        self,
        cfg: AlertsConfig,
        registry: SensorRegistry,
        publisher: Any,
        metrics_registry: CollectorRegistry | None,
        clock: Clock,
        *,
        store: AlertStore | None = None,
        base: Callable[[str], Path] = Path,
        instance: str = "",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.publisher = publisher
        self.clock = clock
        self.metrics_registry = metrics_registry or CollectorRegistry()
        target = cfg.store if "://" in cfg.store else str(base(cfg.store))
        self.store = store or AlertStore(target, owner=instance)
        self._lock = threading.RLock()
        self._mono = monotonic
        self.index = OpenAlerts()
        self.policy = TimerPolicy.from_config(cfg)
        self.health = HealthTracker(cfg.consoles)
        self.metrics_registry.register(self.health)
        notifier_metrics = NotifierMetrics(self.metrics_registry)
        self.runners, summary_publishers = _runners(cfg, publisher, self.store,
                                                    notifier_metrics, base)  # fmt: skip
        self.metrics = AlertMetrics(self.metrics_registry)
        self.silencer = Silencer()
        self.recorder = Recorder(self._muter(), Router(cfg.notifiers()), self.metrics)
        self.summaries = SiteSummaries(summary_publishers, self.index, self._lock, clock,
                                       monotonic=monotonic)  # fmt: skip
        self.outbox = Outbox(self.store, self.runners, self.summaries, self._lock,
                             self.index.by_id, sync=cfg.write == "sync")  # fmt: skip
        self._retention = Cadence(RETENTION_EVERY_NS)
        self._health_due = Cadence(HEALTH_EVERY_NS)
        self._started = False
        self._restore()

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_engine_config(
        cls, cfg: EngineConfig, registry: SensorRegistry, publisher: Any,
        metrics_registry: CollectorRegistry | None, clock: Clock,
    ) -> AlertSink:  # fmt: skip
        instance = cfg.alerts.instance or cfg.mqtt.client_id
        return cls(
            cfg.alerts, registry, publisher, metrics_registry, clock, base=cfg.path,
            instance=instance,
        )  # fmt: skip

    def _muter(self) -> Muter:
        """Noise control in order: hidden, silences, inhibition (if any rule), flapping."""
        stages: list[Muter] = [HiddenStage(), SilenceStage(self.silencer)]
        inhibitor = Inhibitor(self.cfg.inhibit)
        if inhibitor:
            stages.append(InhibitionStage(inhibitor, self.index.site_alerts))
        stages.append(FlappingStage())
        return MuteSequence(stages)

    def _restore(self) -> None:
        """Open alerts (with their timers: fired/escalation base, tier, shelve expiry, last
        notification, flapping history) and silences come back from the store."""
        for a in self.store.load_open():
            self.index.put(a)
        now = self.clock.now_ns()
        for s in self.store.silences(since_ns=now - SILENCES_KEPT_NS):
            self.silencer.add(s)
        if self.index:
            log.info("alerts: restored %d open alerts from %s", len(self.index), self.store.where())

    def add_listener(self, fn: TransitionListener) -> None:
        """Call ``fn`` with every stored batch of (alert, transition) pairs."""
        self.outbox.listeners.append(fn)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.summaries.start()  # every site, published by the writer once MQTT is connected
        self.outbox.start()
        for r in self.runners.values():
            r.start()
            r.request_catch_up()  # undelivered rows from before a restart

    def stop(self) -> None:
        self.outbox.stop()
        self.summaries.publish_due(force=True)
        for r in self.runners.values():
            r.stop()
        self.store.close()

    def flush(self) -> bool:
        """Store everything queued, then notify (see :meth:`Outbox.flush`)."""
        return self.outbox.flush()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until everything queued is stored and sent, summaries included (tests, bench)."""
        deadline = self._mono() + timeout
        while self._mono() < deadline:
            if self.outbox.idle() and all(r.idle() for r in self.runners.values()):
                self.summaries.publish_due(force=True)
                return True
            time.sleep(0.01)
        return False

    def _new_id(self) -> str:
        """32 random hex digits (128 bits): unique across restarts and engine instances
        sharing a database, and not guessable from another alert's id (a counter would let
        anyone holding one id walk to the next). Ids of earlier versions (16 hex digits)
        stay valid: an id is only ever looked up whole."""
        return secrets.token_hex(16)

    # ------------------------------------------------------------------ reading
    @property
    def open(self) -> dict[str, Alert]:
        """Open alerts by key (read-only; kept for callers of the first version)."""
        return self.index.by_key

    @property
    def by_id(self) -> dict[str, Alert]:
        """Open alerts by id (read-only; prefer :meth:`live`)."""
        return self.index.by_id

    @property
    def listeners(self) -> list[TransitionListener]:
        return self.outbox.listeners

    def open_alerts(self) -> list[Alert]:
        with self._lock:
            return self.index.ordered()

    def iter_open(self) -> Iterable[Alert]:
        return list(self.index.by_key.values())

    def open_count(self) -> int:
        return len(self.index)

    def live(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Stored alerts, each replaced by this instance's live copy where it is open here
        (the store lags the memory by the group commit)."""
        by_id = self.index.by_id
        return [by_id.get(a.id, a) for a in alerts]

    def get(self, alert_id: str) -> Alert:
        """For reading: this instance's live alert, or the stored one (any instance)."""
        with self._lock:
            a = self.index.by_id.get(alert_id) or self.store.get(alert_id)
        if a is None:
            raise AlertNotFound(f"no alert with id {alert_id!r}")
        return a

    # ------------------------------------------------------------------ signals and timers
    def handle(self, signals: Sequence[Signal], ctx: StageContext) -> None:
        """Apply rule/detector transitions, store them, then notify."""
        if not signals and not self.outbox.has_unsaved():
            return
        with self._lock:
            ch = Changes()
            for s in signals:
                self._apply(s, ctx.now_ns, ch)
            self.outbox.commit(ch)
        if self.outbox.writes_inline:
            self.flush()

    def reloaded(self, reloads: Sequence[StageReload], ctx: StageContext) -> None:
        """End the alerts a reload stranded: every open alert of a removed rule (of that
        stage's source), and each subject a changed rule no longer watches. Each ends as
        a resolve does (recorded, notified, then closable), with its reason."""
        with self._lock:
            ch = Changes()
            for r in reloads:
                gone = set(r.removed)
                ended = 0
                if gone:
                    for a in list(self.index.by_key.values()):
                        if a.rule in gone and a.source == r.source:
                            ended += self._end(a, ctx.now_ns, ch)
                for s in r.ended:
                    self._apply(s, ctx.now_ns, ch)
                if ended or r.ended:
                    log.info(
                        "alerts: reload of %s ended %d alerts of removed rules (%s) and %d "
                        "no longer watched", r.stage, ended, ", ".join(sorted(gone)) or "none",
                        len(r.ended),
                    )  # fmt: skip
            self.outbox.commit(ch)
        if self.outbox.writes_inline:
            self.flush()

    def _end(self, a: Alert, now: int, ch: Changes) -> int:
        """End ``a``, whose rule a reload removed; 1 if that changed it (0: it had already
        returned to normal, so it is closable as it is)."""
        s = removed_rule_signal(a, now)
        outcome, step = apply(a, s, Event.RESOLVED, now, subject=Subject(a.key, a.labels()),
                              new_id=self._new_id, flapping=self.policy.flapping)  # fmt: skip
        self.metrics.signal(outcome)
        if step is None:
            return 0
        self._take(step, now, ch)
        return 1

    def _apply(self, s: Signal, now: int, ch: Changes) -> None:
        event = SIGNAL_EVENTS.get(s.state)
        if event is None:
            self.metrics.signal(Outcome.IGNORED)
            log.warning("alerts: signal of %s with unknown state %r ignored", s.rule, s.state)
            return
        subject = subject_of(s, self.registry)
        outcome, step = apply(self.index.by_key.get(subject.key), s, event, now,
                              subject=subject, new_id=self._new_id,
                              flapping=self.policy.flapping)  # fmt: skip
        self.metrics.signal(outcome)
        if step is None:
            return
        if outcome is Outcome.NEW:
            ch.opened(step.alert)
        if step.activated:
            self.health.annunciate(step.alert.labels(), step.alert.key, now)
        self._take(step, now, ch)

    def _take(self, step: Step, now: int, ch: Changes) -> Alert:
        """Record a step's transitions and swap the alert it leaves into the index."""
        a = step.alert
        owned = a is not self.index.by_id.get(a.id)  # the step's own copy, not yet published
        for rec in step.records:
            recorded = self.recorder.record(a, rec, now, ch, owned=owned)
            if recorded is not None:
                a, owned = recorded, False
        self.index.put(a)
        return a

    def tick(self, ctx: StageContext) -> None:
        """Timers that fire without data (call every engine tick with the engine's now)."""
        now = ctx.now_ns
        with self._lock:
            ch = Changes()
            for a in list(self.index.by_key.values()):
                step = due(a, now, self.policy)
                if step is not None:
                    self._take(step, now, ch)
            if self._retention.due(now):
                self._retain(now)
            self.outbox.commit(ch)
            open_alerts = list(self.index.by_key.values()) if self._health_due.due(now) else None
        if open_alerts is not None:  # outside the lock: the engine thread must not wait
            self.health.snapshot(now, open_alerts)
        if self.outbox.writes_inline:
            self.flush()

    def _retain(self, now: int) -> None:
        self.silencer.prune(now - SILENCES_KEPT_NS)
        try:
            n = self.store.purge_closed(now - int(self.cfg.retention_days * 86400 * S))
            if n:
                log.info("alerts: retention removed %d closed alerts", n)
        except Exception as exc:
            log.warning("alerts: retention failed: %s", exc)

    # ------------------------------------------------------------------ operator actions
    def _find(self, alert_id: str) -> Alert:
        a = self.index.by_id.get(alert_id)
        if a is not None:
            return a
        stored = self.store.get(alert_id)
        if stored is None:
            raise AlertNotFound(f"no alert with id {alert_id!r}")
        if stored.state is not AlertState.CLOSED:
            owner = self.store.owner_of(alert_id)
            if owner != self.store.owner:
                raise NotOwned(
                    f"alert {alert_id} is open in engine instance {owner!r}; act on it "
                    f"through that instance's API"
                )
        return stored

    def _act(
        self, alert_id: str, event: Event, who: str, note: str | None, *,
        reason: str | None = None, duration_s: float | None = None,
    ) -> Alert:  # fmt: skip
        with self._lock:
            a = self._find(alert_id)
            if a.state is AlertState.CLOSED:
                raise IllegalTransition(a.state, event, "it is closed")
            now = self.clock.now_ns()
            step = operate(a, event, now, who=who, note=note, reason=reason,
                           until_ns=until(now, duration_s))  # fmt: skip
            if event is Event.ACK and step.alert.fired_ns is not None:
                seconds = (now - step.alert.fired_ns) / S
                self.health.acknowledged(step.alert.labels(), seconds, now)
            ch = Changes()
            a = self._take(step, now, ch)
            self.outbox.commit(ch)
        if not self.flush():
            raise AlertStoreError("the alert store is not writable; the action is queued")
        return a

    def ack(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._act(alert_id, Event.ACK, who, note)

    def shelve(self, alert_id: str, who: str, reason: str, duration_s: float) -> Alert:
        """Hide an alert for ``duration_s`` (at most ``shelve_max_s``) with a reason."""
        check_shelve(reason, duration_s, self.cfg.shelve_max_s)
        return self._act(alert_id, Event.SHELVE, who, reason, reason=reason,
                         duration_s=duration_s)  # fmt: skip

    def unshelve(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._act(alert_id, Event.UNSHELVE, who, note)

    def out_of_service(
        self, alert_id: str, who: str, reason: str, duration_s: float | None = None
    ) -> Alert:
        """Sensor under maintenance: the alert is hidden until returned to service (or until
        ``duration_s`` passes)."""
        check_out_of_service(reason, duration_s)
        return self._act(alert_id, Event.OUT_OF_SERVICE, who, reason, reason=reason,
                         duration_s=duration_s)  # fmt: skip

    def return_to_service(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._act(alert_id, Event.RETURN_TO_SERVICE, who, note)

    def close(self, alert_id: str, who: str, note: str) -> Alert:
        """Close a returned-to-normal alert with a disposition note (what was done)."""
        check_close(note)
        return self._act(alert_id, Event.CLOSE, who, note)

    # ------------------------------------------------------------------ silences
    def add_silence(
        self, matchers: dict[str, list[str]], author: str, reason: str,
        ends_ns: int, starts_ns: int | None = None,
    ) -> Silence:  # fmt: skip
        s = new_silence(uuid.uuid4().hex[:12], matchers, author, reason, ends_ns, starts_ns,
                        self.clock.now_ns())  # fmt: skip
        with self._lock:
            self.store.add_silence(s)
            self.silencer.add(s)
        return s

    def expire_silence(self, silence_id: str) -> Silence:
        with self._lock:
            now = self.clock.now_ns()
            if self.silencer.get(silence_id) is None:
                raise AlertNotFound(f"no silence with id {silence_id!r}")
            self.store.expire_silence(silence_id, now)
            s = self.silencer.expire(silence_id, now)
            assert s is not None
            return s

    def silences(self) -> list[Silence]:
        with self._lock:
            return self.silencer.all()

    # ------------------------------------------------------------------ health
    def health_snapshot(self) -> dict[str, Any]:
        with self._lock:
            snap = self.health.snapshot(self.clock.now_ns(), list(self.index.by_key.values()))
        snap["notifiers"] = {
            n: {"queue": r.depth(), "sent": r.sent_total, "failed": r.failed_total,
                "last_error": r.last_error}
            for n, r in self.runners.items()
        }  # fmt: skip
        snap["open_alerts"] = len(self.index)
        return snap

    def mqtt_notifiers(self) -> list[MqttNotifier]:
        return [r.notifier for r in self.runners.values() if isinstance(r.notifier, MqttNotifier)]


def _runners(
    cfg: AlertsConfig, publisher: Any, store: AlertStore, metrics: NotifierMetrics,
    base: Callable[[str], Path],
) -> tuple[dict[str, NotifierRunner], list[MqttNotifier]]:  # fmt: skip
    """One runner per configured notifier, and the MQTT ones that publish summaries."""
    runners: dict[str, NotifierRunner] = {}
    summary_publishers: list[MqttNotifier] = []
    for nc in cfg.notifiers():
        plugin = build_notifier(nc, publisher, base)
        if isinstance(plugin, MqttNotifier) and nc.summary_topic:
            summary_publishers.append(plugin)
        runners[nc.label] = _runner(nc, plugin, store, metrics)
    return runners, summary_publishers


def _runner(
    nc: NotifierConfig, plugin: Any, store: AlertStore, metrics: NotifierMetrics
) -> NotifierRunner:
    return NotifierRunner(
        plugin, store, metrics, queue_max=nc.queue_max, retry_initial_s=nc.retry_initial_s,
        retry_max_s=nc.retry_max_s, give_up_after_s=nc.give_up_after_s,
    )  # fmt: skip
