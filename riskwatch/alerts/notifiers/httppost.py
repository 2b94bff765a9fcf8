"""One HTTP POST for the HTTP notifiers (webhook, DingTalk, WeCom), with httpx's errors
translated into :class:`NotifyError` saying whether a retry helps, and the URL named only
in its redacted form (receivers keep their secrets in the query string).

5xx, 408, 429 and connection errors are retryable; other 4xx are not (the request itself
is wrong and would be refused again).

>>> redact_url("https://bot:pw@oapi.example.com/robot/send?access_token=abc123")
'https://oapi.example.com/robot/send?…'
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from riskwatch.errors import NotifyError

__all__ = ["post", "redact_url"]


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


def post(
    client: httpx.Client, url: str, shown: str, body: bytes, headers: dict[str, str], what: str
) -> httpx.Response:
    """POST ``body``; a 2xx answer is returned, anything else raises :class:`NotifyError`."""
    try:
        r = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        text = str(exc).replace(url, shown)
        msg = f"{what} {shown}: {type(exc).__name__}: {text}"
        raise NotifyError(msg, retryable=True) from exc
    except (httpx.InvalidURL, ValueError) as exc:  # a broken URL: retrying cannot help
        text = str(exc).replace(url, shown)
        raise NotifyError(f"{what} {shown}: {text}", retryable=False) from exc
    if r.status_code < 300:
        return r
    retry = r.status_code >= 500 or r.status_code in (408, 429)
    raise NotifyError(f"{what} {shown} answered {r.status_code}", retryable=retry)
