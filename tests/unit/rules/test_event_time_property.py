"""Property: a dangerous reading always raises its alarm, whatever its order, copies or
timestamp; late and skewed readings never clear an alarm or step it down.

Through the real stages: the quality stage (watermarks, ``clock_skew``, duplicates) in
front of the rule stage with the bundled coal pack, with random batch splits.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import registry

import riskwatch
from riskwatch.model import Batch, Level, Signal, SignalState
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.rules.stage import RuleStage

COAL = Path(riskwatch.__file__).parent / "config" / "rules" / "coal_mine.yaml"
S = 10**9
MS = 10**6
T0 = 1_795_880_000 * S
PERIOD = 10 * S
SAFE = [0.05, 0.3, 0.5, 0.8, 0.95]
# fast and slow clock jumps (seconds; within ingest.max_future_s, so never dead-lettered)
JUMPS = [0, 0, 0, 0, -3600, -600, -30, -10, -1, 1, 2, 3, 10, 60, 290]


def pipeline() -> tuple[Pipeline, object]:
    reg = registry(
        {"sensor": "CH4-F2-T0", "kind": "ch4", "unit": "%", "location": "upper_corner"},
        {"sensor": "CH4-F2-T2", "kind": "ch4", "unit": "%", "location": "return_airway"},
    )
    return Pipeline([QualityStage(2.0), RuleStage([COAL], reg)]), reg


def run(p: Pipeline, reg: object, rows: list[tuple[int, int, float, int]],
        cuts: list[int]) -> list[Signal]:  # fmt: skip
    """Feed (stamped time, sensor, value, arrival) rows in arrival order, cut at ``cuts``."""
    out: list[Signal] = []
    bounds = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    for a, b in itertools.pairwise(bounds):
        part = rows[a:b]
        batch = Batch.from_arrays([r[0] for r in part], [r[1] for r in part],
                                  [r[2] for r in part], received=[r[3] for r in part])  # fmt: skip
        ctx = StageContext(now_ns=max(r[3] for r in part), registry=reg)  # type: ignore[arg-type]
        out += p.run(batch, ctx)[1]
        out += p.tick(ctx)
    return out


@st.composite
def disturbed_series(draw: st.DrawFn) -> tuple[list[tuple[int, int, float, int]], int, list[int]]:
    n = draw(st.integers(1, 24))
    sensor = draw(st.integers(0, 1))
    values = [draw(st.sampled_from(SAFE)) for _ in range(n)]
    danger = draw(st.integers(0, n - 1))
    values[danger] = draw(st.sampled_from([1.5, 2.0, 4.0]))  # >= power-off (1.5 and 1.0 %)
    true_t = [T0 + i * PERIOD for i in range(n)]
    stamped = [t + draw(st.sampled_from(JUMPS)) * S for t in true_t]
    order = draw(st.permutations(range(n)))
    copies = draw(st.lists(st.integers(0, n - 1), max_size=4))
    arrival = list(order)
    for c in copies:  # a redelivery arrives after the original
        pos = draw(st.integers(arrival.index(c) + 1, len(arrival)))
        arrival.insert(pos, c)
    rows = []
    received = T0 - S
    for i in arrival:  # nothing arrives before it was measured
        received = max(received + MS, true_t[i] + draw(st.integers(0, 3)) * S)
        rows.append((stamped[i], sensor, values[i], received))
    cuts = draw(st.lists(st.integers(0, len(rows)), max_size=6))
    return rows, sensor, cuts


def raised(signals: list[Signal], rule: str) -> bool:
    return any(s.rule == rule and s.state is SignalState.FIRING and s.level is Level.RED
               for s in signals)  # fmt: skip


RULE_OF = {0: "ch4_face", 1: "ch4_return"}


@settings(max_examples=200, deadline=None)
@given(disturbed_series())
def test_a_dangerous_reading_always_raises(case) -> None:
    rows, sensor, cuts = case
    p, reg = pipeline()
    assert raised(run(p, reg, rows, cuts), RULE_OF[sensor])


@st.composite
def alarm_then_bad_readings(draw: st.DrawFn):
    n = draw(st.integers(1, 6))
    rows = []
    t = T0
    for _ in range(n):  # in order, dangerous: the alarm is red
        rows.append((t, 0, draw(st.sampled_from([1.6, 2.0])), t))
        t += PERIOD
    for _ in range(draw(st.integers(1, 20))):
        t += PERIOD
        kind = draw(st.sampled_from(["late", "skewed", "in_order_danger"]))
        if kind == "late":  # a low reading stamped before the sensor's newest one
            stamp = T0 + draw(st.integers(-3600, 0)) * S
            rows.append((stamp, 0, draw(st.sampled_from([*SAFE, 1.2])), t))
        elif kind == "skewed":  # a low reading from a fast clock (more than 2 s ahead)
            stamp = t + draw(st.integers(3, 290)) * S
            rows.append((stamp, 0, draw(st.sampled_from([*SAFE, 1.2])), t))
        else:
            rows.append((t, 0, 2.0, t))
    # the alarm is raised by a batch of its own (inside one batch, readings are taken in
    # event-time order: a reading stamped earlier is not late there)
    cuts = [n, *draw(st.lists(st.integers(n, len(rows)), max_size=6))]
    return rows, cuts


@settings(max_examples=200, deadline=None)
@given(alarm_then_bad_readings())
def test_late_and_skewed_readings_never_clear_or_step_down(case) -> None:
    rows, cuts = case
    p, reg = pipeline()
    signals = [s for s in run(p, reg, rows, cuts) if s.rule == "ch4_face"]
    assert [(s.state, s.level) for s in signals] == [(SignalState.FIRING, Level.RED)]
