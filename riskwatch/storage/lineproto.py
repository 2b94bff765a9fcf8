r"""InfluxDB line protocol for a whole batch at once.

Each sensor's series prefix (``reading,enterprise=..,kind=..,sensor=..,site=.. value=``)
is built once and cached (UTF-8 bytes) by sensor id, and so is the ``,flags=Ni `` text of
each of the 256 flag values. Values and timestamps are formatted by orjson over the whole
numpy column at once (shortest round-trip floats, like ``repr``; ``1e-05`` is written
``0.00001``, which InfluxDB parses to the same float), split at the commas, and the five
pieces of every line are interleaved into one list by slice assignment and joined once — no
per-point Python code and no per-point format call. On 50k points: ~0.23 µs per point,
against ~0.7 µs for one ``%`` format per point and ~1.0 µs for one ``str.format`` (float
formatting in Python's ``repr`` was 40 % of the instructions of the latter).

>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.model import Batch, Flags
>>> reg = SensorRegistry()
>>> sid = int(reg.intern("mine 1", "face,3", ["CH4=1"], kinds=["ch4"])[0])
>>> enc = LineEncoder(reg)
>>> line = enc.encode(Batch.from_arrays([1795880000123000000], [sid], [0.42])).decode()
>>> print(line.replace(" value", "\n value"))
reading,enterprise=mine\ 1,kind=ch4,sensor=CH4\=1,site=face\,3
 value=0.42,flags=0i 1795880000123000000
"""

from __future__ import annotations

import threading

import numpy as np
import orjson

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch, Flags

__all__ = ["LineEncoder", "escape_field_string", "escape_tag"]


def escape_tag(s: str) -> str:
    """Escape a tag key/value or measurement-safe string (commas, spaces, equals)."""
    return (
        s.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(" ", "\\ ")
        .replace("=", "\\=")
        .replace("\n", "\\n")
    )


def escape_field_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_FLAGS = [f",flags={i}i ".encode() for i in range(256)]  # flags are uint8
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class LineEncoder:
    """Encodes batches of the ``reading`` measurement (DESIGN.md storage schema)."""

    measurement = "reading"

    def __init__(self, registry: SensorRegistry) -> None:
        self.registry = registry
        self._prefixes = np.empty(0, dtype=object)
        self._gen = -1
        self._meta_gen = -1
        self._lock = threading.Lock()

    def _prefix_array(self) -> np.ndarray:
        reg = self.registry
        if self._gen == reg.generation and len(self._prefixes) == len(reg):
            return self._prefixes
        with self._lock:
            gen, meta_gen = reg.generation, reg.meta_generation
            ent, site, sen, kind = (reg.column(c) for c in ("enterprise", "site", "sensor", "kind"))
            # only sensors added since: build theirs (adding one sensor costs one prefix)
            lo = len(self._prefixes) if meta_gen == self._meta_gen else 0
            pre = np.empty(len(ent), dtype=object)
            pre[:lo] = self._prefixes[:lo]
            for i in range(lo, len(ent)):  # once per sensor per metadata change
                tags = [("enterprise", ent[i])]
                if kind[i]:
                    tags.append(("kind", kind[i]))
                tags += [("sensor", sen[i]), ("site", site[i])]
                pre[i] = (
                    self.measurement
                    + ","
                    + ",".join(f"{k}={escape_tag(str(v))}" for k, v in tags)
                    + " value="
                ).encode()
            self._prefixes = pre
            self._gen, self._meta_gen = gen, meta_gen
            return pre

    def encode(self, batch: Batch) -> bytes:
        if len(batch) == 0:
            return b""
        pre = self._prefix_array()
        if int(batch.sensor.max()) >= len(pre):
            self._gen = -1  # sensors added while this batch was decoded: extend
            pre = self._prefix_array()
        n = len(batch)
        value = np.ascontiguousarray(batch.value, dtype=np.float64)
        out: list[bytes] = [b"\n"] * (5 * n)
        out[0::5] = pre[batch.sensor].tolist()
        if np.isfinite(value).all():
            out[1::5] = orjson.dumps(value, option=_NUMPY)[1:-1].split(b",")
        else:  # orjson writes null for these; keep Python's text (InfluxDB rejects it)
            out[1::5] = [repr(v).encode() for v in value.tolist()]
        # a redelivered or repeated reading overwrites its own point in InfluxDB (same
        # series and time): the stored copy is the only one, so it is not "a duplicate"
        stored = batch.flags & np.uint8(0xFF ^ int(Flags.DUPLICATE))
        out[2::5] = map(_FLAGS.__getitem__, stored.tolist())
        t = np.ascontiguousarray(batch.time, dtype=np.int64)
        out[3::5] = orjson.dumps(t, option=_NUMPY)[1:-1].split(b",")
        out.pop()  # no newline after the last line
        return b"".join(out)
