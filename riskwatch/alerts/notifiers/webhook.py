"""HTTP webhook notifier: POSTs each notification as JSON, signed, with the delivery id in
``X-Riskwatch-Delivery`` (receivers drop repeats by it) and a timeout. 5xx, 408, 429 and
connection errors are retried by the runner with backoff; other 4xx are not.

``format``: ``riskwatch`` (default) sends riskwatch's own JSON (docs/alerts.md, "Message
fields"); ``alertmanager`` sends Alertmanager's webhook JSON version 4
(:mod:`riskwatch.alerts.notifiers.alertmanager`), which existing Alertmanager receivers
take unchanged.

Signatures (with ``secret_env``/``secret_file``). ``signature: timestamp`` (default)
guards against replay: ``X-Riskwatch-Timestamp`` carries the send time (Unix seconds, new
on every attempt) and ``X-Riskwatch-Signature: sha256=<hex>`` is HMAC-SHA256 over
``<timestamp>.<body>``; a receiver recomputes it, compares in constant time and rejects
timestamps older than a few minutes (docs/alerts.md has the recipe).
``signature: body`` keeps the first version's HMAC over the body alone, for receivers
not yet updated (no replay protection).

Many receivers (DingTalk, WeCom, Slack) carry their secret in the URL's query string or
path, so the URL is never written out whole: errors (which end in WARNING logs, the
outbox and the health answer) name it by :func:`redact_url`.

>>> sign(b"secret", b'{"id": "a1"}')
'sha256=ab009bb07d59200ee8c1e7c66207ceb92971f79b6f02959e2b49dd8b8ab24c11'
>>> sign(b"secret", b'{"id": "a1"}', timestamp=1795880000)
'sha256=7aab18bdf65853cc23e9db931712e327e75e28a2093e30128d9f19166b6e58f6'
>>> verify(b"secret", b'{"id": "a1"}', "1795880000",
...        sign(b"secret", b'{"id": "a1"}', timestamp=1795880000), now_s=1795880100)
True
>>> verify(b"secret", b'{"id": "a1"}', "1795880000",
...        sign(b"secret", b'{"id": "a1"}', timestamp=1795880000), now_s=1795881000)
False
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal

import httpx

from riskwatch.alerts.notifiers.alertmanager import to_alertmanager
from riskwatch.alerts.notifiers.httppost import post, redact_url
from riskwatch.alerts.store import Delivery

__all__ = ["WebhookNotifier", "redact_url", "sign", "verify"]

MAX_AGE_S = 300


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """``sha256=<hex>`` HMAC over ``<timestamp>.<body>`` (or the body alone without one)."""
    msg = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret, msg, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, timestamp: str, signature: str, *, now_s: float,
           max_age_s: float = MAX_AGE_S) -> bool:  # fmt: skip
    """What a receiver does: the timestamp is recent (``max_age_s``, either way, for clock
    skew) and the signature matches (compared in constant time)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), signature)


class WebhookNotifier:
    def __init__(
        self, name: str, url: str, secret: str | None, timeout_s: float = 5.0, *,
        format: Literal["riskwatch", "alertmanager"] = "riskwatch",
        signature: Literal["timestamp", "body"] = "timestamp", external_url: str = "",
        time_s: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.name = name
        self.url = url
        self.shown = redact_url(url)  # what errors and logs name
        self.secret = secret.encode() if secret else None
        self.format = format
        self.signature = signature
        self.external_url = external_url
        self._time = time_s  # the signature's timestamp: wall-clock time of each attempt
        self.client = httpx.Client(timeout=timeout_s)

    def body(self, d: Delivery) -> bytes:
        if self.format == "alertmanager":
            return to_alertmanager(d.payload, receiver=self.name, external_url=self.external_url)
        return d.payload

    def send(self, d: Delivery) -> None:
        body = self.body(d)
        headers = {"Content-Type": "application/json", "X-Riskwatch-Delivery": d.id}
        if self.secret is not None:
            if self.signature == "timestamp":
                ts = int(self._time())
                headers["X-Riskwatch-Timestamp"] = str(ts)
                headers["X-Riskwatch-Signature"] = sign(self.secret, body, ts)
            else:
                headers["X-Riskwatch-Signature"] = sign(self.secret, body)
        post(self.client, self.url, self.shown, body, headers, "webhook")

    def close(self) -> None:
        self.client.close()
