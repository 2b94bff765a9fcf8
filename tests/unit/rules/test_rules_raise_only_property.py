"""Property: the vectorised raise-only pass equals its plain per-reading twin
(``ScalarRules.feed_batch``) over random series with out-of-order, clock-skewed,
conflicting and duplicate readings among in-order ones, under any split into batches;
and the slots' status and latches agree after every batch."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rules_property import VALUES, S, fresh

from riskwatch.model import Batch, Flags
from riskwatch.rules.reference import ScalarRules

OOO, K = int(Flags.OUT_OF_ORDER), int(Flags.CLOCK_SKEW)
D, C = int(Flags.DUPLICATE), int(Flags.CONFLICTING)
CAL, F = int(Flags.CALIBRATING), int(Flags.FAULT)
FLAGS = [0, 0, 0, 0, 0, CAL, F, OOO, OOO, K, D, D | C, OOO | F, OOO | CAL, K | OOO]

readings = st.lists(
    st.tuples(
        st.integers(0, 4), st.integers(0, 2), st.sampled_from(VALUES), st.sampled_from(FLAGS)
    ),
    min_size=1,
    max_size=60,
)


def key(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda x: (x[0], x[2], x[1], x[3]))


@settings(max_examples=200, deadline=None)
@given(readings, st.lists(st.integers(0, 60), max_size=6))
def test_raise_only_pass_equals_the_scalar_twin(raw, cuts) -> None:
    t = 0
    rows = []
    for dt, sensor, v, f in raw:
        t += dt * S
        rows.append((t, sensor, v, f))
    rs = fresh()
    ref = ScalarRules(fresh())
    bounds = [0, *sorted({c % (len(rows) + 1) for c in cuts}), len(rows)]
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        part = rows[a:b]
        batch = Batch.from_arrays([r[0] for r in part], [r[1] for r in part],
                                  [r[2] for r in part], [r[3] for r in part])  # fmt: skip
        got = [(s.time, s.rule, s.sensor, str(s.state), int(s.level) if s.level else None)
               for s in rs.process(batch, part[-1][0])]  # fmt: skip
        expect = [(tt, rule, sensor, state, level)
                  for rule, sensor, tt, state, level in ref.feed_batch(part)]  # fmt: skip
        assert key(got) == key(expect)
        # the state each leaves for the next batch
        slots = rs.readings.slots
        for sensor, params in ref.by_sensor.items():
            mine = np.flatnonzero(slots.sensor == sensor)
            for i, p in zip(mine.tolist(), params, strict=True):
                assert int(slots.status[i]) == p["status"], p["rule"]
                latched = {k for k, on in p["latch"].items() if on}
                assert set(np.flatnonzero(slots.latch[i]).tolist()) == latched, p["rule"]
