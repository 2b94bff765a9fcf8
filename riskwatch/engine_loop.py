"""The engine thread: receive, cut micro-batches, hand them on; timers; reload checks.

Each turn blocks in :meth:`~riskwatch.ingest.receiver.Receiver.receive` no longer than
until the next timer or the pending batch's cut, hands what arrived to the
:class:`~riskwatch.ingest.batcher.MicroBatcher`, and passes every cut batch to
``on_batch``. ``on_tick`` runs every ``tick_s`` (stage timers and the alert sink's),
``on_reload(forced)`` every ``reload_check_s`` and at once when a reload is requested.
Once a stop is requested the loop cuts what is pending and returns when the receiver
holds nothing more for it.

>>> from riskwatch.ingest.batcher import MicroBatcher
>>> from riskwatch.model import Batch
>>> stop, reload = threading.Event(), threading.Event()
>>> class Inbox:  # two deliveries, then the engine is asked to stop
...     left = [[("t", b"20", 0, 1, 1)], [("t", b"10", 0, 2, 1)]]
...     def receive(self, timeout):
...         if not self.left:
...             stop.set()
...         return self.left.pop(0) if self.left else []
...     def backlog(self): return 0
>>> now = [0.0]
>>> def decode(ms):
...     return Batch.from_arrays([int(m[1]) for m in ms], [0] * len(ms), [1.0] * len(ms)), len(ms)
>>> batcher = MicroBatcher(decode, max_readings=10, max_wait_s=1.0, idle_s=0.0,
...                        monotonic=lambda: now[0])
>>> loop = EngineLoop(Inbox(), batcher,
...                   on_batch=lambda cut: print(cut.batch.time.tolist(), cut.acks),
...                   on_tick=lambda: print("tick"), on_reload=print, tick_s=0.5,
...                   reload_check_s=2.0, stop=stop, reload_requested=reload,
...                   monotonic=lambda: now[0])
>>> loop.run()  # no time passes: no tick, no reload check; the stop cuts what is pending
[10, 20] [(1, 1), (2, 1)]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from riskwatch.ingest.batcher import MicroBatch, MicroBatcher
from riskwatch.ingest.receiver import Message

__all__ = ["EngineLoop"]


class _Inbox(Protocol):
    def receive(self, timeout: float) -> list[Message]: ...

    def backlog(self) -> int: ...


class EngineLoop:
    """One engine thread's work, turn by turn, until ``stop`` is set and all is handed on."""

    def __init__(
        self,
        receiver: _Inbox,
        batcher: MicroBatcher,
        *,
        on_batch: Callable[[MicroBatch], None],
        on_tick: Callable[[], None],
        on_reload: Callable[[bool], None],
        tick_s: float,
        reload_check_s: float,
        stop: threading.Event,
        reload_requested: threading.Event,
        monotonic: Callable[[], float],
    ) -> None:
        self.receiver = receiver
        self.batcher = batcher
        self.on_batch = on_batch
        self.on_tick = on_tick
        self.on_reload = on_reload
        self.tick_s = tick_s
        self.reload_check_s = reload_check_s
        self.stop = stop
        self.reload_requested = reload_requested
        self._monotonic = monotonic

    def run(self) -> None:
        next_tick = self._monotonic() + self.tick_s
        next_reload_check = self._monotonic() + self.reload_check_s
        while True:
            wait_s = self.batcher.wait_s(self._monotonic(), until=next_tick)
            messages = self.receiver.receive(wait_s)
            for cut in self.batcher.add(messages):
                self.on_batch(cut)
            now = self._monotonic()
            stopping = self.stop.is_set()
            due = self.batcher.take_due(now, received=bool(messages), stopping=stopping)
            if due is not None:
                self.on_batch(due)
            if now >= next_tick:
                self.on_tick()
                next_tick = now + self.tick_s
            forced = self.reload_requested.is_set()
            if forced or now >= next_reload_check:
                self.on_reload(forced)
                self.reload_requested.clear()
                next_reload_check = now + self.reload_check_s
            if stopping and self.receiver.backlog() == 0 and not self.batcher.pending:
                return
