"""A bounded on-disk spool of line-protocol segments, replayed in order.

Each append is one file ``<seq>.lp`` written to a temporary name, fsynced and renamed, so
a segment is either whole or absent after a crash. Segments are replayed oldest first;
a segment is deleted only after InfluxDB accepted it.

>>> import tempfile
>>> sp = Spool(tempfile.mkdtemp(), max_bytes=1000)
>>> sp.append(b"a v=1 1", 1); sp.append(b"a v=2 2", 1)
>>> [sp.read(s) for s in sp.segments()]
[b'a v=1 1', b'a v=2 2']
>>> sp.remove(sp.segments()[0]); sp.bytes, len(sp)
(7, 1)
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from riskwatch.errors import SpoolFullError

__all__ = ["Spool"]


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        self._segs = sorted(self.dir.glob("*.lp"))
        self.bytes = sum(p.stat().st_size for p in self._segs)
        self._seq = int(self._segs[-1].stem.split("-")[0]) + 1 if self._segs else 0

    def __len__(self) -> int:
        return len(self._segs)

    def append(self, body: bytes, n_points: int) -> None:
        """Durably add one segment; raises SpoolFullError when it would pass the bound."""
        with self._lock:
            if self.bytes + len(body) > self.max_bytes and self._segs:
                raise SpoolFullError(
                    f"spool {self.dir} holds {self.bytes} bytes (limit {self.max_bytes})"
                )
            name = self.dir / f"{self._seq:016d}-{n_points}.lp"
            self._seq += 1
            tmp = name.with_suffix(".tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, name)
                dfd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError as exc:
                # a full disk (or any failing write) is a full spool: the caller applies
                # backpressure and retries; the half-written segment never counts
                self._seq -= 1
                tmp.unlink(missing_ok=True)
                name.unlink(missing_ok=True)
                what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "write failed"
                raise SpoolFullError(
                    f"spool {self.dir}: {what} ({exc.strerror}) at {self.bytes} bytes"
                ) from exc
            self._segs.append(name)
            self.bytes += len(body)

    def segments(self) -> list[Path]:
        with self._lock:
            return list(self._segs)

    @staticmethod
    def points(seg: Path) -> int:
        try:
            return int(seg.stem.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def read(self, seg: Path) -> bytes:
        return seg.read_bytes()

    def remove(self, seg: Path) -> None:
        with self._lock:
            size = seg.stat().st_size
            seg.unlink()
            self._segs.remove(seg)
            self.bytes -= size
