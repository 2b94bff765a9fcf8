"""InfluxDB writers. A writer only implements ``write(body, n_points)`` and raises
:class:`StorageError` saying whether a retry can help; the :class:`StorageRunner` owns
batching, backoff, spooling and metrics.

- :class:`InfluxV1Writer`: InfluxDB 1.x ``/write`` (database, retention policy, optional
  user/password), plain HTTP through urllib3 with a connection pool.
- :class:`InfluxV2Writer`: influxdb-client's synchronous write API (url, org, bucket,
  token) for InfluxDB 2.x, 3.x, 1.8+ and servers that speak ``/api/v2/write``.

Answers: 2xx ok; 4xx (bad data) → ``StorageError(retryable=False)`` — dead-letter the
batch; 5xx, timeouts and refused connections → ``retryable=True`` — spool and retry.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol
from urllib.parse import urlencode

import urllib3

from riskwatch.config.engine import InfluxConfig
from riskwatch.errors import StorageError

__all__ = ["InfluxV1Writer", "InfluxV2Writer", "Writer", "make_writer"]

log = logging.getLogger(__name__)


class Writer(Protocol):
    url: str

    def write(self, body: bytes, n_points: int) -> None: ...

    def close(self) -> None: ...


class InfluxV1Writer:
    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.http = urllib3.PoolManager(
            num_pools=2,
            maxsize=4,
            timeout=urllib3.Timeout(connect=2.0, read=cfg.timeout_s),
            retries=False,
            cert_reqs="CERT_REQUIRED" if cfg.verify_tls else "CERT_NONE",
        )
        params = {"db": cfg.database, "precision": "ns"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        self._write_url = f"{self.url}/write?{urlencode(params)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        password = cfg.password()
        if cfg.username:
            self._headers.update(
                urllib3.make_headers(basic_auth=f"{cfg.username}:{password or ''}")
            )
        self._db_ready = False

    def _request(
        self, method: str, url: str, body: bytes | None = None
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(method, url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError(
                f"InfluxDB at {self.url} unreachable: {exc}", retryable=True
            ) from exc

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` is idempotent in InfluxDB 1.x."""
        q = urlencode({"q": f'CREATE DATABASE "{self.cfg.database}"'})
        r = self._request("POST", f"{self.url}/query?{q}")
        if r.status >= 300:
            raise StorageError(
                f"cannot create database {self.cfg.database}: HTTP {r.status} {r.data[:200]!r}",
                retryable=r.status >= 500,
                status=r.status,
            )
        self._db_ready = True

    def write(self, body: bytes, n_points: int) -> None:
        if not self._db_ready:
            self.ensure_database()
        r = self._request("POST", self._write_url, body)
        if r.status < 300:
            return
        msg = r.data[:300].decode("utf-8", "replace")
        if r.status == 404 and "database not found" in msg:
            self._db_ready = False
            raise StorageError(f"database missing: {msg}", retryable=True, status=r.status)
        text = r.data[:65536].decode("utf-8", "replace")
        m = _PARTIAL.search(text)
        if r.status == 400 and m is not None:  # the good points are written: only these lost
            # lines that do not parse are not in dropped=N: each is quoted in the answer
            dropped = int(m.group(1)) + text.count("unable to parse")
            raise StorageError(
                f"InfluxDB wrote {n_points - dropped} of {n_points} points and dropped "
                f"{dropped}: {msg}", retryable=False, status=r.status, dropped=dropped,
            )  # fmt: skip
        raise StorageError(
            f"InfluxDB rejected {n_points} points: HTTP {r.status} {msg}",
            retryable=r.status >= 500 or r.status == 429,
            status=r.status,
        )

    def close(self) -> None:
        self.http.clear()


#: InfluxDB 1.x answers a write with some bad points "partial write: ... dropped=N"
_PARTIAL = re.compile(r"partial write.*?dropped=(\d+)", re.S)


class InfluxV2Writer:
    def __init__(self, cfg: InfluxConfig) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.client = InfluxDBClient(
            url=self.url,
            token=cfg.token() or "",
            org=cfg.org,
            timeout=int(cfg.timeout_s * 1000),
            verify_ssl=cfg.verify_tls,
            retries=False,
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes, n_points: int) -> None:
        from influxdb_client.client.exceptions import InfluxDBError
        from influxdb_client.domain.write_precision import WritePrecision

        try:
            self.api.write(
                bucket=self.cfg.bucket,
                org=self.cfg.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except InfluxDBError as exc:
            status = getattr(exc.response, "status", None) if exc.response is not None else None
            raise StorageError(
                f"InfluxDB v2 write failed: {exc}",
                retryable=status is None or status >= 500 or status == 429,
                status=status,
            ) from exc
        except Exception as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and 400 <= status < 500 and status != 429:
                raise StorageError(
                    f"InfluxDB v2 rejected {n_points} points: {exc}", retryable=False, status=status
                ) from exc
            raise StorageError(
                f"InfluxDB v2 at {self.url} unreachable: {exc}", retryable=True
            ) from exc

    def close(self) -> None:
        self.api.close()
        self.client.close()


def make_writer(cfg: InfluxConfig) -> Writer:
    return InfluxV1Writer(cfg) if cfg.api == "v1" else InfluxV2Writer(cfg)
