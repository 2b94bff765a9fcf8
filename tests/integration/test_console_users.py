"""``riskwatch users`` and the user file: scrypt hashes (never the password), 0600 file,
roles checked, passwords changed, and the console's log-in reading the file as it changes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from riskwatch.cli import main
from riskwatch.console.users import UserStore, verify_password


def test_users_add_passwd_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    f = tmp_path / "var" / "users.json"
    monkeypatch.setenv("RW_PW", "first pass 1")
    assert main(["users", "--file", str(f), "add", "li", "--role", "operator",
                 "--enterprise", "mine1", "--enterprise", "mine2", "--password-env", "RW_PW"]) == 0  # fmt: skip
    assert main(["users", "--file", str(f), "add", "wang", "--password-env", "RW_PW"]) == 0
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    doc = json.loads(f.read_text())
    assert "first pass 1" not in f.read_text()
    assert doc["users"]["li"]["role"] == "operator"
    assert doc["users"]["li"]["enterprises"] == ["mine1", "mine2"]
    assert doc["users"]["wang"] == {**doc["users"]["wang"], "role": "viewer", "enterprises": ["*"]}
    assert doc["users"]["li"]["password"].startswith("scrypt$16384$8$1$")
    assert doc["users"]["li"]["password"] != doc["users"]["wang"]["password"]  # salted
    store = UserStore(f)  # the console's view, read before the change below
    assert store.check("li", "first pass 1") is not None
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("second pass 2\n"))
    assert main(["users", "--file", str(f), "passwd", "li", "--password-stdin"]) == 0
    assert store.check("li", "first pass 1") is None  # re-read after the file changed
    assert store.check("li", "second pass 2") is not None
    capsys.readouterr()
    assert main(["users", "--file", str(f), "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["li\toperator\tmine1,mine2",
                                                    "wang\tviewer\t*"]  # fmt: skip
    assert main(["users", "--file", str(f), "add", "li", "--password-env", "RW_PW"]) == 2
    assert "user 'li' exists" in capsys.readouterr().err
    assert main(["users", "--file", str(f), "passwd", "nobody", "--password-env", "RW_PW"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_user_file_from_the_engine_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "engine.yaml"
    cfg.write_text("console: {listen: '127.0.0.1:0', users: etc/people.json}\n")
    monkeypatch.setenv("RW_PW", "pw-1234")
    assert main(["users", "-c", str(cfg), "add", "zhao", "--role", "engineer",
                 "--password-env", "RW_PW"]) == 0  # fmt: skip
    u = UserStore(tmp_path / "etc" / "people.json").get("zhao")
    assert u is not None and u.role == "engineer" and verify_password("pw-1234", u.password)


def test_bad_role_in_the_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "u.json"
    f.write_text(json.dumps({"users": {"x": {"role": "boss", "password": "scrypt$..."}}}))
    with pytest.raises(ValueError, match=r"u\.json: users\.x\.role: unknown role 'boss'"):
        UserStore(f)


def test_users_remove_role_scope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    f = tmp_path / "users.json"
    monkeypatch.setenv("RW_PW", "pw-12345")
    base = ["users", "--file", str(f)]
    assert main([*base, "add", "li", "--role", "operator", "--password-env", "RW_PW"]) == 0
    store = UserStore(f)  # a running console's view
    assert main([*base, "role", "li", "engineer"]) == 0
    assert main([*base, "scope", "li", "--enterprise", "mine1", "--enterprise", "mine2"]) == 0
    u = store.get("li")
    assert u is not None and (u.role, u.enterprises) == ("engineer", ("mine1", "mine2"))
    assert verify_password("pw-12345", u.password)  # the password stays
    capsys.readouterr()
    with pytest.raises(SystemExit):  # argparse refuses an unknown role
        main([*base, "role", "li", "boss"])
    assert main([*base, "role", "nobody", "viewer"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert main([*base, "remove", "li"]) == 0
    assert capsys.readouterr().out.strip() == "removed li"
    assert store.get("li") is None
    assert main([*base, "remove", "li"]) == 2
    assert "no user 'li'" in capsys.readouterr().err
