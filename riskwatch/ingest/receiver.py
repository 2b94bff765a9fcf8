"""MQTT receiving in a child process, so paho's packet handling and the engine's decoding
run on two cores instead of sharing one interpreter lock.

The child runs the paho client (:class:`~riskwatch.ingest.client.MqttClient`, manual
acks). It ships received messages to the engine in chunks over a duplex pipe and carries
out what the engine sends back: acknowledgements (in order, after storage made the
readings durable) and publishes (alerts, dead letters). If the engine process dies — even
by SIGKILL — the child sees the pipe close and exits at once without acknowledging
anything more, so the broker redelivers every message whose readings were not durable.

Wire protocol (pickled tuples):

- child → engine: ``("msgs", [(topic, payload, received_ns, mid, qos), ...])``,
  ``("connected", bool)``
- engine → child: ``("ack", [(mid, qos), ...])``, ``("pub", topic, payload, qos, retain)``,
  ``("stop",)``
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from riskwatch.config.engine import MqttConfig

__all__ = ["ReceiverProcess"]

log = logging.getLogger(__name__)

Raw = tuple[str, bytes, int, int, int]

_LINGER_S = 0.001  # added latency at most; batches are cut by the engine in 20-200 ms anyway
_LINGER_MSGS = 256


class ReceiverProcess:
    """Engine-side handle of the receiving child process (same surface as MqttClient)."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        max_buffered: int = 20_000,
        on_connected: Callable[[bool], None] | None = None,
        log_level: int = logging.INFO,
    ) -> None:
        self.cfg = cfg
        self.max_buffered = max_buffered
        self.on_connected = on_connected
        self.log_level = log_level
        self.connected = threading.Event()
        self._send_lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: Any = None
        self._closed = False

    def start(self) -> None:
        # A plain subprocess on one end of a socketpair (not multiprocessing.Process, whose
        # "spawn" start re-imports the caller's __main__ module).
        parent_sock, child_sock = socket.socketpair()
        self._conn = Connection(parent_sock.detach())
        fd = child_sock.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "riskwatch.ingest.receiver", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
        )
        child_sock.close()
        self._conn.send((self.cfg, self.max_buffered, self.log_level))

    # ------------------------------------------------------------------ engine side
    def receive(self, timeout: float) -> list[Raw]:
        """Messages that arrived, waiting up to ``timeout`` s; [] if none (or closed)."""
        conn = self._conn
        if conn is None or self._closed:
            time.sleep(min(timeout, 0.05))
            return []
        out: list[Raw] = []
        try:
            if not conn.poll(timeout):
                return []
            while True:
                item = conn.recv()
                if item[0] == "msgs":
                    out.extend(item[1])
                elif item[0] == "connected":
                    if item[1]:
                        self.connected.set()
                    else:
                        self.connected.clear()
                    if self.on_connected:
                        self.on_connected(bool(item[1]))
                if len(out) >= self.max_buffered or not conn.poll(0):
                    return out
        except (EOFError, OSError):
            if not self._closed:
                log.error("MQTT receiver process ended unexpectedly")
                self._closed = True
            return out

    def _send(self, item: tuple[Any, ...]) -> None:
        if self._conn is None or self._closed:
            return
        with self._send_lock:
            try:
                self._conn.send(item)
            except (OSError, ValueError) as exc:
                log.warning("cannot reach MQTT receiver process: %s", exc)

    def ack_many(self, acks: list[tuple[int, int]]) -> None:
        self._send(("ack", acks))

    def ack(self, mid: int, qos: int) -> None:
        self._send(("ack", [(mid, qos)]))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._send(("pub", topic, payload, qos, retain))

    def wait_connected(self, timeout: float) -> bool:
        """Only meaningful while the engine thread calls :meth:`receive`."""
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


# ---------------------------------------------------------------------- child process
def _child_main(conn: Connection) -> None:
    from riskwatch.ingest.client import MqttClient

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cfg, max_buffered, log_level = conn.recv()
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    buf: list[Raw] = []
    cond = threading.Condition()
    stopping = threading.Event()

    def on_message(msg: Any) -> None:
        item = (msg.topic, msg.payload, time.time_ns(), msg.mid, msg.qos)
        with cond:
            while len(buf) >= max_buffered and not stopping.is_set():
                cond.wait(0.5)  # backpressure: paho stops reading the socket
            buf.append(item)
            if len(buf) == 1:
                cond.notify_all()

    def on_connected(up: bool) -> None:
        with contextlib.suppress(OSError, ValueError):
            send_lock_send(("connected", up))

    send_lock = threading.Lock()

    def send_lock_send(item: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(item)

    client = MqttClient(cfg, on_message, on_connected=on_connected)

    def sender() -> None:
        last_sent = 0.0
        while not stopping.is_set():
            with cond:
                if not buf:
                    cond.wait(0.2)
                if not buf:
                    continue
                if len(buf) < _LINGER_MSGS and time.monotonic() - last_sent < 5 * _LINGER_S:
                    # under a stream, linger a moment so that one pickle and one write carry
                    # many messages (woken at each first message, chunks averaged under 3
                    # messages at 25k messages/s). The first message after a pause goes at
                    # once: no added latency when idle.
                    cond.wait(_LINGER_S)
                chunk = buf[:]
                buf.clear()
                cond.notify_all()
            try:
                send_lock_send(("msgs", chunk))
            except (OSError, ValueError):
                os._exit(0)
            last_sent = time.monotonic()

    threading.Thread(target=sender, name="riskwatch-mqtt-sender", daemon=True).start()
    client.start()
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            # the engine is gone (crash or SIGKILL): leave without acknowledging more
            os._exit(0)
        kind = item[0]
        if kind == "ack":
            for mid, qos in item[1]:
                client.ack(mid, qos)
        elif kind == "pub":
            client.publish(item[1], item[2], item[3], item[4])
        elif kind == "stop":
            stopping.set()
            client.client.on_message = None
            time.sleep(0.2)  # let the last acks go out
            client.stop()
            os._exit(0)


if __name__ == "__main__":
    _child_main(Connection(int(sys.argv[1])))
