"""One way to serve an ASGI app (the alert API, the console) from a thread of the engine,
with the security headers and the transport both surfaces share.

uvicorn runs in a daemon thread; :meth:`ThreadedServer.start` returns once the socket
listens (port 0 picks a free one: :attr:`url` says which) and raises if it never does,
so a port in use fails the start instead of a silent thread. Given a certificate and a
key it serves HTTPS; listening beyond loopback without them is logged as a WARNING (the
console's passwords and the API's tokens would cross the network in clear).

>>> async def app(scope, receive, send):
...     await send({"type": "http.response.start", "status": 204, "headers": []})
...     await send({"type": "http.response.body", "body": b""})
>>> srv = ThreadedServer(SecurityHeaders(app, csp="default-src 'none'"), "127.0.0.1:0",
...                      name="doctest")
>>> url = srv.start()
>>> import httpx
>>> r = httpx.get(url)
>>> r.status_code, r.headers["x-content-type-options"], r.headers["x-frame-options"]
(204, 'nosniff', 'DENY')
>>> srv.stop()
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["SecurityHeaders", "ThreadedServer", "is_loopback"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (of a listen address) reaches only this machine.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "", "10.0.0.5")]
    [True, True, True, False, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost: may resolve anywhere
        return False


class SecurityHeaders:
    """ASGI middleware that adds the browser security headers to every answer (errors,
    static files and the event stream included), unless the route set them itself:
    ``Content-Security-Policy`` (``csp``; ``csp_for`` may give another per path prefix,
    e.g. the API's Swagger page), ``X-Content-Type-Options: nosniff``,
    ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, and with ``hsts``
    (served over TLS) ``Strict-Transport-Security``. A plain ASGI wrapper rather than a
    Starlette ``BaseHTTPMiddleware``, which would buffer the server-sent event stream."""

    def __init__(self, app: Any, *, csp: str, csp_for: dict[str, str] | None = None,
                 hsts: bool = False) -> None:  # fmt: skip
        self.app = app
        self.csp = csp
        self.csp_for = dict(csp_for or {})
        base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            base.append((b"strict-transport-security", b"max-age=31536000"))
        self._base = base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = next((v for k, v in self.csp_for.items() if path.startswith(k)), self.csp)
        extra = [*self._base, (b"content-security-policy", csp.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in have)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ThreadedServer:
    """uvicorn serving ``app`` on ``listen`` (``host:port``) in a daemon thread ``name``;
    HTTPS when ``cert_file`` and ``key_file`` are given."""

    def __init__(
        self, app: Any, listen: str, *, name: str, graceful_s: int | None = None,
        cert_file: Path | None = None, key_file: Path | None = None,
    ) -> None:  # fmt: skip
        import uvicorn

        host, _, port = listen.rpartition(":")
        self.host = host or "127.0.0.1"
        self.listen = listen
        self.name = name
        self.tls = cert_file is not None and key_file is not None
        tls: dict[str, Any] = (
            {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file)} if self.tls else {}
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host=self.host, port=int(port), log_level="warning",
                access_log=False, lifespan="off", timeout_graceful_shutdown=graceful_s, **tls,
            )
        )  # fmt: skip
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; the URL once listening. Raises RuntimeError if it does not."""
        if not self.tls and not is_loopback(self.host.strip("[]")):
            log.warning(
                "%s listens on %s over plain HTTP: log-ins, tokens and alerts cross the "
                "network in clear; set tls: {cert_file, key_file} or listen on 127.0.0.1 "
                "behind a TLS proxy", self.name, self.listen,
            )  # fmt: skip
        self._thread = threading.Thread(target=self.server.run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} did not start on {self.listen} (in use?)")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0].getsockname()
        scheme = "https" if self.tls else "http"
        host = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
        self.url = f"{scheme}://{host}:{sock[1]}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
