"""Golden runs: record what the engine decides on fixed inputs, and compare two records.

A refactoring must not change behaviour. This records, on inputs that never change:

- ``signals/SCENARIO.jsonl``: every signal of every bundled rule pack and detector on
  each bundled scenario (simulated in fast-forward, fed through the engine's own decoder
  and stages exactly as ``bench/detection.py`` does);
- ``alerts/SCENARIO.jsonl``: those signals fed, call by call, through the alert sink
  (sample-like lifecycle config: escalation, repeats, flapping, inhibition, a JSONL log
  notifier) on a manual clock: every stored transition and every notification payload,
  alert ids renamed by order of first appearance;
- ``nab/``: the result CSVs of ``riskwatch score`` on the NAB development files
  (skipped with ``--no-nab`` or when the data is not there);
- ``detection.txt``: the table of ``bench/detection.py`` (stdout only: no timings).

::

    python bench/golden.py record /tmp/golden-before
    ...change the code...
    python bench/golden.py record /tmp/golden-after
    python bench/golden.py compare /tmp/golden-before /tmp/golden-after

The alert transitions of the integration tests are recorded with ``golden_site``: put
``bench/golden_site`` on ``PYTHONPATH`` and set ``RW_GOLDEN_DIR`` while running pytest
(every Python process started by the tests records too); ``compare-tests A B`` compares
two such folders test by test.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import detection  # bench/detection.py

ALERTS_YAML = """\
storage: {influx: null}
metrics: {listen: null}
alerts:
  store: %(store)s
  write: sync
  escalate_after_s: {red: 300, orange: 900, yellow: 3600}
  max_tier: 3
  repeat_interval_s: 3600
  flapping: {window_s: 600, high: 6, low: 2}
  inhibit:
    - source: {rule: ["~.*_gateway_silent"]}
      target: {}
      equal: [enterprise, site]
    - source: {level: [red]}
      target: {}
      equal: [enterprise, site, sensor]
      lower_only: true
  notify:
    - kind: log
      file: %(log)s
"""

SCENARIOS = ("coal_mine", "electricity", "hazchem", "tailings", "mixed")


def _num(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), 9)


def _signal_row(s: Any, reg: Any) -> dict[str, Any]:
    return {
        "rule": s.rule,
        "subject": reg.key(s.sensor) if s.sensor >= 0 else None,
        "group": s.group,
        "time": int(s.time),
        "state": str(getattr(s.state, "value", s.state)),
        "level": int(s.level) if s.level is not None else None,
        "value": _num(s.value),
        "threshold": _num(s.threshold),
        "message": s.message,
        "source": str(getattr(s.source, "value", s.source)),
        "score": _num(s.score),
    }


def _make_sink(work: Path, reg: Any) -> tuple[Any, Any]:
    from prometheus_client import CollectorRegistry

    from riskwatch.clock import ManualClock
    from riskwatch.config.engine import load_engine_config_text

    cfg = load_engine_config_text(
        ALERTS_YAML % {"store": work / "alerts.sqlite", "log": work / "alerts.jsonl"},
        file=str(work / "engine.yaml"),
    )
    clock = ManualClock(0)
    from riskwatch.alerts.sink import AlertSink

    sink = AlertSink.from_engine_config(cfg, reg, None, CollectorRegistry(), clock)
    return sink, clock


def _dump_alerts(work: Path, out: Path) -> None:
    """Stored transitions and notification payloads, alert ids renamed 1, 2, ..."""
    db = sqlite3.connect(work / "alerts.sqlite")
    keys = dict(db.execute("select id, key from rw_alerts"))
    names: dict[str, str] = {}

    def name(aid: str) -> str:
        if aid not in names:
            names[aid] = f"A{len(names) + 1}"
        return names[aid]

    rows = []
    for r in db.execute(
        "select alert_id, seq, at_ns, ts_ns, who, action, from_state, to_state, level, value,"
        " note, muted from rw_transitions order by n"
    ):
        aid, seq, at, ts, who, action, fs, to, lev, val, note, muted = r
        rows.append({
            "t": "transition", "alert": name(aid), "key": keys.get(aid), "seq": seq, "at": at,
            "ts": ts, "who": who, "action": action, "from": fs, "to": to, "level": lev,
            "value": _num(val), "note": note,
            "muted": (muted or "").split(":")[0],
        })  # fmt: skip
    log = work / "alerts.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            p = json.loads(line)
            p["id"] = name(p["id"])
            p["event"] = p["id"] + ":" + str(p["event"]).rsplit(":", 1)[-1]
            rows.append({"t": "notification", **p})
    db.close()
    out.write_text("".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def record_scenario(name: str, dest: Path, hours: float | None) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"rw-golden-{name}-"))
    state: dict[str, Any] = {}

    def on_step(signals: list[Any], ctx: Any) -> None:
        if "sink" not in state:
            state["sink"], state["clock"] = _make_sink(work, ctx.registry)
            state["sink"].start()
        sink, clock = state["sink"], state["clock"]
        clock.set(ctx.now_ns)
        if signals:
            sink.handle(signals, ctx)
        sink.tick(ctx)

    o = detection.run_scenario(name, hours, True, on_step=on_step)
    reg = None
    if "sink" in state:
        reg = state["sink"].registry
        state["sink"].wait_idle(60)  # every notification written before the log is read
        state["sink"].stop()
    (dest / "signals").mkdir(parents=True, exist_ok=True)
    (dest / "alerts").mkdir(parents=True, exist_ok=True)
    rows = [_signal_row(s, reg) for s in o.signals] if reg is not None else []
    (dest / "signals" / f"{name}.jsonl").write_text(
        "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    )
    if reg is not None:
        _dump_alerts(work, dest / "alerts" / f"{name}.jsonl")
    print(f"{name}: {len(rows)} signals, {o.readings} readings in {o.seconds:.1f} s",
          file=sys.stderr)  # fmt: skip


def record(dest: Path, hours: float | None, nab: bool, scenarios: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in scenarios:
        record_scenario(name, dest, hours)
    bench = Path(__file__).parent
    args = [sys.executable, str(bench / "detection.py")]
    if hours is not None:
        args += ["--hours", str(hours)]
    table = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    (dest / "detection.txt").write_text(table)
    if nab and detection_nab_available():
        subprocess.run(
            [sys.executable, str(bench / "detection_nab.py"), "--out", str(dest / "nab")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip


def detection_nab_available() -> bool:
    import detection_nab

    return (detection_nab.NAB / "data").is_dir()


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines() if p.exists() else []


def compare(a: Path, b: Path) -> int:
    """Every file of ``a`` against the same file of ``b``; prints the first differences."""
    bad = 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    absent = [rel for rel in files if not (b / rel).exists()]
    if absent:
        folders = sorted({str(rel.parts[0]) for rel in absent})
        print(f"not in b (not compared): {len(absent)} files under {', '.join(folders)}")
    files = [rel for rel in files if (b / rel).exists()]
    for rel in files:
        la, lb = _lines(a / rel), _lines(b / rel)
        if la == lb:
            print(f"same  {rel} ({len(la)} lines)")
            continue
        bad += 1
        n = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y),
                 min(len(la), len(lb)))  # fmt: skip
        print(f"DIFF  {rel}: {len(la)} vs {len(lb)} lines, first difference at line {n + 1}")
        print(f"   a: {la[n] if n < len(la) else '<end>'}")
        print(f"   b: {lb[n] if n < len(lb) else '<end>'}")
    missing = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()
                     and not (a / p.relative_to(b)).exists())  # fmt: skip
    for rel in missing:
        bad += 1
        print(f"ONLY in b: {rel}")
    print(f"{len(files) - bad + len(missing)} same, {bad} different")
    return 1 if bad else 0


def _test_sequences(d: Path) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Per test: per alert key, its transition sequence (action, from, to, level, muted)."""
    out: dict[str, dict[str, list[tuple[Any, ...]]]] = defaultdict(lambda: defaultdict(list))
    for f in sorted(d.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            test = (r["test"] or "?").split(" (")[0]
            out[test][r["key"] or "?"].append(
                (r["action"], r["from"], r["to"], r["level"], r["muted"])
            )
    return out


def compare_tests(a: Path, b: Path) -> int:
    sa, sb = _test_sequences(a), _test_sequences(b)
    bad = 0
    for test in sorted(set(sa) | set(sb)):
        ka, kb = sa.get(test, {}), sb.get(test, {})
        if {k: sorted(v, key=repr) for k, v in ka.items()} == {
            k: sorted(v, key=repr) for k, v in kb.items()
        }:
            same = all(ka[k] == kb[k] for k in ka)
            print(f"{'same ' if same else 'order'} {test}: {len(ka)} alerts, "
                  f"{sum(map(len, ka.values()))} transitions")  # fmt: skip
            continue
        bad += 1
        print(f"DIFF  {test}: {len(ka)} vs {len(kb)} alerts")
        for k in sorted(set(ka) | set(kb)):
            if ka.get(k) != kb.get(k):
                print(f"   {k}\n     a: {ka.get(k)}\n     b: {kb.get(k)}")
    print(f"{len(set(sa) | set(sb)) - bad} tests same, {bad} different")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="record signals, alerts, NAB CSVs and the table")
    r.add_argument("dest", type=Path)
    r.add_argument("--hours", type=float, help="cut every scenario to this many hours")
    r.add_argument("--no-nab", action="store_true")
    r.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    c = sub.add_parser("compare", help="compare two records file by file")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    t = sub.add_parser("compare-tests", help="compare two RW_GOLDEN_DIR test recordings")
    t.add_argument("a", type=Path)
    t.add_argument("b", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "record":
        record(a.dest, a.hours, not a.no_nab, a.scenario or list(SCENARIOS))
        return 0
    if a.cmd == "compare":
        return compare(a.a, a.b)
    return compare_tests(a.a, a.b)


if __name__ == "__main__":
    sys.exit(main())
