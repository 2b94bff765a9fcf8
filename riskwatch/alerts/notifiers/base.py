"""Notifier plugins stay tiny (``send(delivery)`` raising :class:`NotifyError` that says
whether a retry helps); :class:`NotifierRunner` owns the rest for all of them: a bounded
in-memory queue per notifier, one thread, retries with exponential backoff, giving up
after a configured age, catching up from the store's outbox after an overflow or a
restart, and metrics (sent, failed, retried, queue depth, latency).

A dead notifier never blocks alerting or ingest: :meth:`NotifierRunner.offer` never
waits; what does not fit in the queue stays ``pending`` in the outbox and is re-read
when the queue drains.

The runner reads no clock itself: backoff, give-up age and latency use the injected
``monotonic`` / ``monotonic_ns``, the outbox's ``done_ns`` the injected ``time_ns``
(defaults: the real ones; tests pass their own).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from riskwatch.alerts.store import AlertStore, Delivery
from riskwatch.errors import NotifyError

__all__ = ["Notifier", "NotifierMetrics", "NotifierRunner", "NotifyResult"]

log = logging.getLogger(__name__)


class Notifier(Protocol):
    name: str

    def send(self, d: Delivery) -> None: ...

    def close(self) -> None: ...


class NotifyResult(StrEnum):
    """How one attempt to send ended (the ``result`` label of
    ``riskwatch_alert_notifications_total``)."""

    SENT = "sent"  # delivered
    RETRY = "retry"  # refused or unreachable; will be tried again
    FAILED = "failed"  # given up: not retryable, or older than give_up_after_s
    ERROR = "error"  # the plugin raised something unexpected (a bug); tried again


class NotifierMetrics:
    """Per-notifier metrics on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "riskwatch_alert_notifications", "Attempts to send a notification, by notifier and "
            "result (sent, retry, failed, error)", ["notifier", "result"], registry=registry,
        )  # fmt: skip
        self.sent = Counter(
            "riskwatch_alert_notifications_sent", "Notifications delivered", ["notifier"],
            registry=registry,
        )  # fmt: skip
        self.failed = Counter(
            "riskwatch_alert_notifications_failed",
            "Notifications given up (not retryable, or too old)", ["notifier"], registry=registry,
        )  # fmt: skip
        self.retried = Counter(
            "riskwatch_alert_notification_retries", "Failed attempts that will be retried",
            ["notifier"], registry=registry,
        )  # fmt: skip
        self.depth = Gauge(
            "riskwatch_alert_notifier_queue_depth", "Notifications waiting in the queue",
            ["notifier"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "riskwatch_alert_notification_latency_seconds",
            "From the transition being stored to the notification sent", ["notifier"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300),
            registry=registry,
        )  # fmt: skip


class NotifierRunner:
    """Queue, thread, retries and outbox bookkeeping for one notifier."""

    def __init__(
        self,
        notifier: Notifier,
        store: AlertStore,
        metrics: NotifierMetrics,
        *,
        queue_max: int = 10_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 60.0,
        give_up_after_s: float = 24 * 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        time_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.notifier = notifier
        self.name = notifier.name
        self.store = store
        self.metrics = metrics
        self.queue_max = int(queue_max)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.give_up_after_s = give_up_after_s
        self._mono = monotonic
        self._mono_ns = monotonic_ns
        self._time_ns = time_ns
        self._q: collections.deque[Delivery] = collections.deque()
        self._known: set[str] = set()  # ids queued or in flight
        self._t0: dict[str, int] = {}
        self._backlog = False
        self._busy = False
        # delivered ids not yet marked in the outbox: marked as soon as the queue is empty,
        # and under load together at most every ``mark_interval_s`` (one commit, not one
        # per send)
        self._marks: list[str] = []
        self._marks_t0 = 0.0
        self.mark_interval_s = 0.1
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_total = 0
        self.failed_total = 0
        self.last_error: str | None = None
        self._outcome = {r: metrics.outcomes.labels(self.name, r.value) for r in NotifyResult}

    # ------------------------------------------------------------------ producer side
    def offer(self, items: list[Delivery]) -> None:
        """Queue without waiting. Call while holding ``store.lock`` after the rows are
        committed (so the catch-up reader never sees a row that is about to be offered)."""
        now = self._mono_ns()
        with self._cv:
            for d in items:
                if d.id in self._known:
                    continue
                # While older rows wait in the outbox, a new one waits behind them (the
                # catch-up reads the outbox oldest first): deliveries stay in order.
                if self._backlog or len(self._q) >= self.queue_max:
                    self._backlog = True
                    continue
                self._q.append(d)
                self._known.add(d.id)
                self._t0[d.id] = now
            self.metrics.depth.labels(self.name).set(len(self._q))
            self._cv.notify()

    def request_catch_up(self) -> None:
        """Re-read undelivered outbox rows when the queue has room (after a restart)."""
        with self._cv:
            self._backlog = True
            self._cv.notify()

    def idle(self) -> bool:
        with self._cv:
            return not self._q and not self._busy and not self._backlog and not self._marks

    def depth(self) -> int:
        with self._cv:
            return len(self._q)

    # ------------------------------------------------------------------ thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"notify-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after at most the item in flight (undelivered items stay in the outbox)."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._flush_marks(force=True)
        self.notifier.close()

    def _catch_up(self) -> None:
        with self.store.lock:
            rows = self.store.pending(self.name, limit=self.queue_max)
            with self._cv:
                room = self.queue_max - len(self._q)
                fresh = [d for d in rows if d.id not in self._known][:room]
                now = self._mono_ns()
                for d in fresh:
                    self._q.append(d)
                    self._known.add(d.id)
                    self._t0[d.id] = now
                # all caught up when everything pending fitted
                self._backlog = len(rows) >= self.queue_max

    def _run(self) -> None:
        while not self._stop.is_set():
            self._flush_marks(force=False)
            with self._cv:
                while not self._q and not self._backlog and not self._stop.is_set():
                    if not self._marks:
                        self._cv.wait(0.5)
                        continue
                    due = self._marks_t0 + self.mark_interval_s - self._mono()
                    if due <= 0:
                        break
                    self._cv.wait(due)
                if self._stop.is_set():
                    break
                need_catch_up = not self._q and self._backlog
            if not self._q and not need_catch_up:
                continue  # only marks were due
            if need_catch_up:
                self._flush_marks(force=True)  # delivered rows must not look pending
                try:
                    self._catch_up()
                except Exception as exc:  # store trouble: try again later
                    log.warning("notifier %s: reading the outbox failed: %s", self.name, exc)
                    self._stop.wait(1.0)
                continue
            with self._cv:
                batch = [self._q.popleft() for _ in range(min(len(self._q), 256))]
                self._busy = True
            done: list[str] = []
            failed: list[str] = []
            try:
                for d in batch:
                    ok = self._deliver(d)
                    if ok is None:  # stopping: put the rest back for the outbox
                        return
                    (done if ok else failed).append(d.id)
            finally:
                if done:
                    with self._cv:
                        if not self._marks:
                            self._marks_t0 = self._mono()
                        self._marks.extend(done)
                self._mark(failed, "failed", self.last_error)
                with self._cv:
                    idle = not self._q
                if idle:  # nothing waiting: mark now (the duplicate window stays one batch)
                    self._flush_marks(force=True)
                with self._cv:
                    self._busy = False
                    self.metrics.depth.labels(self.name).set(len(self._q))

    def _flush_marks(self, force: bool) -> None:
        with self._cv:
            if not self._marks:
                return
            young = self._mono() - self._marks_t0 < self.mark_interval_s
            if not force and len(self._marks) < 256 and young:
                return
            ids = list(self._marks)
        self._mark(ids, "delivered")  # idle() stays False until the rows are marked
        with self._cv:
            del self._marks[: len(ids)]

    def _mark(self, ids: list[str], status: str, error: str | None = None) -> None:
        if not ids:
            return
        try:
            self.store.mark(ids, status, self._time_ns(), error)
        except Exception as exc:
            log.error("notifier %s: cannot mark %d outbox rows %s: %s", self.name, len(ids),
                      status, exc)  # fmt: skip
        with self._cv:
            for i in ids:
                self._known.discard(i)
                self._t0.pop(i, None)

    def _deliver(self, d: Delivery) -> bool | None:
        """True sent, False given up, None stopped while retrying."""
        delay = self.retry_initial_s
        first = self._mono()
        while True:
            try:
                self.notifier.send(d)
            except NotifyError as exc:
                self.last_error = str(exc)
                too_old = self._mono() - first > self.give_up_after_s
                if not exc.retryable or too_old:
                    log.error("notifier %s: giving up on %s: %s", self.name, d.id, exc)
                    self.metrics.failed.labels(self.name).inc()
                    self._outcome[NotifyResult.FAILED].inc()
                    self.failed_total += 1
                    return False
                self.metrics.retried.labels(self.name).inc()
                self._outcome[NotifyResult.RETRY].inc()
                log.warning("notifier %s: %s; retrying in %.1f s", self.name, exc, delay)
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self.retry_max_s)
                continue
            except Exception as exc:  # a plugin bug must not kill the thread
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("notifier %s: unexpected error", self.name)
                self._outcome[NotifyResult.ERROR].inc()
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self.retry_max_s)
                continue
            t0 = self._t0.get(d.id)
            if t0 is not None:
                self.metrics.latency.labels(self.name).observe((self._mono_ns() - t0) / 1e9)
            self.metrics.sent.labels(self.name).inc()
            self._outcome[NotifyResult.SENT].inc()
            self.sent_total += 1
            return True
