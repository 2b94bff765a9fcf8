"""The engine's ledger of messages between arrival and acknowledgement.

A message is acknowledged only once its readings are durable (written or spooled), so
at any moment some messages are in flight. The ledger counts them — for the
``riskwatch_mqtt_unacked_messages`` gauge and for :meth:`Engine.wait_idle` — and, when a
micro-batch becomes durable, observes how long its oldest reading waited
(``riskwatch_pipeline_latency_seconds``) and when the last acknowledgement went out.

Receivers call :meth:`AckLedger.arrived` from their own thread; the storage thread calls
:meth:`AckLedger.settled`; both under one lock.

>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.metrics import IngestMetrics
>>> clock = ManualClock(5_000_000_000)
>>> ledger = AckLedger(IngestMetrics(CollectorRegistry()), clock)
>>> ledger.arrived(3)
>>> ledger.received, ledger.unacked, ledger.last_acked_ns
(3, 3, None)
>>> clock.advance(0.25)
>>> ledger.settled(2, oldest_received_ns=5_000_000_000)
>>> ledger.received, ledger.unacked, ledger.last_acked_ns
(3, 1, 5250000000)
"""

from __future__ import annotations

import threading

from riskwatch.clock import Clock
from riskwatch.metrics import IngestMetrics

__all__ = ["AckLedger"]


class AckLedger:
    """Counts received and unacknowledged messages; times the acknowledgements."""

    def __init__(self, metrics: IngestMetrics, clock: Clock) -> None:
        self.metrics = metrics
        self.clock = clock
        self.received = 0  # messages handed to the engine since start
        self.unacked = 0  # of those, not yet acknowledged
        self.last_acked_ns: int | None = None  # the last acknowledgement (benchmarks)
        self._lock = threading.Lock()

    def arrived(self, count: int) -> None:
        """``count`` messages entered the engine (a receiver's ``on_arrival``)."""
        self.metrics.messages_in.inc(count)
        with self._lock:
            self.unacked += count
            self.received += count
            self.metrics.unacked.set(self.unacked)  # a stall shows as a rising gauge

    def settled(self, count: int, oldest_received_ns: int) -> None:
        """``count`` messages were acknowledged; the oldest of their readings arrived at
        ``oldest_received_ns``."""
        with self._lock:
            self.unacked -= count
            self.metrics.unacked.set(self.unacked)
        self.last_acked_ns = self.clock.now_ns()
        waited_s = (self.clock.now_ns() - oldest_received_ns) / 1e9
        self.metrics.pipeline_latency.observe(max(0.0, waited_s))

    def idle(self, expected: int = 0) -> bool:
        """At least ``expected`` messages arrived and every one was acknowledged."""
        return self.received >= expected and self.unacked == 0
