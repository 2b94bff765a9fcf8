"""The micro-batcher: received messages in, time-sorted batches with their acks out.

A pending micro-batch is cut when the first of these holds:

- it holds ``batch_max_readings`` readings or more (size);
- ``batch_max_wait_ms`` passed since its first message was decoded (time);
- input went quiet: a receive brought nothing and ``batch_idle_ms`` passed since the last
  message was decoded (0 turns this off), so the end of a burst is stored and
  acknowledged at once instead of waiting out ``batch_max_wait_ms``;
- the engine is stopping.

A backlog can hand over many thousand messages at once: they are decoded in slices of
about one batch (the number of messages is learnt from the readings per message of the
last slice), so that batches keep to ``batch_max_readings`` and storage starts writing
the first while the next is decoded. A slice that fills the batch while more of the
delivery is left cuts at once.

Times are seconds of a monotonic clock: :meth:`MicroBatcher.add` reads the injected
``monotonic`` after each slice is decoded (decoding takes time); :meth:`wait_s` and
:meth:`take_due` are given the loop's ``now``. A test steps both by hand:

>>> from riskwatch.model import Batch
>>> now = [0.0]
>>> def decode(messages):  # each message carries one reading, at t = its payload
...     times = [int(m[1]) for m in messages]
...     return Batch.from_arrays(times, [0] * len(times), [1.0] * len(times)), len(times)
>>> b = MicroBatcher(decode, max_readings=3, max_wait_s=0.2, idle_s=0.02, monotonic=lambda: now[0])
>>> msg = lambda mid, t: ("rw/m/s/g", str(t).encode(), 0, mid, 1)
>>> [len(c.batch) for c in b.add([msg(1, 30), msg(2, 10)])]  # 2 < 3: nothing cut yet
[]
>>> b.wait_s(now=0.0, until=0.5)  # the idle cut is the nearest
0.02
>>> b.take_due(now=0.01, received=False, stopping=False) is None
True
>>> cut = b.take_due(now=0.02, received=False, stopping=False)  # input quiet for 20 ms
>>> cut.batch.time.tolist(), cut.acks
([10, 30], [(1, 1), (2, 1)])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from riskwatch.config.engine import IngestConfig
from riskwatch.ingest.receiver import Ack, Message
from riskwatch.model import Batch, concat_batches

__all__ = ["Decode", "MicroBatch", "MicroBatcher"]

#: Decodes messages into one batch of good readings, and says how many readings they held.
Decode = Callable[[list[Message]], tuple[Batch, int]]

#: readings per message assumed until the first decode says better
_FIRST_GUESS_PER_MESSAGE = 100.0


@dataclass(frozen=True, slots=True)
class MicroBatch:
    """One cut: the readings sorted by event time, and the acks of every message they came
    from (in arrival order; messages that held only dead letters are acknowledged too)."""

    batch: Batch
    acks: list[Ack]


class MicroBatcher:
    """Cuts decoded messages into micro-batches by size, time and input going quiet."""

    def __init__(
        self,
        decode: Decode,
        *,
        max_readings: int,
        max_wait_s: float,
        idle_s: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.decode = decode
        self.max_readings = max_readings
        self.max_wait_s = max_wait_s
        self.idle_s = idle_s
        self._monotonic = monotonic
        self._readings_per_message = _FIRST_GUESS_PER_MESSAGE
        self._batches: list[Batch] = []
        self._acks: list[Ack] = []
        self._readings = 0
        self._first_decoded = 0.0  # when the pending batch's first slice was decoded
        self._last_decoded = 0.0  # when the latest slice was decoded

    @classmethod
    def from_config(
        cls, cfg: IngestConfig, decode: Decode, monotonic: Callable[[], float]
    ) -> MicroBatcher:
        """The batcher of ``batch_max_readings``, ``batch_max_wait_ms``, ``batch_idle_ms``."""
        return cls(decode, max_readings=cfg.batch_max_readings,
                   max_wait_s=cfg.batch_max_wait_ms / 1000, idle_s=cfg.batch_idle_ms / 1000,
                   monotonic=monotonic)  # fmt: skip

    @property
    def pending(self) -> bool:
        """Whether messages wait in an uncut batch."""
        return bool(self._acks)

    def wait_s(self, now: float, until: float) -> float:
        """How long a receive may block: until ``until`` (the loop's next timer), or
        sooner when the pending batch is due by time or by input going quiet."""
        deadline = until
        if self._acks:
            deadline = min(deadline, self._first_decoded + self.max_wait_s)
            if self.idle_s > 0:
                deadline = min(deadline, self._last_decoded + self.idle_s)
        return max(0.0, deadline - now)

    def add(self, messages: list[Message]) -> list[MicroBatch]:
        """Decode ``messages`` in slices into the pending batch; the batches that filled up
        while more of ``messages`` was left, cut (the rest stays pending)."""
        cuts: list[MicroBatch] = []
        step = max(1, int(self.max_readings / self._readings_per_message))
        for start in range(0, len(messages), step):
            part = messages[start : start + step] if len(messages) > step else messages
            batch, n_read = self.decode(part)
            self._readings_per_message = max(1.0, n_read / len(part))
            self._last_decoded = self._monotonic()
            if not self._acks:
                self._first_decoded = self._last_decoded
            self._batches.append(batch)
            self._acks.extend((m[3], m[4]) for m in part)
            self._readings += len(batch)
            if self._readings >= self.max_readings and start + step < len(messages):
                cuts.append(self._cut())
        return cuts

    def take_due(self, now: float, *, received: bool, stopping: bool) -> MicroBatch | None:
        """The pending batch if it must go now, else None. ``received``: whether the last
        receive brought any message (input that just spoke is not quiet)."""
        if not self._acks:
            return None
        quiet = not received and self.idle_s > 0 and now - self._last_decoded >= self.idle_s
        if (
            self._readings >= self.max_readings
            or now - self._first_decoded >= self.max_wait_s
            or stopping
            or quiet
        ):
            return self._cut()
        return None

    def _cut(self) -> MicroBatch:
        cut = MicroBatch(concat_batches(self._batches).sorted_by_time(), self._acks)
        self._batches, self._acks, self._readings = [], [], 0
        return cut
