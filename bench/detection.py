"""Detection benchmark: the bundled scenarios through the engine's pipeline, scored
against the simulator's ground-truth labels.

Each scenario is simulated in fast-forward from a fixed start (Monday 2026-06-01 00:00
Beijing time) and fed, tick by tick, through the engine's own parts in-process: the
payload encoder and the ingest :class:`~riskwatch.ingest.decode.Decoder` (so late,
duplicate and malformed data go through the real decoding), then the decision stages the
engine builds (``riskwatch.rules.build_stage`` and ``riskwatch.detectors.build_stage``)
with the bundled rule packs, the scenario's catalogue and a shutdown calendar holding the
scenario's orders. ``now`` is the simulated publish time; timers (no-data) are ticked at
least every 30 s of plant time.

Scoring (an alert = a ``firing`` signal):

- an event instance (one label ``event`` id, over one or more sensors) is *detected*
  when an alert on one of its sensors — or a group alert of its site — fires within
  ``[start, end + grace]`` (grace = max(60 s, 3 reporting periods));
  time to detect = first such alert - start;
- *flagged*: for transport faults, whether the ingest marked it (LATE / DUPLICATE /
  OUT_OF_ORDER flag on a reading of the window, or a dead letter from the gateway);
- a *false alert* is an alert matching no event window; reported per sensor-day.
  Calibration events are labelled too: an alert there is unwanted (it is counted
  under ``detected`` for the calibration row, where 0 is the right answer).

    python bench/detection.py                  # the four single-plant bundled scenarios
    python bench/detection.py mixed            # the demo mix (24 h, ~1 min)
    python bench/detection.py coal_mine --hours 2          # shortened
    python bench/detection.py electricity --false          # and list each false alert
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import load_engine_config_text
from riskwatch.demo import detector_files, prepare_workdir
from riskwatch.detectors import build_stage as build_detector_stage
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import Flags, Signal
from riskwatch.pipeline import Pipeline, Stage, StageContext
from riskwatch.rules import build_stage as build_rule_stage
from riskwatch.sensors_sim.publisher import encoder_for
from riskwatch.sensors_sim.scenario import bundled_scenarios, load_scenario
from riskwatch.sensors_sim.simulator import Simulator

START = "2026-06-01T00:00:00+08:00"
MS = 1_000_000
S = 1_000_000_000
TICK_MAX_NS = 30 * S
FLAG_OF = {"late": Flags.LATE, "duplicate": Flags.DUPLICATE, "out_of_order": Flags.OUT_OF_ORDER}


@dataclass
class Outcome:
    scenario: str
    sensors: int
    days: float
    alerts: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)
    # per event instance: (type, detected, ttd_s or nan, flagged or None)
    events: list[tuple[str, bool, float, bool | None]] = field(default_factory=list)
    false_alerts: int = 0
    false_list: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)
    top_false: str = ""
    stages: list[str] = field(default_factory=list)
    readings: int = 0
    seconds: float = 0.0
    signals: list[Signal] = field(default_factory=list)


def build_pipeline(
    sim: Simulator, workdir: Path, detectors: bool = True
) -> tuple[Pipeline, SensorRegistry, Any]:
    catalog, rules = prepare_workdir(workdir, sim, sim.scenario.name)
    rl = ", ".join(f"'{p}'" for p in rules)
    dl = ", ".join(f"'{p}'" for p in detector_files(workdir)) if detectors else ""
    cfg = load_engine_config_text(
        f"storage: {{influx: null}}\nmetrics: {{listen: null}}\ncatalog: ['{catalog}']\n"
        f"rules: [{rl}]\ndetectors: [{dl}]\n",
        file=str(workdir / "engine.yaml"),
    )
    cfg = replace(cfg, source=str(workdir / "engine.yaml"))
    reg = SensorRegistry()
    reg.load_catalog([catalog])
    stages: list[Stage] = []
    for build in (build_rule_stage, build_detector_stage):  # what the engine builds
        st = build(cfg, reg)
        if st is not None:
            stages.append(st)
    return Pipeline(stages), reg, cfg


def run_scenario(
    name: str,
    hours: float | None,
    detectors: bool = True,
    on_step: Callable[[list[Signal], StageContext], None] | None = None,
) -> Outcome:
    """Simulate ``name`` through the pipeline and score it. ``on_step`` sees the signals of
    every stage call and timer tick with its context (``bench/golden.py`` feeds them to an
    alert sink)."""
    sc = load_scenario(name)
    start_ns = int(datetime.fromisoformat(START).timestamp()) * S
    dur = sc.duration_s if hours is None else min(sc.duration_s, hours * 3600)
    sim = Simulator(sc, start_ns=start_ns, duration_s=dur)
    work = Path(tempfile.mkdtemp(prefix=f"rw-detect-{name}-"))
    pipe, reg, cfg = build_pipeline(sim, work, detectors)
    dec = Decoder(
        reg,
        TopicTemplate(cfg.mqtt.topic_template),
        max_future_s=cfg.ingest.max_future_s,
        late_after_s=cfg.ingest.late_after_s,
    )
    enc = encoder_for(sim, sc.form, 500)
    signals: list[Signal] = []
    flagged: list[tuple[int, int, int]] = []  # (sensor id, ts ms, flags) of flagged readings
    dead: list[tuple[str, int]] = []  # (topic, received ms)
    t0 = time.perf_counter()
    n = 0
    last_tick = sim.t_ns
    while not sim.done():
        before = sim.t_ns
        sim.skip_idle()
        # timers run at least every 30 s of plant time, also across skipped idle ticks
        t = before + TICK_MAX_NS
        while t < sim.t_ns:
            tctx = StageContext(now_ns=t, registry=reg)
            got = pipe.tick(tctx)
            signals += got
            if on_step is not None:
                on_step(got, tctx)
            t += TICK_MAX_NS
        r = sim.step()
        now = sim.t_ns  # published at the end of the tick
        ctx = StageContext(now_ns=now, registry=reg)
        msgs = enc.encode(r)
        if msgs:
            out = dec.decode_many([(tp, p, now) for tp, p in msgs])
            for d in out.deadletters:
                dead.append((d.topic, now // MS))
            b = out.batch.sorted_by_time()
            n += len(b)
            fl = b.flags & (Flags.LATE | Flags.DUPLICATE | Flags.OUT_OF_ORDER)
            if fl.any():
                k = np.flatnonzero(fl)
                flagged += list(zip(b.sensor[k].tolist(), (b.time[k] // MS).tolist(),
                                    fl[k].tolist(), strict=True))  # fmt: skip
            if len(b):
                for st in pipe.stages:
                    res = st.process(b, ctx)
                    if isinstance(res, list):
                        signals += res
                        if on_step is not None:
                            on_step(res, ctx)
                    else:
                        b = res
        if now - last_tick >= S:
            got = pipe.tick(ctx)
            signals += got
            if on_step is not None:
                on_step(got, ctx)
            last_tick = now
    secs = time.perf_counter() - t0
    result = score(sim, reg, signals, flagged, dead, name, n, secs)
    result.stages = pipe.names()
    result.signals = signals
    return result


def score(
    sim: Simulator,
    reg: SensorRegistry,
    signals: list[Signal],
    flagged: list[tuple[int, int, int]],
    dead: list[tuple[str, int]],
    name: str,
    n: int,
    secs: float,
) -> Outcome:
    period = {f"{e}/{s}/{x}": p for e, s, x, p in zip(sim.table.enterprise, sim.table.site,
              sim.table.sensor, sim.table.period_s, strict=True)}  # fmt: skip
    out = Outcome(name, len(sim.table), sim.duration_s / 86400, readings=n, seconds=secs)
    fired = [s for s in signals if s.state == "firing"]
    alerts: list[tuple[str, str, str, str, str, int]] = []
    for s in fired:
        if s.group is not None:
            parts = s.group.split("/")
            ent, site = parts[0], parts[1] if len(parts) > 1 else ""
            sensor, gw = "", ""
        else:
            m = reg.meta(s.sensor)
            ent, site, sensor, gw = m["enterprise"], m["site"], m["sensor"], m["gateway"]
        alerts.append((s.rule, ent, site, sensor, gw, int(s.time) // MS))
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lb in sim.labels:
        by_event[lb["event"]].append(lb)
    matched = np.zeros(len(alerts), dtype=bool)
    ids = {reg.key(i): i for i in range(len(reg))}
    for _eid, lbs in by_event.items():
        typ = lbs[0]["type"]
        first = math.inf
        flag_hit: bool | None = False if typ in FLAG_OF or typ == "malformed" else None
        for lb in lbs:
            key = f"{lb['enterprise']}/{lb['site']}/{lb['sensor']}"
            per = period.get(key, 10.0) if lb["sensor"] else 10.0
            grace = max(60_000, int(3 * per * 1000))
            lo, hi = lb["start"], lb["end"] + grace
            for j, (_, ent, site, sensor, gw, t) in enumerate(alerts):
                if not (lo <= t <= hi) or ent != lb["enterprise"] or site != lb["site"]:
                    continue
                if (
                    sensor == ""
                    or (lb["sensor"] and sensor == lb["sensor"])
                    or (not lb["sensor"] and gw == lb["gateway"])
                ):
                    matched[j] = True
                    first = min(first, t)
            if typ in FLAG_OF:
                sid = ids.get(key)
                want = int(FLAG_OF[typ])
                if any(f & want and s_ == sid and lb["start"] <= t <= lb["end"]
                       for s_, t, f in flagged):  # fmt: skip
                    flag_hit = True
            elif typ == "malformed":
                topic_tail = f"/{lb['enterprise']}/{lb['site']}/{lb['gateway']}"
                if any(tp.endswith(topic_tail) and lb["start"] <= t <= lb["end"] + grace
                       for tp, t in dead):  # fmt: skip
                    flag_hit = True
        det = first < math.inf
        out.events.append((typ, det, (first - lbs[0]["start"]) / 1000 if det else math.nan,
                           flag_hit))  # fmt: skip
    out.alerts = alerts
    out.false_alerts = int((~matched).sum())
    out.false_list = [alerts[k] for k in np.flatnonzero(~matched).tolist()]
    top: dict[str, int] = defaultdict(int)
    for k in np.flatnonzero(~matched).tolist():
        top[alerts[k][0]] += 1
    out.top_false = ", ".join(f"{k} {v}" for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:4])
    return out


def fmt_s(v: float) -> str:
    if math.isnan(v):
        return "-"
    if v >= 3600:
        return f"{v / 3600:.1f} h"
    if v >= 60:
        return f"{v / 60:.1f} min"
    return f"{v:.0f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "scenarios", nargs="*",
        help="bundled scenarios (default: all but the demo mix and load_100k)",
    )  # fmt: skip
    ap.add_argument("--hours", type=float, help="cut every scenario to this many hours")
    ap.add_argument("--no-detectors", action="store_true", help="rule packs only")
    ap.add_argument(
        "--false", action="store_true", help="also list each false alert (rule, sensor, time)"
    )
    a = ap.parse_args(argv)
    names = a.scenarios or [n for n in bundled_scenarios() if n not in ("load_100k", "mixed")]
    outcomes = []
    for name in names:
        o = run_scenario(name, a.hours, not a.no_detectors)
        outcomes.append(o)
        print(
            f"{name}: {o.sensors} sensors, {o.days * 24:.1f} h plant time, {o.readings} readings "
            f"in {o.seconds:.1f} s ({o.readings / max(o.seconds, 1e-9):.0f} readings/s), "
            f"{len(o.alerts)} alerts; stages: {', '.join(o.stages)}",
            file=sys.stderr,
        )
    rows: dict[str, list[tuple[bool, float, bool | None]]] = defaultdict(list)
    for o in outcomes:
        for typ, det, ttd, fl in o.events:
            rows[typ].append((det, ttd, fl))
    print("\nDetection by event type (all scenarios; an alert = a firing rule/detector signal)\n")
    print(
        f"| {'event type':<24} | events | detected | rate   | TTD p50  | TTD p95  | flagged by ingest |"
    )
    print(f"|{'-' * 26}|--------|----------|--------|----------|----------|-------------------|")
    for typ in sorted(rows):
        v = rows[typ]
        hits = [d for d, _, _ in v]
        ttds = np.array([t for d, t, _ in v if d])
        p50 = float(np.percentile(ttds, 50)) if len(ttds) else math.nan
        p95 = float(np.percentile(ttds, 95)) if len(ttds) else math.nan
        flags = [f for _, _, f in v if f is not None]
        fls = f"{sum(flags)}/{len(flags)}" if flags else "n/a"
        note = " (unwanted)" if typ == "calibration" else ""
        print(
            f"| {typ + note:<24} | {len(v):>6} | {sum(hits):>8} | {sum(hits) / len(v):>6.0%} | "
            f"{fmt_s(p50):>8} | {fmt_s(p95):>8} | {fls:>17} |"
        )
    print("\nFalse alerts (alerts outside every labelled event window)\n")
    print(
        "| scenario     | sensors | sensor-days | alerts | false | false / sensor-day | top false rules"
    )
    print(
        "|--------------|---------|-------------|--------|-------|--------------------|----------------"
    )
    for o in outcomes:
        sd = o.sensors * o.days
        fa = o.false_alerts
        top = o.top_false
        print(
            f"| {o.scenario:<12} | {o.sensors:>7} | {sd:>11.1f} | {len(o.alerts):>6} | {fa:>5} | "
            f"{fa / sd:>18.2f} | {top}"
        )
    if a.false:
        t0 = int(datetime.fromisoformat(START).timestamp() * 1000)
        print("\nEach false alert (plant time since the start)\n")
        for o in outcomes:
            for rule, ent, site, sensor, _gw, t in o.false_list:
                print(
                    f"  {o.scenario:<12} {(t - t0) / 3.6e6:>8.2f} h  {rule:<22} {ent}/{site}/{sensor}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
