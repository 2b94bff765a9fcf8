"""CSV downloads of the console (search results, an alert's history), for Excel.

Times (epoch ms) become ISO 8601 UTC, missing values empty cells, and the file starts
with a byte-order mark so that Excel opens Chinese text as UTF-8.

>>> rows = [{"id": "a1", "since": 1795880000000, "note": None}]
>>> r = csv_response(rows, ["id", "since", "note"], "a.csv")
>>> r.body.decode("utf-8").splitlines()
['\\ufeffid,since,note', 'a1,2026-11-28T15:33:20Z,']
>>> r.headers["content-disposition"]
'attachment; filename="a.csv"'
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from fastapi import Response

__all__ = ["ALERT_COLUMNS", "HISTORY_COLUMNS", "csv_response"]

ALERT_COLUMNS = ["id", "level", "state", "enterprise", "site", "sensor", "kind", "rule",
                 "value", "threshold", "since", "ts", "acked_by", "acked_at", "reason",
                 "closed", "note", "message"]  # fmt: skip
HISTORY_COLUMNS = ["seq", "at", "ts", "who", "action", "from_state", "to_state", "level",
                   "value", "note"]  # fmt: skip
_TIME_COLUMNS = {"since", "ts", "updated", "acked_at", "closed", "at"}


def csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    """``rows`` as a CSV attachment named ``filename`` with ``columns`` in order."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(k, r.get(k)) for k in columns})
    return Response(
        "\ufeff" + buf.getvalue(),  # BOM: Excel opens Chinese text as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(column: str, value: Any) -> Any:
    if value is not None and column in _TIME_COLUMNS:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value / 1000))
    return "" if value is None else value
