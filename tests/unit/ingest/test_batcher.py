"""The micro-batcher steps a manual monotonic clock and cuts exactly where the config says:
by size (also in the middle of one delivery), by time since the first message, by input
going quiet, and on stop; backlogs are decoded in slices learnt from readings per message.

Times are binary fractions (0.25 s, 0.03125 s, ...) so that the limits are met exactly.
"""

from __future__ import annotations

from riskwatch.ingest.batcher import MicroBatch, MicroBatcher
from riskwatch.ingest.receiver import Message
from riskwatch.model import Batch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def message(mid: int, readings: int = 1, t0: int = 0) -> Message:
    """A message whose payload says how many readings it holds and their first time."""
    return ("rw/m1/s1/gw", f"{readings},{t0}".encode(), 1_000 + mid, mid, 1)


class Decoder:
    """Decodes :func:`message` payloads; remembers the size of every slice it was given.
    ``decode_s`` seconds pass on the clock for each slice."""

    def __init__(self, clock: Clock, decode_s: float = 0.0, good: bool = True) -> None:
        self.clock = clock
        self.decode_s = decode_s
        self.good = good
        self.slices: list[int] = []

    def __call__(self, messages: list[Message]) -> tuple[Batch, int]:
        self.slices.append(len(messages))
        times: list[int] = []
        for m in messages:
            n, t0 = (int(x) for x in m[1].split(b","))
            times += range(t0, t0 + n)
        self.clock.now += self.decode_s
        if not self.good:
            return Batch.empty(), len(times)
        return Batch.from_arrays(times, [0] * len(times), [1.0] * len(times)), len(times)


def batcher(
    clock: Clock, decode: Decoder, *, max_readings: int = 100, max_wait_s: float = 0.25,
    idle_s: float = 0.03125,
) -> MicroBatcher:  # fmt: skip
    return MicroBatcher(decode, max_readings=max_readings, max_wait_s=max_wait_s,
                        idle_s=idle_s, monotonic=clock)  # fmt: skip


def mids(cut: MicroBatch | None) -> list[int]:
    assert cut is not None
    return [mid for mid, _ in cut.acks]


def test_nothing_pending_waits_until_the_next_timer_and_never_cuts() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock))
    assert not b.pending
    assert b.wait_s(now=0.0, until=0.5) == 0.5
    assert b.wait_s(now=1.0, until=0.5) == 0.0  # a late timer: do not block
    assert b.take_due(now=200.0, received=False, stopping=True) is None
    assert b.add([]) == []


def test_time_cut_after_max_wait_since_the_first_decoded_message() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock), idle_s=0.0)  # no quiet cut
    b.add([message(1)])
    clock.now = 0.125
    b.add([message(2)])
    assert b.wait_s(now=0.125, until=1.0) == 0.125  # first + 0.25
    assert b.take_due(now=0.24, received=False, stopping=False) is None
    cut = b.take_due(now=0.25, received=False, stopping=False)
    assert mids(cut) == [1, 2]
    assert not b.pending
    clock.now = 0.375
    b.add([message(3)])  # the next batch's clock starts at its own first message
    assert b.take_due(now=0.5, received=False, stopping=False) is None
    assert mids(b.take_due(now=0.625, received=False, stopping=False)) == [3]


def test_quiet_cut_only_after_a_receive_brought_nothing_for_idle_s() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock))
    b.add([message(1)])
    assert b.wait_s(now=0.0, until=1.0) == 0.03125
    # a receive that brought messages is not quiet, however long ago the last decode was
    assert b.take_due(now=0.0625, received=True, stopping=False) is None
    assert b.take_due(now=0.03, received=False, stopping=False) is None
    assert mids(b.take_due(now=0.03125, received=False, stopping=False)) == [1]


def test_idle_zero_turns_the_quiet_cut_off() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock), idle_s=0.0)
    b.add([message(1)])
    assert b.wait_s(now=0.0, until=1.0) == 0.25
    assert b.take_due(now=0.24, received=False, stopping=False) is None


def test_size_cut_at_max_readings_when_the_loop_asks() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock), max_readings=5)
    assert b.add([message(1, readings=3), message(2, readings=2)]) == []  # one slice
    cut = b.take_due(now=0.0, received=True, stopping=False)
    assert mids(cut) == [1, 2] and len(cut.batch) == 5  # type: ignore[union-attr]


def test_stop_cuts_whatever_is_pending() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock))
    b.add([message(1)])
    assert mids(b.take_due(now=0.0, received=True, stopping=True)) == [1]


def test_a_backlog_is_decoded_in_slices_of_about_one_batch_and_cut_as_each_fills() -> None:
    clock = Clock()
    decode = Decoder(clock, decode_s=0.0009765625)
    b = batcher(clock, decode, max_readings=1000)
    # first guess: 100 readings a message -> slices of 10 messages; these hold 50 each
    cuts = b.add([message(i, readings=50, t0=i * 50) for i in range(30)])
    assert decode.slices == [10, 10, 10]
    # 500, then 1000 readings with 10 messages still left: cut; the last slice stays
    assert [mids(c) for c in cuts] == [list(range(20))]
    assert b.pending
    # learnt: 50 readings a message -> slices of 20
    cuts = b.add([message(100 + i, readings=50) for i in range(45)])
    assert decode.slices[3:] == [20, 20, 5]
    assert [len(c.batch) for c in cuts] == [1500, 1000]  # 500 pending + 20 + 20 messages' worth
    assert len(b.take_due(now=clock.now, received=True, stopping=True).batch) == 250  # type: ignore[union-attr]


def test_the_last_slice_of_a_delivery_is_not_cut_even_when_it_fills_the_batch() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock), max_readings=1000)
    assert b.add([message(i, readings=100) for i in range(10)]) == []  # exactly one slice
    assert b.pending  # the loop's take_due cuts it (size), so the next receive does not wait
    assert len(b.take_due(now=0.0, received=True, stopping=False).batch) == 1000  # type: ignore[union-attr]


def test_cut_batches_are_sorted_by_event_time_and_keep_acks_in_arrival_order() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock))
    b.add([message(7, readings=2, t0=50)])
    b.add([message(3, readings=2, t0=10)])
    cut = b.take_due(now=1.0, received=False, stopping=False)
    assert cut is not None
    assert cut.batch.time.tolist() == [10, 11, 50, 51]
    assert cut.acks == [(7, 1), (3, 1)]


def test_messages_with_only_dead_letters_are_still_cut_and_acknowledged() -> None:
    clock = Clock()
    b = batcher(clock, Decoder(clock, good=False))
    b.add([message(1, readings=3)])
    cut = b.take_due(now=1.0, received=False, stopping=False)
    assert cut is not None and len(cut.batch) == 0 and cut.acks == [(1, 1)]


def test_the_time_limit_counts_from_when_decoding_ended() -> None:
    """Decoding a slice takes time: the first decode's end starts the batch's clock."""
    clock = Clock()
    b = batcher(clock, Decoder(clock, decode_s=0.0625), idle_s=0.0)
    b.add([message(1)])  # decoded by 0.0625
    assert b.take_due(now=0.25, received=False, stopping=False) is None
    assert b.take_due(now=0.3125, received=False, stopping=False) is not None
