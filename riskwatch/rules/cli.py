"""``riskwatch rules check`` and ``riskwatch rules test``.

    riskwatch rules check rules/*.yaml --catalog catalog/mine1.csv
    riskwatch rules test rules/*_test.yaml

Both exit 1 on any error or failed test.
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
        help="schema and semantic lint of rule files",
        description="Report unknown keys, wrong types, clear values on the wrong side of "
        "their trigger, levels out of order, unknown calendars and rule references; with "
        "--catalog also selectors that match no sensor, unknown columns and setpoints looser "
        "than the regulatory cap. Exit code 1 on errors (warnings do not fail).",
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
