"""One way to serve an ASGI app (the alert API, the console) from a thread of the engine.

uvicorn runs in a daemon thread; :meth:`ThreadedServer.start` returns once the socket
listens (port 0 picks a free one: :attr:`url` says which) and raises if it never does,
so a port in use fails the start instead of a silent thread.

>>> async def app(scope, receive, send):
...     await send({"type": "http.response.start", "status": 204, "headers": []})
...     await send({"type": "http.response.body", "body": b""})
>>> srv = ThreadedServer(app, "127.0.0.1:0", name="doctest")
>>> url = srv.start()
>>> import httpx
>>> httpx.get(url).status_code
204
>>> srv.stop()
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """uvicorn serving ``app`` on ``listen`` (``host:port``) in a daemon thread ``name``."""

    def __init__(self, app: Any, listen: str, *, name: str, graceful_s: int | None = None) -> None:
        import uvicorn

        host, _, port = listen.rpartition(":")
        self.listen = listen
        self.name = name
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host=host or "127.0.0.1", port=int(port), log_level="warning",
                access_log=False, lifespan="off", timeout_graceful_shutdown=graceful_s,
            )
        )  # fmt: skip
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; the URL once listening. Raises RuntimeError if it does not."""
        self._thread = threading.Thread(target=self.server.run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} did not start on {self.listen} (in use?)")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0].getsockname()
        self.url = f"http://{sock[0]}:{sock[1]}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
