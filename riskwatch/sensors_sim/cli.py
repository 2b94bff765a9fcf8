"""``riskwatch simulate``: publish a simulated plant scenario over MQTT.

Three ways to run:

- live (default ``--speed 1``): readings carry the current time, each sensor at its
  reporting period; ``--speed 60`` replays an hour of plant time in a minute (the run then
  ends about now: timestamps start ``duration`` ago unless ``--start`` is given);
  ``--speed max`` as fast as possible;
- load generator (``--rate N``): N readings/s for ``--duration`` seconds, payloads
  pre-encoded from the scenario and stamped with the current time; the run says whether
  the rate was reached (exit status 3 if not);
- ``--list``: the bundled scenarios, one line each.

Ground-truth labels of injected events go to ``--labels`` (JSONL, or CSV by suffix).
"""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from riskwatch.durations import parse_duration
from riskwatch.sensors_sim.labels import LabelWriter
from riskwatch.sensors_sim.publisher import (
    MqttSink,
    SimulatorError,
    build_pool,
    encoder_for,
    run_rate,
    run_scenario,
)
from riskwatch.sensors_sim.scenario import (
    Scenario,
    bundled_scenarios,
    load_scenario,
)
from riskwatch.sensors_sim.simulator import Simulator, resolve_start

__all__ = ["list_scenarios", "register", "write_calendar", "write_catalog"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "simulate",
        help="publish a simulated plant scenario over MQTT (or act as a load generator)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  riskwatch simulate --list\n"
        "  riskwatch simulate coal_mine --mqtt mqtt://127.0.0.1:1883 --labels labels.jsonl\n"
        "  riskwatch simulate mixed --speed 60 --duration 2h\n"
        "  riskwatch simulate load_100k --rate 50000 --duration 30 --form columns "
        "--batch-size 500 --qos 1",
    )
    p.add_argument("scenario", nargs="?", help="bundled scenario name or a scenario YAML file")
    p.add_argument("--list", action="store_true", help="list the bundled scenarios and exit")
    p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL")
    p.add_argument(
        "--speed",
        default="1",
        help="plant time per wall time: 1 = real time, 60 = an hour a minute, max = no pacing",
    )
    p.add_argument("--rate", type=float, help="load generator: readings per second")
    p.add_argument("--duration", help="run length (e.g. 90s, 2h); default: the scenario's")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--start", help="plant time of the first reading (RFC 3339)")
    p.add_argument(
        "--scale", type=int, help="multiply every plant's size (100k sensors: load_100k)"
    )
    p.add_argument("--labels", help="ground-truth label file (.jsonl or .csv)")
    p.add_argument(
        "--form",
        choices=["single", "list", "envelope", "columns"],
        help="payload form (default: the scenario's)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="max readings per message")
    p.add_argument("--qos", type=int, default=1, choices=[0, 1, 2])
    p.add_argument("--client-id", default="", help="MQTT client id (default: random)")
    p.add_argument("--catalog-out", help="write the scenario's sensor catalogue CSV and exit")
    p.add_argument("--calendar-out", help="also write the shutdown orders as a rules calendar CSV")
    p.set_defaults(func=_main)


def list_scenarios() -> list[str]:
    """One line per bundled scenario: name, sensors, events, description."""
    out = []
    for name, path in bundled_scenarios().items():
        sc = load_scenario(path)
        sim_sensors = _count_sensors(sc)
        out.append(
            f"{name:<14} {sim_sensors:>7} sensors {len(sc.events):>3} events  {sc.description}"
        )
    return out


def _count_sensors(sc: Scenario) -> int:
    from riskwatch.sensors_sim.plants import BUILDERS

    return sum(len(BUILDERS[p.type](p).rows) for p in sc.plants)


def write_catalog(sim: Simulator, path: str | Path) -> int:
    """The simulated sensors as a catalogue (point table) CSV; returns the row count."""
    head, rows = sim.table.catalog_rows()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(head)
        w.writerows(rows)
    return len(rows)


def write_calendar(sim: Simulator, path: str | Path) -> int:
    """The scenario's shutdown orders as a rules calendar CSV."""
    rows = sim.shutdown_calendar()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["enterprise", "site", "start", "end", "reason"], lineterminator="\n"
        )
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def scaled(sc: Scenario, scale: int | None) -> Scenario:
    if not scale or scale == 1:
        return sc
    return replace(sc, plants=[replace(p, scale=p.scale * scale) for p in sc.plants])


def _main(args: argparse.Namespace) -> int:
    if args.list:
        for line in list_scenarios():
            print(line)
        return 0
    if not args.scenario:
        print("riskwatch simulate: give a SCENARIO (see --list)", file=sys.stderr)
        return 2
    sc = scaled(load_scenario(args.scenario), args.scale)
    if args.start:
        sc = replace(sc, start=args.start)
    speed: float | None
    if str(args.speed).lower() in ("max", "inf", "0"):
        speed = None
    else:
        try:
            speed = float(args.speed)
        except ValueError:
            raise SimulatorError(f"--speed must be a number or 'max', got {args.speed!r}") from None
        if speed <= 0:
            raise SimulatorError("--speed must be > 0")
    try:
        duration = parse_duration(args.duration) / 1e9 if args.duration else None
    except ValueError as exc:
        raise SimulatorError(f"--duration: {exc}") from None
    if args.rate is not None:
        duration = duration if duration is not None else 10.0
    dur = duration if duration is not None else sc.duration_s
    live = speed == 1.0 or args.rate is not None
    start = resolve_start(sc, live=live, now_ns=time.time_ns(), duration_s=dur)
    sim_duration = dur if args.rate is None else max(dur, sc.duration_s)
    sim = Simulator(sc, start_ns=start, seed=args.seed, duration_s=sim_duration)
    form = args.form or sc.form
    if args.catalog_out:
        n = write_catalog(sim, args.catalog_out)
        print(f"wrote {n} sensors to {args.catalog_out}")
        if args.calendar_out:
            write_calendar(sim, args.calendar_out)
        return 0
    if args.calendar_out:
        n = write_calendar(sim, args.calendar_out)
        print(f"wrote {n} shutdown orders to {args.calendar_out}")
    encoder = encoder_for(sim, form, args.batch_size)
    stop = threading.Event()
    old = signal.signal(signal.SIGINT, lambda s, f: stop.set())
    try:
        if args.rate is not None:
            return _rate(args, sim, encoder, stop, form, dur)
        return _run(args, sc, sim, encoder, stop, speed)
    finally:
        signal.signal(signal.SIGINT, old)


def _rate(args: argparse.Namespace, sim: Simulator, encoder: Any, stop: threading.Event,
          form: str, dur: float) -> int:  # fmt: skip
    pool_target = int(min(max(args.rate * 2, 10_000), 500_000))
    t0 = time.monotonic()
    pool = build_pool(sim, encoder, min_readings=pool_target)
    print(
        f"load generator: {len(sim.table)} sensors, {len(pool)} pre-encoded messages "
        f"({sum(m for _, _, m in pool)} readings) in {time.monotonic() - t0:.1f} s; "
        f"publishing {args.rate:g} readings/s for {dur:g} s to {args.mqtt}",
        flush=True,
    )
    sink = MqttSink(args.mqtt, qos=args.qos, client_id=args.client_id)
    try:
        rep = run_rate(
            pool, sink, rate=args.rate, duration_s=dur, batch_size=args.batch_size,
            qos=args.qos, form=form, stop=stop,
        )  # fmt: skip
    finally:
        sink.close()
    print(rep.summary(), flush=True)
    return 0 if rep.reached else 3


def _run(args: argparse.Namespace, sc: Scenario, sim: Simulator, encoder: Any,
         stop: threading.Event, speed: float | None) -> int:  # fmt: skip
    labels_path = args.labels or f"{sc.name}.labels.jsonl"
    writer = LabelWriter.open(labels_path)
    sink = MqttSink(args.mqtt, qos=args.qos, client_id=args.client_id)
    print(
        f"simulating {sc.name}: {len(sim.table)} sensors on {len(sim.gateway_keys)} gateways, "
        f"{len(sim.labels)} labelled event targets, {sim.duration_s:g} s of plant time at "
        f"speed {'max' if speed is None else f'{speed:g}'} -> {args.mqtt} "
        f"(form {encoder.form}, QoS {args.qos}); labels: {labels_path}",
        flush=True,
    )
    try:
        rep = run_scenario(sim, encoder, sink, speed=speed, stop=stop, on_labels=writer.write)
    finally:
        sink.close()
        writer.close()
    print(rep.summary(), flush=True)
    print(f"{writer.count} label records in {labels_path}", flush=True)
    if rep.interrupted:
        return 130
    return 0 if rep.kept_up and rep.flushed else 3
