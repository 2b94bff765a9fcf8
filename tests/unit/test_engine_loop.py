"""The engine thread turn by turn on a manual monotonic clock: how long each receive may
block, when timers and reload checks run, and that a stop returns only once the
receiver's backlog and the pending batch are handed on."""

from __future__ import annotations

import threading
from collections.abc import Callable

from riskwatch.engine_loop import EngineLoop
from riskwatch.ingest.batcher import MicroBatch, MicroBatcher
from riskwatch.ingest.receiver import Message
from riskwatch.model import Batch


class Script:
    """A receiver that plays one scripted turn per receive: (seconds that pass while it
    waits, messages it returns, what happens then)."""

    def __init__(self, clock: list[float], turns: list[tuple[float, list[Message], Callable[[], None] | None]]) -> None:  # fmt: skip
        self.clock = clock
        self.turns = turns
        self.timeouts: list[float] = []
        self.queued = 0

    def receive(self, timeout: float) -> list[Message]:
        self.timeouts.append(round(timeout, 6))
        passes, messages, then = self.turns.pop(0)
        self.clock[0] += passes
        if then is not None:
            then()
        return messages

    def backlog(self) -> int:
        return self.queued


def msg(mid: int) -> Message:
    return ("rw/m/s/g", b"", 0, mid, 1)


def decode(messages: list[Message]) -> tuple[Batch, int]:
    n = len(messages)
    return Batch.from_arrays([m[3] for m in messages], [0] * n, [1.0] * n), n


def make_loop(script: Script, clock: list[float], events: list[str], stop: threading.Event,
              reload: threading.Event) -> EngineLoop:  # fmt: skip
    batcher = MicroBatcher(decode, max_readings=100, max_wait_s=0.25, idle_s=0.0,
                           monotonic=lambda: clock[0])  # fmt: skip

    def on_batch(cut: MicroBatch) -> None:
        events.append(f"batch {[a[0] for a in cut.acks]} at {clock[0]}")

    return EngineLoop(
        script, batcher, on_batch=on_batch,
        on_tick=lambda: events.append(f"tick at {clock[0]}"),
        on_reload=lambda forced: events.append(f"reload forced={forced} at {clock[0]}"),
        tick_s=0.5, reload_check_s=1.0, stop=stop, reload_requested=reload,
        monotonic=lambda: clock[0],
    )  # fmt: skip


def test_timers_reload_checks_and_batches_in_order() -> None:
    clock, events = [0.0], []
    stop, reload = threading.Event(), threading.Event()
    script = Script(clock, [
        (0.125, [msg(1)], None),     # t=0.125: pending; cut due at 0.375
        (0.25, [], None),            # t=0.375: time cut
        (0.125, [], None),           # t=0.5: first tick
        (0.25, [msg(2)], reload.set),  # t=0.75: a reload is asked for
        (0.25, [], None),            # t=1.0: time cut of 2; tick; the reload check is due too
        (0.125, [], stop.set),       # t=1.125: stop
    ])  # fmt: skip
    make_loop(script, clock, events, stop, reload).run()
    assert events == [
        "batch [1] at 0.375",
        "tick at 0.5",
        "reload forced=True at 0.75",
        "batch [2] at 1.0",
        "tick at 1.0",
    ]
    # each receive blocks until the next timer or the pending batch's cut, whichever is first
    assert script.timeouts == [0.5, 0.25, 0.125, 0.5, 0.25, 0.5]
    assert not reload.is_set()


def test_the_periodic_reload_check_is_not_forced() -> None:
    clock, events = [0.0], []
    stop, reload = threading.Event(), threading.Event()
    script = Script(clock, [(0.5, [], None), (0.5, [], None), (0.0, [], stop.set)])
    make_loop(script, clock, events, stop, reload).run()
    assert events == ["tick at 0.5", "tick at 1.0", "reload forced=False at 1.0"]


def test_stop_hands_on_the_pending_batch_and_waits_for_the_backlog() -> None:
    clock, events = [0.0], []
    stop, reload = threading.Event(), threading.Event()
    script = Script(clock, [])
    script.queued = 2

    def stop_with_backlog() -> None:
        stop.set()

    def drained() -> None:
        script.queued = 0

    script.turns = [
        (0.0, [msg(1)], stop_with_backlog),  # stopping: 1 is cut at once, but 2 are queued
        (0.0, [msg(2), msg(3)], drained),    # what was queued comes, then nothing is left
    ]  # fmt: skip
    make_loop(script, clock, events, stop, reload).run()
    assert events == ["batch [1] at 0.0", "batch [2, 3] at 0.0"]
    assert script.turns == []
