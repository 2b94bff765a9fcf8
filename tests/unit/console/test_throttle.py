"""Log-in throttling on a manual clock: each key's delays step exactly as documented, the
user's usual client is never held up, refused attempts do not lengthen the wait, and the
failures table forgets and stays bounded."""

from __future__ import annotations

import pytest

from riskwatch.console.throttle import LoginThrottle

ATTACKER, CONSOLE = "10.6.6.6", "10.0.0.1"


def test_pair_delays_double_from_the_last_failure_up_to_the_cap() -> None:
    t = LoginThrottle(pair_free=3, base_s=1, cap_s=8)
    now = 0.0
    waits = []
    for _ in range(8):
        now += t.wait_s("li", ATTACKER, now)  # the guesser waits exactly as told
        t.failed("li", ATTACKER, now)
        waits.append(t.wait_s("li", ATTACKER, now))
    assert waits == [0, 0, 1, 2, 4, 8, 8, 8]
    assert now == 1 + 2 + 4 + 8 + 8  # 8 guesses took 23 s instead of an instant


def test_an_early_retry_is_refused_and_not_counted() -> None:
    t = LoginThrottle(pair_free=1, base_s=2, cap_s=60)
    t.failed("li", ATTACKER, 0)
    for now in (0.5, 1.0, 1.5):
        assert t.wait_s("li", ATTACKER, now) == pytest.approx(2 - now)
    assert t.wait_s("li", ATTACKER, 2.0) == 0  # hammering did not make it longer


def test_a_sweep_over_names_from_one_client_is_slowed() -> None:
    """The issue's sweep: 40 names in 2.5 s, none throttled. Now the client key holds it."""
    t = LoginThrottle(client_free=10, base_s=1, cap_s=60)
    now = 0.0
    for i in range(40):
        now += t.wait_s(f"name{i}", ATTACKER, now)
        t.failed(f"name{i}", ATTACKER, now)
    assert now == 1 + 2 + 4 + 8 + 16 + 32 + 60 * 24  # 40 names take 25 min, not 2.5 s
    # a user who never logged in from there waits too; one at their usual client does not
    t.succeeded("li", CONSOLE, now)
    assert t.wait_s("wang", ATTACKER, now) == 60
    assert t.wait_s("li", CONSOLE, now) == 0


def test_the_user_at_their_usual_client_is_never_locked_out() -> None:
    t = LoginThrottle(pair_free=3, user_free=5, base_s=1, cap_s=60)
    t.succeeded("li", CONSOLE, 0)
    for i in range(30):  # a distributed guesser: 30 addresses, 1 try each
        t.failed("li", f"10.9.0.{i}", 1)
    assert t.wait_s("li", "10.9.0.99", 1) == 60  # a new address guessing li waits
    assert t.wait_s("li", CONSOLE, 1) == 0  # li at her console logs in at once
    t.failed("li", CONSOLE, 2)  # li mistypes twice at her console: still free
    t.failed("li", CONSOLE, 3)
    assert t.wait_s("li", CONSOLE, 3) == 0


def test_success_clears_the_pair_only() -> None:
    t = LoginThrottle(pair_free=2, client_free=2, base_s=1, cap_s=60)
    for now in (0, 1):
        t.failed("eve", ATTACKER, now)
    t.succeeded("eve", ATTACKER, 1)  # eve owns one account and logs in with it
    assert t.wait_s("eve", ATTACKER, 1) == 0  # her pair is cleared ...
    assert t.wait_s("li", ATTACKER, 1) == 1  # ... her record as a client is not


def test_failures_are_forgotten_and_the_table_is_bounded() -> None:
    t = LoginThrottle(pair_free=1, base_s=1, cap_s=60, forget_s=100, max_keys=50)
    for i in range(40):
        t.failed(f"n{i}", f"10.1.0.{i}", float(i))
    assert len(t) == 50  # 3 keys per failure, the oldest dropped at the bound
    assert t.wait_s("n39", "10.1.0.39", 39) == 1
    assert t.wait_s("n0", "10.1.0.0", 39) == 0  # dropped first
    t.wait_s("x", "y", 39 + 100.5)  # every key older than forget_s goes
    assert len(t) == 0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="free attempts must be >= 1"):
        LoginThrottle(pair_free=0)
    with pytest.raises(ValueError):
        LoginThrottle(base_s=10, cap_s=1)
