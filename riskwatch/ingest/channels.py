"""Local channels: inputs that arrive inside the engine's process (KJ files, HTTP posts)
join the MQTT receiver's messages on the engine's one path.

A :class:`LocalChannel` hands out :data:`~riskwatch.ingest.receiver.Message` tuples whose
``qos`` field is the channel's code (16 and up; MQTT's are 0..2) and whose ``mid`` counts
per channel; :class:`MultiReceiver` wraps the MQTT receiver, merges the channels' messages
into what it receives and sends each acknowledgement back where it came from: MQTT's to
the broker, a channel's to its ``on_acked`` (which archives the file or answers the HTTP
request). So a file or a post is settled exactly when an MQTT message would be
acknowledged: once its readings are stored or spooled.

>>> from riskwatch.ingest.receiver import Message
>>> acked = []
>>> ch = LocalChannel(16, "kj", on_acked=acked.extend, on_arrival=lambda n: None)
>>> ch.put("kj/a.txt", b"...", 5)
1
>>> class Mqtt:
...     connected = None
...     def receive(self, timeout): return [("rw/a/b/c", b"{}", 6, 9, 1)]
...     def backlog(self): return 0
...     def ack_many(self, acks): print("mqtt", acks)
>>> rx = MultiReceiver(Mqtt(), [ch])
>>> [(m[0], m[3], m[4]) for m in rx.receive(0.0)]
[('kj/a.txt', 1, 16), ('rw/a/b/c', 9, 1)]
>>> rx.ack_many([(9, 1), (1, 16)])
mqtt [(9, 1)]
>>> acked
[1]
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from riskwatch.ingest.receiver import Ack, ArrivalCounter, Message

__all__ = ["HTTP_CHANNEL", "KJ_CHANNEL", "LocalChannel", "MultiReceiver"]

#: channel codes (the ``qos`` field of a local message)
KJ_CHANNEL = 16
HTTP_CHANNEL = 17
#: how long a receive waits on MQTT before it looks at the local channels again
_SLICE_S = 0.02


class LocalChannel:
    """Messages from one in-process source; ``put`` is thread-safe."""

    def __init__(
        self, code: int, name: str, *, on_acked: Callable[[list[int]], None],
        on_arrival: ArrivalCounter,
    ) -> None:  # fmt: skip
        if code < 16:
            raise ValueError("channel codes start at 16 (0..2 are MQTT QoS levels)")
        self.code = code
        self.name = name
        self.on_acked = on_acked
        self.on_arrival = on_arrival
        self._mids = itertools.count(1)
        self._queue: deque[Message] = deque()
        self._lock = threading.Lock()
        self.wake = threading.Event()

    def put(self, topic: str, payload: bytes, received_ns: int) -> int:
        """Queue one message for the engine; its ``mid`` (what ``on_acked`` will name)."""
        with self._lock:
            mid = next(self._mids)
            self.on_arrival(1)  # counted before the engine can see it (AckLedger)
            self._queue.append((topic, payload, received_ns, mid, self.code))
        self.wake.set()
        return mid

    def take(self) -> list[Message]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def __len__(self) -> int:
        return len(self._queue)


class MultiReceiver:
    """The MQTT receiver plus local channels, as one :class:`Receiver` to the engine."""

    def __init__(self, mqtt: Any, channels: Sequence[LocalChannel]) -> None:
        self.mqtt = mqtt
        self.channels = {c.code: c for c in channels}
        self.connected = mqtt.connected
        self._wake = threading.Event()  # set by any channel's put
        for c in channels:
            c.wake = self._wake

    def _local(self) -> list[Message]:
        out: list[Message] = []
        for c in self.channels.values():
            if len(c):
                out.extend(c.take())
        return out

    def receive(self, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            local = self._local()
            if local:
                return local + self.mqtt.receive(0.0)
            left = deadline - time.monotonic()
            slice_s = max(0.0, min(left, _SLICE_S))
            started = time.monotonic()
            got = self.mqtt.receive(slice_s)
            if got:
                return self._local() + got
            if left <= 0:
                return []
            # a receiver that returns at once (stopping, disconnected) must not make this
            # spin: wait out the slice, waking early for a local message
            rest = slice_s - (time.monotonic() - started)
            if rest > 0 and self._wake.wait(rest):
                self._wake.clear()

    def backlog(self) -> int:
        return int(self.mqtt.backlog()) + sum(len(c) for c in self.channels.values())

    def ack_many(self, acks: list[Ack]) -> None:
        mqtt = [a for a in acks if a[1] < 16]
        if mqtt:
            self.mqtt.ack_many(mqtt)
        if len(mqtt) == len(acks):
            return
        by: dict[int, list[int]] = {}
        for mid, code in acks:
            if code >= 16:
                by.setdefault(code, []).append(mid)
        for code, mids in by.items():
            self.channels[code].on_acked(mids)

    # the rest is the MQTT receiver's
    def start(self) -> None:
        self.mqtt.start()

    def stop(self) -> None:
        self.mqtt.stop()

    def stop_receiving(self) -> None:
        self.mqtt.stop_receiving()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.mqtt.publish(topic, payload, qos, retain)

    def wait_connected(self, timeout: float) -> bool:
        return bool(self.mqtt.wait_connected(timeout))
