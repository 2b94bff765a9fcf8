"""HTTP webhook notifier: POSTs the alert JSON, signed with HMAC-SHA256 over the body
(``X-Riskwatch-Signature: sha256=<hex>``), with the delivery id in
``X-Riskwatch-Delivery`` (receivers drop repeats by it) and a timeout. 5xx, 408, 429 and
connection errors are retried by the runner with backoff; other 4xx are not.

Many receivers (DingTalk, WeCom, Slack) carry their secret in the URL's query string or
path, so the URL is never written out whole: errors (which end in WARNING logs, the
outbox and the health answer) name it by :func:`redact_url`.

>>> sign(b"secret", b'{"id": "a1"}')
'sha256=ab009bb07d59200ee8c1e7c66207ceb92971f79b6f02959e2b49dd8b8ab24c11'
>>> redact_url("https://bot:pw@oapi.example.com/robot/send?access_token=abc123")
'https://oapi.example.com/robot/send?…'
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

import httpx

from riskwatch.alerts.store import Delivery
from riskwatch.errors import NotifyError

__all__ = ["WebhookNotifier", "redact_url", "sign"]


def redact_url(url: str) -> str:
    """``url`` without its user, password, query string and fragment (where receivers keep
    their secrets), fit for a log line."""
    try:
        s = urlsplit(url)
    except ValueError:
        return "<webhook URL>"
    host = s.netloc.rpartition("@")[2]  # without user:password@
    tail = "?…" if s.query or s.fragment else ""
    return f"{s.scheme}://{host}{s.path}{tail}"


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, name: str, url: str, secret: str | None, timeout_s: float = 5.0) -> None:
        self.name = name
        self.url = url
        self.shown = redact_url(url)  # what errors and logs name
        self.secret = secret.encode() if secret else None
        self.client = httpx.Client(timeout=timeout_s)

    def send(self, d: Delivery) -> None:
        headers = {"Content-Type": "application/json", "X-Riskwatch-Delivery": d.id}
        if self.secret is not None:
            headers["X-Riskwatch-Signature"] = sign(self.secret, d.payload)
        try:
            r = self.client.post(self.url, content=d.payload, headers=headers)
        except httpx.HTTPError as exc:
            text = str(exc).replace(self.url, self.shown)
            msg = f"webhook {self.shown}: {type(exc).__name__}: {text}"
            raise NotifyError(msg, retryable=True) from exc
        except (httpx.InvalidURL, ValueError) as exc:  # a broken URL: retrying cannot help
            text = str(exc).replace(self.url, self.shown)
            raise NotifyError(f"webhook {self.shown}: {text}", retryable=False) from exc
        if r.status_code < 300:
            return
        retry = r.status_code >= 500 or r.status_code in (408, 429)
        raise NotifyError(f"webhook {self.shown} answered {r.status_code}", retryable=retry)

    def close(self) -> None:
        self.client.close()
