"""CAD OSE cost per reading at 10k and 100k sensors, against the rule core, in one run.

Both contenders get the same batches (bench_rules' ``make_batches``: batches of 10k
readings, each hitting 10k distinct sensors of a 10k or 100k fleet; every sensor
appears once in the first ``n_sensors / 10k`` batches, then again): the rule core is
bench_rules' 200-rule set (``RuleSet``), the detector an ensemble of one ``cad_ose``
member, calibrated (``calibrate: 0.001``, as an engine entry would run it). Process
CPU time, interleaved (rules, CAD, rules, CAD, ...), best of ``--repeat``.

CAD OSE's memory grows with what a sensor has shown, and so does its step: early
readings (a sensor's first few) cost tens of microseconds, a memory of thousands of
contexts about 1-2 ms (the NAB files, ``bench/cad_ose_faithful.py``). So the fleet part
times the first readings of fresh sensors (the cheapest case) and a single stream of
``--depth`` readings shows the cost at depth; per-sensor memories are independent, so a
fleet pays the single-stream cost per reading at the same depth.

    python bench/bench_cad_ose.py              # 10k and 100k sensors
    python bench/bench_cad_ose.py --quick      # 10k only, fewer readings
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rules import make_batches, registry, rules_text

from riskwatch.detectors.cad_ose import CadOse
from riskwatch.detectors.ensemble import Ensemble
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.parse import load_rules_text


def fleet(n_sensors: int, n_batches: int, repeat: int) -> None:
    reg = registry(n_sensors)
    batches = make_batches(n_sensors, n_batches, 10_000, bursty=False)
    n_read = sum(len(b) for b in batches)
    text = rules_text()

    def rules() -> float:
        rs = RuleSet([load_rules_text(text)], reg)
        t0 = time.process_time()
        for b in batches:
            rs.process(b, int(b.time[-1]))
        return time.process_time() - t0

    def cad() -> float:
        ens = Ensemble({"cad": CadOse()}, threshold=0.75, calibrate_alpha=0.001)
        ens.reserve(n_sensors)
        t0 = time.process_time()
        for b in batches:
            ens.process(b.sensor, b.value, b.time)
        return time.process_time() - t0

    best_r = best_c = float("inf")
    for _ in range(repeat):
        best_r = min(best_r, rules())
        best_c = min(best_c, cad())
    per_sensor = n_read / n_sensors
    print(f"fleet: {n_sensors} sensors, {n_batches} batches x 10000 readings "
          f"({n_read} readings, {per_sensor:g} per sensor)")  # fmt: skip
    print(f"  rule core (200 rules)   {1e6 * best_r / n_read:>9.2f} us/reading"
          f"  {n_read / best_r:>12,.0f} readings/s")  # fmt: skip
    print(f"  cad_ose (1 member)      {1e6 * best_c / n_read:>9.2f} us/reading"
          f"  {n_read / best_c:>12,.0f} readings/s")  # fmt: skip
    print(f"  cad_ose / rules cost ratio: {best_c / best_r:.0f}x")


def depth(n: int) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.int64)
    x = 10 + 3 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, n)
    ens = Ensemble({"cad": CadOse()}, threshold=0.75, calibrate_alpha=0.001)
    cuts = [c for c in (100, 1000, 3000, 10_000, 30_000) if c <= n]
    print("one stream (daily wave + noise), cost per reading by depth:")
    a = 0
    for b in cuts:
        t0 = time.process_time()
        for i in range(a, b):  # one round per reading, as `riskwatch score` feeds it
            ens.process(np.zeros(1, np.int32), x[i : i + 1], t[i : i + 1])
        dt = time.process_time() - t0
        cad = ens.members["cad"]
        assert isinstance(cad, CadOse)
        print(f"  readings {a:>6}-{b:<6} {1e6 * dt / (b - a):>8.0f} us/reading"
              f"  (contexts stored: {cad.contexts(0)})")  # fmt: skip
        a = b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--depth", type=int, default=10_000)
    a = ap.parse_args()
    fleet(10_000, 3 if a.quick else 10, a.repeat)
    if not a.quick:
        fleet(100_000, 20, a.repeat)
    depth(1000 if a.quick else a.depth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
