"""Exact windows: ``of: change`` and N-of-M give the same signals for any window length
and any batching, equal to the plain reference scan (issue 15, reproduction 4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import registry

from riskwatch.model import Batch, Signal
from riskwatch.rules.conditions import CHANGE_MAX_KEPT, ChangeColumns
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.parse import load_rules_text
from riskwatch.rules.reference import ScalarRules

S = 10**9
RAMP_RULE = """
rules:
  - {name: surge, match: {kind: g}, of: change, window: 1h, level: orange, above: 200}
"""


def _rs(text: str, n_sensors: int = 1) -> RuleSet:
    reg = registry(*[{"sensor": f"G{i}", "kind": "g"} for i in range(n_sensors)])
    return RuleSet([load_rules_text(text)], reg)


def _run(rs: RuleSet, rows: list[tuple[int, int, float]], bounds: list[int]) -> list[Signal]:
    out: list[Signal] = []
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        part = rows[a:b]
        batch = Batch.from_arrays([r[0] for r in part], [r[1] for r in part],
                                  [r[2] for r in part])  # fmt: skip
        out += rs.process(batch, part[-1][0])
    return out


def _firing(sigs: list[Signal]) -> list[int]:
    return [s.time // S for s in sigs if s.state.value == "firing"]


@pytest.mark.parametrize("batch", [1, 50, 64, 65, 1000, 4000], ids=lambda b: f"batch{b}")
def test_one_hour_change_on_a_1s_ramp_fires_at_200s_for_any_batch_size(batch: int) -> None:
    # the ramp rises 1 per second: 200 above its lowest reading (t=0) at t=200 s. A
    # 64-reading ring never saw more than 63 one at a time, and fired at 136/100/101 s
    # with batches of 50/64/65 readings.
    rows = [(i * S, 0, float(i)) for i in range(4000)]
    bounds = [*range(0, len(rows), batch), len(rows)]
    sigs = _run(_rs(RAMP_RULE), rows, bounds)
    assert _firing(sigs) == [200]
    assert sigs[0].value == 200.0


def test_ramp_memory_is_the_window_and_a_flat_series_keeps_one_entry() -> None:
    rs = _rs(RAMP_RULE, 2)
    rows = [(i * S, s, float(i) if s == 0 else 5.0) for i in range(5000) for s in (0, 1)]
    _run(rs, rows, [*range(0, len(rows), 997), len(rows)])
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    # the rising sensor keeps every reading of the last hour (t = 1399 s .. 4999 s)
    assert cols.kept_counts().tolist() == [3601, 1]
    assert int(cols.entries(0)[0][0]) == 1399 * S
    assert cols.entries(1)[1].tolist() == [5.0]


def test_a_fall_compares_with_the_highest_reading_in_the_window() -> None:
    rs = _rs("rules: [{name: drop, match: {kind: g}, of: change, window: 10s, "
             "level: yellow, below: -5}]")  # fmt: skip
    # 10 at t=0, 20 at 2 s, 16 at 4 s, 14 at 13 s (20 is then out: max 16, fall 2)
    rows = [(0, 0, 10.0), (2 * S, 0, 20.0), (4 * S, 0, 16.0), (6 * S, 0, 15.0),
            (13 * S, 0, 14.0)]  # fmt: skip
    sigs = _run(rs, rows, [0, 1, 2, 3, 4, 5])
    assert [(s.time // S, s.state.value, s.value) for s in sigs] == [
        (6, "firing", -5.0),
        (13, "resolved", -2.0),
    ]


def test_both_directions_in_one_change_rule_is_refused() -> None:
    from riskwatch.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match=r"rise .* or the fall"):
        load_rules_text("""
rules:
  - name: both
    match: {kind: g}
    of: change
    window: 1m
    levels:
      - {level: red, above: 5}
      - {level: yellow, below: -5}
""")


def test_a_deque_longer_than_the_bound_is_coarsened_on_the_alarm_side(monkeypatch) -> None:
    import riskwatch.rules.conditions.change as change

    monkeypatch.setattr(change, "CHANGE_MAX_KEPT", 10)
    rs = _rs("rules: [{name: rise, match: {kind: g}, of: change, window: 100s, "
             "level: yellow, above: 30}]")  # fmt: skip
    # rises 1 per second: 20 readings want keeping, 10 may
    rows = [(i * S, 0, float(i)) for i in range(20)]
    _run(rs, rows, [0, 20])
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    assert cols.kept_counts().tolist() == [10]
    assert int(cols.coarsened[0]) == 10
    # the lowest value (0) is kept, stamped with the newest merged reading's time (10 s)
    times, values = cols.entries(0)
    assert (times[0], values[0]) == (10 * S, 0.0)
    assert (times[1:] // S).tolist() == list(range(11, 20))
    assert CHANGE_MAX_KEPT == 1 << 17  # the module constant, not the patched one


# -- property: any window from 1 s to 24 h, any batching, equals the reference scan ----

WINDOWS = ["1s", "7s", "45s", "10m", "1h", "6h", "24h"]
VALUES = [0.0, 1.0, 2.5, 3.0, 7.0, 10.0, 50.0]


def _rules(window: str, n: int, m: int) -> str:
    return f"""
rules:
  - {{name: rise, match: {{kind: g}}, of: change, window: {window}, level: orange, above: 6}}
  - name: fall
    match: {{kind: g}}
    of: change
    window: {window}
    levels:
      - {{level: red, below: -40}}
      - {{level: yellow, below: -6, clear_above: -2}}
  - {{name: nofm, match: {{kind: g}}, level: blue, above: 5, count: {{n: {n}, m: {m}}}}}
"""


def _key(sigs: list[Signal]) -> list[tuple]:
    out = [(s.time, s.rule, s.sensor, s.state, int(s.level) if s.level else None) for s in sigs]
    return sorted(out, key=lambda x: (x[0], x[2], x[1]))


@settings(max_examples=120, deadline=None)
@given(
    window=st.sampled_from(WINDOWS),
    nm=st.integers(1, 64).flatmap(lambda m: st.tuples(st.integers(1, m), st.just(m))),
    gaps=st.sampled_from([1, 5, 60, 1800, 7200]),  # seconds per step of the series
    raw=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 2), st.sampled_from(VALUES)),
        min_size=1,
        max_size=120,
    ),
    cuts=st.lists(st.integers(0, 120), max_size=8),
)
def test_windows_equal_the_reference_for_any_batching(window, nm, gaps, raw, cuts) -> None:
    n, m = nm
    text = _rules(window, n, m)
    t = 0
    rows = []
    for dt, sensor, v in raw:
        t += dt * gaps * S
        rows.append((t, sensor, v))
    whole = _key(_run(_rs(text, 3), rows, [0, len(rows)]))
    single = _key(_run(_rs(text, 3), rows, list(range(len(rows) + 1))))
    split_at = sorted({c % (len(rows) + 1) for c in cuts})
    split = _key(_run(_rs(text, 3), rows, [0, *split_at, len(rows)]))
    ref = ScalarRules(_rs(text, 3))
    expect = []
    for r in rows:
        expect += ref.feed(r[0], r[1], r[2], 0)
    expect = [(tt, rule, sensor, state, level) for rule, sensor, tt, state, level in expect]
    assert whole == sorted(expect, key=lambda x: (x[0], x[2], x[1]))
    assert single == whole
    assert split == whole


def test_kept_entries_stay_sorted_and_increasing_per_ring() -> None:
    rng = np.random.default_rng(7)
    rs = _rs(_rules("10m", 2, 3), 3)
    t = np.cumsum(rng.integers(1, 30, 3000)) * S
    rows = [(int(tt), int(rng.integers(0, 3)), float(rng.normal())) for tt in t]
    _run(rs, rows, [*range(0, 3000, 211), 3000])
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    for row in range(len(cols.count)):
        times, values = cols.entries(row)
        assert np.all(np.diff(times) >= 0)
        assert np.all(np.diff(values) > 0)
        assert cols.base[row] <= cols.head[row]
        assert cols.head[row] + cols.count[row] <= cols.base[row] + cols.cap[row]
    # regions never overlap
    order = np.argsort(cols.base)
    assert np.all((cols.base + cols.cap)[order][:-1] <= cols.base[order][1:])


def test_an_older_reading_let_through_counts_from_the_newest_time() -> None:
    # process rules skip out-of-order readings today; should one reach the window, it is
    # kept as of the deque's newest time (it stays longer: a rise can only come early)
    rs = _rs("rules: [{name: rise, match: {kind: g}, of: change, window: 1h, "
             "level: yellow, above: 8}]")  # fmt: skip
    _run(rs, [(0, 0, 0.0), (10 * S, 0, 5.0)], [0, 2])
    _run(rs, [(5 * S, 0, -10.0)], [0, 1])
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    times, values = cols.entries(0)
    assert (times.tolist(), values.tolist()) == ([10 * S], [-10.0])
    sigs = _run(rs, [(20 * S, 0, 0.0)], [0, 1])
    assert [(s.time // S, s.state.value, s.value) for s in sigs] == [(20, "firing", 10.0)]


def test_a_nan_value_is_never_the_windows_extreme() -> None:
    rs = _rs(RAMP_RULE.replace("above: 200", "above: 5"))
    sigs = _run(rs, [(0, 0, 0.0), (S, 0, float("nan")), (2 * S, 0, 6.0)], [0, 3])
    assert [(s.time // S, s.state.value, s.value) for s in sigs] == [(2, "firing", 6.0)]
    cols = rs.readings.slots.columns[ConditionKind.CHANGE]
    assert isinstance(cols, ChangeColumns)
    assert cols.entries(0)[1].tolist() == [0.0, 6.0]
