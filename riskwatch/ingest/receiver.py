"""What the engine needs from its MQTT connection: one :class:`Receiver` protocol.

Two receivers implement it, chosen by ``ingest.receiver`` when the engine is wired:

- :class:`~riskwatch.ingest.thread_receiver.ThreadReceiver` (``thread``): paho runs in
  the engine's process; its network thread puts each message on a bounded queue;
- :class:`~riskwatch.ingest.process_receiver.ProcessReceiver` (``process``, the
  default): paho runs in a child process, so that its packet handling and the engine's
  decoding use two cores instead of sharing one interpreter lock.

Both hand over :data:`Message` tuples and take acknowledgements back in the order the
storage thread made the readings durable; both also publish (alerts, dead letters).

Arrival time. Both stamp a message's ``received_ns`` with the engine's injected clock, as
the message is handed to the engine's side: in paho's callback for the thread receiver,
at the read of each chunk from the child's pipe for the process receiver (one clock
reading per chunk). The child reads no time for the engine: a clock cannot cross a process
boundary (a test's manual clock would stand still in the child), and ``received_ns``
decides what is late (``ingest.late_after_s``) and absurdly ahead (``ingest.max_future_s``),
so it must come from the one clock the engine runs on. What stamping on hand-over adds is
the time a message spends in the child: at most the 1 ms linger plus the copy while the
engine keeps up; under a backlog, the wait in the child's bounded buffer
(``ingest.queue_max_messages``), the same wait the thread receiver's messages spend in its
queue after their stamp. Both are far below the seconds those limits are counted in.

Counting. A receiver calls ``on_arrival(count)`` as messages enter the engine, before
they can be seen by :meth:`Receiver.receive`, so that "received" and "unacknowledged"
counts never miss a message that is already on its way to the batcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["Ack", "ArrivalCounter", "Message", "Receiver"]

#: One received MQTT message: ``(topic, payload, received_ns, mid, qos)``.
Message = tuple[str, bytes, int, int, int]

#: What acknowledges one message: ``(mid, qos)``.
Ack = tuple[int, int]

#: Called with the number of messages that just entered the engine.
ArrivalCounter = Callable[[int], None]


class Receiver(Protocol):
    """The engine's MQTT connection: receive with manual acknowledgement, and publish."""

    #: set while connected and subscribed (the alert notifiers wait for it)
    connected: threading.Event

    def start(self) -> None:
        """Connect in the background (and reconnect with backoff after a loss)."""

    def stop(self) -> None:
        """Send the last acknowledgements, disconnect and release everything."""

    def stop_receiving(self) -> None:
        """Take no new messages: :meth:`receive` hands over only what the engine holds
        already; what the broker or the child still has stays unacknowledged, and the
        broker redelivers it."""

    def receive(self, timeout: float) -> list[Message]:
        """The messages that arrived, waiting up to ``timeout`` s for the first; [] if none."""

    def backlog(self) -> int:
        """Messages inside the engine's process that :meth:`receive` has not handed over."""

    def ack_many(self, acks: list[Ack]) -> None:
        """Acknowledge messages (their readings are durable), in the order given."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish one message (alerts, dead letters, summaries)."""

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed, waiting up to ``timeout`` s."""
