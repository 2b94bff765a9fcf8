"""Retained site summaries: what they say, and their throttle on an injected monotonic
clock (at most one per period, kept due while a publisher is not connected)."""

from __future__ import annotations

import threading
from typing import Any

import orjson

from riskwatch.alerts.index import OpenAlerts
from riskwatch.alerts.state import AlertState
from riskwatch.alerts.summaries import SiteSummaries
from riskwatch.clock import ManualClock
from tests.unit.alerts.steps import T0, alert


class Publisher:
    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def ready(self) -> bool:
        return self.connected

    def publish_summary(self, enterprise: str, site: str, payload: bytes) -> None:
        self.sent.append((enterprise, site, orjson.loads(payload)))


def rig(max_alerts: int = 200) -> tuple[SiteSummaries, Publisher, OpenAlerts, list[float]]:
    index, pub, mono = OpenAlerts(), Publisher(), [1000.0]
    s = SiteSummaries([pub], index, threading.RLock(), ManualClock(T0),
                      monotonic=lambda: mono[0], max_alerts=max_alerts)  # fmt: skip
    return s, pub, index, mono


def test_content_most_severe_first() -> None:
    s, pub, index, _ = rig(max_alerts=2)
    index.put(alert(id="a1", key="k1", level=3, max_level=3))
    index.put(alert(AlertState.ACKNOWLEDGED, id="a2", key="k2", level=1, max_level=1))
    index.put(alert(AlertState.RESOLVED, id="a3", key="k3", level=2, active=False))
    s.start()
    s.publish_due()
    ((ent, site, body),) = pub.sent
    assert (ent, site, body["ts"], body["open"], body["unacknowledged"], body["truncated"]) == (
        "m1",
        "f1",
        T0 // 1_000_000,
        3,
        2,
        True,
    )
    assert body["by_level"] == {"red": 1, "orange": 1, "yellow": 1}
    assert [a["id"] for a in body["alerts"]] == ["a2", "a3"]


def test_throttled_per_period_and_forced() -> None:
    s, pub, index, mono = rig()
    index.put(alert())
    s.start()
    s.publish_due()
    s.written({("m1", "f1")})
    mono[0] += 0.999
    s.publish_due()
    assert len(pub.sent) == 1
    mono[0] += 0.001
    s.publish_due()
    assert len(pub.sent) == 2
    s.written({("m1", "f1")})
    s.publish_due(force=True)
    assert len(pub.sent) == 3
    s.publish_due(force=True)  # nothing due
    assert len(pub.sent) == 3


def test_kept_due_until_connected() -> None:
    s, pub, index, _ = rig()
    index.put(alert())
    pub.connected = False
    s.start()
    s.publish_due()
    assert pub.sent == []
    pub.connected = True
    s.publish_due()
    assert [x[2]["open"] for x in pub.sent] == [1]


def test_a_site_whose_alerts_closed_says_zero() -> None:
    s, pub, index, mono = rig()
    a = alert()
    index.put(a)
    s.start()
    s.publish_due()
    closed = a.copy()
    closed.state = AlertState.CLOSED
    index.put(closed)
    mono[0] += 1
    s.written({("m1", "f1")})
    assert [x[2]["open"] for x in pub.sent] == [1, 0]
