"""The ``riskwatch`` command line.

Each verb lives in the module of the component it drives and registers itself through a
``register(subparsers)`` function; this file only collects them, so adding a verb never
touches another component's code.

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
import importlib
import logging
import sys
from collections.abc import Sequence

from riskwatch import __version__
from riskwatch.errors import RiskwatchError

__all__ = ["build_parser", "main"]

# Modules that contribute verbs. A module listed here that is not present yet is skipped.
COMMAND_MODULES = (
    "riskwatch.engine_cli",
    "riskwatch.config.cli",
    "riskwatch.rules.cli",
    "riskwatch.detectors.cli",
    "riskwatch.sensors_sim.cli",
    "riskwatch.demo",
    "riskwatch.alerts.cli",
    "riskwatch.console.cli",
)


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
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
