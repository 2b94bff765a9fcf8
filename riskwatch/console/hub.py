"""Fan-out of alert changes to the console's live connections (server-sent events).

The alert sink's writer thread calls :meth:`Hub.publish` with each stored group commit;
every connection has an asyncio queue on the server's loop and gets the newest snapshot
of each changed alert its user may see (scope by enterprise), never another's.

A connection does not trust the user it saw at connect: before every push it asks its
``current`` callable (the session's user as the user file has it *now*) and ends the
stream instead of pushing when the session is gone (logout, expiry), the user was
removed, or the user changed at all (role, scope, password): the page then reconnects
and starts again from a snapshot of what the user may now see, or shows the log-in.
:meth:`Hub.end_session` ends a session's streams at once (logout), and
:meth:`Hub.recheck` ends the stale ones without waiting for a push (the stream's
keep-alive turn calls it).

>>> import asyncio
>>> from types import SimpleNamespace as U
>>> async def demo():
...     hub = Hub(render=lambda a: (a.id, a.n))
...     now = {"user": U(name="li", ents=("mine1",), sees=lambda e: e == "mine1")}
...     _, q = hub.join("sid-1", now["user"], lambda: now["user"])
...     alerts = [U(id="a", enterprise="mine1", n=1), U(id="b", enterprise="mine2", n=1),
...               U(id="a", enterprise="mine1", n=2)]
...     hub.publish([(a, None) for a in alerts])
...     first = await q.get()
...     now["user"] = None  # the user was removed from the user file
...     hub.publish([(alerts[0], None)])
...     return first, await q.get(), len(hub)
>>> asyncio.run(demo())  # mine2 out of scope, "a" as its newest; then the end, not a push
([('a', 2)], None, 0)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Hub"]


class _Viewer(Protocol):
    def sees(self, enterprise: str) -> bool: ...


@dataclass(frozen=True)
class _Conn:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]
    session: str
    user: _Viewer  # as at connect
    current: Callable[[], _Viewer | None]  # the session's user now, None when it ended


class Hub:
    """The live connections, each with its loop, queue, session and user; ``render`` turns
    an alert into what the page gets (the alert API's JSON)."""

    def __init__(self, render: Callable[[Any], Any]) -> None:
        self.render = render
        self._clients: dict[int, _Conn] = {}
        self._lock = threading.Lock()
        self._n = 0

    def __len__(self) -> int:
        return len(self._clients)

    def join(
        self, session: str, user: _Viewer, current: Callable[[], _Viewer | None]
    ) -> tuple[int, asyncio.Queue[Any]]:
        """A new connection of ``user`` (session ``session``) on the running loop: its id
        and its queue. ``current`` is asked before every push (see the module docstring)."""
        q: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            self._n += 1
            self._clients[self._n] = _Conn(asyncio.get_running_loop(), q, session, user, current)
            return self._n, q

    def leave(self, cid: int) -> None:
        with self._lock:
            self._clients.pop(cid, None)

    def _end(self, cids: list[int]) -> None:
        """End these connections: a ``None`` on each queue, and they are gone."""
        with self._lock:
            conns = [c for cid in cids if (c := self._clients.pop(cid, None)) is not None]
        for c in conns:
            try:
                c.loop.call_soon_threadsafe(c.queue.put_nowait, None)
            except RuntimeError:  # loop closed
                pass

    def close_all(self) -> None:
        """Tell every connection to end (server stop)."""
        with self._lock:
            cids = list(self._clients)
        self._end(cids)

    def end_session(self, session: str) -> None:
        """End every stream of ``session`` now (its user logged out)."""
        with self._lock:
            cids = [cid for cid, c in self._clients.items() if c.session == session]
        self._end(cids)

    def _still(self, c: _Conn) -> _Viewer | None:
        now = c.current()
        return now if now is not None and now == c.user else None

    def recheck(self) -> int:
        """End the streams whose session or user no longer holds; how many ended."""
        with self._lock:
            conns = list(self._clients.items())
        stale = [cid for cid, c in conns if self._still(c) is None]
        self._end(stale)
        return len(stale)

    def publish(self, pairs: list[tuple[Any, Any]]) -> None:
        """Hand the newest snapshot of each alert in ``pairs``, rendered, to every
        connection whose user (checked now) sees its enterprise (the sink's transition
        listener); a connection whose session or user no longer holds is ended instead."""
        last: dict[str, Any] = {}
        for a, _ in pairs:
            last[a.id] = a  # the newest snapshot of each alert in this batch
        if not last:
            return
        outs = [(a.enterprise, self.render(a)) for a in last.values()]
        with self._lock:
            conns = list(self._clients.items())
        stale = []
        for cid, c in conns:
            user = self._still(c)
            if user is None:
                stale.append(cid)
                continue
            items = [o for ent, o in outs if user.sees(ent)]
            if items:
                try:
                    c.loop.call_soon_threadsafe(c.queue.put_nowait, items)
                except RuntimeError:  # loop closed
                    pass
        self._end(stale)
