"""``riskwatch users``: add, remove and list users of the operator console, change their
password, role or enterprise scope. A change reaches a running console at once: the
user's live board ends and reconnects with the new rights (or the log-in, once removed).

The user file is ``console.users`` of the engine config (``-c engine.yaml``) or ``--file``.
Passwords come from ``--password-env VAR``, from standard input (``--password-stdin``) or
from a prompt; never from the command line (it would show in ``ps`` and shell history).

example: riskwatch users -c engine.yaml add li --role operator --enterprise mine1
example: riskwatch users -c engine.yaml scope li --enterprise mine1 --enterprise mine2
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from riskwatch.console.users import ROLES, UserStore

__all__ = ["register"]


def _store(args: argparse.Namespace) -> UserStore:
    if args.file:
        return UserStore(Path(args.file))
    from riskwatch.config.engine import load_engine_config

    cfg = load_engine_config(args.config)
    return UserStore(cfg.path(cfg.console.users))


def _password(args: argparse.Namespace) -> str:
    if args.password_env:
        pw = os.environ.get(args.password_env, "")
        if not pw:
            raise SystemExit(f"riskwatch users: environment variable {args.password_env} is empty")
        return pw
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    pw = getpass.getpass("password: ")
    if pw != getpass.getpass("again: "):
        raise SystemExit("riskwatch users: the passwords differ")
    return pw


def _add(args: argparse.Namespace) -> int:
    try:
        _store(args).add(args.name, _password(args), args.role, args.enterprise or ["*"])
    except ValueError as exc:
        print(f"riskwatch users add: {exc}", file=sys.stderr)
        return 2
    print(f"added {args.name} ({args.role}, enterprises {', '.join(args.enterprise or ['*'])})")
    return 0


def _edit(verb: str, change: Callable[[], None], done: str) -> int:
    """One change of the user file: ``done`` on success, the store's refusal on stderr."""
    try:
        change()
    except ValueError as exc:
        print(f"riskwatch users {verb}: {exc}", file=sys.stderr)
        return 2
    print(done)
    return 0


def _passwd(args: argparse.Namespace) -> int:
    return _edit("passwd", lambda: _store(args).passwd(args.name, _password(args)),
                 f"password of {args.name} changed")  # fmt: skip


def _remove(args: argparse.Namespace) -> int:
    return _edit("remove", lambda: _store(args).remove(args.name), f"removed {args.name}")


def _role(args: argparse.Namespace) -> int:
    return _edit("role", lambda: _store(args).set_role(args.name, args.role),
                 f"{args.name} is now {args.role}")  # fmt: skip


def _scope(args: argparse.Namespace) -> int:
    return _edit("scope", lambda: _store(args).set_enterprises(args.name, args.enterprise),
                 f"{args.name} sees enterprises {', '.join(args.enterprise)}")  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    for u in _store(args).all():
        print(f"{u.name}\t{u.role}\t{','.join(u.enterprises)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "users",
        help="operator console users (add, remove, passwd, role, scope, list)",
        description="Manage the users of the operator console (console.users in the config).",
        epilog="example: RW_PW=... riskwatch users -c engine.yaml add li --role operator "
        "--enterprise mine1 --password-env RW_PW",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", default="engine.yaml", help="engine config file")
    where.add_argument("--file", help="the user file itself")
    usub = p.add_subparsers(dest="users_command", metavar="VERB", required=True)

    def pw_args(x: argparse.ArgumentParser) -> None:
        x.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
        x.add_argument("--password-stdin", action="store_true", help="read it from stdin")

    a = usub.add_parser("add", help="add a user")
    a.add_argument("name")
    a.add_argument("--role", choices=list(ROLES), default="viewer")
    a.add_argument("--enterprise", action="append",
                   help="repeatable; enterprises the user may see (default all: '*')")  # fmt: skip
    pw_args(a)
    a.set_defaults(func=_add)
    pw = usub.add_parser("passwd", help="change a user's password")
    pw.add_argument("name")
    pw_args(pw)
    pw.set_defaults(func=_passwd)
    rm = usub.add_parser("remove", help="remove a user (their sessions end)")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)
    ro = usub.add_parser("role", help="change a user's role")
    ro.add_argument("name")
    ro.add_argument("role", choices=list(ROLES))
    ro.set_defaults(func=_role)
    sc = usub.add_parser("scope", help="change the enterprises a user may see")
    sc.add_argument("name")
    sc.add_argument("--enterprise", action="append", required=True,
                    help="repeatable; '*' for all")  # fmt: skip
    sc.set_defaults(func=_scope)
    ls = usub.add_parser("list", help="list users (name, role, enterprises)")
    ls.set_defaults(func=_list)
