"""The stored-series reader: one InfluxQL query per chart, answers oldest first with null
values as NaN, credentials from the config's secret, and None (not an error) whenever the
database cannot answer."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from riskwatch.config.engine import InfluxConfig
from riskwatch.storage.influx_query import InfluxSeriesReader, series_reader


class FakeGet:
    def __init__(self, answer: Any = None, status: int = 200, exc: Exception | None = None):
        self.answer, self.status, self.exc = answer, status, exc
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, **kw: Any) -> httpx.Response:
        self.calls.append({"url": url, **kw})
        if self.exc is not None:
            raise self.exc
        return httpx.Response(self.status, json=self.answer, request=httpx.Request("GET", url))


def answer(rows: list[list[Any]]) -> dict[str, Any]:
    return {"results": [{"series": [{"name": "reading", "columns": ["time", "value"],
                                     "values": rows}]}]}  # fmt: skip


def test_newest_first_answer_comes_back_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    get = FakeGet(answer([[30, 0.7], [20, None], [10, 0.3]]))
    monkeypatch.setattr(httpx, "get", get)
    cfg = InfluxConfig(url="http://db:8086/", database="rw", timeout_s=3.0, verify_tls=False)
    got = InfluxSeriesReader(cfg).series("mine1", "face'1", "CH4", since_ns=5, limit=50)
    assert got is not None
    t, v = got
    assert t.tolist() == [10, 20, 30] and v[0] == 0.3 and math.isnan(v[1]) and v[2] == 0.7
    (call,) = get.calls
    assert call["url"] == "http://db:8086/query"
    assert call["params"]["db"] == "rw" and call["params"]["epoch"] == "ns"
    assert "\"site\" = 'face\\'1'" in call["params"]["q"]
    assert call["params"]["q"].endswith("time >= 5 ORDER BY time DESC LIMIT 50")
    assert call["timeout"] == 3.0 and call["verify"] is False
    assert "u" not in call["params"]


def test_credentials_come_from_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    get = FakeGet(answer([]))
    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setenv("RW_TEST_INFLUX_PW", "s3cret")
    cfg = InfluxConfig(username="reader", password_env="RW_TEST_INFLUX_PW")
    t, v = InfluxSeriesReader(cfg).series("m", "s", "x", since_ns=0)  # type: ignore[misc]
    assert len(t) == len(v) == 0
    assert get.calls[0]["params"]["u"] == "reader" and get.calls[0]["params"]["p"] == "s3cret"


@pytest.mark.parametrize(
    "get",
    [
        FakeGet(exc=httpx.ConnectError("refused")),
        FakeGet({"error": "database not found"}, status=404),
        FakeGet({"results": []}),
        FakeGet({"unexpected": 1}),
    ],
    ids=["unreachable", "http-error", "no-results", "nonsense"],
)
def test_no_answer_is_none(monkeypatch: pytest.MonkeyPatch, get: FakeGet,
                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.setattr(httpx, "get", get)
    assert InfluxSeriesReader(InfluxConfig()).series("m", "s", "x", since_ns=0) is None
    assert "InfluxDB query failed" in caplog.text


def test_only_influxdb_1x_is_read() -> None:
    assert series_reader(None) is None
    assert series_reader(InfluxConfig(api="v2")) is None
    assert isinstance(series_reader(InfluxConfig(api="v1")), InfluxSeriesReader)
