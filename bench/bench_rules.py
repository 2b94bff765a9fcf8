"""Rule-core throughput: the vectorised RuleSet against a plain per-reading Python loop.

200 rules over 100k sensors (10 kinds x 10 locations; per kind/location one two-level
threshold rule with hysteresis — every third with ``for`` — and one of rate, N-of-M,
frozen or out-of-range), batches of 10k readings. Both evaluators get the same readings
and must produce identical transitions; the script prints readings/s of each (process CPU
time, best of 3 runs: the machine is shared and both evaluators are single-threaded), the
ratio, and the memory of rule state per sensor. Two traffic shapes: ``spread`` (each batch hits
10k distinct sensors) and ``bursty`` (each batch holds ~5 readings of each of 2k sensors,
exercising the in-batch sequential path).

    python bench/bench_rules.py            # full size
    python bench/bench_rules.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from riskwatch.catalog import CatalogEntry, SensorRegistry
from riskwatch.model import Batch
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.parse import load_rules_text
from riskwatch.rules.reference import ScalarRules

REPEAT = 3
KINDS = [f"k{i}" for i in range(10)]
LOCS = [f"loc{i}" for i in range(10)]
EXTRA = [
    "{{name: r{i}_rate, match: {{kind: {k}, location: {loc}}}, of: rate, per: 1s, level: yellow, above: 1}}",
    "{{name: r{i}_nofm, match: {{kind: {k}, location: {loc}}}, level: blue, above: 1.2, count: {{n: 3, m: 5}}}}",
    "{{name: r{i}_frozen, match: {{kind: {k}, location: {loc}}}, frozen: {{for: 20s, tolerance: 0}}}}",
    "{{name: r{i}_range, match: {{kind: {k}, location: {loc}}}, out_of_range: {{low: 0, high: 2.5}}}}",
]


def rules_text() -> str:
    lines = ["rules:"]
    i = 0
    for k in KINDS:
        for loc in LOCS:
            extra = ", for: 2s" if i % 3 == 0 else ""
            lines.append(
                f"  - {{name: r{i}_thr, match: {{kind: {k}, location: {loc}}}, levels: ["
                f"{{level: orange, above: 1.0, clear_below: 0.9{extra}}}, "
                f"{{level: red, above: 1.5, clear_below: 1.0}}]}}"
            )
            lines.append("  - " + EXTRA[i % 4].format(i=i, k=k, loc=loc))
            i += 1
    return "\n".join(lines) + "\n"


def registry(n: int) -> SensorRegistry:
    reg = SensorRegistry()
    reg.apply_catalog(
        CatalogEntry(
            f"e{i % 100}",
            f"s{(i // 100) % 10}",
            f"x{i}",
            KINDS[i % 10],
            location=LOCS[(i // 10) % 10],
        )
        for i in range(n)
    )
    return reg


def make_batches(
    n_sensors: int, n_batches: int, size: int, bursty: bool, seed: int = 1
) -> list[Batch]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.7, n_sensors)
    out = []
    t = 1_800_000_000 * 10**9
    for _ in range(n_batches):
        if bursty:
            hot = rng.choice(n_sensors, size // 5, replace=False)
            sensor = np.repeat(hot, 5)
            rng.shuffle(sensor)
        else:
            sensor = rng.choice(n_sensors, size, replace=False)
        times = t + np.sort(rng.integers(0, 10**9, size))
        vals = np.round(base[sensor] + rng.normal(0, 0.02, size), 3)
        # rare excursions (gas spikes, faulty readings) so that alerts do happen
        spike = rng.random(size)
        vals[spike < 0.004] += 0.6
        vals[spike < 0.002] += 0.5
        vals[spike > 0.9995] = 3.0
        out.append(Batch.from_arrays(times, sensor.astype(np.int32), vals))
        t += 10**9
    return out


def run(n_sensors: int, n_batches: int, size: int, baseline_batches: int, bursty: bool) -> None:
    text = rules_text()
    reg = registry(n_sensors)
    batches = make_batches(n_sensors, n_batches, size, bursty)
    n_vec = sum(len(b) for b in batches[1:])
    dt_vec = float("inf")
    for _ in range(REPEAT):  # best of REPEAT on fresh state: the machine is shared
        rs = RuleSet([load_rules_text(text)], reg)
        rs.process(batches[0], batches[0].time[-1])  # warm-up (first batch also in the baseline)
        t0 = time.process_time()
        vec = []
        for b in batches[1:]:
            vec += rs.process(b, int(b.time[-1]))
        dt_vec = min(dt_vec, time.process_time() - t0)

    rs_check = RuleSet([load_rules_text(text)], reg)
    got_ref = []
    got_vec = []
    sub = batches[:baseline_batches]
    rows = [
        (int(t), int(s), float(v), int(f))
        for b in sub
        for t, s, v, f in zip(
            b.time.tolist(), b.sensor.tolist(), b.value.tolist(), b.flags.tolist(), strict=True
        )
    ]
    dt_ref = float("inf")
    for rep in range(REPEAT):
        ref = ScalarRules(RuleSet([load_rules_text(text)], reg))
        got_ref = []
        t0 = time.process_time()
        feed = ref.feed
        for r in rows:
            got_ref += feed(*r)
        dt_ref = min(dt_ref, time.process_time() - t0)
        del rep
    for b in sub:
        got_vec += rs_check.process(b, int(b.time[-1]))
    a = sorted(
        (s.rule, s.sensor, s.time, s.state, int(s.level) if s.level else None) for s in got_vec
    )
    b_ = sorted(got_ref)
    assert a == b_, f"alerts differ: vectorised {len(a)} vs loop {len(b_)}"
    mem = rs.memory()
    vec_rate = n_vec / dt_vec
    ref_rate = len(rows) / dt_ref
    shape = "bursty (5 readings per sensor per batch)" if bursty else "spread (distinct sensors)"
    print(f"traffic: {shape}")
    print(f"  rules: {len(rs.specs)}, sensors: {n_sensors}, (rule, sensor) slots: {mem['slots']}")
    print(f"  vectorised: {n_vec} readings in {dt_vec:.3f} s = {vec_rate / 1e6:.2f} M readings/s "
          f"({len(vec)} transitions), batch of {size}: {dt_vec / (n_batches - 1) * 1e3:.2f} ms")  # fmt: skip
    print(f"  per-reading Python loop: {len(rows)} readings in {dt_ref:.3f} s = "
          f"{ref_rate / 1e6:.3f} M readings/s")  # fmt: skip
    print(f"  identical alerts on the {len(rows)} common readings: {len(a)} transitions, yes")
    print(f"  ratio vectorised / loop: {vec_rate / ref_rate:.1f}x")
    print(f"  rule state: {mem['state_bytes'] / n_sensors:.0f} B/sensor, parameters: "
          f"{mem['param_bytes'] / n_sensors:.0f} B/sensor")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        run(10_000, 11, 1_000, 3, bursty=False)
        run(10_000, 11, 1_000, 3, bursty=True)
        return
    run(100_000, 51, 10_000, 6, bursty=False)
    run(100_000, 51, 10_000, 6, bursty=True)


if __name__ == "__main__":
    main()
