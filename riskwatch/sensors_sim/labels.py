"""Ground-truth labels of a run: one record per injected event and sensor (or gateway).

Fields: ``event`` (instance id ``<event index>.<repeat>``), ``type``, ``label``,
``start`` and ``end`` (epoch ms; the fault is present in readings with
``start <= ts < end``), ``enterprise``, ``site``, ``sensor`` (empty for a gateway
dropout), ``gateway``. JSONL (one object a line) or CSV by the file suffix; lines are
flushed as the run reaches each event, so a stopped run names only what happened.

>>> import io
>>> w = LabelWriter(io.StringIO(), fmt="csv")
>>> w.write([{"event": "0.0", "type": "stuck", "label": "stuck", "start": 1, "end": 2,
...           "enterprise": "m1", "site": "face1", "sensor": "CH4-F1-T1", "gateway": "GW-face1"}])
>>> print(w.fh.getvalue().strip())
event,type,label,start,end,enterprise,site,sensor,gateway
0.0,stuck,stuck,1,2,m1,face1,CH4-F1-T1,GW-face1
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["FIELDS", "LabelWriter", "read_labels"]

FIELDS = ("event", "type", "label", "start", "end", "enterprise", "site", "sensor", "gateway")


class LabelWriter:
    """Appends label records to a JSONL or CSV stream."""

    def __init__(self, fh: IO[str], *, fmt: str = "jsonl") -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"label format must be jsonl or csv, got {fmt!r}")
        self.fh = fh
        self.fmt = fmt
        self.count = 0
        self._csv = (
            csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
        )
        if self._csv is not None:
            self._csv.writeheader()

    @classmethod
    def open(cls, path: str | Path) -> LabelWriter:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fmt = "csv" if p.suffix.lower() == ".csv" else "jsonl"
        return cls(p.open("w", encoding="utf-8", newline=""), fmt=fmt)

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        for r in records:
            row = {k: r.get(k, "") for k in FIELDS}
            if self._csv is not None:
                self._csv.writerow(row)
            else:
                self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self.count += 1
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def read_labels(path: str | Path) -> list[dict[str, Any]]:
    """Label records from a JSONL or CSV file (``start``/``end`` as int ms)."""
    p = Path(path)
    with p.open(encoding="utf-8", newline="") as fh:
        if p.suffix.lower() == ".csv":
            rows: list[dict[str, Any]] = list(csv.DictReader(fh))
        else:
            rows = [json.loads(line) for line in fh if line.strip()]
    for r in rows:
        r["start"] = int(r["start"])
        r["end"] = int(r["end"])
    return rows
