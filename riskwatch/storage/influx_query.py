"""Reading one sensor's stored series back from InfluxDB 1.x (InfluxQL), for charts.

The console's sensor view asks :meth:`InfluxSeriesReader.series` for the ``reading``
points of one sensor since a time; ``None`` means "not from here" (the database does not
answer, or answers nonsense), and the chart then draws from the engine's in-memory
window and says so. Only InfluxDB 1.x (``storage.influx.api: v1``) is read:
:func:`series_reader` gives ``None`` for anything else.

Tag values are quoted as InfluxQL string literals, so a sensor name cannot change the
query:

>>> influxql_string("CH4-0'1")
"'CH4-0\\\\'1'"
>>> from riskwatch.config.engine import InfluxConfig
>>> series_reader(None) is None, series_reader(InfluxConfig(api="v2")) is None
(True, True)
>>> q = InfluxSeriesReader(InfluxConfig()).query("mine1", "w1", "CH4-01", since_ns=5, limit=10)
>>> print(q.replace(" AND", "\\n AND"))
SELECT "value" FROM "reading" WHERE "enterprise" = 'mine1'
 AND "site" = 'w1'
 AND "sensor" = 'CH4-01'
 AND time >= 5 ORDER BY time DESC LIMIT 10
"""

from __future__ import annotations

import logging

import numpy as np

from riskwatch.config.engine import InfluxConfig

__all__ = ["InfluxSeriesReader", "influxql_string", "series_reader"]

log = logging.getLogger(__name__)


def influxql_string(text: str) -> str:
    """``text`` as an InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxSeriesReader:
    """One sensor's ``reading`` points from the InfluxDB 1.x of ``cfg``."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg

    def query(self, enterprise: str, site: str, sensor: str, since_ns: int, limit: int) -> str:
        """The InfluxQL for the newest ``limit`` readings of one sensor since ``since_ns``."""
        return (
            f'SELECT "value" FROM "reading" WHERE "enterprise" = {influxql_string(enterprise)} '
            f'AND "site" = {influxql_string(site)} AND "sensor" = {influxql_string(sensor)} '
            f"AND time >= {since_ns} ORDER BY time DESC LIMIT {limit}"
        )

    def series(
        self, enterprise: str, site: str, sensor: str, since_ns: int, limit: int = 5000
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Times (ns) and values, oldest first; None when the database does not answer."""
        import httpx

        cfg = self.cfg
        params = {"db": cfg.database, "q": self.query(enterprise, site, sensor, since_ns, limit),
                  "epoch": "ns"}  # fmt: skip
        if cfg.username:
            params |= {"u": cfg.username, "p": cfg.password() or ""}
        try:
            r = httpx.get(f"{cfg.url.rstrip('/')}/query", params=params, timeout=cfg.timeout_s,
                          verify=cfg.verify_tls)  # fmt: skip
            r.raise_for_status()
            series = r.json()["results"][0].get("series") or []
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            log.warning("console: InfluxDB query failed (%s); chart from memory", exc)
            return None
        rows = series[0]["values"][::-1] if series else []
        times = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        values = np.array([np.nan if row[1] is None else row[1] for row in rows], dtype=np.float64)
        return times, values


def series_reader(cfg: InfluxConfig | None) -> InfluxSeriesReader | None:
    """The reader for ``storage.influx`` when it is an InfluxDB 1.x, else None."""
    if cfg is None or cfg.api != "v1":
        return None
    return InfluxSeriesReader(cfg)
