"""``riskwatch rules check`` and ``riskwatch rules test``.

    riskwatch rules check rules/*.yaml --catalog catalog/mine1.csv
    riskwatch rules test rules/*_test.yaml
    riskwatch replay history.csv -r rules/coal_mine.yaml [--against rules/new.yaml]

``check`` and ``test`` exit 1 on any error or failed test; ``replay --against`` exits 1
when the two rule sets disagree.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rules",
        help="lint and unit-test rule files",
        description="Tools for rule files: 'check' lints them (schema and semantics, with "
        "file:line:key for every finding), 'test' runs YAML rule tests.",
    )
    rsub = p.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    c = rsub.add_parser(
        "check",
        aliases=["lint"],
        help="schema and semantic lint of rule files (also: rules lint)",
        description="Report unknown keys, wrong types, clear values on the wrong side of "
        "their trigger, levels out of order, unknown calendars and rule references, and "
        "change windows too long to hold exactly; with --catalog also setpoint names that "
        "are no catalogue column (an error, naming the closest column), selectors that "
        "match no sensor, rules that reach another domain's sensors, unknown columns and "
        "setpoints looser than the regulatory cap. Exit code 1 on errors (warnings do not "
        "fail).",
        epilog="example: riskwatch rules check rules/coal_mine.yaml --catalog catalog/mine1.csv",
    )
    c.add_argument("files", nargs="+", help="rule YAML files")
    c.add_argument("--catalog", nargs="*", default=[], help="sensor catalogue CSV/YAML files")
    c.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    c.set_defaults(func=_check)
    t = rsub.add_parser(
        "test",
        help="run YAML rule unit tests",
        description="Run rule tests: input series, evaluation times and the alerts expected "
        "at each; a failure prints expected vs got. Exit code 1 on any failure.",
        epilog="example: riskwatch rules test rules/coal_mine_test.yaml",
    )
    t.add_argument("files", nargs="+", help="rule test YAML files")
    t.set_defaults(func=_test)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    r = sub.add_parser(
        "replay",
        help="run recorded history through a rule set (and diff two rule sets)",
        description="Feed a history CSV (time, sensor or enterprise/site/sensor, value, "
        "optional quality) through a rule set with the engine's own evaluation code on the "
        "recorded timestamps, and print every transition. With --against, run a second rule "
        "set on the same history and print only the transitions that differ (- only in the "
        "first set, + only in the second) with a per-rule summary.",
        epilog="example: riskwatch replay march.csv -r rules/coal_mine.yaml "
        "--against rules/coal_mine_new.yaml --catalog catalog/mine1.csv",
    )
    r.add_argument("history", help="history CSV")
    r.add_argument("-r", "--rules", nargs="+", required=True, help="rule YAML files")
    r.add_argument("--against", nargs="+", help="a second set of rule files to compare")
    r.add_argument("--catalog", nargs="*", default=[], help="sensor catalogue CSV/YAML files")
    r.add_argument("--batch", type=int, default=10_000, help="readings per batch")
    r.add_argument("--tick", default="10s", help="timer interval in event time (default 10s)")
    r.set_defaults(func=_replay)


def _check(args: argparse.Namespace) -> int:
    from riskwatch.rules.lint import check_files

    findings = check_files(args.files, args.catalog)
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        if f.severity == "error" or not args.quiet:
            print(f)
    n_warn = len(findings) - len(errors)
    print(
        f"{len(args.files)} file(s): {len(errors)} error(s), {n_warn} warning(s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


def _test(args: argparse.Namespace) -> int:
    from riskwatch.errors import ConfigErrors
    from riskwatch.rules.testing import run_test_file

    ok = True
    for f in args.files:
        try:
            passed, lines = run_test_file(f)
        except ConfigErrors as exc:
            print(f"FAIL {f}: {exc}")
            ok = False
            continue
        ok &= passed
        print("\n".join(lines))
    return 0 if ok else 1


def _replay(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from riskwatch.catalog import SensorRegistry
    from riskwatch.durations import parse_duration
    from riskwatch.rules.replay import Transition, diff, load_history, replay, summary
    from riskwatch.rules.stage import compile_files

    tick = parse_duration(args.tick)

    def run(files: list[str]) -> list[Transition]:
        reg = SensorRegistry()
        if args.catalog:
            reg.load_catalog(args.catalog)
        rs = compile_files(files, reg)
        hist = load_history(args.history, reg)
        sigs = replay(rs, hist, batch_size=args.batch, tick_ns=tick)
        return [Transition.of(s, reg) for s in sigs]

    def ts(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")

    a = run(args.rules)
    if not args.against:
        for t in a:
            print(f"{ts(t.time)} {t.rule} {t.subject} {t.state} {t.level}")
        print(f"{len(a)} transition(s)", file=sys.stderr)
        return 0
    b = run(args.against)
    only_a, only_b = diff(a, b)
    for sign, t in sorted([("-", t) for t in only_a] + [("+", t) for t in only_b],
                          key=lambda x: (x[1], x[0])):  # fmt: skip
        print(f"{sign} {ts(t.time)} {t.rule} {t.subject} {t.state} {t.level}")
    sa, sb = summary(a), summary(b)
    print("rule: firing transitions (subjects)  first -> second", file=sys.stderr)
    for rule in sorted(set(sa) | set(sb)):
        x = sa.get(rule, {"firing": 0, "subjects": set()})
        y = sb.get(rule, {"firing": 0, "subjects": set()})
        print(f"  {rule}: {x['firing']} ({len(x['subjects'])}) -> {y['firing']} "
              f"({len(y['subjects'])})", file=sys.stderr)  # fmt: skip
    print(f"{len(only_a)} only in the first set, {len(only_b)} only in the second",
          file=sys.stderr)  # fmt: skip
    return 1 if only_a or only_b else 0
