"""Dead letters: unusable readings and messages (:class:`DeadLetter`, with the reason) and
the sink they go to (:class:`DeadLetterSink`: a JSONL file and an MQTT topic, counted by
reason).

The file is appended and flushed per message so a record is on disk before the message
is acknowledged; it rotates once (``.1``) before a write would pass ``max_file_bytes``.
One message yields at most ``max_per_message`` records of single readings and one
summary record (``count``) for the rest, so junk cannot multiply itself on disk.

>>> import tempfile, os, json
>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.metrics import IngestMetrics
>>> from riskwatch.errors import DeadLetterReason
>>> path = os.path.join(tempfile.mkdtemp(), "dl.jsonl")
>>> sink = DeadLetterSink(path, None, None, IngestMetrics(CollectorRegistry()))
>>> sink.write([DeadLetter(DeadLetterReason.INVALID_JSON, "bad", "rw/a/b/c")], 0)
>>> json.loads(open(path).read())["reason"]
'invalid_json'
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from riskwatch.config.engine import DeadLetterConfig
from riskwatch.errors import DeadLetterReason, StorageError
from riskwatch.metrics import IngestMetrics

__all__ = ["DeadLetter", "DeadLetterSink", "Publisher"]

log = logging.getLogger(__name__)

_MS = 1_000_000
_REJECTED_BODY_CHARS = 1_000_000  # of a batch the database rejected, kept for a look


@dataclass(slots=True)
class DeadLetter:
    """One rejected reading (``index`` into the message) or a whole message (index None)."""

    reason: DeadLetterReason
    detail: str
    topic: str
    index: int | None = None
    field: str | None = None
    reading: Any = None
    #: readings this record stands for: 1, or more for the summary of a message's bad
    #: readings beyond ``ingest.deadletter.max_per_message``
    count: int = 1
    #: the line of a file (KJ files) the record starts on; ``topic`` then names the file
    line: int | None = None

    def to_json(self, received_ns: int) -> dict[str, Any]:
        out = {
            "reason": self.reason.value,
            "detail": self.detail,
            "topic": self.topic,
            "index": self.index,
            "field": self.field,
            "reading": self.reading,
            "received": received_ns // _MS,
        }
        if self.count != 1:
            out["count"] = self.count
        if self.line is not None:
            out["line"] = self.line
        return out


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...


class DeadLetterSink:
    def __init__(
        self,
        path: str | Path | None,
        topic: str | None,
        publisher: Publisher | None,
        metrics: IngestMetrics,
        *,
        max_file_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.path = Path(path) if path else None
        self.topic = topic
        self.publisher = publisher
        self.metrics = metrics
        self.max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._fh = None
        self._warned = 0
        self.publish_failures = 0
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("ab")

    @classmethod
    def from_config(
        cls, cfg: DeadLetterConfig, file: Path | None, publisher: Publisher | None,
        metrics: IngestMetrics,
    ) -> DeadLetterSink:  # fmt: skip
        """The sink ``ingest.deadletter`` describes, writing to ``file`` (its resolved path)."""
        return cls(file, cfg.topic, publisher, metrics, max_file_bytes=cfg.max_file_bytes)

    def write(self, dls: Sequence[DeadLetter], received_ns: int) -> None:
        if not dls:
            return
        for d in dls:
            self.metrics.deadletters.labels(d.reason.value).inc(d.count)
        lines = [orjson.dumps(d.to_json(received_ns)) for d in dls]
        if self._fh is not None:
            body = b"\n".join(lines) + b"\n"
            with self._lock:
                # rotate before a write would pass the limit, so neither file outgrows it
                if self._fh.tell() and self._fh.tell() + len(body) > self.max_file_bytes:
                    self._rotate()
                self._fh.write(body)
                self._fh.flush()
        if self.publisher is not None and self.topic:
            for line in lines:
                try:
                    self.publisher.publish(self.topic, line, 1, False)
                except Exception as exc:  # never let the dead-letter topic stop ingest
                    self.publish_failures += 1
                    self.metrics.deadletter_publish_failures.inc()
                    if self.publish_failures == 1:
                        log.warning(
                            "cannot publish dead letters to %s: %s (further failures are "
                            "counted in riskwatch_deadletter_publish_failures_total, not "
                            "logged)", self.topic, exc,
                        )  # fmt: skip
        if self._warned < 20:
            self._warned += 1
            d = dls[0]
            log.warning(
                "dead letter (%d in message) from %s: %s %s%s",
                len(dls),
                d.topic,
                d.reason.value,
                d.detail,
                f" [field {d.field}, reading {d.index}]" if d.index is not None else "",
            )
            if self._warned == 20:
                log.warning("further dead letters are counted in metrics, not logged")

    def write_rejected_batch(self, body: bytes, exc: StorageError, now_ns: int) -> None:
        """Line protocol the database refused as bad data (4xx): kept here, not retried."""
        text = body.decode("utf-8", "replace")
        reason = DeadLetterReason.STORAGE_REJECTED
        count = exc.dropped if exc.dropped else 1  # a partial write: the dropped points
        kept = text[:_REJECTED_BODY_CHARS] or None
        self.write([DeadLetter(reason, str(exc), "", None, None, kept, count)], now_ns)

    def _rotate(self) -> None:
        assert self.path is not None and self._fh is not None
        self._fh.close()
        os.replace(self.path, self.path.with_suffix(self.path.suffix + ".1"))
        self._fh = self.path.open("ab")

    def close(self) -> None:
        if self._fh is not None:
            with self._lock:
                self._fh.close()
                self._fh = None
