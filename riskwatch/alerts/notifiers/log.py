"""Structured log notifier: one JSON object per line, to a file (JSONL, append, flushed)
or to the ``riskwatch.alerts.notify`` logger.

>>> import tempfile, os
>>> from riskwatch.alerts.store import Delivery
>>> p = os.path.join(tempfile.mkdtemp(), "alerts.jsonl")
>>> n = LogNotifier("log", p)
>>> n.send(Delivery("x", "a", "log", b'{"id":"a"}', "", "", 0)); n.close()
>>> open(p).read()
'{"id":"a"}\\n'
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from riskwatch.alerts.store import Delivery
from riskwatch.errors import NotifyError

__all__ = ["LogNotifier"]

log = logging.getLogger("riskwatch.alerts.notify")


class LogNotifier:
    def __init__(self, name: str, file: str | Path | None = None) -> None:
        self.name = name
        self._f: IO[bytes] | None = None
        if file is not None:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(file, "ab")

    def send(self, d: Delivery) -> None:
        if self._f is None:
            log.info("%s", d.payload.decode("utf-8", "replace"))
            return
        try:
            self._f.write(d.payload + b"\n")
            self._f.flush()
        except OSError as exc:
            raise NotifyError(f"alert log {self._f.name}: {exc.strerror}", retryable=True) from exc

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
