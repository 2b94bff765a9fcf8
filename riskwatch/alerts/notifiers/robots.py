"""DingTalk (钉钉) and WeCom (企业微信) group robots: one markdown message per notification,
in Chinese by default (:mod:`riskwatch.alerts.notifiers.message`).

**DingTalk** custom robot (``kind: dingtalk``): POST to
``https://oapi.dingtalk.com/robot/send?access_token=TOKEN`` with
``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}``. With the robot's
"加签" secret, each request carries ``timestamp`` (ms) and ``sign`` =
urlencode(base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>"))) in the query
string, as DingTalk documents; DingTalk refuses a timestamp more than an hour off.
``at_mobiles`` are @-mentioned (DingTalk wants them in the text too).

**WeCom** group robot (``kind: wecom``): POST to
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with
``{"msgtype": "markdown", "markdown": {"content"}}`` (at most 4096 bytes of UTF-8; longer
text is cut at a character boundary with a mark).

Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; another ``errcode`` is a
refusal: retried when it says "too fast" or "busy" (DingTalk 130101, WeCom 45009, both
-1), given up otherwise (a wrong token, signature or keyword will not get better). The
token and the secret come from ``token_env``/``token_file`` and ``secret_env``/
``secret_file``; logs name the URL without its query string.

>>> sign_dingtalk("SEC123", 1795880000000)
'r00kwPbJqPyAKBSGyTHSjkAKM6m1OUnCQchSmDH%2BX9U%3D'
>>> cut_utf8("预警" * 3, 9)
'预警…'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import orjson

from riskwatch.alerts.notifiers.httppost import post, redact_url
from riskwatch.alerts.notifiers.message import Renderer, notices
from riskwatch.alerts.store import Delivery
from riskwatch.errors import NotifyError

__all__ = ["DingTalkNotifier", "WeComNotifier", "cut_utf8", "sign_dingtalk"]

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
WECOM_MAX_BYTES = 4096
_DINGTALK_RETRY = frozenset((-1, 130101))
_WECOM_RETRY = frozenset((-1, 45009))


def sign_dingtalk(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` query value for ``timestamp_ms`` (already URL-encoded)."""
    msg = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def cut_utf8(text: str, max_bytes: int, mark: str = "…") -> str:
    """``text`` cut so that its UTF-8 form (with ``mark``) fits ``max_bytes``."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(mark.encode())
    return raw[:room].decode("utf-8", "ignore") + mark


def _with_query(url: str, **params: str) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode(params)


def _check(r: httpx.Response, what: str, shown: str, retry: frozenset[int]) -> None:
    """The robots answer 200 with an ``errcode``; 0 is success."""
    try:
        d = orjson.loads(r.content)
        code = int(d.get("errcode", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise NotifyError(f"{what} {shown}: unreadable answer {r.content[:200]!r}",
                          retryable=True) from exc  # fmt: skip
    if code != 0:
        msg = f"{what} {shown} refused: errcode {code}: {d.get('errmsg', '')}"
        raise NotifyError(msg, retryable=code in retry)


class DingTalkNotifier:
    def __init__(
        self, name: str, url: str, token: str | None, secret: str | None, renderer: Renderer,
        *, at_mobiles: tuple[str, ...] = (), timeout_s: float = 5.0,
        time_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:  # fmt: skip
        self.name = name
        self.url = _with_query(url, access_token=token) if token else url
        self.shown = redact_url(self.url)
        self.secret = secret
        self.renderer = renderer
        self.at_mobiles = tuple(at_mobiles)
        self._time_ms = time_ms  # the signature's timestamp: wall-clock time of each attempt
        self.client = httpx.Client(timeout=timeout_s)

    def body(self, d: Delivery) -> bytes:
        ns = notices(d.payload)
        text = self.renderer.markdown(ns)
        if self.at_mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in self.at_mobiles)
        return orjson.dumps({
            "msgtype": "markdown",
            "markdown": {"title": self.renderer.title(ns), "text": text},
            "at": {"atMobiles": list(self.at_mobiles), "isAtAll": False},
        })  # fmt: skip

    def send(self, d: Delivery) -> None:
        url = self.url
        if self.secret:
            ts = self._time_ms()
            url = f"{url}{'&' if urlsplit(url).query else '?'}timestamp={ts}" \
                  f"&sign={sign_dingtalk(self.secret, ts)}"  # fmt: skip
        headers = {"Content-Type": "application/json; charset=utf-8"}
        r = post(self.client, url, self.shown, self.body(d), headers, "dingtalk")
        _check(r, "dingtalk", self.shown, _DINGTALK_RETRY)

    def close(self) -> None:
        self.client.close()


class WeComNotifier:
    def __init__(self, name: str, url: str, key: str | None, renderer: Renderer, *,
                 timeout_s: float = 5.0) -> None:  # fmt: skip
        self.name = name
        self.url = _with_query(url, key=key) if key else url
        self.shown = redact_url(self.url)
        self.renderer = renderer
        self.client = httpx.Client(timeout=timeout_s)

    def body(self, d: Delivery) -> bytes:
        content = cut_utf8(self.renderer.markdown(notices(d.payload)), WECOM_MAX_BYTES)
        return orjson.dumps({"msgtype": "markdown", "markdown": {"content": content}})

    def send(self, d: Delivery) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        r = post(self.client, self.url, self.shown, self.body(d), headers, "wecom")
        _check(r, "wecom", self.shown, _WECOM_RETRY)

    def close(self) -> None:
        self.client.close()
