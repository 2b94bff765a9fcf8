"""The ``riskwatch`` command line.

Each verb lives in the module of the component it drives and registers itself through a
``register(subparsers)`` function; this file only lists them (:data:`COMMANDS`, imported
explicitly), so adding a verb touches one line here and no other component's code.

    riskwatch run -c engine.yaml        the engine
    riskwatch demo                      everything on one machine with simulated plants
    riskwatch simulate SCENARIO         publish simulated plants over MQTT
    riskwatch rules check|test FILES    lint and unit-test rule files
    riskwatch replay ...                history through a rule set
    riskwatch score IN.csv -o OUT.csv   offline anomaly scoring
    riskwatch alerts ...                operator verbs against the alert API
    riskwatch config init DIR           copy the bundled configs out for editing
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence

from riskwatch import __version__
from riskwatch.errors import RiskwatchError

__all__ = ["COMMANDS", "build_parser", "main"]

_Sub = argparse._SubParsersAction  # type: ignore[type-arg]


# Each verb's module is imported only when the parser is built with it: `riskwatch
# score` then starts without the engine, console and alert stacks.
def _engine(sub: _Sub) -> None:
    from riskwatch import engine_cli

    engine_cli.register(sub)


def _config(sub: _Sub) -> None:
    from riskwatch.config import cli

    cli.register(sub)


def _rules(sub: _Sub) -> None:
    from riskwatch.rules import cli

    cli.register(sub)


def _detectors(sub: _Sub) -> None:
    from riskwatch.detectors import cli

    cli.register(sub)


def _simulate(sub: _Sub) -> None:
    from riskwatch.sensors_sim import cli

    cli.register(sub)


def _demo(sub: _Sub) -> None:
    from riskwatch import demo

    demo.register(sub)


def _alerts(sub: _Sub) -> None:
    from riskwatch.alerts import cli

    cli.register(sub)


def _console(sub: _Sub) -> None:
    from riskwatch.console import cli

    cli.register(sub)


#: Each adds its verbs to the ``riskwatch`` parser, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[_Sub], None], ...] = (
    _engine,
    _config,
    _rules,
    _detectors,
    _simulate,
    _demo,
    _alerts,
    _console,
)
#: Verbs whose parser is built alone when they are the command (fast start-up).
SOLO: dict[str, Callable[[_Sub], None]] = {"score": _detectors}


def _verb(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option (or an option's value)."""
    it = iter(argv)
    for a in it:
        if a == "--log-level":
            next(it, None)
        elif not a.startswith("-"):
            return a
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskwatch",
        description="Streaming risk monitoring and early warning: MQTT sensor telemetry -> "
        "vectorised rules and detectors -> alerts, InfluxDB and Prometheus metrics.",
        epilog="Start with 'riskwatch demo' (runs everything on this machine), then "
        "'riskwatch config init mycfg/' to get editable configs, and "
        "'riskwatch run -c mycfg/engine.yaml'. Every verb has --help.",
    )
    parser.add_argument("--version", action="version", version=f"riskwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO)",
    )
    parser.set_defaults(func=None)  # a verb sets its own
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in (SOLO[only],) if only in SOLO else COMMANDS:
        register(sub)
    for p in _all_parsers(parser):
        _plain_help(p)
    return parser


#: reStructuredText roles (``:class:`~riskwatch.engine.Engine```) in docstrings used as help
_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def plain(text: str) -> str:
    """Help text without the docstring markup it was written in (verbs reuse their module
    docstrings, which Sphinx-style roles and double backticks make hard to read in a
    terminal).

    >>> plain("the engine (:class:`~riskwatch.engine.Engine`) and ``--duration 90s``")
    'the engine (Engine) and --duration 90s'
    """
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return text.replace("``", "")


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to one parser
                out += _all_parsers(child)
            for choice in action._choices_actions:  # the verbs' one-line help
                choice.help = plain(choice.help) if choice.help else choice.help
    return out


def _plain_help(parser: argparse.ArgumentParser) -> None:
    if parser.description:
        parser.description = plain(parser.description)
    if parser.epilog:
        parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = plain(action.help)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_verb(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.getLevelNamesMapping()[args.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpcore"):  # one INFO line per webhook POST drowns the log
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.func is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RiskwatchError as exc:
        print(f"riskwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
