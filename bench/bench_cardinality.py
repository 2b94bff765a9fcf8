"""What one new sensor costs once many are known: intern 4 new ids, then encode a batch.

With N sensors registered, a new id used to rebuild every per-sensor array (the line
protocol prefixes in a Python loop over all N); now only the new ids are built. Prints the
time per new-sensor step at several N, and the ratio to a from-scratch rebuild measured in
the same run (the old cost), so the figure does not depend on the machine::

    python bench/bench_cardinality.py            # N = 100k, 500k, 2M
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Batch
from riskwatch.storage.lineproto import LineEncoder


def step(reg: SensorRegistry, enc: LineEncoder, k: int) -> float:
    """Intern 4 new sensors and encode a 100-reading batch that uses them: seconds."""
    t0 = time.perf_counter()
    ids = reg.intern("e", "s", [f"new{k}-{j}" for j in range(4)], kinds=["ch4"] * 4)
    sensors = np.concatenate([ids, np.arange(96, dtype=np.int32)])
    enc.encode(Batch.from_arrays(np.arange(100) + 1_795_880_000_000_000_000, sensors, np.ones(100)))
    for c in ("kind", "site", "enterprise"):
        reg.column(c)  # what rule and detector stages read after a change
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000,500000,2000000")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    print(f"{'sensors':>9} {'new-id step':>12} {'full rebuild':>13} {'ratio':>7}")
    for n in map(int, args.sizes.split(",")):
        reg = SensorRegistry()
        reg.intern("e", "s", [f"S{i}" for i in range(n)], kinds=["ch4"] * n)
        enc = LineEncoder(reg)
        step(reg, enc, -1)  # warm: every cache built once
        inc = min(step(reg, enc, k) for k in range(args.steps))
        t0 = time.perf_counter()  # the old cost: every cache rebuilt from nothing
        reg.meta_generation += 1
        step(reg, enc, 10**9)
        full = time.perf_counter() - t0
        print(f"{n:>9} {inc * 1e3:>10.2f}ms {full * 1e3:>11.1f}ms {inc / full:>7.4f}")


if __name__ == "__main__":
    main()
