"""``of: change`` cost and memory: ``python bench/bench_change.py SENSORS READINGS_PER_SENSOR
noise|ramp`` runs 50 batches (each sensor READINGS_PER_SENSOR times per batch, 1 s apart)
through one 1 h change rule and prints the CPU time per batch and the deque memory.

``noise`` keeps a few entries per sensor; ``ramp`` (every sensor rising every second) is
the worst case: every reading of the window is kept."""

from __future__ import annotations

import sys
import time

import numpy as np

from riskwatch.catalog import CatalogEntry, SensorRegistry
from riskwatch.model import Batch
from riskwatch.rules.conditions import ChangeColumns
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.parse import load_rules_text

RULE = """
rules:
  - {name: surge, match: {kind: load_kw}, of: change, window: 1h, level: orange, above: 1e9}
"""


def main(n: int, per: int, mode: str, batches: int = 50) -> None:
    reg = SensorRegistry()
    reg.apply_catalog([CatalogEntry("e", "s", f"L{i}", "load_kw") for i in range(n)])
    rs = RuleSet([load_rules_text(RULE)], reg)
    s = 10**9
    rng = np.random.default_rng(1)
    t0, cpu = 0, 0.0
    for b in range(batches):
        sensor = np.repeat(np.arange(n), per)
        t = t0 + np.tile(np.arange(per), n) * s
        o = np.argsort(t, kind="stable")
        sensor, t = sensor[o], t[o]
        v = t / s + b * per if mode == "ramp" else rng.normal(size=len(t))
        batch = Batch.from_arrays(t, sensor, v)
        c = time.process_time()
        rs.process(batch, int(t[-1]))
        cpu += time.process_time() - c
        t0 += per * s
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    kept = int(cols.count.sum())
    print(f"{n} sensors x {per} per batch ({mode}): {cpu / batches * 1e3:.1f} ms CPU per "
          f"batch of {n * per}; kept {kept} entries ({kept / n:.1f} per sensor), pool "
          f"{len(cols.pool_time)} entries, state {cols.nbytes_state() / n:.0f} B per sensor")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
