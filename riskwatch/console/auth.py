"""Log-in sessions of the console: who is asking, and may they do this.

A session is a random id in an HttpOnly SameSite=Strict cookie that expires after
``console.session_ttl_s``; each has its own CSRF token, which every POST must send in
the ``X-CSRF-Token`` header. Wrong passwords are throttled per client and per user
(:class:`~riskwatch.console.throttle.LoginThrottle`: growing delays, answered 429 with
``Retry-After``, never a lock-out of the user at their usual client). Roles rank viewer <
operator < engineer < admin. Times come from the engine's clock.

>>> import tempfile, pathlib
>>> from riskwatch.clock import ManualClock
>>> from riskwatch.console.users import UserStore
>>> users = UserStore(pathlib.Path(tempfile.mkdtemp()) / "users.json")
>>> users.add("li", "pw-123456", "operator", ["mine1"])
>>> clock = ManualClock(1_000 * 10**9)
>>> auth = Sessions(users, ttl_s=60, clock=clock)
>>> sid, session, user = auth.login("li", "pw-123456")
>>> auth.user_of(sid)[0].name, session.expires
('li', 1060.0)
>>> clock.advance(61)
>>> auth.user_of(sid)
Traceback (most recent call last):
...
fastapi.exceptions.HTTPException: 401: not logged in (or the session expired)
"""

from __future__ import annotations

import math
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from riskwatch.clock import Clock
from riskwatch.console.throttle import LoginThrottle
from riskwatch.console.users import ROLES, User, UserStore

__all__ = ["COOKIE", "Session", "Sessions", "me"]

COOKIE = "rw_session"


@dataclass
class Session:
    user: str
    csrf: str
    expires: float  # epoch seconds


class Sessions:
    """The console's open sessions over the user file ``users``."""

    def __init__(
        self, users: UserStore, *, ttl_s: float, clock: Clock,
        throttle: LoginThrottle | None = None,
    ) -> None:  # fmt: skip
        self.users = users
        self.ttl_s = ttl_s
        self.clock = clock
        self.throttle = throttle or LoginThrottle()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.now_ns() / 1e9

    def login(self, name: str, password: str, client: str = "") -> tuple[str, Session, User]:
        """A new session for a right password: (id, session, user); 401 if wrong, 429
        (with ``Retry-After``) while ``name`` or ``client`` (the caller's address) must
        wait after wrong passwords; the password is then not even checked."""
        now = self._now()
        with self._lock:  # uvicorn runs log-ins in a thread pool
            wait = self.throttle.attempt(name, client, now)  # counted before the check
        if wait > 0:
            raise HTTPException(
                429, f"too many wrong passwords; try again in {math.ceil(wait)} s",
                {"Retry-After": str(math.ceil(wait))},
            )  # fmt: skip
        user = self.users.check(name, password)
        if user is None:
            raise HTTPException(401, "wrong user name or password")
        now = self._now()  # checking the password takes a while
        sid = secrets.token_urlsafe(32)
        session = Session(user.name, secrets.token_urlsafe(24), now + self.ttl_s)
        with self._lock:
            self.throttle.succeeded(name, client, now, counted=True)
            for k in [k for k, s in self._sessions.items() if s.expires < now]:
                self._sessions.pop(k, None)
            self._sessions[sid] = session
        return sid, session, user

    def logout(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def current(self, sid: str) -> User | None:
        """The user behind session ``sid`` as the user file has it now, or None when the
        session ended (logout, expiry) or the user was removed (the live stream's check
        before every push)."""
        session = self._sessions.get(sid)
        if session is None or session.expires < self._now():
            return None
        return self.users.get(session.user)

    def user_of(self, sid: str | None) -> tuple[User, Session]:
        """The user and session behind a cookie; 401 when unknown, expired or deleted."""
        session = self._sessions.get(sid or "")
        if session is None or session.expires < self._now():
            self._sessions.pop(sid or "", None)
            raise HTTPException(401, "not logged in (or the session expired)")
        user = self.users.get(session.user)
        if user is None:
            raise HTTPException(401, f"user {session.user!r} no longer exists")
        return user, session

    @staticmethod
    def check_csrf(session: Session, token: str) -> None:
        if not secrets.compare_digest(token, session.csrf):
            raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")

    @staticmethod
    def require(user: User, role: str, does: str) -> None:
        """403 unless ``user`` ranks at least ``role`` (``does`` says who may)."""
        if user.level < ROLES[role]:
            raise HTTPException(403, f"user {user.name!r} is a {user.role}: {does}")


def me(user: User, session: Session) -> dict[str, Any]:
    """What the page knows of its user (``/api/me`` and the log-in answer)."""
    return {"name": user.name, "role": user.role, "enterprises": list(user.enterprises),
            "csrf": session.csrf, "expires": int(session.expires * 1000),
            "can_act": user.level >= ROLES["operator"],
            "can_engineer": user.level >= ROLES["engineer"],
            "can_reload": user.level >= ROLES["engineer"] and user.scope() is None}  # fmt: skip
