"""Group commit: what the sink changed goes to the store first, and only then out.

The sink queues one :class:`~riskwatch.alerts.changes.Changes` per batch, tick or
operator action (:meth:`Outbox.commit`). :meth:`Outbox.flush` writes everything queued in
one transaction (one fsync), then offers the new outbox rows to the notifier runners,
then calls the transition listeners and refreshes the site summaries. Nothing is notified
before it is stored; a write the store refuses stays queued, in order, and is tried
again. With ``write: async`` a writer thread flushes whenever something is queued, so the
engine thread never waits for the disk; with ``write: sync`` (or before :meth:`start`)
the caller flushes.

The alert rows are snapshotted under the sink's lock: an alert still open is written as
its current copy in the index (it may have moved on without a transition, e.g. flapping
history forgotten), a closed one as its last recorded copy.

>>> from riskwatch.alerts.index import OpenAlerts
>>> from riskwatch.alerts.state import Alert, AlertState, Transition
>>> from riskwatch.alerts.summaries import SiteSummaries
>>> from riskwatch.clock import ManualClock
>>> class Store:  # what the outbox needs of an AlertStore
...     lock = threading.RLock()
...     def write_rows(self, new, changed, transitions, deliveries):
...         print(len(new), len(changed), [t.id for t in transitions])
>>> lock = threading.RLock()
>>> index = OpenAlerts()
>>> summaries = SiteSummaries([], index, lock, ManualClock(0))
>>> outbox = Outbox(Store(), {}, summaries, lock, index.by_id, sync=False)
>>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule", AlertState.FIRING,
...           True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> for seq in (1, 2):
...     ch = Changes()
...     ch.recorded(a, Transition(f"a1:{seq}", "a1", seq, 5, 5, "engine", "firing", None,
...                               "firing", 2, 1.1, None), [])
...     outbox.commit(ch)
>>> outbox.flush(), outbox.idle()  # two groups, one write: the alert's row once
0 1 ['a1:1', 'a1:2']
(True, True)
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping

from riskwatch.alerts.changes import Changes, TransitionListener, merge
from riskwatch.alerts.notifiers import NotifierRunner
from riskwatch.alerts.state import Alert
from riskwatch.alerts.store import AlertStore, Delivery, alert_row
from riskwatch.alerts.summaries import SiteSummaries
from riskwatch.errors import AlertStoreError

__all__ = ["Outbox"]

log = logging.getLogger(__name__)


class Outbox:
    """``lock`` is the sink's; ``live`` its open alerts by id."""

    def __init__(
        self,
        store: AlertStore,
        runners: Mapping[str, NotifierRunner],
        summaries: SiteSummaries,
        lock: threading.RLock,
        live: Mapping[str, Alert],
        *,
        sync: bool,
    ) -> None:
        self.store = store
        self.runners = runners
        self.summaries = summaries
        self.sync = sync
        self.listeners: list[TransitionListener] = []
        self._lock = lock
        self._live = live
        self._unsaved: list[Changes] = []
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None

    @property
    def writes_inline(self) -> bool:
        """The caller flushes (``write: sync``, or no writer thread running)."""
        return self.sync or self._writer is None

    def has_unsaved(self) -> bool:
        return bool(self._unsaved)

    def idle(self) -> bool:
        """Nothing queued and nothing being written."""
        return not self._unsaved and not self._write_lock.locked()

    def commit(self, ch: Changes) -> None:
        """Queue what a call changed (with the sink's lock held)."""
        if ch:
            self._unsaved.append(ch)
            self._wake.set()

    def start(self) -> None:
        if self.sync or self._writer is not None:
            return
        self._writer = threading.Thread(target=self._write_loop, name="alerts-writer",
                                        daemon=True)  # fmt: skip
        self._writer.start()

    def stop(self) -> None:
        """Stop the writer, then store what is still queued."""
        self._stopping.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(10)
            self._writer = None
        self.flush()

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self.summaries.publish_due()
            if not self.flush():
                self._stopping.wait(1.0)

    def flush(self) -> bool:
        """Store everything queued, then offer it to the notifiers, then listeners and
        summaries. Returns False if the store refused (everything stays queued)."""
        with self._write_lock:
            with self._lock:
                if not self._unsaved:
                    return True
                queued, self._unsaved = self._unsaved, []
                m = merge(queued)
                live = self._live
                new_rows = [alert_row(live.get(i, a)) for i, a in m.new.items()]
                changed_rows = [alert_row(live.get(i, a)) for i, a in m.changed.items()]
            with self.store.lock:
                try:
                    self.store.write_rows(new_rows, changed_rows, m.transitions, m.deliveries)
                except AlertStoreError as exc:
                    log.error("alerts: %s (kept in memory, retried)", exc)
                    with self._lock:
                        self._unsaved[:0] = queued
                    return False
                # offered while holding the store's lock, so a runner's catch-up read never
                # sees a row that is about to be offered
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
            self.summaries.written(m.sites)
            return True
