"""The in-process receiver (``ingest.receiver: thread``): paho in the engine's process.

paho's network thread only stamps each message with the engine's clock and puts it on a
bounded queue: when the queue is full the callback blocks, paho stops reading the socket
and the broker holds the rest (backpressure, bounded memory). Decoding happens in the
engine thread, many messages at a time, so the network thread stays light.

>>> from types import SimpleNamespace
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.config.engine import MqttConfig
>>> arrived = []
>>> rx = ThreadReceiver(MqttConfig(), clock=ManualClock(7), on_arrival=arrived.append)
>>> rx.accept(SimpleNamespace(topic="rw/m1/s1/gw", payload=b"{}", mid=3, qos=1))
>>> rx.backlog(), arrived
(1, [1])
>>> rx.receive(0.0)
[('rw/m1/s1/gw', b'{}', 7, 3, 1)]
>>> rx.stop_receiving()
>>> rx.accept(SimpleNamespace(topic="rw/m1/s1/gw", payload=b"{}", mid=4, qos=1))
>>> rx.receive(0.0), arrived
([], [1])
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from riskwatch.clock import Clock
from riskwatch.config.engine import MqttConfig
from riskwatch.ingest.client import MqttClient
from riskwatch.ingest.receiver import Ack, ArrivalCounter, Message

__all__ = ["ThreadReceiver"]

#: messages taken from the queue per :meth:`ThreadReceiver.receive` without waiting
TAKE_AT_MOST = 5000


class ThreadReceiver:
    """A :class:`~riskwatch.ingest.receiver.Receiver` whose paho client runs in-process."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        clock: Clock,
        on_arrival: ArrivalCounter,
        max_buffered: int = 20_000,
        on_connected: Callable[[bool], None] | None = None,
    ) -> None:
        self.clock = clock
        self.on_arrival = on_arrival
        self.client = MqttClient(cfg, self.accept, on_connected=on_connected)
        self.connected: threading.Event = self.client.connected
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=max_buffered)
        self._receiving = True

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()

    def stop_receiving(self) -> None:
        self._receiving = False
        self.client.client.on_message = None  # nothing new enters the queue

    # ------------------------------------------------------------------ paho's thread
    def accept(self, msg: Any) -> None:
        """paho's message callback: count, stamp and queue; blocks while the queue is full."""
        if not self._receiving:
            return
        self.on_arrival(1)
        self._queue.put((msg.topic, msg.payload, self.clock.now_ns(), msg.mid, msg.qos))

    # ------------------------------------------------------------------ engine thread
    def receive(self, timeout: float) -> list[Message]:
        out: list[Message] = []
        try:
            out.append(self._queue.get(timeout=timeout))
            while len(out) < TAKE_AT_MOST:  # take what is already there without waiting
                out.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def backlog(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ storage thread
    def ack_many(self, acks: list[Ack]) -> None:
        for mid, qos in acks:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos, retain)

    def wait_connected(self, timeout: float) -> bool:
        return self.client.wait_connected(timeout)
