"""Console users: a small JSON file of names, roles, enterprise scopes and scrypt hashes.

Passwords are hashed with :func:`hashlib.scrypt` (n=2**14, r=8, p=1, 16-byte random salt):
slow enough to make guessing expensive, fast enough (~50 ms) for a log-in. The file is
rewritten atomically (temp file + rename) with mode 0600.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "users.json"
>>> us = UserStore(f)
>>> us.add("li", "pw-123456", "operator", ["mine1"])
>>> us.check("li", "pw-123456").role, us.check("li", "wrong")
('operator', None)
>>> UserStore(f).get("li").enterprises
('mine1',)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["ROLES", "User", "UserStore", "hash_password", "verify_password"]

#: viewer sees; operator acknowledges, shelves, closes; engineer also silences and reloads
#: rules; admin also manages users.
ROLES = {"viewer": 0, "operator": 1, "engineer": 2, "admin": 3}
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), salted with 16 random bytes."""
    salt = salt or secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b(salt).decode()}${b(h).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against :func:`hash_password` output.

    >>> verify_password("x", hash_password("x")), verify_password("y", hash_password("x"))
    (True, False)
    """
    try:
        algo, n, r, p, salt, h = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(got, base64.b64decode(h))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enterprises: tuple[str, ...]  # ("*",) sees all
    password: str  # the hash

    @property
    def level(self) -> int:
        return ROLES[self.role]

    def sees(self, enterprise: str) -> bool:
        return "*" in self.enterprises or enterprise in self.enterprises

    def scope(self) -> list[str] | None:
        """Enterprises for store queries; None for all."""
        return None if "*" in self.enterprises else sorted(self.enterprises)


class UserStore:
    """The user file; re-read when it changed on disk (``riskwatch users`` edits it while the
    engine runs)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._mtime: float | None = None
        self._load()

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        doc = json.loads(self.path.read_text(encoding="utf-8"))
        users = {}
        for name, u in doc.get("users", {}).items():
            if u.get("role") not in ROLES:
                raise ValueError(f"{self.path}: users.{name}.role: unknown role {u.get('role')!r}")
            users[name] = User(name, u["role"], tuple(u.get("enterprises", ["*"])), u["password"])
        self._users, self._mtime = users, mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "users": {
                u.name: {"role": u.role, "enterprises": list(u.enterprises), "password": u.password}
                for u in self._users.values()
            }
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

    def get(self, name: str) -> User | None:
        with self._lock:
            self._load()
            return self._users.get(name)

    def all(self) -> list[User]:
        with self._lock:
            self._load()
            return sorted(self._users.values(), key=lambda u: u.name)

    def add(self, name: str, password: str, role: str, enterprises: list[str]) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not name or not password:
            raise ValueError("a user needs a name and a non-empty password")
        with self._lock:
            self._load()
            if name in self._users:
                raise ValueError(f"user {name!r} exists (use 'riskwatch users passwd')")
            self._users[name] = User(name, role, tuple(enterprises or ["*"]),
                                     hash_password(password))  # fmt: skip
            self._save()

    def passwd(self, name: str, password: str) -> None:
        with self._lock:
            self._load()
            u = self._users.get(name)
            if u is None:
                raise ValueError(f"no user {name!r} in {self.path}")
            self._users[name] = User(u.name, u.role, u.enterprises, hash_password(password))
            self._save()

    def _change(self, name: str, **what: object) -> None:
        with self._lock:
            self._load()
            u = self._users.get(name)
            if u is None:
                raise ValueError(f"no user {name!r} in {self.path}")
            self._users[name] = replace(u, **what)  # type: ignore[arg-type]
            self._save()

    def set_role(self, name: str, role: str) -> None:
        """Change ``name``'s role; their open console sessions follow at once (the live
        stream ends and reconnects with the new rights)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        self._change(name, role=role)

    def set_enterprises(self, name: str, enterprises: list[str]) -> None:
        """Change the enterprises ``name`` may see (``["*"]``: all)."""
        if not enterprises or any(not e for e in enterprises):
            raise ValueError("give at least one enterprise (or '*' for all)")
        self._change(name, enterprises=tuple(enterprises))

    def remove(self, name: str) -> None:
        """Delete ``name``: their sessions end at their next request or push."""
        with self._lock:
            self._load()
            if self._users.pop(name, None) is None:
                raise ValueError(f"no user {name!r} in {self.path}")
            self._save()

    def check(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None (a wrong name costs a hash too)."""
        u = self.get(name)
        if u is None:
            verify_password(password, hash_password("x"))
            return None
        return u if verify_password(password, u.password) else None
