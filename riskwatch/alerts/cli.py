"""``riskwatch alerts ...``: the operator verbs of the alert API from a shell.

The URL comes from ``--url`` or ``RW_ALERTS_URL`` (default http://127.0.0.1:9110), the
token from ``--token-file`` or ``RW_ALERTS_TOKEN``. Output is a table for people, or the
API's JSON with ``--json``. An HTTP error prints the API's message and exits 1.

>>> duration_seconds("90"), duration_seconds("15m"), duration_seconds("2h"), duration_seconds("1d")
(90.0, 900.0, 7200.0, 86400.0)
>>> parse_matchers(["site=face1", "rule=~ch4_.*", "level=red,orange"])
{'site': ['face1'], 'rule': ['~ch4_.*'], 'level': ['red', 'orange']}
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskwatch.durations import parse_duration
from riskwatch.errors import AlertApiError

__all__ = ["duration_seconds", "parse_matchers", "register"]


def duration_seconds(text: str) -> float:
    """``--for`` values: seconds from a duration (:func:`riskwatch.durations.parse_duration`)."""
    try:
        return parse_duration(text) / 1e9
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_matchers(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or not key or not val:
            raise AlertApiError(f"bad matcher {it!r}: use label=value (value a,b or ~regex)")
        vals = [val] if val.startswith("~") else val.split(",")
        out.setdefault(key.strip(), []).extend(v.strip() for v in vals)
    return out


def _client(args: argparse.Namespace) -> Any:
    import httpx

    token = os.environ.get("RW_ALERTS_TOKEN")
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    if not token:
        raise AlertApiError("no API token: set RW_ALERTS_TOKEN or pass --token-file")
    return httpx.Client(
        base_url=args.url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def _call(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    import httpx

    with _client(args) as c:
        try:
            r = c.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise AlertApiError(f"cannot reach the alert API at {args.url}: {exc}") from exc
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        if isinstance(detail, list):  # FastAPI validation errors
            detail = "; ".join(
                f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
            )
        raise AlertApiError(f"{method} {path}: {r.status_code}: {detail}")
    return r.json()


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_alerts(items: list[dict[str, Any]]) -> None:
    cols = ("id", "level", "state", "enterprise", "site", "sensor", "rule", "since", "message")
    rows = [
        [a["id"], a["level"] or "-", a["state"] + ("*" if a["flapping"] else ""),
         a["enterprise"], a["site"], a["sensor"] or a["group"] or "", a["rule"],
         _ts(a["since"]), a["message"][:60]]
        for a in items
    ]  # fmt: skip
    widths = [max([len(c)] + [len(str(r[i])) for r in rows]) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))


def _out(args: argparse.Namespace, data: Any, human: Any = None) -> int:
    if args.json or human is None:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        human(data)
    return 0


def _list(args: argparse.Namespace) -> int:
    params: list[tuple[str, Any]] = [("limit", args.limit)]
    params += [("state", s) for s in args.state or []]
    params += [("level", s) for s in args.level or []]
    for k in ("enterprise", "site", "rule", "sensor"):
        if getattr(args, k):
            params.append((k, getattr(args, k)))
    if args.open:
        params.append(("open", "true"))
    data = _call(args, "GET", "/api/v1/alerts", params=params)

    def human(d: dict[str, Any]) -> None:
        _print_alerts(d["items"])
        print(f"{d['total']} alerts")

    return _out(args, data, human)


def _show(args: argparse.Namespace) -> int:
    data = _call(args, "GET", f"/api/v1/alerts/{args.id}")

    def human(a: dict[str, Any]) -> None:
        _print_alerts([a])
        print(f"acked by {a['acked_by'] or '-'}; tier {a['tier']}; note: {a['note'] or '-'}")
        for t in a["history"]:
            print(f"  {_ts(t['at'])}  {t['action']:<18} {t['from_state'] or '-':>14} -> "
                  f"{t['to_state']:<14} {t['level'] or '-':<7} {t['who']}"
                  f"{'  ' + t['note'] if t['note'] else ''}"
                  f"{'  [muted: ' + t['muted'] + ']' if t['muted'] else ''}")  # fmt: skip

    return _out(args, data, human)


def _action(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        body: dict[str, Any] = {"by": args.by}
        for k in ("note", "reason"):
            if getattr(args, k, None) is not None:
                body[k] = getattr(args, k)
        if getattr(args, "duration", None) is not None:
            body["duration_s"] = args.duration
        a = _call(args, "POST", f"/api/v1/alerts/{args.id}/{verb}", json=body)
        return _out(args, a, lambda a: print(f"{a['id']}: {a['state']}"))

    return run


def _silence_add(args: argparse.Namespace) -> int:
    body = {
        "matchers": parse_matchers(args.match), "duration_s": args.duration,
        "reason": args.reason, "author": args.author,
    }  # fmt: skip
    s = _call(args, "POST", "/api/v1/silences", json=body)
    return _out(args, s, lambda s: print(f"silence {s['id']} until {_ts(s['ends'])}"))


def _silence_list(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/api/v1/silences", params={"expired": args.expired})

    def human(items: list[dict[str, Any]]) -> None:
        for s in items:
            m = ",".join(f"{k}={'|'.join(v)}" for k, v in s["matchers"].items())
            print(f"{s['id']}  {_ts(s['starts'])} .. {_ts(s['ends'])}  {s['author']}: "
                  f"{s['reason']}  [{m}]")  # fmt: skip

    return _out(args, data, human)


def _silence_expire(args: argparse.Namespace) -> int:
    s = _call(args, "DELETE", f"/api/v1/silences/{args.id}")
    return _out(args, s, lambda s: print(f"silence {s['id']} expired"))


def _health(args: argparse.Namespace) -> int:
    return _out(args, _call(args, "GET", "/api/v1/health"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "alerts",
        help="operator verbs against the alert API (list, show, ack, shelve, close, silences)",
        description="List, inspect, acknowledge, shelve and close alerts and manage silences "
        "through the alert HTTP API of a running engine (alerts.api.listen).",
        epilog="example: RW_ALERTS_TOKEN=... riskwatch alerts list --open --level red",
    )
    p.add_argument("--url", default=os.environ.get("RW_ALERTS_URL", "http://127.0.0.1:9110"),
                   help="alert API base URL (env RW_ALERTS_URL)")  # fmt: skip
    p.add_argument("--token-file", help="file holding the API token (else env RW_ALERTS_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    asub = p.add_subparsers(dest="alerts_command", metavar="VERB")

    ls = asub.add_parser("list", help="list and filter alerts")
    ls.add_argument("--state", action="append", help="repeatable: firing, acknowledged, ...")
    ls.add_argument("--level", action="append", help="repeatable: red, orange, yellow, blue")
    for k in ("enterprise", "site", "rule", "sensor"):
        ls.add_argument(f"--{k}")
    ls.add_argument("--open", action="store_true", help="only alerts not closed")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(func=_list)

    sh = asub.add_parser("show", help="one alert with its history")
    sh.add_argument("id")
    sh.set_defaults(func=_show)

    def verb(name: str, path: str, help: str, *, note: bool = False, reason: bool = False,
             duration: str | None = None) -> None:  # fmt: skip
        v = asub.add_parser(name, help=help)
        v.add_argument("id")
        v.add_argument("--by", help="operator name recorded with the token's")
        if note:
            v.add_argument("--note", required=name == "close", help="note / disposition")
        if reason:
            v.add_argument("--reason", required=True)
        if duration:
            v.add_argument("--for", dest="duration", type=duration_seconds,
                           required=duration == "required", help="e.g. 30m, 2h")  # fmt: skip
        v.set_defaults(func=_action(path))

    verb("ack", "ack", "acknowledge an alert", note=True)
    verb("shelve", "shelve", "hide an alert for a bounded time", reason=True, duration="required")
    verb("unshelve", "unshelve", "bring a shelved alert back", note=True)
    verb("oos", "out-of-service", "sensor under maintenance", reason=True, duration="optional")
    verb("rts", "return-to-service", "sensor back from maintenance", note=True)
    verb("close", "close", "close a resolved alert with what was done", note=True)

    si = asub.add_parser("silence", help="create, list and expire silences")
    ssub = si.add_subparsers(dest="silence_command", metavar="SUBCOMMAND")
    sa = ssub.add_parser("add", help="mute matching alerts for a while")
    sa.add_argument("--match", action="append", required=True,
                    help="label=value, repeatable (value a,b or ~regex)")  # fmt: skip
    sa.add_argument("--for", dest="duration", type=duration_seconds, required=True)
    sa.add_argument("--reason", required=True)
    sa.add_argument("--author")
    sa.set_defaults(func=_silence_add)
    sl = ssub.add_parser("list", help="active silences")
    sl.add_argument("--expired", action="store_true", help="include expired ones")
    sl.set_defaults(func=_silence_list)
    se = ssub.add_parser("expire", help="end a silence now")
    se.add_argument("id")
    se.set_defaults(func=_silence_expire)
    si.set_defaults(func=lambda a: (si.print_help(), 2)[1])

    he = asub.add_parser("health", help="alarm-system health (flood, chattering, stale, TTA)")
    he.set_defaults(func=_health)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
