"""The receiving child process of :class:`~riskwatch.ingest.process_receiver.ProcessReceiver`.

Started as ``python -m riskwatch.ingest.receiver_child FD`` on one end of a socket pair.
It runs the paho client (:class:`~riskwatch.ingest.client.MqttClient`, manual acks),
buffers what arrives (bounded: when the buffer is full paho's callback waits, paho stops
reading the socket and the broker holds the rest), and a sender thread ships the buffer
to the engine in chunks. It carries out what the engine sends back: acknowledgements,
publishes, stop. When the pipe closes (the engine is gone, even by SIGKILL) it exits at
once without acknowledging anything more. It reads no time for the engine: the engine
stamps arrival with its own clock when it reads a chunk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from riskwatch.ingest.client import MqttClient

__all__ = ["run_child"]

#: (topic, payload, mid, qos): a message as the child ships it (the engine stamps arrival)
Shipped = tuple[str, bytes, int, int]

_LINGER_S = 0.001  # added latency at most; batches are cut by the engine in 20-200 ms anyway
_LINGER_MSGS = 256


def run_child(conn: Connection) -> None:
    """The child's whole life: configure, connect, ship messages, obey the engine."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cfg, max_buffered, log_level = conn.recv()
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    buf: list[Shipped] = []
    cond = threading.Condition()
    stopping = threading.Event()
    send_lock = threading.Lock()

    def send(item: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(item)

    def on_message(msg: Any) -> None:
        item = (msg.topic, msg.payload, msg.mid, msg.qos)
        with cond:
            while len(buf) >= max_buffered and not stopping.is_set():
                cond.wait(0.5)  # backpressure: paho stops reading the socket
            buf.append(item)
            if len(buf) == 1:
                cond.notify_all()

    def on_connected(up: bool) -> None:
        with contextlib.suppress(OSError, ValueError):
            send(("connected", up))

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
                send(("msgs", chunk))
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
    run_child(Connection(int(sys.argv[1])))
