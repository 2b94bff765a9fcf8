"""The receiver ``ingest.receiver`` names: the explicit factory the engine wires with.

>>> from riskwatch.clock import ManualClock
>>> from riskwatch.config.engine import load_engine_config_text
>>> cfg = load_engine_config_text("ingest: {receiver: thread}\\n")
>>> type(open_receiver(cfg, clock=ManualClock(0), on_arrival=print)).__name__
'ThreadReceiver'
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from riskwatch.clock import Clock
from riskwatch.config.engine import EngineConfig
from riskwatch.ingest.process_receiver import ProcessReceiver
from riskwatch.ingest.receiver import ArrivalCounter, Receiver
from riskwatch.ingest.thread_receiver import ThreadReceiver

__all__ = ["open_receiver"]


def open_receiver(
    cfg: EngineConfig,
    *,
    clock: Clock,
    on_arrival: ArrivalCounter,
    on_connected: Callable[[bool], None] | None = None,
) -> Receiver:
    """``process`` (paho in a child process, the default) or ``thread`` (in this one),
    buffering up to ``ingest.queue_max_messages``; not started."""
    if cfg.ingest.receiver == "process":
        return ProcessReceiver(
            cfg.mqtt, clock=clock, on_arrival=on_arrival,
            max_buffered=cfg.ingest.queue_max_messages, on_connected=on_connected,
            log_level=logging.getLogger().getEffectiveLevel(),
        )  # fmt: skip
    return ThreadReceiver(
        cfg.mqtt, clock=clock, on_arrival=on_arrival,
        max_buffered=cfg.ingest.queue_max_messages, on_connected=on_connected,
    )  # fmt: skip
