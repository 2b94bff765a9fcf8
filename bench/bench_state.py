#!/usr/bin/env python3
"""Durable engine state at scale: snapshot size, snapshot and restore time, journal cost.

The bundled coal catalogue (28 sensors a face) is repeated over as many faces as it takes
to reach ``--sensors`` (default 100 000), with the bundled coal pack and default
detectors. A few rounds of readings of every sensor warm the state (some faces latch a
red power-off, one gateway goes silent), then it measures:

- the snapshot: copying the stages' state on the engine thread, writing the file
  (write, fsync, rename) on the writer thread, its size;
- the restore of a new process: reading the snapshot, binding its sensor table to the
  registry, loading every stage, and replaying a journal of ``--replay`` batches (the
  catalogue load and stage compile are printed apart: an engine does them without state);
- the hot path: the same batches through the pipeline alone (the baseline, measured in the
  same run), then journaled first (the engine thread's extra work), and the fsync the
  storage thread does before a batch's acks, as ratios against the baseline.

Run: ``python bench/bench_state.py`` (``--sensors 20000`` for a quick look). Prints only.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.detectors.stage import DetectorStage
from riskwatch.durability import EngineState
from riskwatch.model import Batch
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.rules.stage import RuleStage

CONFIG = Path(__file__).resolve().parents[1] / "riskwatch" / "config"
S = 1_000_000_000
NORMAL = {"ch4": 0.3, "co": 5.0, "o2": 20.8, "co2": 0.2, "temp": 22.0, "wind": 2.0,
          "feed": 0.0, "fan": 1.0, "door": 0.0, "dust": 2.0}  # fmt: skip


def catalogue(path: Path, n_sensors: int) -> None:
    with open(CONFIG / "catalog" / "coal_mine.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        n = 0
        face = 0
        while n < n_sensors:
            for r in rows:
                if n >= n_sensors:
                    break
                w.writerow({**r, "site": f"face{face}", "gateway": f"GW-{face}"})
                n += 1
            face += 1


def build(cat: Path) -> tuple[SensorRegistry, Pipeline, float]:
    t = time.perf_counter()
    reg = SensorRegistry()
    reg.load_catalog([cat])
    p = Pipeline([
        QualityStage(),
        RuleStage([CONFIG / "rules" / "coal_mine.yaml"], reg),
        DetectorStage([CONFIG / "detectors" / "default.yaml"], reg),
    ])  # fmt: skip
    return reg, p, time.perf_counter() - t


def batches(reg: SensorRegistry, rounds: int, t0: int, batch: int, seed: int = 1) -> list:
    """Every sensor once a round, in batches of ``batch``; one face in 50 at 1.6 % CH4."""
    rng = np.random.default_rng(seed)
    n = len(reg)
    base = np.array([NORMAL.get(k, 1.0) for k in reg.column("kind").astype(str)])
    hot = (reg.column("kind").astype(str) == "ch4") & (np.arange(n) % 50 < 28)
    out = []
    for r in range(rounds):
        now = t0 + r * 10 * S
        v = base * (1 + 0.02 * rng.standard_normal(n))
        v[hot] = 1.6 if r >= 1 else v[hot]
        ids = np.arange(n, dtype=np.int32)
        for lo in range(0, n, batch):
            sl = slice(lo, lo + batch)
            k = len(ids[sl])
            out.append((now, Batch.from_arrays(np.full(k, now - S), ids[sl], v[sl],
                                               received=np.full(k, now))))  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--sensors", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=20_000, help="readings a batch (engine default)")
    ap.add_argument("--rounds", type=int, default=4, help="warm-up rounds of every sensor")
    ap.add_argument("--replay", type=int, default=10, help="journal batches to replay")
    ap.add_argument("--dir", default=None, help="state folder (default: a temporary one)")
    a = ap.parse_args()
    work = Path(a.dir or tempfile.mkdtemp(prefix="rw-bench-state-"))
    work.mkdir(parents=True, exist_ok=True)
    cat = work / "catalog.csv"
    catalogue(cat, a.sensors)
    t0 = 1_795_880_000 * S
    reg, p, build_s = build(cat)
    print(f"{len(reg)} sensors, coal pack + default detectors; build (catalogue + compile) "
          f"{build_s:.2f} s")  # fmt: skip
    state_dir = work / "state"
    st = EngineState(state_dir, p, reg, snapshot_every_ns=10**18, background=False)
    st.restore(t0, None)
    warm = batches(reg, a.rounds, t0, a.batch)
    for now, b in warm:
        p.run(b, StageContext(now, reg))
    rules = p.stages[1]
    assert isinstance(rules, RuleStage)
    print(f"warm: {len(warm)} batches; rule slots {rules.ruleset.memory()['slots']}, "
          f"active {len(rules.ruleset.active())}")  # fmt: skip

    # -- snapshot
    t = time.perf_counter()
    trees = {s.name: s.dump_state() for s in p.stages}  # what checkpoint copies
    copy_s = time.perf_counter() - t
    del trees
    t = time.perf_counter()
    st.checkpoint(t0 + a.rounds * 10 * S, wait=True)
    snap_s = time.perf_counter() - t
    size = (state_dir / "state.snap").stat().st_size
    print(f"snapshot: {size / 1e6:.1f} MB ({size / len(reg):.0f} B/sensor); engine-thread copy "
          f"{copy_s * 1e3:.0f} ms; copy + write + fsync + rename {snap_s:.2f} s")  # fmt: skip

    # -- hot path: the same batches with and without the journal (baseline in this run)
    tail = batches(reg, max(1, a.replay * a.batch // len(reg) + 1), t0 + 100 * S, a.batch, 2)
    tail = tail[: a.replay]

    def pipeline_only(items: list) -> float:
        t = time.perf_counter()
        for now, b in items:
            p.run(b, StageContext(now, reg))
        return time.perf_counter() - t

    # two more pipelines in the same state for the timing: A runs the batches alone, B
    # journals each first; they alternate batch by batch so both see the same machine
    reg_a, p_a, _ = build(cat)
    reg_b, p_b, _ = build(cat)
    for now, b in warm:
        p_a.run(b, StageContext(now, reg_a))
        p_b.run(b, StageContext(now, reg_b))
    hot = EngineState(work / "hot", p_b, reg_b, snapshot_every_ns=10**18, background=False)
    hot.restore(t0, None)
    base_s = journal_s = append_s = fsync_s = 0.0
    n_b = 0
    for rep in range(3):
        marks = []
        for now, b in tail:
            now += rep * 1000 * S
            b = Batch(b.time + rep * 1000 * S, b.sensor, b.value, b.flags, b.received)
            for which in ((0, 1) if n_b % 2 else (1, 0)):
                if which == 0:
                    t = time.perf_counter()
                    p_a.run(b, StageContext(now, reg_a))
                    base_s += time.perf_counter() - t
                else:
                    t = time.perf_counter()
                    marks.append(hot.record_batch(now, b))
                    t1 = time.perf_counter()
                    p_b.run(b, StageContext(now, reg_b))
                    journal_s += time.perf_counter() - t
                    append_s += t1 - t
            n_b += 1
        t = time.perf_counter()
        for m in marks:
            hot.durable(m)  # the storage thread's part: fsync before the acks (group)
        fsync_s += time.perf_counter() - t
    print(f"hot path ({n_b} batches of {a.batch}, baseline measured alongside): pipeline "
          f"{base_s / n_b * 1e3:.1f} ms/batch; journal append {append_s / n_b * 1e3:.2f} "
          f"ms/batch; journal + pipeline {journal_s / n_b * 1e3:.1f} ms/batch "
          f"(ratio {journal_s / base_s:.3f}); fsync on the storage thread "
          f"{fsync_s / n_b * 1e3:.2f} ms/batch (one per {len(tail)} batches)")  # fmt: skip
    one = tail[0][1]
    t = time.perf_counter()
    for _ in range(20):
        hot.durable(hot.record_batch(t0, one))
    per = (time.perf_counter() - t) / 20
    print(f"worst case, one append + fsync per batch: {per * 1e3:.2f} ms/batch "
          f"({per / (base_s / n_b):.2f} x the pipeline's time)")  # fmt: skip

    # -- journal to replay: batches after the snapshot
    for now, b in tail:
        st.record_batch(now, b)
        p.run(b, StageContext(now, reg))
    st.durable(st.journal._written)
    jbytes = sum(os.path.getsize(st.journal.segment_path(n)) for n in st.journal.segments())

    # -- restore in a new "process"
    del p_a, p_b, reg_a, reg_b, hot
    reg2, p2, build2_s = build(cat)
    st2 = EngineState(state_dir, p2, reg2, snapshot_every_ns=10**18, background=False)
    t = time.perf_counter()
    rep2 = st2.restore(t0 + 200 * S, None)
    restore_s = time.perf_counter() - t
    print(f"restore: {restore_s:.2f} s (snapshot {size / 1e6:.1f} MB + journal "
          f"{rep2.batches} batches, {rep2.readings} readings, {jbytes / 1e6:.1f} MB); "
          f"catalogue + compile before it {build2_s:.2f} s")  # fmt: skip
    print("restore parts (s):", ", ".join(f"{k} {v:.3f}" for k, v in rep2.timings.items()))
    print("restored:", ", ".join(f"{k} {v}" for k, v in rep2.restored.counts.items()))
    if rep2.restored.dropped or rep2.problems:
        print("dropped:", rep2.restored.dropped, rep2.problems)
    # the restored engine continues as the uninterrupted one
    probe = batches(reg, 1, t0 + 400 * S, a.batch, 3)
    same = all(
        [s.message for s in p.run(b, StageContext(now, reg))[1]]
        == [s.message for s in p2.run(b, StageContext(now, reg2))[1]]
        for now, b in probe
    )
    print(f"restored engine gives the uninterrupted engine's signals: {same}")


if __name__ == "__main__":
    main()
