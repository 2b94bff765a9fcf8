"""The event-time contract of the rules (docs/rules.md, "Event time"), step by step.

Readings the quality stage flags out of order, clock-skewed or conflicting are evaluated
raise-only: they may raise or escalate an alert, never clear it or step it down, and
never move the in-order state (latches' clear runs aside, `for` runs, N-of-M history,
last readings).
"""

from __future__ import annotations

import numpy as np
from rules_helpers import S, brief, feed, registry, ruleset

from riskwatch.model import Batch, Flags

OOO, K = int(Flags.OUT_OF_ORDER), int(Flags.CLOCK_SKEW)
D, C = int(Flags.DUPLICATE), int(Flags.CONFLICTING)
CH4 = """
rules:
  - name: ch4
    match: {kind: ch4}
    levels:
      - {level: orange, above: catalog.alarm, clear_below: catalog.restore, label: alarm}
      - {level: red, above: catalog.power_off, clear_below: catalog.restore, label: power-off}
"""


def ch4():
    reg = registry({"sensor": "CH4-T0", "kind": "ch4", "unit": "%", "alarm": 1.0,
                    "power_off": 1.5, "restore": 1.0})  # fmt: skip
    return ruleset(CH4, reg)


def one(rs, t, v, flags=0):
    return brief(feed(rs, [(t, 0, v, flags)]))


def test_an_out_of_order_dangerous_reading_raises() -> None:
    rs = ch4()
    assert one(rs, 10, 0.3) == []
    sig = feed(rs, [(5, 0, 2.0, OOO)])
    assert brief(sig) == [(5.0, "ch4", 0, "firing", "red")]
    assert sig[0].message == (
        "m1/s1/CH4-T0: ch4 2 % >= power-off 1.5 % (out-of-order reading) [ch4, firing]"
    )
    # the next in-order reading below restore clears it, as the regulation says
    assert one(rs, 11, 0.9) == [(11.0, "ch4", 0, "resolved", None)]


def test_a_late_low_reading_never_clears_and_never_steps_down() -> None:
    rs = ch4()
    assert one(rs, 10, 1.6) == [(10.0, "ch4", 0, "firing", "red")]
    assert one(rs, 5, 0.2, OOO) == []  # below restore, but out of order
    assert one(rs, 6, 1.2, OOO) == []  # orange only: no step-down
    assert rs.active() == [("ch4", 0, "firing", 1)]
    assert one(rs, 11, 1.2) == []  # in order, 1.2 is not below restore: still red
    assert one(rs, 12, 0.9) == [(12.0, "ch4", 0, "resolved", None)]


def test_an_out_of_order_reading_escalates() -> None:
    rs = ch4()
    assert one(rs, 10, 1.2) == [(10.0, "ch4", 0, "firing", "orange")]
    assert one(rs, 9, 1.7, OOO) == [(9.0, "ch4", 0, "firing", "red")]
    assert one(rs, 11, 1.2) == []  # red holds until below restore


def test_a_clock_skewed_reading_raises_at_its_arrival_time() -> None:
    rs = ch4()
    b = Batch.from_arrays([300 * S], [0], [2.0], [K], received=[10 * S])
    sig = rs.process(b, 10 * S)
    assert brief(sig) == [(10.0, "ch4", 0, "firing", "red")]
    assert "(clock-skewed reading)" in sig[0].message
    # and a skewed low reading does not clear
    b = Batch.from_arrays([301 * S], [0], [0.1], [K], received=[11 * S])
    assert rs.process(b, 11 * S) == []


def test_two_values_for_one_time_the_more_dangerous_counts() -> None:
    rs = ch4()
    assert one(rs, 5, 0.3) == []
    assert one(rs, 5, 2.0, D | C) == [(5.0, "ch4", 0, "firing", "red")]
    assert one(rs, 5, 0.3, D | C) == []  # the other order: the low one changes nothing
    rs2 = ch4()
    assert one(rs2, 5, 2.0) == [(5.0, "ch4", 0, "firing", "red")]
    assert one(rs2, 5, 0.3, D | C) == []


def test_a_true_redelivery_changes_nothing() -> None:
    rs = ch4()
    assert one(rs, 5, 2.0, D) == []


def test_calibrating_and_faulty_readings_stay_out_even_out_of_order() -> None:
    rs = ch4()
    assert one(rs, 5, 2.0, OOO | int(Flags.CALIBRATING)) == []
    assert one(rs, 5, 2.0, OOO | int(Flags.FAULT)) == []


FOR = """
rules:
  - {name: ch4_for, match: {kind: ch4}, level: orange, above: 1.0, for: 30s}
"""


def test_with_for_an_out_of_order_reading_only_pends_and_moves_no_run() -> None:
    rs = ruleset(FOR, registry({"sensor": "CH4-T0", "kind": "ch4"}))
    assert one(rs, 60, 0.3) == []
    assert one(rs, 50, 2.0, OOO) == [(50.0, "ch4_for", 0, "pending", "orange")]
    assert one(rs, 61, 0.3) == [(61.0, "ch4_for", 0, "resolved", None)]  # in order: clears
    assert one(rs, 100, 2.0) == [(100.0, "ch4_for", 0, "pending", "orange")]
    s = rs.readings.slots
    since = s.trigger_since.copy()
    assert one(rs, 40, 2.0, OOO) == []  # already pending: the run keeps its start ...
    assert one(rs, 90, 0.3, OOO) == []  # ... and a late low reading does not break it
    assert np.array_equal(s.trigger_since, since)
    assert one(rs, 120, 2.0) == []
    assert one(rs, 130, 2.0) == [(130.0, "ch4_for", 0, "firing", "orange")]


COUNT = """
rules:
  - {name: ch4_3of5, match: {kind: ch4}, level: orange, above: 1.0, count: {n: 3, m: 5}}
"""


def test_n_of_m_counts_the_reading_beside_the_last_in_order_ones() -> None:
    rs = ruleset(COUNT, registry({"sensor": "CH4-T0", "kind": "ch4"}))
    for t, v in [(1, 2.0), (2, 2.0), (3, 0.3)]:
        assert one(rs, t, v) == []
    history = rs.readings.slots.count_history.copy()
    assert one(rs, 0.5, 2.0, OOO) == [(0.5, "ch4_3of5", 0, "firing", "orange")]
    assert np.array_equal(rs.readings.slots.count_history, history)  # history unchanged
    assert one(rs, 0.6, 0.1, OOO) == []
    # in order again: 2.0 2.0 0.3 0.3 -> 2 of the last 4 < 3: the count clears it
    assert one(rs, 4, 0.3) == [(4.0, "ch4_3of5", 0, "resolved", None)]


RATE = """
rules:
  - {name: rise, match: {kind: ch4}, of: rate, per: 1m, level: yellow, above: 0.5}
"""


def test_kinds_that_need_the_previous_reading_skip_raise_only_readings() -> None:
    rs = ruleset(RATE, registry({"sensor": "CH4-T0", "kind": "ch4"}))
    assert one(rs, 0, 1.0) == []
    assert one(rs, 60, 1.1) == []
    s = rs.readings.slots
    last = (s.last_time.copy(), s.last_value.copy())
    assert one(rs, 30, 9.0, OOO) == []  # a rate against an out-of-order point means nothing
    assert np.array_equal(s.last_time, last[0]) and np.array_equal(s.last_value, last[1])
    assert one(rs, 120, 1.2) == []  # 0.1 per minute against the 1.1 at 60 s


RANGE = """
rules:
  - {name: wind_range, match: {kind: wind}, out_of_range: {}}
"""


def test_measuring_range_raises_on_a_faulty_out_of_order_reading() -> None:
    reg = registry({"sensor": "W-1", "kind": "wind", "range_low": 0, "range_high": 15})
    rs = ruleset(RANGE, reg)
    assert one(rs, 10, 3.0) == []
    assert one(rs, 5, -266.0, OOO | int(Flags.FAULT)) == [
        (5.0, "wind_range", 0, "firing", "yellow")
    ]
    assert one(rs, 6, 4.0, OOO) == []  # back inside, but out of order: no clear
    assert one(rs, 11, 4.0) == [(11.0, "wind_range", 0, "resolved", None)]


def test_in_order_and_raise_only_readings_in_one_batch() -> None:
    rs = ch4()
    assert one(rs, 10, 0.3) == []
    # the in-order reading goes first (it clears nothing), then the late one raises
    got = brief(feed(rs, [(5, 0, 1.7, OOO), (11, 0, 0.5)]))
    assert got == [(5.0, "ch4", 0, "firing", "red")]
