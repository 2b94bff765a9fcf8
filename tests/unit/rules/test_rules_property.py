"""Property: a batch gives exactly the signals that the same readings fed one at a time
give, under any split into batches, and the same as the plain per-reading reference."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import registry

from riskwatch.model import Batch, Flags, Signal
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.parse import load_rules_text
from riskwatch.rules.reference import ScalarRules

RULES = """
rules:
  - name: gas
    match: {kind: g}
    levels:
      - {level: orange, above: 1.0, clear_below: 0.8, for: 5s}
      - {level: red, above: 1.5, clear_below: 1.0, keep_firing_for: 4s}
  - {name: low, match: {kind: g}, level: blue, below: 0.2, strict: true}
  - {name: nofm, match: {kind: g}, level: yellow, above: 1.2, count: {n: 2, m: 4}}
  - {name: rate, match: {kind: g}, of: rate, per: 10s, level: yellow, above: 0.5}
  - {name: change, match: {kind: g}, of: change, window: 12s, level: blue, below: -0.5}
  - {name: frozen, match: {kind: g}, frozen: {for: 9s, tolerance: 0.0}}
  - {name: range, match: {kind: g}, out_of_range: {low: 0, high: 3}}
  - {name: calib, match: {kind: g}, calibration: {max: 6s}}
"""
VALUES = [-1.0, 0.0, 0.1, 0.5, 0.8, 0.99, 1.0, 1.2, 1.5, 1.7, 3.5]
FLAGS = [0, 0, 0, 0, 0, 0, int(Flags.CALIBRATING), int(Flags.FAULT)]
S = 10**9


def fresh() -> RuleSet:
    reg = registry(*[{"sensor": f"G{i}", "kind": "g"} for i in range(3)])
    return RuleSet([load_rules_text(RULES)], reg)


def key(sigs: list[Signal]) -> list[tuple]:
    out = [(s.time, s.rule, s.sensor, s.state, int(s.level) if s.level else None) for s in sigs]
    return sorted(out, key=lambda x: (x[0], x[2], x[1]))


readings = st.lists(
    st.tuples(
        st.integers(0, 4),  # seconds since the previous reading
        st.integers(0, 2),  # sensor
        st.sampled_from(VALUES),
        st.sampled_from(FLAGS),
    ),
    min_size=1,
    max_size=60,
)


def run(rs: RuleSet, rows: list[tuple[int, int, float, int]], cuts: list[int]) -> list[Signal]:
    out: list[Signal] = []
    bounds = [0, *sorted(set(c % (len(rows) + 1) for c in cuts)), len(rows)]
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        part = rows[a:b]
        batch = Batch.from_arrays(
            [r[0] for r in part], [r[1] for r in part], [r[2] for r in part], [r[3] for r in part]
        )
        out += rs.process(batch, part[-1][0])
    return out


@settings(max_examples=150, deadline=None)
@given(readings, st.lists(st.integers(0, 60), max_size=6))
def test_batch_equals_one_at_a_time_equals_reference(raw, cuts) -> None:
    t = 0
    rows = []
    for dt, sensor, v, f in raw:
        t += dt * S
        rows.append((t, sensor, v, f))
    whole = key(run(fresh(), rows, []))
    single = key(run(fresh(), rows, list(range(1, len(rows)))))
    split = key(run(fresh(), rows, cuts))
    assert whole == single
    assert whole == split
    ref = ScalarRules(fresh())
    expect = []
    for r in rows:
        expect += ref.feed(*r)
    expect = [(t, rule, sensor, state, level) for rule, sensor, t, state, level in expect]
    assert whole == sorted(expect, key=lambda x: (x[0], x[2], x[1]))
