"""Simulator throughput: the vectorised simulator against a per-reading Python loop.

Both produce the same kind of output — readings of ~100k coal-mine sensors at their
10 s period, values from the plant shape plus AR(1) noise, encoded as JSON payloads per
gateway — the vectorised one with whole-array numpy per tick and orjson over columns,
the baseline with a loop over due sensors and ``json.dumps`` of a dict per reading.
Prints readings/s of each, the ratio, and the real-time factor (plant seconds simulated
per wall second) for 100k sensors, i.e. how far above real time one process can drive
them before MQTT.

    python bench/bench_sim.py            # 60 s of plant time for load_100k
    python bench/bench_sim.py --quick    # 20 s
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

from riskwatch.sensors_sim.publisher import MemorySink, encoder_for, run_scenario
from riskwatch.sensors_sim.scenario import load_scenario
from riskwatch.sensors_sim.simulator import Simulator

T0 = 1_780_000_000_000_000_000


def vectorised(seconds: float, form: str) -> tuple[int, float, int]:
    sc = load_scenario("load_100k")
    sim = Simulator(sc, start_ns=T0, duration_s=seconds)
    enc = encoder_for(sim, form, 500)  # type: ignore[arg-type]
    sink = MemorySink()
    t = time.perf_counter()
    rep = run_scenario(sim, enc, sink, speed=None)
    return rep.readings, time.perf_counter() - t, len(sim.table)


def baseline(seconds: float) -> tuple[int, float]:
    """The same plant with a Python loop per reading (no numpy)."""
    sc = load_scenario("load_100k")
    sim = Simulator(sc, start_ns=T0, duration_s=1)  # only for the sensor table
    tb = sim.table
    n = len(tb)
    rng = random.Random(1)
    names = tb.sensor.tolist()
    gws = sim.gw_of.tolist()
    base = tb.base.tolist()
    sd = tb.sd.tolist()
    rho = tb.rho.tolist()
    period = [int(p * 1000) for p in tb.period_s.tolist()]
    due = [int(rng.random() * p) for p in period]
    noise = [0.0] * n
    t0 = T0 // 1_000_000
    count = 0
    start = time.perf_counter()
    for tick in range(int(seconds)):
        hi = t0 + (tick + 1) * 1000
        groups: dict[int, list[dict[str, object]]] = {}
        for i in range(n):
            ts = t0 + due[i]
            if ts >= hi:
                continue
            due[i] += period[i]
            noise[i] = rho[i] * noise[i] + sd[i] * math.sqrt(1 - rho[i] ** 2) * rng.gauss(0, 1)
            v = round(base[i] + noise[i], 2)
            groups.setdefault(gws[i], []).append({"sensor": names[i], "ts": ts, "value": v})
            count += 1
        for _g, items in groups.items():
            json.dumps({"readings": items}).encode()
    return count, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    secs = 20.0 if a.quick else 60.0
    b_n, b_t = baseline(min(secs, 20.0))
    print(
        f"baseline (per-reading loop, json): {b_n} readings in {b_t:.2f} s = {b_n / b_t:,.0f} readings/s"
    )
    for form in ("columns", "envelope"):
        v_n, v_t, sensors = vectorised(secs, form)
        print(
            f"vectorised ({form}): {v_n} readings in {v_t:.2f} s = {v_n / v_t:,.0f} readings/s; "
            f"ratio {v_n / v_t / (b_n / b_t):.1f}x; {sensors} sensors at 10 s periods: "
            f"{secs / v_t:.1f}x real time (before MQTT)"
        )


if __name__ == "__main__":
    main()
