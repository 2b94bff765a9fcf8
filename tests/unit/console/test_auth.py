"""Console sessions on the engine's clock: log-in, expiry, wrong-password throttling per
client and user, CSRF and roles, each answering with the HTTP status the page shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from riskwatch.clock import ManualClock
from riskwatch.console.auth import Sessions, me
from riskwatch.console.users import UserStore

T0 = 1_795_880_000 * 10**9


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    store = UserStore(tmp_path_factory.mktemp("users") / "users.json")
    store.add("li", "pw-123456", "operator", ["mine1"])
    store.add("wang", "pw-654321", "viewer", ["*"])
    return store


def status(fn, *args) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(HTTPException) as ei:
        fn(*args)
    return ei.value.status_code


def test_a_session_lasts_ttl_seconds_of_the_engine_clock(users: UserStore) -> None:
    clock = ManualClock(T0)
    auth = Sessions(users, ttl_s=60, clock=clock)
    sid, session, user = auth.login("li", "pw-123456")
    assert user.name == "li" and session.expires == T0 / 1e9 + 60
    assert me(user, session) == {
        "name": "li", "role": "operator", "enterprises": ["mine1"], "csrf": session.csrf,
        "expires": (T0 // 10**6) + 60_000, "can_act": True, "can_engineer": False,
        "can_reload": False,
    }  # fmt: skip
    clock.advance(60)
    assert auth.user_of(sid)[0].name == "li"  # still valid at its last second
    clock.advance(1)
    assert status(auth.user_of, sid) == 401
    assert status(auth.user_of, sid) == 401  # and it is gone
    assert status(auth.user_of, None) == 401


def test_wrong_passwords_slow_that_pair_but_never_lock_the_user_out(users: UserStore) -> None:
    """The issue's weapon: five wrong passwords used to lock an operator out for everyone.
    Now the guesser's (name, address) waits 1, 2, 4 ... s; li at her usual client logs in."""
    clock = ManualClock(T0)
    auth = Sessions(users, ttl_s=60, clock=clock)
    auth.login("li", "pw-123456", "10.0.0.1")  # li's usual console
    for _ in range(3):  # three free tries from the attacker's machine
        assert status(auth.login, "li", "wrong", "10.6.6.6") == 401
    with pytest.raises(HTTPException) as ei:
        auth.login("li", "wrong", "10.6.6.6")
    assert (ei.value.status_code, ei.value.detail) == (
        429, "too many wrong passwords; try again in 1 s")  # fmt: skip
    assert ei.value.headers == {"Retry-After": "1"}
    clock.advance(1)
    assert status(auth.login, "li", "wrong", "10.6.6.6") == 401  # the 4th failure: 2 s now
    clock.advance(1.5)
    assert status(auth.login, "li", "pw-123456", "10.6.6.6") == 429  # even the right one
    auth.login("li", "pw-123456", "10.0.0.1")  # ... but li at her console is not held up
    auth.login("wang", "pw-654321", "10.6.6.6")  # and another name from that machine neither
    clock.advance(0.5)
    auth.login("li", "pw-123456", "10.6.6.6")  # the wait is over; the pair's count restarts
    assert status(auth.login, "li", "wrong", "10.6.6.6") == 401
    assert status(auth.login, "nobody", "x", "10.0.0.2") == 401


def test_logout_ends_the_session(users: UserStore) -> None:
    auth = Sessions(users, ttl_s=60, clock=ManualClock(T0))
    sid, _, _ = auth.login("li", "pw-123456")
    auth.logout(sid)
    assert status(auth.user_of, sid) == 401


def test_csrf_and_roles(users: UserStore) -> None:
    auth = Sessions(users, ttl_s=60, clock=ManualClock(T0))
    _, session, li = auth.login("li", "pw-123456")
    auth.check_csrf(session, session.csrf)
    assert status(auth.check_csrf, session, "") == 403
    assert status(auth.check_csrf, session, session.csrf + "x") == 403
    auth.require(li, "operator", "operators act on alerts")
    with pytest.raises(HTTPException, match="user 'li' is a operator: engineers do this"):
        auth.require(li, "engineer", "engineers do this")


def test_a_deleted_user_loses_their_session(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    store.add("zhao", "pw-111111", "viewer", ["*"])
    auth = Sessions(store, ttl_s=60, clock=ManualClock(T0))
    sid, _, _ = auth.login("zhao", "pw-111111")
    (tmp_path / "users.json").write_text('{"users": {}}')
    with pytest.raises(HTTPException, match="user 'zhao' no longer exists"):
        auth.user_of(sid)


def test_current_sees_logout_removal_and_changes_at_once(tmp_path: Path) -> None:
    """What the live stream asks before every push: the user as the file has it now."""
    store = UserStore(tmp_path / "users.json")
    store.add("zhao", "pw-111111", "operator", ["mine1"])
    clock = ManualClock(T0)
    auth = Sessions(store, ttl_s=60, clock=clock)
    sid, _, u = auth.login("zhao", "pw-111111")
    assert auth.current(sid) == u
    store.set_role("zhao", "viewer")
    assert auth.current(sid) != u and auth.current(sid).role == "viewer"  # type: ignore[union-attr]
    store.set_enterprises("zhao", ["mine2"])
    assert auth.current(sid).enterprises == ("mine2",)  # type: ignore[union-attr]
    store.remove("zhao")
    assert auth.current(sid) is None
    store.add("zhao", "pw-111111", "operator", ["mine1"])
    sid, _, _ = auth.login("zhao", "pw-111111")
    auth.logout(sid)
    assert auth.current(sid) is None
    sid, _, _ = auth.login("zhao", "pw-111111")
    clock.advance(61)
    assert auth.current(sid) is None  # expired
    assert auth.current("never-issued") is None


def test_parallel_guesses_see_each_other(users: UserStore) -> None:
    """Twelve wrong passwords sent at once for one name from one address: each attempt is
    counted before its (slow, GIL-free) scrypt check, so only the three free ones reach
    the check; the others wait. The right password afterwards from li's own console still
    works, and a right one does not leave a count behind on the client."""
    import threading

    clock = ManualClock(T0)
    auth = Sessions(users, ttl_s=60, clock=clock)
    auth.login("li", "pw-123456", "10.0.0.1")
    codes: list[int] = []
    go = threading.Barrier(12)

    def guess() -> None:
        go.wait()
        codes.append(status(auth.login, "li", "wrong", "10.6.6.6"))

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [401] * 3 + [429] * 9
    auth.login("li", "pw-123456", "10.0.0.1")
    for _ in range(20):  # twenty right log-ins of a new user from one address ...
        auth.login("wang", "pw-654321", "10.0.0.5")
    assert auth.throttle.wait_s("zhang", "10.0.0.5", T0 / 1e9) == 0  # ... count nothing there
