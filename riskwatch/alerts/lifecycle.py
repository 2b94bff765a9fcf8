"""The alert sink: signals in, alert transitions stored, then notified.

:class:`AlertSink` is what the engine gets from :func:`riskwatch.alerts.build_sink`.
``handle(signals, ctx)`` applies each signal to the alert of its key (rule + sensor, or
rule + group) through the state machine of :mod:`riskwatch.alerts.state`; everything a
batch changed (alerts, transitions, outbox rows) is written in one transaction, and only
then offered to the notifiers. ``tick(ctx)`` runs the timers that must fire without data:
shelving and out-of-service expiry, escalation of unacknowledged alerts, repeat
notifications, flapping settling, notifying alerts whose inhibition or silence lifted,
and retention. Operator actions (:meth:`ack`, :meth:`shelve`, :meth:`close`, ...) come
from the API thread and take the same lock.

>>> import tempfile, os
>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.clock import ManualClock
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
>>> sink.stop()
"""

from __future__ import annotations

import collections
import copy
import itertools
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from riskwatch.alerts.health import HealthTracker
from riskwatch.alerts.notifiers import MqttNotifier, NotifierMetrics, NotifierRunner, build_notifier
from riskwatch.alerts.stages import Flapping, Inhibitor, Router, Silencer
from riskwatch.alerts.state import (
    Alert,
    AlertState,
    Event,
    IllegalTransition,
    Transition,
    transition,
)
from riskwatch.alerts.store import AlertStore, Delivery, Silence, StoreError, _alert_tuple
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock
from riskwatch.config.alerts import AlertsConfig, NotifierConfig
from riskwatch.errors import AlertNotFound, NotOwned
from riskwatch.model import Level, Signal
from riskwatch.pipeline import StageContext

__all__ = ["AlertSink", "TransitionListener"]

log = logging.getLogger(__name__)

S = 1_000_000_000
SUMMARY_EVERY_S = 1.0
SUMMARY_MAX_ALERTS = 200
_HIDDEN = (AlertState.SHELVED, AlertState.OUT_OF_SERVICE, "shelve", "out_of_service")

# listeners get (alert, transition) pairs after they are stored (e.g. the InfluxDB writer)
TransitionListener = Callable[[list[tuple[Alert, Transition]]], None]


def _colour(level: int | None) -> str | None:
    return Level(level).colour if level else None


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


@dataclass
class _Changes:
    new: dict[str, Alert] = field(default_factory=dict)
    changed: dict[str, Alert] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    pairs: list[tuple[Alert, Transition]] = field(default_factory=list)
    sites: set[tuple[str, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.transitions)


def _merge(chs: list[_Changes]) -> _Changes:
    if len(chs) == 1:
        return chs[0]
    m = _Changes()
    for ch in chs:
        m.new.update(ch.new)
        m.changed.update(ch.changed)
        m.transitions += ch.transitions
        m.deliveries += ch.deliveries
        m.pairs += ch.pairs
        m.sites |= ch.sites
    return m


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
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.publisher = publisher
        self.clock = clock
        self.metrics_registry = metrics_registry or CollectorRegistry()
        target = cfg.store if "://" in cfg.store else str(base(cfg.store))
        self.store = store or AlertStore(target, owner=instance)
        self._lock = threading.RLock()
        self.router = Router(cfg.notifiers())
        self.inhibitor = Inhibitor(cfg.inhibit)
        self.flapping = Flapping(int(cfg.flapping.window_s * S), cfg.flapping.high,
                                 cfg.flapping.low)  # fmt: skip
        self.escalate_ns = {
            int(Level.from_name(k)): int(v * S) for k, v in cfg.escalate_after_s.items()
        }
        self.repeat_ns = int(cfg.repeat_interval_s * S)
        self.health = HealthTracker(cfg.consoles)
        self.metrics_registry.register(self.health)
        nm = NotifierMetrics(self.metrics_registry)
        self.runners: dict[str, NotifierRunner] = {}
        self.summary_publishers: list[MqttNotifier] = []
        for nc in cfg.notifiers():
            self._add_runner(nc, nm, base)
        self.signals_total = Counter(
            "riskwatch_alert_signals", "Signals into the alert sink by outcome", ["outcome"],
            registry=self.metrics_registry,
        )  # fmt: skip
        self.transitions_total = Counter(
            "riskwatch_alert_transitions", "Alert transitions stored, by action", ["action"],
            registry=self.metrics_registry,
        )  # fmt: skip
        self.muted_total = Counter(
            "riskwatch_alert_muted", "Transitions recorded but not notified, by reason",
            ["reason"], registry=self.metrics_registry,
        )  # fmt: skip
        self._outcome = {k: self.signals_total.labels(k) for k in ("new", "transition", "dedup")}
        self._tcount: dict[str, Any] = {}
        self.listeners: list[TransitionListener] = []
        self.open: dict[str, Alert] = {}  # key -> open alert
        self.by_id: dict[str, Alert] = {}
        self._by_site: dict[tuple[str, str], dict[str, Alert]] = collections.defaultdict(dict)
        self._unsaved: list[_Changes] = []
        self.sync_writes = cfg.write == "sync"
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._dirty_sites: set[tuple[str, str]] = set()
        self._last_summary = 0.0
        self._last_retention = 0
        self._last_health = 0
        self.silencer = Silencer()
        self._started = False
        self._id_prefix = secrets.token_hex(4)
        self._id_seq = itertools.count()
        self._restore()

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_engine_config(
        cls, cfg: Any, registry: SensorRegistry, publisher: Any,
        metrics_registry: CollectorRegistry | None, clock: Clock,
    ) -> AlertSink:  # fmt: skip
        instance = cfg.alerts.instance or cfg.mqtt.client_id
        return cls(
            cfg.alerts, registry, publisher, metrics_registry, clock, base=cfg.path,
            instance=instance,
        )  # fmt: skip

    def _add_runner(
        self, nc: NotifierConfig, nm: NotifierMetrics, base: Callable[..., Path]
    ) -> None:
        plugin = build_notifier(nc, self.publisher, base)
        if isinstance(plugin, MqttNotifier) and nc.summary_topic:
            self.summary_publishers.append(plugin)
        self.runners[nc.label] = NotifierRunner(
            plugin, self.store, nm, queue_max=nc.queue_max, retry_initial_s=nc.retry_initial_s,
            retry_max_s=nc.retry_max_s, give_up_after_s=nc.give_up_after_s,
        )  # fmt: skip

    def _restore(self) -> None:
        """Open alerts (with their timers: fired/escalation base, tier, shelve expiry, last
        notification, flapping history) and silences come back from the store."""
        for a in self.store.load_open():
            self._index(a)
        now = self.clock.now_ns()
        for s in self.store.silences(since_ns=now - 7 * 24 * 3600 * S):
            self.silencer.add(s)
        if self.open:
            log.info("alerts: restored %d open alerts from %s", len(self.open), self.store._where())

    def add_listener(self, fn: TransitionListener) -> None:
        """Call ``fn`` with every stored batch of (alert, transition) pairs."""
        self.listeners.append(fn)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if not self.sync_writes:
            self._writer = threading.Thread(target=self._write_loop, name="alerts-writer",
                                            daemon=True)  # fmt: skip
            self._writer.start()
        for r in self.runners.values():
            r.start()
            r.request_catch_up()  # undelivered rows from before a restart
        with self._lock:  # published by the writer once MQTT is connected
            self._dirty_sites |= set(self._by_site)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(10)
            self._writer = None
        self.flush()
        self._publish_due_summaries(force=True)
        for r in self.runners.values():
            r.stop()
        self.store.close()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until everything queued is stored and sent, summaries included (tests, bench)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                not self._unsaved
                and not self._write_lock.locked()
                and all(r.idle() for r in self.runners.values())
            ):
                self._publish_due_summaries(force=True)
                return True
            time.sleep(0.01)
        return False

    def _new_id(self) -> str:
        """16 hex digits: 8 random per sink start + a counter (unique across restarts and
        engine instances sharing a database, without a random draw per alert)."""
        return f"{self._id_prefix}{next(self._id_seq) & 0xFFFFFFFF:08x}"

    # ------------------------------------------------------------------ index
    def _index(self, a: Alert) -> None:
        site = (a.enterprise, a.site)
        if a.state is AlertState.CLOSED:
            self.open.pop(a.key, None)
            self.by_id.pop(a.id, None)
            self._by_site[site].pop(a.id, None)
        else:
            self.open[a.key] = a
            self.by_id[a.id] = a
            self._by_site[site][a.id] = a

    def open_alerts(self) -> list[Alert]:
        with self._lock:
            return sorted(self.open.values(), key=lambda a: (a.level or 9, -a.since_ns, a.id))

    # ------------------------------------------------------------------ signals
    def _key(self, s: Signal) -> tuple[str, dict[str, str]]:
        if s.sensor >= 0:
            reg = self.registry
            labels = {
                c: str(reg.column(c)[s.sensor]) for c in ("enterprise", "site", "sensor", "kind")
            }
        else:
            ex = s.extra or {}
            parts = (s.group or "").split("/")
            labels = {
                "enterprise": str(ex.get("enterprise", parts[0] if parts else "")),
                "site": str(ex.get("site", parts[1] if len(parts) > 1 else "")),
                "sensor": "", "kind": "",
            }  # fmt: skip
        if s.group:
            key = f"{s.rule}|{s.group}"
        else:
            key = f"{s.rule}|{labels['enterprise']}/{labels['site']}/{labels['sensor']}"
        return key, labels

    def handle(self, signals: Sequence[Signal], ctx: StageContext) -> None:
        """Apply rule/detector transitions, store them, then notify."""
        if not signals and not self._unsaved:
            return
        with self._lock:
            ch = _Changes()
            for s in signals:
                self._apply(s, ctx.now_ns, ch)
            self._commit(ch)
        if self.sync_writes or self._writer is None:
            self.flush()

    def _apply(self, s: Signal, now: int, ch: _Changes) -> None:
        try:
            ev = Event(s.state)
        except ValueError:
            self.signals_total.labels("ignored").inc()
            log.warning("alerts: signal of %s with unknown state %r ignored", s.rule, s.state)
            return
        key, labels = self._key(s)
        a = self.open.get(key)
        lev = int(s.level) if s.level is not None else None
        if a is None:
            if ev is Event.RESOLVED:
                self._outcome["dedup"].inc()
                return
            firing = ev is Event.FIRING
            a = Alert(
                id=self._new_id(), key=key, rule=s.rule, enterprise=labels["enterprise"],
                site=labels["site"], sensor=labels["sensor"], group=s.group, kind=labels["kind"],
                source=s.source, state=AlertState.FIRING if firing else AlertState.PENDING,
                active=firing, acked=False, level=lev, max_level=lev, value=s.value,
                threshold=s.threshold, message=s.message, since_ns=now, ts_ns=s.time,
                updated_ns=now, fired_ns=now if firing else None, flap_times=[],
            )  # fmt: skip
            self._index(a)
            ch.new[a.id] = a
            self._outcome["new"].inc()
            flapping_now = self._activated(a, now) if firing else False
            self._record(a, ch, now, ev.value, None, lev, s.value, who="engine", ts=s.time)
            if flapping_now:
                self._record(a, ch, now, "flapping", a.state.value, a.level, s.value, ts=s.time)
            return
        old = a.condition
        new = transition(old, ev)
        level_change = ev is Event.FIRING and lev is not None and lev != a.level
        if new == old and not level_change:
            self._outcome["dedup"].inc()
            return
        self._outcome["transition"].inc()
        a.state, a.active, a.acked = new.state, new.active, new.acked
        a.value, a.threshold, a.message, a.ts_ns, a.updated_ns = (
            s.value, s.threshold, s.message, s.time, now,
        )  # fmt: skip
        if lev is not None:
            a.level = lev
            a.max_level = min(a.max_level or lev, lev)
        flapping_now = False
        if new.active and not old.active:
            a.fired_ns, a.tier = now, 0
            flapping_now = self._activated(a, now)
        if new.state is AlertState.CLOSED:
            a.closed_ns, a.note = now, "cleared while pending (never fired)"
        if new.state != old.state:
            action = ev.value
        elif level_change:
            action = "level"
        else:  # condition changed underneath a shelved / out-of-service alert
            action = ev.value
        note = a.note if new.state is AlertState.CLOSED else None
        self._record(a, ch, now, action, old.state.value, lev, s.value, note=note, ts=s.time)
        if flapping_now:
            self._record(a, ch, now, "flapping", a.state.value, a.level, s.value, ts=s.time)
        self._index(a)

    def _activated(self, a: Alert, now: int) -> bool:
        """Bookkeeping when an alert becomes active: health and flapping. True when it has
        just started flapping."""
        self.health.annunciate(a.labels(), a.key, now)
        if a.flap_times is None:
            a.flap_times = []
        over = self.flapping.activate(a.flap_times, now)
        if over and not a.flapping:
            a.flapping = True
            return True
        return False

    # ------------------------------------------------------------------ recording
    def _muted(self, a: Alert, action: str, now: int) -> str:
        if a.state in _HIDDEN and action not in _HIDDEN:
            return a.state.value  # shelved / out of service: recorded, not annunciated
        labels = a.labels()
        sid = self.silencer.match(labels, now)
        if sid is not None:
            return f"silence:{sid}"
        if self.inhibitor:
            site = self._by_site.get((a.enterprise, a.site), {})
            sources = [
                (o.id, o.labels(), o.level) for o in site.values() if o.active and o.id != a.id
            ]
            if self.inhibitor.inhibited(labels, a.level, a.id, sources):
                return "inhibited"
        if a.flapping and action not in ("flapping", "settled"):
            return "flapping"
        return ""

    def _record(
        self, a: Alert, ch: _Changes, now: int, action: str, from_state: str | None,
        level: int | None, value: float, *, who: str = "engine", note: str | None = None,
        ts: int | None = None, notify: bool = True,
    ) -> Transition:  # fmt: skip
        a.seq += 1
        a.updated_ns = now
        muted = self._muted(a, action, now) if notify else "quiet"
        t = Transition(
            id=f"{a.id}:{a.seq}", alert_id=a.id, seq=a.seq, at_ns=now,
            ts_ns=ts if ts is not None else now, who=who, action=action, from_state=from_state,
            to_state=a.state.value, level=level, value=value, note=note, muted=muted,
        )  # fmt: skip
        ch.transitions.append(t)
        if self.listeners:  # a snapshot: the alert moves on before the listeners run
            ch.pairs.append((copy.copy(a), t))
        if a.id not in ch.new:
            ch.changed[a.id] = a
        ch.sites.add((a.enterprise, a.site))
        tc = self._tcount.get(action)
        if tc is None:
            tc = self._tcount[action] = self.transitions_total.labels(action)
        tc.inc()
        if muted:
            if muted != "quiet":
                self.muted_total.labels(muted.split(":")[0]).inc()
            if muted.startswith("silence") or muted == "inhibited":
                a.undelivered = True
            return t
        a.undelivered = False
        a.last_notified_ns = now
        payload = orjson.dumps(self._payload(a, t))
        for name in self.router.targets(a.labels(), a.tier):
            ch.deliveries.append(
                Delivery(f"{t.id}:{name}", a.id, name, payload, a.enterprise, a.site, now)
            )
        return t

    def _payload(self, a: Alert, t: Transition) -> dict[str, Any]:
        return {
            "id": a.id, "event": t.id, "rule": a.rule, "level": _colour(t.level),
            "state": a.state.value, "action": t.action, "enterprise": a.enterprise,
            "site": a.site, "sensor": a.sensor, "group": a.group, "kind": a.kind,
            "value": _num(t.value), "threshold": _num(a.threshold), "ts": t.ts_ns // 1_000_000,
            "since": a.since_ns // 1_000_000, "message": a.message, "acked": a.acked,
            "tier": a.tier, "flapping": a.flapping, "by": t.who, "note": t.note,
            "source": a.source, "max_level": _colour(a.max_level),
        }  # fmt: skip

    def _commit(self, ch: _Changes) -> None:
        """Queue what a batch changed for the writer (call with ``_lock`` held)."""
        if ch:
            self._unsaved.append(ch)
            self._wake.set()

    def _write_loop(self) -> None:
        """Group commit: everything queued since the last write goes in one transaction (one
        fsync), so the engine thread never waits for the disk."""
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._publish_due_summaries()
            if not self.flush():
                self._stopping.wait(1.0)

    def flush(self) -> bool:
        """Store everything queued, then offer it to the notifiers, then listeners and
        summaries. Nothing is notified before it is stored; a failed write stays queued
        (in order) and is retried. Returns False if the store refused."""
        with self._write_lock:
            with self._lock:
                if not self._unsaved:
                    return True
                chs, self._unsaved = self._unsaved, []
                m = _merge(chs)
                # snapshot the rows under the lock: the engine thread goes on changing alerts
                new_rows = [_alert_tuple(a) for a in m.new.values()]
                changed_rows = [_alert_tuple(a) for i, a in m.changed.items() if i not in m.new]
            with self.store.lock:
                try:
                    self.store.write_rows(new_rows, changed_rows, m.transitions, m.deliveries)
                except StoreError as exc:
                    log.error("alerts: %s (kept in memory, retried)", exc)
                    with self._lock:
                        self._unsaved[:0] = chs
                    return False
                by_notifier: dict[str, list[Delivery]] = collections.defaultdict(list)
                for d in m.deliveries:
                    by_notifier[d.notifier].append(d)
                for name, items in by_notifier.items():
                    self.runners[name].offer(items)
            for fn in self.listeners:
                try:
                    fn(m.pairs)
                except Exception:
                    log.exception("alerts: transition listener failed")
            if self.summary_publishers:
                with self._lock:
                    self._dirty_sites |= m.sites
                self._publish_due_summaries()
            return True

    def _publish_due_summaries(self, force: bool = False) -> None:
        """Retained per-site summaries, at most once per ``SUMMARY_EVERY_S`` (a site with
        thousands of open alerts must not cost a big JSON per batch)."""
        now = time.monotonic()
        if not self._dirty_sites or (not force and now - self._last_summary < SUMMARY_EVERY_S):
            return
        if not all(p.ready() for p in self.summary_publishers):
            return  # kept dirty until the client is connected
        with self._lock:
            self._last_summary = now
            sites, self._dirty_sites = self._dirty_sites, set()
            for e, site in sites:
                self._publish_summary(e, site)

    def _publish_summary(self, enterprise: str, site: str) -> None:
        if not self.summary_publishers or not self._started:
            return
        alerts = sorted(
            self._by_site.get((enterprise, site), {}).values(),
            key=lambda a: (a.level or 9, a.since_ns),
        )
        by_level: dict[str, int] = collections.Counter(_colour(a.level) or "none" for a in alerts)
        body = orjson.dumps(
            {
                "enterprise": enterprise, "site": site, "ts": self.clock.now_ns() // 1_000_000,
                "open": len(alerts), "by_level": by_level,
                "unacknowledged": sum(1 for a in alerts if not a.acked and a.state in
                                      (AlertState.FIRING, AlertState.RESOLVED)),
                "truncated": len(alerts) > SUMMARY_MAX_ALERTS,
                "alerts": [
                    {"id": a.id, "rule": a.rule, "sensor": a.sensor, "group": a.group,
                     "level": _colour(a.level), "state": a.state.value, "acked": a.acked,
                     "since": a.since_ns // 1_000_000, "message": a.message}
                    for a in alerts[:SUMMARY_MAX_ALERTS]
                ],
            }
        )  # fmt: skip
        for p in self.summary_publishers:
            try:
                p.publish_summary(enterprise, site, body)
            except Exception as exc:
                log.warning("alerts: summary for %s/%s not published: %s", enterprise, site, exc)

    # ------------------------------------------------------------------ timers
    def tick(self, ctx: StageContext) -> None:
        """Timers that fire without data (call every engine tick with the engine's now)."""
        now = ctx.now_ns
        with self._lock:
            ch = _Changes()
            for a in list(self.open.values()):
                self._tick_one(a, now, ch)
            if now - self._last_retention >= 3600 * S:
                self._last_retention = now
                self.silencer.prune(now - 7 * 24 * 3600 * S)
                try:
                    n = self.store.purge_closed(now - int(self.cfg.retention_days * 86400 * S))
                    if n:
                        log.info("alerts: retention removed %d closed alerts", n)
                except Exception as exc:
                    log.warning("alerts: retention failed: %s", exc)
            self._commit(ch)
            if now - self._last_health >= 10 * S:  # for the Prometheus collector
                self._last_health = now
                open_alerts = list(self.open.values())
            else:
                open_alerts = None
        if open_alerts is not None:  # outside the lock: the engine thread must not wait
            self.health.snapshot(now, open_alerts)
        if self.sync_writes or self._writer is None:
            self.flush()

    def _tick_one(self, a: Alert, now: int, ch: _Changes) -> None:
        st = a.state
        if st in (AlertState.SHELVED, AlertState.OUT_OF_SERVICE) and a.shelved_until_ns:
            if now >= a.shelved_until_ns:
                ev = Event.UNSHELVE if st is AlertState.SHELVED else Event.RETURN_TO_SERVICE
                self._operate(a, ev, now, ch, who="system", note="time is up")
            return
        if a.flapping and a.flap_times is not None and self.flapping.settled(a.flap_times, now):
            a.flapping = False
            self._record(a, ch, now, "settled", a.state.value, a.level, a.value)
            return
        if st is AlertState.FIRING and a.level is not None and a.fired_ns is not None:
            limit = self.escalate_ns.get(a.level)
            if limit and a.tier < self.cfg.max_tier and now - a.fired_ns >= limit * (a.tier + 1):
                a.tier += 1
                note = f"unacknowledged for {(now - a.fired_ns) / S:.0f} s; tier {a.tier}"
                self._record(a, ch, now, "escalate", st.value, a.level, a.value, note=note)
                return
            if a.last_notified_ns is not None and now - a.last_notified_ns >= self.repeat_ns:
                self._record(a, ch, now, "repeat", st.value, a.level, a.value)
                return
        if a.undelivered and not self._muted(a, "unmuted", now):
            self._record(a, ch, now, "unmuted", st.value, a.level, a.value)

    # ------------------------------------------------------------------ operator actions
    def _find(self, alert_id: str) -> Alert:
        a = self.by_id.get(alert_id)
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

    def get(self, alert_id: str) -> Alert:
        """For reading: this instance's live alert, or the stored one (any instance)."""
        with self._lock:
            a = self.by_id.get(alert_id) or self.store.get(alert_id)
        if a is None:
            raise AlertNotFound(f"no alert with id {alert_id!r}")
        return a

    def _operate(
        self, a: Alert, ev: Event, now: int, ch: _Changes, *, who: str, note: str | None
    ) -> None:
        old = a.condition
        new = transition(old, ev)
        a.state, a.active, a.acked = new.state, new.active, new.acked
        if ev is Event.ACK:
            a.acked_ns, a.acked_by = now, who
            if a.fired_ns is not None:
                self.health.acknowledged(a.labels(), (now - a.fired_ns) / S, now)
        if ev in (Event.UNSHELVE, Event.RETURN_TO_SERVICE):
            a.shelved_until_ns, a.reason = None, None
        if ev is Event.CLOSE:
            a.closed_ns, a.note = now, note
        self._record(a, ch, now, ev.value, old.state.value, a.level, a.value, who=who, note=note)
        self._index(a)

    def _action(
        self, alert_id: str, ev: Event, who: str, note: str | None,
        prepare: Callable[[Alert, int], None] | None = None,
    ) -> Alert:  # fmt: skip
        with self._lock:
            a = self._find(alert_id)
            if a.state is AlertState.CLOSED:
                raise IllegalTransition(a.state, ev, "it is closed")
            now = self.clock.now_ns()
            transition(a.condition, ev)  # raise before changing anything
            if prepare is not None:
                prepare(a, now)
            ch = _Changes()
            self._operate(a, ev, now, ch, who=who, note=note)
            self._commit(ch)
        if not self.flush():
            raise StoreError("the alert store is not writable; the action is queued")
        return a

    def ack(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._action(alert_id, Event.ACK, who, note)

    def shelve(self, alert_id: str, who: str, reason: str, duration_s: float) -> Alert:
        """Hide an alert for ``duration_s`` (at most ``shelve_max_s``) with a reason."""
        if not reason.strip():
            raise ValueError("shelving needs a reason")
        if not 0 < duration_s <= self.cfg.shelve_max_s:
            raise ValueError(f"duration_s must be within (0, {self.cfg.shelve_max_s:g}] seconds")

        def prep(a: Alert, now: int) -> None:
            a.shelved_until_ns, a.reason = now + int(duration_s * S), reason

        return self._action(alert_id, Event.SHELVE, who, reason, prep)

    def unshelve(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._action(alert_id, Event.UNSHELVE, who, note)

    def out_of_service(
        self, alert_id: str, who: str, reason: str, duration_s: float | None = None
    ) -> Alert:
        """Sensor under maintenance: the alert is hidden until returned to service (or until
        ``duration_s`` passes)."""
        if not reason.strip():
            raise ValueError("out of service needs a reason")
        if duration_s is not None and duration_s <= 0:
            raise ValueError("duration_s must be > 0")

        def prep(a: Alert, now: int) -> None:
            a.reason = reason
            a.shelved_until_ns = now + int(duration_s * S) if duration_s else None

        return self._action(alert_id, Event.OUT_OF_SERVICE, who, reason, prep)

    def return_to_service(self, alert_id: str, who: str, note: str | None = None) -> Alert:
        return self._action(alert_id, Event.RETURN_TO_SERVICE, who, note)

    def close(self, alert_id: str, who: str, note: str) -> Alert:
        """Close a returned-to-normal alert with a disposition note (what was done)."""
        if not note or not note.strip():
            raise ValueError("closing needs a disposition note (what was done)")
        return self._action(alert_id, Event.CLOSE, who, note)

    # ------------------------------------------------------------------ silences
    def add_silence(
        self, matchers: dict[str, list[str]], author: str, reason: str,
        ends_ns: int, starts_ns: int | None = None,
    ) -> Silence:  # fmt: skip
        from riskwatch.config.alerts import _check_matchers

        msg = _check_matchers(matchers)
        if msg:
            raise ValueError(msg)
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if not reason.strip() or not author.strip():
            raise ValueError("a silence needs an author and a reason")
        now = self.clock.now_ns()
        start = now if starts_ns is None else starts_ns
        if ends_ns <= start or ends_ns <= now:
            raise ValueError("a silence must end in the future and after it starts")
        s = Silence(uuid.uuid4().hex[:12], matchers, start, ends_ns, author, reason, now)
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

    def health_snapshot(self) -> dict[str, Any]:
        with self._lock:
            snap = self.health.snapshot(self.clock.now_ns(), list(self.open.values()))
        snap["notifiers"] = {
            n: {"queue": r.depth(), "sent": r.sent_total, "failed": r.failed_total,
                "last_error": r.last_error}
            for n, r in self.runners.items()
        }  # fmt: skip
        snap["open_alerts"] = len(self.open)
        return snap

    def mqtt_notifiers(self) -> list[MqttNotifier]:
        return [r.notifier for r in self.runners.values() if isinstance(r.notifier, MqttNotifier)]

    def iter_open(self) -> Iterable[Alert]:
        return list(self.open.values())
