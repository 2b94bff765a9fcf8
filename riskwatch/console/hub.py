"""Fan-out of alert changes to the console's live connections (server-sent events).

The alert sink's writer thread calls :meth:`Hub.publish` with each stored group commit;
every connection has an asyncio queue on the server's loop and gets the newest snapshot
of each changed alert its user may see (scope by enterprise), never another's.

>>> import asyncio
>>> from types import SimpleNamespace
>>> async def demo():
...     hub = Hub(render=lambda a: (a.id, a.n))
...     viewer = SimpleNamespace(sees=lambda ent: ent == "mine1")
...     _, q = hub.join(viewer)
...     alerts = [SimpleNamespace(id="a", enterprise="mine1", n=1),
...               SimpleNamespace(id="b", enterprise="mine2", n=1),
...               SimpleNamespace(id="a", enterprise="mine1", n=2)]
...     hub.publish([(a, None) for a in alerts])
...     return await q.get()
>>> asyncio.run(demo())  # mine2 is out of scope; "a" only as its newest snapshot
[('a', 2)]
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Hub"]


class _Viewer(Protocol):
    def sees(self, enterprise: str) -> bool: ...


class Hub:
    """The live connections, each with its loop, queue and user; ``render`` turns an
    alert into what the page gets (the alert API's JSON)."""

    def __init__(self, render: Callable[[Any], Any]) -> None:
        self.render = render
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any], _Viewer]] = {}
        self._lock = threading.Lock()
        self._n = 0

    def join(self, user: _Viewer) -> tuple[int, asyncio.Queue[Any]]:
        """A new connection of ``user`` on the running loop: its id and its queue."""
        q: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            self._n += 1
            self._clients[self._n] = (asyncio.get_running_loop(), q, user)
            return self._n, q

    def leave(self, cid: int) -> None:
        with self._lock:
            self._clients.pop(cid, None)

    def close_all(self) -> None:
        """Tell every connection to end (a ``None`` on its queue)."""
        with self._lock:
            for loop, q, _ in self._clients.values():
                loop.call_soon_threadsafe(q.put_nowait, None)

    def publish(self, pairs: list[tuple[Any, Any]]) -> None:
        """Hand the newest snapshot of each alert in ``pairs``, rendered, to every
        connection whose user sees its enterprise (the sink's transition listener)."""
        last: dict[str, Any] = {}
        for a, _ in pairs:
            last[a.id] = a  # the newest snapshot of each alert in this batch
        if not last:
            return
        outs = [(a.enterprise, self.render(a)) for a in last.values()]
        with self._lock:
            clients = list(self._clients.values())
        for loop, q, user in clients:
            items = [o for ent, o in outs if user.sees(ent)]
            if items:
                try:
                    loop.call_soon_threadsafe(q.put_nowait, items)
                except RuntimeError:  # loop closed
                    pass
