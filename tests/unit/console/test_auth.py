"""Console sessions on the engine's clock: log-in, expiry, wrong-password throttling per
name, CSRF and roles, each answering with the HTTP status the page shows."""

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
    }  # fmt: skip
    clock.advance(60)
    assert auth.user_of(sid)[0].name == "li"  # still valid at its last second
    clock.advance(1)
    assert status(auth.user_of, sid) == 401
    assert status(auth.user_of, sid) == 401  # and it is gone
    assert status(auth.user_of, None) == 401


def test_five_wrong_passwords_in_five_minutes_make_that_name_wait(users: UserStore) -> None:
    clock = ManualClock(T0)
    auth = Sessions(users, ttl_s=60, clock=clock)
    for _ in range(5):
        assert status(auth.login, "li", "wrong") == 401
        clock.advance(10)
    assert status(auth.login, "li", "pw-123456") == 429  # even the right one
    auth.login("wang", "pw-654321")  # another name is not affected
    clock.advance(300 - 40)  # the oldest failures leave the five-minute window
    auth.login("li", "pw-123456")
    assert status(auth.login, "nobody", "x") == 401


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
