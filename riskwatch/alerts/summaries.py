"""Retained per-site summaries of the open alerts, so a console that connects late sees
the current picture at once (MQTT notifiers with a ``summary_topic``).

A summary says how many alerts a site has open, by level, how many are unacknowledged,
and lists the ``max_alerts`` most severe. It is rebuilt for the sites a stored group
touched, at most once per ``every_s`` (a site with thousands of open alerts must not cost
a big JSON per batch) and only once every publisher is connected (until then the sites
stay due). The throttle runs on an injected monotonic clock; the summary's ``ts`` is the
sink's clock.

>>> import orjson
>>> from riskwatch.alerts.index import OpenAlerts
>>> from riskwatch.alerts.state import Alert, AlertState
>>> from riskwatch.clock import ManualClock
>>> class Publisher:
...     def ready(self): return True
...     def publish_summary(self, enterprise, site, body):
...         s = orjson.loads(body); print(enterprise, site, s["open"], s["by_level"])
>>> index = OpenAlerts()
>>> index.put(Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule",
...                 AlertState.FIRING, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5))
>>> mono = [100.0]
>>> summaries = SiteSummaries([Publisher()], index, threading.RLock(), ManualClock(0),
...                           monotonic=lambda: mono[0])
>>> summaries.start()
>>> summaries.publish_due()
m1 f1 1 {'orange': 1}
>>> summaries.written({("m1", "f1")})  # within a second of the last: waits
>>> mono[0] = 101.0
>>> summaries.publish_due()
m1 f1 1 {'orange': 1}
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import orjson

from riskwatch.alerts.index import OpenAlerts
from riskwatch.alerts.state import AlertState
from riskwatch.clock import Clock
from riskwatch.model import Level

__all__ = ["SiteSummaries", "SummaryPublisher"]

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 1.0
SUMMARY_MAX_ALERTS = 200


class SummaryPublisher(Protocol):
    """Where summaries go (:class:`~riskwatch.alerts.notifiers.MqttNotifier`)."""

    def ready(self) -> bool: ...

    def publish_summary(self, enterprise: str, site: str, payload: bytes) -> None: ...


class SiteSummaries:
    """Summaries of the sites in ``index``; ``lock`` is the sink's (the index changes
    under it)."""

    def __init__(
        self,
        publishers: Sequence[SummaryPublisher],
        index: OpenAlerts,
        lock: threading.RLock,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        every_s: float = SUMMARY_EVERY_S,
        max_alerts: int = SUMMARY_MAX_ALERTS,
    ) -> None:
        self.publishers = list(publishers)
        self.index = index
        self.clock = clock
        self.every_s = every_s
        self.max_alerts = max_alerts
        self._lock = lock
        self._mono = monotonic
        self._due: set[tuple[str, str]] = set()
        self._last = float("-inf")
        self._started = False

    def start(self) -> None:
        """Publish from now on, every known site first (published once connected)."""
        self._started = True
        with self._lock:
            self._due |= set(self.index.sites())

    def written(self, sites: Iterable[tuple[str, str]]) -> None:
        """A stored group touched these sites."""
        if not self.publishers:
            return
        with self._lock:
            self._due |= set(sites)
        self.publish_due()

    def publish_due(self, force: bool = False) -> None:
        """Publish the due sites if a period has passed since the last time (``force``:
        now), and every publisher is connected."""
        now = self._mono()
        if not self._due or (not force and now - self._last < self.every_s):
            return
        if not all(p.ready() for p in self.publishers):
            return  # kept due until the client is connected
        with self._lock:
            self._last = now
            sites, self._due = self._due, set()
            for enterprise, site in sites:
                self._publish(enterprise, site)

    def _publish(self, enterprise: str, site: str) -> None:
        if not self.publishers or not self._started:
            return
        alerts = sorted(
            self.index.in_site(enterprise, site).values(),
            key=lambda a: (a.level or 9, a.since_ns),
        )
        by_level = collections.Counter(_colour(a.level) or "none" for a in alerts)
        body = orjson.dumps(
            {
                "enterprise": enterprise, "site": site, "ts": self.clock.now_ns() // 1_000_000,
                "open": len(alerts), "by_level": by_level,
                "unacknowledged": sum(1 for a in alerts if not a.acked and a.state in
                                      (AlertState.FIRING, AlertState.RESOLVED)),
                "truncated": len(alerts) > self.max_alerts,
                "alerts": [
                    {"id": a.id, "rule": a.rule, "sensor": a.sensor, "group": a.group,
                     "level": _colour(a.level), "state": a.state.value, "acked": a.acked,
                     "since": a.since_ns // 1_000_000, "message": a.message}
                    for a in alerts[: self.max_alerts]
                ],
            }
        )  # fmt: skip
        for p in self.publishers:
            try:
                p.publish_summary(enterprise, site, body)
            except Exception as exc:
                log.warning("alerts: summary for %s/%s not published: %s", enterprise, site, exc)


def _colour(level: int | None) -> str | None:
    return Level(level).colour if level else None
