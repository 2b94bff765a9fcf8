"""Throttling of wrong passwords at the console's log-in: it slows a guesser down without
letting anyone lock a real operator out.

Locking a name after N failures is a weapon: anyone who can reach the log-in page can
keep a control-room operator out during an incident. Instead every failure is counted
under three keys, each with its own allowance of free attempts, after which that key must
wait an exponentially growing delay (``base_s * 2**(n - free)``, capped at ``cap_s``)
from its last failure before its next attempt is even checked:

- ``(user, client)`` — one name from one address (a guesser at one machine, or an
  operator who forgot the password): always applies;
- ``client`` — every name from one address (a sweep over names, "40 names in 2.5 s");
  it does not apply to a user at one of *their* usual clients;
- ``user`` — one name from every address (a distributed guesser); it too does not apply
  at the user's usual clients.

A *usual client* of a user is an address they logged in from successfully (the last
``known_per_user``, kept in memory). So a correct password from the user's usual client
works even while an attacker elsewhere hammers their name, and an attacker's sweep from
their own address never delays anyone else. An attempt is counted as it starts
(:meth:`LoginThrottle.attempt`), before the slow password check, so guesses sent in
parallel see each other, and taken back when the password was right. A refused
(throttled) attempt is not counted, so retrying early does not lengthen the wait; keys
are forgotten ``forget_s`` after their last failure and the table never holds more than
``max_keys`` (the oldest go first), so a flood of names cannot grow memory without
bound. Times are seconds passed in by the caller (the engine's clock).

>>> t = LoginThrottle(pair_free=2, base_s=1, cap_s=8)
>>> for now in (0, 1):
...     t.failed("li", "10.0.0.9", now)
>>> t.wait_s("li", "10.0.0.9", 1), t.wait_s("li", "10.0.0.9", 2)  # 1 s after the 2nd
(1.0, 0.0)
>>> t.failed("li", "10.0.0.9", 2); t.wait_s("li", "10.0.0.9", 2)  # doubled
2.0
>>> t.wait_s("li", "10.0.0.7", 2)  # li from another machine: not slowed
0.0
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["LoginThrottle"]


@dataclass
class _Count:
    n: int
    last: float


class LoginThrottle:
    """Failure counts by ``(user, client)``, ``client`` and ``user`` with capped
    exponential delays (see the module docstring)."""

    def __init__(
        self,
        *,
        pair_free: int = 3,
        client_free: int = 10,
        user_free: int = 10,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        forget_s: float = 900.0,
        max_keys: int = 100_000,
        known_per_user: int = 8,
    ) -> None:
        if min(pair_free, client_free, user_free) < 1 or base_s <= 0 or cap_s < base_s:
            raise ValueError("free attempts must be >= 1 and 0 < base_s <= cap_s")
        self.free = {"pair": pair_free, "client": client_free, "user": user_free}
        self.base_s = base_s
        self.cap_s = cap_s
        self.forget_s = forget_s
        self.max_keys = max_keys
        self.known_per_user = known_per_user
        self._counts: OrderedDict[tuple[str, ...], _Count] = OrderedDict()  # oldest first
        self._known: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        """Keys held (after pruning at the last call)."""
        return len(self._counts)

    def _keys(self, user: str, client: str) -> list[tuple[str, ...]]:
        keys: list[tuple[str, ...]] = [("pair", user, client)]
        if client not in self._known.get(user, ()):
            keys += [("client", client), ("user", user)]
        return keys

    def _delay(self, kind: str, n: int) -> float:
        over = n - self.free[kind]
        if over < 0:
            return 0.0
        return min(self.base_s * 2.0 ** min(over, 64), self.cap_s)

    def _prune(self, now: float) -> None:
        while self._counts:
            key, c = next(iter(self._counts.items()))
            if now - c.last <= self.forget_s and len(self._counts) <= self.max_keys:
                break
            del self._counts[key]

    def wait_s(self, user: str, client: str, now: float) -> float:
        """Seconds this attempt must still wait before its password is checked (0: go)."""
        self._prune(now)
        wait = 0.0
        for key in self._keys(user, client):
            c = self._counts.get(key)
            if c is not None:
                wait = max(wait, c.last + self._delay(key[0], c.n) - now)
        return wait

    def attempt(self, user: str, client: str, now: float) -> float:
        """:meth:`wait_s`, and when it is 0 count the attempt as failed at once, before
        the (slow) password check: parallel guesses then see each other instead of all
        passing the check before the first failure is recorded. A right password is then
        reported with ``succeeded(..., counted=True)``, which takes the count back."""
        wait = self.wait_s(user, client, now)
        if wait == 0:
            self.failed(user, client, now)
        return wait

    def failed(self, user: str, client: str, now: float) -> None:
        """A wrong password (or an unknown name) for ``user`` from ``client``: every key
        counts it, the usual-client exemption notwithstanding."""
        for key in (("pair", user, client), ("client", client), ("user", user)):
            c = self._counts.pop(key, None) or _Count(0, now)
            c.n += 1
            c.last = now
            self._counts[key] = c  # to the end: the table stays ordered by last failure
        self._prune(now)

    def succeeded(self, user: str, client: str, now: float, *, counted: bool = False) -> None:
        """The right password: forget this pair's failures and make ``client`` one of the
        user's usual clients. The ``client`` and ``user`` counts stay (a guesser who owns
        one account must not wipe its own record by logging in), less this attempt's own
        count when :meth:`attempt` made one (``counted``)."""
        self._counts.pop(("pair", user, client), None)
        if counted:
            for key in (("client", client), ("user", user)):
                c = self._counts.get(key)
                if c is not None:
                    c.n -= 1
                    if c.n <= 0:
                        del self._counts[key]
        known = self._known.setdefault(user, OrderedDict())
        known.pop(client, None)
        known[client] = None
        while len(known) > self.known_per_user:
            known.popitem(last=False)
        self._prune(now)
