"""The metrics listener: open on loopback by default, bearer-only when a token is set."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from riskwatch.metrics import serve_metrics


def test_metrics_need_the_bearer_token_when_one_is_set() -> None:
    reg = CollectorRegistry()
    Counter("rw_probe", "a probe", registry=reg).inc()
    server, _, url = serve_metrics("127.0.0.1:0", reg, token="s3cret")
    try:
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and "rw_probe_total 1.0" in r.text
    finally:
        server.shutdown()


def test_metrics_without_a_token_are_served_on_loopback() -> None:
    reg = CollectorRegistry()
    server, _, url = serve_metrics("127.0.0.1:0", reg)
    try:
        assert httpx.get(url).status_code == 200
    finally:
        server.shutdown()
