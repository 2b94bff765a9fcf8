"""The child-process receiver (``ingest.receiver: process``, the default), engine side.

paho's packet handling and the engine's decoding run on two cores instead of sharing one
interpreter lock: the child (:mod:`riskwatch.ingest.receiver_child`) runs the paho
client with manual acks and ships received messages in chunks over a duplex pipe; this
handle reads them, stamps them with the engine's clock (see
:mod:`riskwatch.ingest.receiver` for why the parent stamps), and sends back
acknowledgements (in order, after storage made the readings durable) and publishes. If
the engine process dies — even by SIGKILL — the child sees the pipe close and exits at
once without acknowledging anything more, so the broker redelivers every message whose
readings were not durable.

Wire protocol (pickled tuples):

- child → engine: ``("msgs", [(topic, payload, mid, qos), ...])``, ``("connected", bool)``
- engine → child: ``("ack", [(mid, qos), ...])``, ``("pub", topic, payload, qos, retain)``,
  ``("stop",)``

>>> import socket
>>> from multiprocessing.connection import Connection
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.config.engine import MqttConfig
>>> ours, theirs = (Connection(s.detach()) for s in socket.socketpair())
>>> arrived = []
>>> rx = ProcessReceiver(MqttConfig(), clock=ManualClock(42), on_arrival=arrived.append)
>>> rx.attach(ours)
>>> theirs.send(("msgs", [("rw/m1/s1/gw", b"{}", 5, 1)]))
>>> rx.receive(1.0), arrived
([('rw/m1/s1/gw', b'{}', 42, 5, 1)], [1])
>>> rx.ack_many([(5, 1)]); theirs.recv()
('ack', [(5, 1)])
>>> rx.stop_receiving(); theirs.send(("msgs", [("rw/m1/s1/gw", b"{}", 6, 1)]))
>>> rx.receive(0.1), arrived
([], [1])
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from riskwatch.clock import Clock
from riskwatch.config.engine import MqttConfig
from riskwatch.ingest.receiver import Ack, ArrivalCounter, Message

__all__ = ["ProcessReceiver"]

log = logging.getLogger(__name__)


class ProcessReceiver:
    """A :class:`~riskwatch.ingest.receiver.Receiver` whose paho client runs in a child."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        clock: Clock,
        on_arrival: ArrivalCounter,
        max_buffered: int = 20_000,
        on_connected: Callable[[bool], None] | None = None,
        log_level: int = logging.INFO,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.on_arrival = on_arrival
        self.max_buffered = max_buffered
        self.on_connected = on_connected
        self.log_level = log_level
        self.connected = threading.Event()
        self._send_lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._receiving = True

    def start(self) -> None:
        # A plain subprocess on one end of a socketpair (not multiprocessing.Process, whose
        # "spawn" start re-imports the caller's __main__ module).
        parent_sock, child_sock = socket.socketpair()
        fd = child_sock.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "riskwatch.ingest.receiver_child", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
        )
        child_sock.close()
        self.attach(Connection(parent_sock.detach()))
        self._send((self.cfg, self.max_buffered, self.log_level))  # the child's first read

    def attach(self, conn: Connection) -> None:
        """Talk to the child over ``conn`` (:meth:`start` does this; tests use a pipe)."""
        self._conn = conn

    # ------------------------------------------------------------------ engine thread
    def receive(self, timeout: float) -> list[Message]:
        conn = self._conn
        if not self._receiving:
            return []  # unread messages stay unacknowledged: the broker redelivers them
        if conn is None or self._closed:
            time.sleep(min(timeout, 0.05))
            return []
        out: list[Message] = []
        try:
            if not conn.poll(timeout):
                return []
            while True:
                item = conn.recv()
                if item[0] == "msgs":
                    now = self.clock.now_ns()
                    out += [(topic, body, now, mid, qos) for topic, body, mid, qos in item[1]]
                elif item[0] == "connected":
                    self._connection_changed(bool(item[1]))
                if len(out) >= self.max_buffered or not conn.poll(0):
                    break
        except (EOFError, OSError):
            if not self._closed:
                log.error("MQTT receiver process ended unexpectedly")
                self._closed = True
        if out:
            self.on_arrival(len(out))  # once per hand-over: chunks are small under a stream
        return out

    def _connection_changed(self, up: bool) -> None:
        if up:
            self.connected.set()
        else:
            self.connected.clear()
        if self.on_connected:
            self.on_connected(up)

    def backlog(self) -> int:
        return 0  # what the child still holds is not the engine's yet

    def stop_receiving(self) -> None:
        self._receiving = False

    # ------------------------------------------------------------------ any thread
    def _send(self, item: tuple[Any, ...]) -> None:
        if self._conn is None or self._closed:
            return
        with self._send_lock:
            try:
                self._conn.send(item)
            except (OSError, ValueError) as exc:
                log.warning("cannot reach MQTT receiver process: %s", exc)

    def ack_many(self, acks: list[Ack]) -> None:
        self._send(("ack", acks))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._send(("pub", topic, payload, qos, retain))

    def wait_connected(self, timeout: float) -> bool:
        """Only meaningful while the engine thread calls :meth:`receive` (which reads the
        child's connection news)."""
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to send its last acks, disconnect cleanly and exit."""
        self._send(("stop",))
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._closed = True
        if self._conn is not None:
            self._conn.close()
