"""``riskwatch run``: the engine as a long-running process."""

from __future__ import annotations

import argparse
import logging
import sys

from riskwatch.config.engine import load_engine_config

__all__ = ["register"]

log = logging.getLogger("riskwatch")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run",
        help="run the engine with an engine config file",
        description="Subscribe to sensor telemetry over MQTT, evaluate rules and detectors, "
        "raise alerts and write every reading to InfluxDB. SIGTERM/SIGINT stop it after "
        "flushing; SIGHUP reloads rules, detectors and the sensor catalogue (files are also "
        "watched for changes). Validate a config without running it with --check: it also "
        "lints the rule files against the catalogue (errors fail, as in 'rules check') and "
        "warns about alert matchers on rules that no loaded file defines. Rule and "
        "detector state (latches, timers, baselines) and the quality watermarks survive a "
        "stop or a crash in state.dir (default var/state beside the config): a snapshot "
        "every state.snapshot_every and a journal of the batches since, restored at start.",
        epilog="example: riskwatch run -c engine.yaml   "
        "(get an editable set with: riskwatch config init mycfg/)",
    )
    p.add_argument("-c", "--config", required=True, help="engine YAML file")
    p.add_argument(
        "--check",
        action="store_true",
        help="only validate the config (and lint the rules against the catalogue) and exit",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = load_engine_config(args.config)
    from riskwatch.engine import Engine

    if args.check:
        eng = Engine(cfg)
        n = eng.check()
        stages = ", ".join(n["stages"]) or "none"
        state = cfg.state_dir()
        for w in n["warnings"]:
            print(w, file=sys.stderr)
        where = state if state is not None else "off"
        print(f"{args.config}: OK ({n['sensors']} catalogued sensors, stages: {stages}; "
              f"{len(n['warnings'])} warning(s)); engine state: {where}")  # fmt: skip
        return 0

    return Engine(cfg).run_forever()
