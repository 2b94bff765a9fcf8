"""The KJ drop folder: pick complete files up atomically, archive them once durable.

An FTP server writes files in place, so a file is taken only once its size and mtime did
not change for ``settle_s`` (and never while its name says it is partial: ``.tmp``,
``.part``, ``.filepart``, or a leading ``.``). Taking it is a ``rename`` into
``<drop_dir>/processing`` (atomic on one file system: a file is taken once, even by two
engines), then its bytes go to the engine on the KJ :class:`LocalChannel`. When the
storage thread acknowledges the message (its readings are written or spooled) the file
moves to ``archive_dir/<yyyymmdd>/``. Files left in ``processing`` by a crash are sent
again at start (readings are keyed by series and time, so a second write overwrites the
first). A name that does not fit ``<mine>_<TYPE>_<yyyyMMddHHmmss>.txt`` or a file over
``max_file_bytes`` goes to ``rejected_dir`` with a dead letter. Within one scan, CDDY
files go first (the catalogue before the readings), then by the time in the name.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from riskwatch.clock import Clock
from riskwatch.config.adapters import KjConfig
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.channels import LocalChannel
from riskwatch.ingest.deadletter import DeadLetter
from riskwatch.ingest.kj import parse_name

__all__ = ["KjWatcher"]

log = logging.getLogger(__name__)

_PARTIAL = (".tmp", ".part", ".filepart", ".partial")


class KjWatcher:
    """Polls ``drop_dir`` in its own thread; ``acked`` is the channel's ``on_acked``."""

    def __init__(
        self, cfg: KjConfig, drop_dir: Path, archive_dir: Path, rejected_dir: Path,
        clock: Clock, deadletter: Callable[[list[DeadLetter], int], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.drop = drop_dir
        self.processing = drop_dir / "processing"
        self.archive = archive_dir
        self.rejected = rejected_dir
        self.clock = clock
        self.deadletter = deadletter
        self._monotonic = monotonic
        self.channel: LocalChannel | None = None
        self._seen: dict[str, tuple[int, int, float]] = {}  # name -> (size, mtime_ns, since)
        self._inflight: dict[int, str] = {}  # mid -> name in processing/
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.archived = 0

    def start(self, channel: LocalChannel) -> None:
        self.channel = channel
        for d in (self.drop, self.processing, self.archive, self.rejected):
            d.mkdir(parents=True, exist_ok=True)
        for p in sorted(self.processing.iterdir(), key=lambda p: _order(p.name)):
            if p.is_file():  # left by a crash before its readings were durable
                log.info("KJ file %s was taken but not archived: sending it again", p.name)
                self._send(p)
        self._thread = threading.Thread(target=self._run, name="riskwatch-kj", daemon=True)
        self._thread.start()
        log.info("watching %s for KJ files (archive %s)", self.drop, self.archive)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.poll_s):
            try:
                self.scan()
            except Exception:
                log.exception("scanning %s failed", self.drop)

    def scan(self) -> int:
        """One look at the drop folder; how many files were taken."""
        now = self._monotonic()
        ready: list[Path] = []
        present = set()
        for entry in os.scandir(self.drop):
            name = entry.name
            if not entry.is_file() or name.startswith(".") or name.lower().endswith(_PARTIAL):
                continue
            present.add(name)
            st = entry.stat()
            sig = (st.st_size, st.st_mtime_ns)
            old = self._seen.get(name)
            if old is None or old[:2] != sig:
                self._seen[name] = (*sig, now)
                continue
            if now - old[2] >= self.cfg.settle_s:
                ready.append(Path(entry.path))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        for p in sorted(ready, key=lambda p: _order(p.name)):
            self._seen.pop(p.name, None)
            self._take(p)
        return len(ready)

    def _take(self, p: Path) -> None:
        if parse_name(p.name) is None:
            self._reject(p, R.BAD_FILE_NAME, "not <mine>_<TYPE>_<yyyyMMddHHmmss>.txt")
            return
        if p.stat().st_size > self.cfg.max_file_bytes:
            self._reject(p, R.TOO_LARGE, f"{p.stat().st_size} bytes > adapters.kj."
                         f"max_file_bytes {self.cfg.max_file_bytes}")  # fmt: skip
            return
        dest = self.processing / p.name
        try:
            os.rename(p, dest)  # atomic: the file is ours, or another taker's
        except FileNotFoundError:
            return
        self._send(dest)

    def _send(self, p: Path) -> None:
        assert self.channel is not None
        data = p.read_bytes()
        with self._lock:
            mid = self.channel.put(f"kj/{p.name}", data, self.clock.now_ns())
            self._inflight[mid] = p.name

    def _reject(self, p: Path, reason: R, why: str) -> None:
        log.warning("KJ file %s rejected: %s", p.name, why)
        self.deadletter([DeadLetter(reason, f"{p.name}: {why}", f"kj/{p.name}")],
                        self.clock.now_ns())  # fmt: skip
        self.rejected.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(p, self.rejected / p.name)
        except FileNotFoundError:
            pass  # taken away meanwhile

    def acked(self, mids: list[int]) -> None:
        """The storage thread made these files' readings durable: archive them."""
        for mid in mids:
            with self._lock:
                name = self._inflight.pop(mid, None)
            if name is None:
                continue
            parsed = parse_name(name)
            day = parsed[2][:8] if parsed else "unknown"
            dest = self.archive / day
            dest.mkdir(parents=True, exist_ok=True)
            try:
                shutil.move(str(self.processing / name), str(dest / name))
                self.archived += 1
            except OSError:
                log.exception("archiving KJ file %s failed", name)


def _order(name: str) -> tuple[int, str]:
    parsed = parse_name(name)
    if parsed is None:
        return (9, name)
    return (0 if parsed[1] == "CDDY" else 1, parsed[2] + name)
