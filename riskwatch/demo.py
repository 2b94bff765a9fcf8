"""``riskwatch demo``: the whole system on one machine, with nothing to install but the package.

What it starts:

- an MQTT broker: the one given by ``--mqtt``, else a local Mosquitto if
  ``127.0.0.1:1883`` answers, else an embedded pure-Python broker (amqtt) in a thread
  (``--embedded-broker`` forces it);
- storage: the InfluxDB 1.x given by ``--influx``, else an embedded local store (line
  protocol appended to ``readings.lp`` in the work folder, size-capped) — ``--no-store``
  turns storage off;
- the engine (:class:`riskwatch.engine.Engine`) with the bundled rule packs and the sample
  catalogue of the simulated plants, alerts in a SQLite file;
- the ``mixed`` scenario (a coal mine, a tank farm, a tailings pond and the electricity
  meters of these enterprises) published live, with faults that raise alerts within the
  first minute and recur every ten minutes; ground-truth labels go to ``labels.jsonl``.

Its topics are its own, so a demo on a shared broker never looks like production: readings
on ``rw-demo/<enterprise>/<site>/<gateway>``, alerts on ``rw-demo-alerts/<enterprise>``,
per-site summaries on ``rw-demo-alerts-summary/...`` and dead letters on
``rw-demo-deadletter`` (``--topic-prefix`` picks another prefix; ``--topic-prefix rw`` the
production defaults).

It prints where to look (metrics URL, alert topic with a ready ``mosquitto_sub`` line for
the broker in use, work folder), a line for every raise (``ALERT``), level change
(``LEVEL UP`` / ``STEP DOWN``) and clear (``CLEAR``), and every few seconds a summary
line: readings/s into the engine and open alerts by level, counted as the console's
board counts them (every open alert, cleared-but-unacknowledged ones included). Ctrl-C
stops everything cleanly; ``--duration`` bounds the run. The work folder keeps a ready
``engine.yaml`` to go on with ``riskwatch run -c``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from riskwatch.errors import RiskwatchError

if TYPE_CHECKING:
    from riskwatch.engine import Engine

__all__ = ["EmbeddedBroker", "LocalStore", "register", "run_demo"]

log = logging.getLogger("riskwatch.demo")

LEVELS = ("red", "orange", "yellow", "blue")
RULE_PACKS = ("coal_mine.yaml", "hazchem.yaml", "tailings.yaml", "electricity.yaml")
#: the demo's own topics, apart from production's ``rw/...`` and ``rw-alerts/...``
DEFAULT_PREFIX = "rw-demo"


class DemoError(RiskwatchError):
    """The demo could not start one of its parts."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run everything on this machine: broker, engine, simulated plants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  riskwatch demo\n  riskwatch demo --duration 5m\n"
        "  riskwatch demo --mqtt mqtt://127.0.0.1:1883 --influx http://127.0.0.1:8086",
    )
    p.add_argument("--mqtt", help="use this broker (default: local Mosquitto, else embedded)")
    p.add_argument("--topic-prefix", default=DEFAULT_PREFIX,
                   help=f"MQTT topic prefix (default {DEFAULT_PREFIX}: readings on "
                   f"{DEFAULT_PREFIX}/..., alerts on {DEFAULT_PREFIX}-alerts/...; "
                   "'rw' uses the production topics)")  # fmt: skip
    p.add_argument(
        "--embedded-broker", action="store_true", help="always start the embedded broker"
    )
    p.add_argument("--influx", help="InfluxDB 1.x URL (default: the embedded local store)")
    p.add_argument("--influx-db", default="riskwatch", help="InfluxDB database (default riskwatch)")
    p.add_argument("--no-store", action="store_true", help="do not store readings at all")
    p.add_argument("--duration", help="stop after this long (e.g. 90s, 10m); default: Ctrl-C")
    p.add_argument("--no-detectors", action="store_true", help="rules only (no anomaly detectors)")
    p.add_argument("--scenario", default="mixed", help="scenario to simulate (default mixed)")
    p.add_argument("--seed", type=int, help="simulator seed (default: the scenario's)")
    p.add_argument(
        "--workdir", help="folder for config, alerts, store, labels (default: a temp dir)"
    )
    p.add_argument("--metrics", default="127.0.0.1:9108", help="metrics listen address")
    p.add_argument("--console", default="127.0.0.1:8080",
                   help="operator console listen address ('' for none)")  # fmt: skip
    p.add_argument("--summary-every", type=float, default=5.0, help="seconds between summaries")
    p.add_argument("-v", "--verbose", action="store_true", help="show the engine's log")
    p.set_defaults(func=run_demo)


# ---------------------------------------------------------------------------- parts
def mosquitto_sub_hint(url: str, topic: str) -> str:
    """A ``mosquitto_sub`` line for ``topic`` on the broker at ``url`` (host and port
    always given: the embedded broker may sit on another port than 1883).

    >>> mosquitto_sub_hint("mqtt://127.0.0.1:18830", "rw-demo-alerts/#")
    "mosquitto_sub -h 127.0.0.1 -p 18830 -t 'rw-demo-alerts/#' -v"
    >>> mosquitto_sub_hint("mqtts://broker.example", "x/#")
    "mosquitto_sub -h broker.example -p 8883 -t 'x/#' -v"
    """
    from urllib.parse import urlsplit

    u = urlsplit(url)
    tls = u.scheme in ("mqtts", "ssl", "tls")
    port = u.port or (8883 if tls else 1883)
    return f"mosquitto_sub -h {u.hostname or '127.0.0.1'} -p {port} -t '{topic}' -v"


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker (pure Python, MQTT 3.1.1) on loopback, in a thread of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._run, name="riskwatch-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise DemoError(f"embedded MQTT broker did not start: {self._error or 'timeout'}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await broker.start()
        self._ready.set()
        await self._stopped.wait()
        await broker.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)


class LocalStore:
    """The embedded store: each write appends its line protocol to a file (the format
    InfluxDB imports with ``influx -import`` or ``/write``). When the file passes
    ``max_bytes`` it is rotated to ``<name>.1`` (one old file kept), so disk use stays
    bounded. Implements the engine's storage ``Writer`` protocol."""

    def __init__(self, path: str | Path, *, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"file://{self.path.resolve()}"
        self.max_bytes = max_bytes
        self.points = 0
        self._lock = threading.Lock()
        self._fh = self.path.open("ab")

    def write(self, body: bytes, n_points: int) -> None:
        with self._lock:
            if self._fh.tell() + len(body) > self.max_bytes:
                self._fh.close()
                self.path.replace(self.path.with_name(self.path.name + ".1"))
                self._fh = self.path.open("ab")
            self._fh.write(body if body.endswith(b"\n") else body + b"\n")
            self._fh.flush()
            self.points += n_points

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def prepare_workdir(workdir: Path, sim: Any, scenario_name: str) -> tuple[Path, list[Path]]:
    """Copy the bundled rule packs (with a shutdown-orders calendar that includes the
    simulated orders) and write the scenario's catalogue; return (catalogue, rule files)."""
    from riskwatch.sensors_sim.cli import write_catalog

    src = Path(str(resources.files("riskwatch") / "config" / "rules"))
    rules = workdir / "rules"
    if rules.exists():
        shutil.rmtree(rules)
    shutil.copytree(src, rules, ignore=shutil.ignore_patterns("*_test.yaml", "__pycache__"))
    cal = rules / "calendars" / "shutdown_orders.csv"
    with cal.open("a", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["enterprise", "site", "start", "end", "reason"],
                           lineterminator="\n")  # fmt: skip
        w.writerows(sim.shutdown_calendar())
    catalog = workdir / "catalog" / f"{scenario_name}.csv"
    write_catalog(sim, catalog)
    dsrc = Path(str(resources.files("riskwatch") / "config" / "detectors"))
    if dsrc.is_dir():
        ddst = workdir / "detectors"
        if ddst.exists():
            shutil.rmtree(ddst)
        shutil.copytree(dsrc, ddst, ignore=shutil.ignore_patterns("__pycache__"))
    return catalog, [rules / p for p in RULE_PACKS if (rules / p).exists()]


def detector_files(workdir: Path) -> list[Path]:
    """The bundled detector configs copied by :func:`prepare_workdir` (used when the
    detectors package provides a stage)."""
    return sorted((workdir / "detectors").glob("*.yaml"))


def engine_yaml(
    *,
    mqtt_url: str,
    protocol: str,
    influx_url: str | None,
    influx_db: str,
    catalog: Path,
    rules: list[Path],
    metrics: str | None,
    detectors: list[Path] | None = None,
    console: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    storage = (
        f"  influx: {{url: '{influx_url}', api: v1, database: '{influx_db}'}}\n"
        if influx_url
        else "  influx: null\n"
    )
    base = catalog.parent.parent

    def paths(ps: list[Path]) -> str:
        return "[" + ", ".join(f"'{p.relative_to(base)}'" for p in ps) + "]"

    lines = [
        "# written by riskwatch demo; run it again with: riskwatch run -c engine.yaml",
        f"mqtt: {{url: '{mqtt_url}', client_id: 'riskwatch-demo-{int(time.time())}', "
        f"protocol: '{protocol}', clean_start: true, session_expiry_s: 60, "
        f"topics: ['{prefix}/#'], topic_template: '{prefix}/{{enterprise}}/{{site}}/{{gateway}}'}}",
        "ingest:\n  batch_max_wait_ms: 100\n"
        f"  deadletter: {{file: var/deadletter.jsonl, topic: '{prefix}-deadletter'}}",
        f"storage:\n{storage}  spool_dir: var/spool",
        f"catalog: {paths([catalog])}",
        f"rules: {paths(rules)}",
    ]
    if detectors:
        lines.append(f"detectors: {paths(detectors)}")
    lines += [
        "alerts:\n  store: var/alerts.sqlite\n  notify:\n"
        f"    - {{kind: mqtt, topic: '{prefix}-alerts/{{enterprise}}', "
        f"summary_topic: '{prefix}-alerts-summary/{{enterprise}}/{{site}}'}}",
        "state: {dir: var/state, snapshot_every: 30s}  # rules and detectors survive a restart",
        f"metrics: {{listen: {repr(metrics) if metrics else 'null'}}}",
    ]
    if console:
        lines.append(f"console: {{listen: '{console}', users: var/console-users.json}}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the run
class Demo:
    """All parts of one demo run (also used by the tests and bench)."""

    def __init__(self, args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
        self.args = args
        self.out = out
        self.stop = threading.Event()
        self.broker: EmbeddedBroker | None = None
        self.engine: Engine | None = None
        self.store: LocalStore | None = None
        self.sim_thread: threading.Thread | None = None
        self.sim_report: Any = None
        self.sim_error: BaseException | None = None
        self.raised: Counter[str] = Counter()
        self.first_alert_s: float | None = None
        self.t_start = time.monotonic()
        self.workdir = Path(".")  # the run's folder, once start() made it

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # -- start -------------------------------------------------------------------
    def start(self) -> None:
        from riskwatch.config.engine import load_engine_config_text
        from riskwatch.durations import parse_duration
        from riskwatch.engine import Engine
        from riskwatch.sensors_sim.labels import LabelWriter
        from riskwatch.sensors_sim.publisher import MqttSink, encoder_for
        from riskwatch.sensors_sim.scenario import load_scenario
        from riskwatch.sensors_sim.simulator import Simulator, resolve_start

        a = self.args
        wd = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="riskwatch-demo-"))
        wd.mkdir(parents=True, exist_ok=True)
        self.workdir = wd.resolve()
        # broker
        if a.mqtt:
            url, kind, protocol = a.mqtt, "given", "5"
        elif not a.embedded_broker and tcp_open("127.0.0.1", 1883):
            url, kind, protocol = "mqtt://127.0.0.1:1883", "local Mosquitto", "5"
        else:
            self.broker = EmbeddedBroker(free_port(1883))
            self.broker.start()
            url, kind, protocol = self.broker.url, "embedded (amqtt)", "3.1.1"
        self.mqtt_url = url
        # plants
        sc = load_scenario(a.scenario)
        dur = parse_duration(a.duration) / 1e9 if a.duration else None
        self.duration_s = dur
        sim_dur = max(sc.duration_s, (dur or 0) + 60)
        start = resolve_start(sc, live=True, now_ns=time.time_ns(), duration_s=sim_dur)
        sim = Simulator(sc, start_ns=start, seed=a.seed, duration_s=sim_dur)
        catalog, rules = prepare_workdir(self.workdir, sim, sc.name)
        # engine
        metrics = None
        if a.metrics:
            host, _, port = a.metrics.rpartition(":")
            metrics = f"{host or '127.0.0.1'}:{free_port(int(port))}"
        text = engine_yaml(
            mqtt_url=url, protocol=protocol, influx_url=a.influx, influx_db=a.influx_db,
            catalog=catalog, rules=rules, metrics=metrics,
            detectors=None if a.no_detectors else detector_files(self.workdir),
            console=self._console_address(), prefix=a.topic_prefix,
        )  # fmt: skip
        cfg_path = self.workdir / "engine.yaml"
        cfg_path.write_text(text, encoding="utf-8")
        cfg = replace(load_engine_config_text(text, file=str(cfg_path)), source=str(cfg_path))
        kw: dict[str, Any] = {}
        if a.no_store:
            kw["writer"] = None
            where_store = "off (--no-store)"
        elif a.influx:
            where_store = f"InfluxDB {a.influx} database {a.influx_db}"
        else:
            self.store = LocalStore(self.workdir / "readings.lp")
            kw["writer"] = self.store
            where_store = f"embedded local store {self.store.path} (line protocol)"
        self.console_login = self._console_user(catalog)
        engine = self.engine = Engine(cfg, **kw)
        engine.start()
        engine.sink.add_listener(self._on_transitions)
        # simulator
        self.labels = LabelWriter.open(self.workdir / "labels.jsonl")
        sink = MqttSink(url, qos=1, client_id=f"riskwatch-demo-sim-{int(time.time())}")
        self._sim_sink = sink
        prefix = a.topic_prefix
        encoder = encoder_for(sim, sc.form, 500, f"{prefix}/{{enterprise}}/{{site}}/{{gateway}}")
        self.sim = sim
        self.sim_thread = threading.Thread(
            target=self._simulate, args=(sim, encoder, sink), name="riskwatch-sim", daemon=True
        )
        self.sim_thread.start()
        self.say(
            "riskwatch demo is running\n"
            f"  MQTT broker:   {url} ({kind}); readings on {prefix}/<enterprise>/<site>/<gateway>\n"
            f"  alert topic:   {prefix}-alerts/<enterprise> "
            f"(e.g. {mosquitto_sub_hint(url, f'{prefix}-alerts/#')})\n"
            f"  metrics:       {engine.metrics_url or 'off'}\n"
            f"  console:       {engine.console_url or 'off'}"
            f"{self.console_login}\n"
            f"  storage:       {where_store}\n"
            f"  plants:        {sc.name}: {len(sim.table)} sensors on {len(sim.gateway_keys)} "
            f"gateways ({', '.join(sorted({p.type for p in sc.plants}))})\n"
            f"  work folder:   {self.workdir} (engine.yaml, alerts, state, labels, dead letters)\n"
            f"  stop with Ctrl-C{'' if dur is None else f' (or after {a.duration})'}"
        )

    def _console_address(self) -> str | None:
        c = self.args.console
        if not c:
            return None
        host, _, port = c.rpartition(":")
        return f"{host or '127.0.0.1'}:{free_port(int(port))}"

    def _console_user(self, catalog: Path) -> str:
        """A demo operator with a fresh random password (the console needs a log-in),
        scoped to the simulated enterprises: an operator, not an admin who sees
        everything, so a demo left listening grants no more than the demo shows."""
        if not self.args.console:
            return ""
        import secrets

        from riskwatch.console.users import UserStore

        with catalog.open(encoding="utf-8", newline="") as fh:
            ents = sorted({row["enterprise"] for row in csv.DictReader(fh)})
        users = UserStore(self.workdir / "var" / "console-users.json")
        u = users.get("demo")
        if u is None:
            pw = secrets.token_urlsafe(9)
            users.add("demo", pw, "operator", ents)
            return f" (user demo, operator, password {pw})"
        if u.role != "operator" or set(u.enterprises) != set(ents):  # an older demo's admin
            users.set_role("demo", "operator")
            users.set_enterprises("demo", ents)
        return " (user demo, operator, password as before in this work folder)"

    def _simulate(self, sim: Any, encoder: Any, sink: Any) -> None:
        from riskwatch.sensors_sim.publisher import run_scenario

        try:
            self.sim_report = run_scenario(
                sim, encoder, sink, speed=1.0, stop=self.stop, on_labels=self.labels.write
            )
        except BaseException as exc:
            self.sim_error = exc
            self.stop.set()

    def _on_transitions(self, items: list[tuple[Any, Any]]) -> None:
        """One line per raise (``ALERT``), level change (``LEVEL UP`` / ``STEP DOWN``: a
        level less severe than the alert's worst) and clear (``CLEAR``)."""
        for alert, tr in items:
            raised = tr.action in ("open", "firing") and tr.to_state == "firing"
            if not (raised or tr.action in ("level", "resolved")):
                continue
            lvl = LEVELS[tr.level - 1] if tr.level else LEVELS[(alert.max_level or 4) - 1]
            if raised:
                tag = "ALERT"
                self.raised[lvl] += 1
                if self.first_alert_s is None:
                    self.first_alert_s = time.monotonic() - self.t_start
            elif tr.action == "resolved":
                tag = "CLEAR"
            else:
                down = tr.level is not None and tr.level > (alert.max_level or tr.level)
                tag = "STEP DOWN" if down else "LEVEL UP"
            where = f"{alert.enterprise}/{alert.site}/{alert.sensor or alert.group or ''}"
            msg = alert.message or ""
            if msg.startswith(where):
                msg = msg[len(where) :].lstrip(": ")
            self.say(
                f"  {tag:<9} {lvl.upper():<6} {alert.rule:<22} {where}: {msg}"
                f" [t+{time.monotonic() - self.t_start:.0f}s]"
            )

    # -- run ---------------------------------------------------------------------
    def open_by_level(self) -> dict[str, int]:
        """Open alerts as the console's board counts them: every open alert (pending,
        firing, acknowledged, cleared but unacknowledged, shelved), by its current level,
        else its worst; ``unacked`` those nobody acknowledged yet."""
        counts = dict.fromkeys((*LEVELS, "unacked"), 0)
        if self.engine is None:
            return counts
        for al in self.engine.sink.open_alerts():
            lv = al.level or al.max_level or 4
            counts[LEVELS[lv - 1]] += 1
            counts["unacked"] += 0 if al.acked else 1
        return counts

    def summary_line(self, rate: float) -> str:
        o = self.open_by_level()
        total = sum(o[lv] for lv in LEVELS)
        return (
            f"[t+{time.monotonic() - self.t_start:4.0f}s] {rate:7.1f} readings/s | open alerts: "
            f"{total} (red {o['red']}, orange {o['orange']}, yellow {o['yellow']}, "
            f"blue {o['blue']}; {o['unacked']} unacknowledged)"
        )

    def wait(self) -> None:
        assert self.engine is not None, "start() first"
        every = max(0.5, float(self.args.summary_every))
        last_n = self.engine.readings_total
        last_t = time.monotonic()
        end = None if self.duration_s is None else self.t_start + self.duration_s
        while not self.stop.is_set():
            timeout = every if end is None else max(0.0, min(every, end - time.monotonic()))
            if self.stop.wait(timeout):
                break
            now = time.monotonic()
            n = self.engine.readings_total
            self.say(self.summary_line((n - last_n) / max(1e-9, now - last_t)))
            last_n, last_t = n, now
            if end is not None and now >= end:
                break
            if self.sim_thread is not None and not self.sim_thread.is_alive():
                break

    def shutdown(self) -> None:
        self.stop.set()
        if self.sim_thread is not None:
            self.sim_thread.join(30)
            self._sim_sink.close()
            self.labels.close()
        if self.engine is not None:
            self.engine.stop()
        if self.store is not None:
            self.store.close()
        if self.broker is not None:
            self.broker.stop()
        raised = ", ".join(f"{k} {self.raised.get(k, 0)}" for k in LEVELS)
        first = (
            "no alert raised"
            if self.first_alert_s is None
            else f"first alert after {self.first_alert_s:.0f} s"
        )
        self.say(
            f"stopped cleanly: {self.engine.readings_total if self.engine else 0} readings "
            f"processed, alerts raised: {raised}; {first}; "
            f"files in {self.workdir}"
        )
        if self.sim_error is not None:
            raise DemoError(f"simulator failed: {self.sim_error}") from self.sim_error


def run_demo(args: argparse.Namespace) -> int:
    if not args.verbose:
        # the summary lines are the demo's output; the engine's log stays in --verbose
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("riskwatch.ingest.deadletter").setLevel(logging.ERROR)
        logging.getLogger("riskwatch.alerts").setLevel(logging.ERROR)  # the summary says it
    demo = Demo(args)
    old = signal.signal(signal.SIGINT, lambda s, f: demo.stop.set())
    old_term = signal.signal(signal.SIGTERM, lambda s, f: demo.stop.set())
    try:
        demo.start()
        demo.wait()
    finally:
        demo.shutdown()
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
    return 0
