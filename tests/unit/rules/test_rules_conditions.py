"""Condition kinds step by step: each case feeds a series and states the exact transitions."""

from __future__ import annotations

import math

from rules_helpers import S, brief, feed, registry, ruleset, series

from riskwatch.model import Flags

NAN = math.nan
CH4 = """
rules:
  - name: ch4
    match: {kind: ch4}
    levels:
      - {level: orange, above: catalog.alarm, clear_below: catalog.restore, label: alarm}
      - {level: red, above: catalog.power_off, clear_below: catalog.restore, label: power-off}
"""


def ch4_reg():
    return registry(
        {"sensor": "CH4-T1", "kind": "ch4", "unit": "%", "alarm": 1.0, "power_off": 1.5,
         "restore": 1.0},
        {"sensor": "CH4-T2", "kind": "ch4", "unit": "%", "alarm": 1.0, "power_off": 1.0,
         "restore": 1.0},
    )  # fmt: skip


def test_alarm_power_off_restore_with_hysteresis() -> None:
    rs = ruleset(CH4, ch4_reg())
    got = series(rs, 0, [0.5, 1.0, 1.4, 1.5, 1.2, 1.0, 0.99, 1.2])
    assert got == [
        (1.0, "ch4", 0, "firing", "orange"),
        (3.0, "ch4", 0, "firing", "red"),  # power-off at >= 1.5
        (6.0, "ch4", 0, "resolved", None),  # restore only below 1.0 (not at 1.0)
        (7.0, "ch4", 0, "firing", "orange"),
    ]


def test_return_airway_alarm_equals_power_off_goes_straight_to_red() -> None:
    rs = ruleset(CH4, ch4_reg())
    assert series(rs, 1, [0.9, 1.0, 0.99]) == [
        (1.0, "ch4", 1, "firing", "red"),
        (2.0, "ch4", 1, "resolved", None),
    ]


def test_message_names_sensor_value_threshold_and_unit() -> None:
    rs = ruleset(CH4, ch4_reg())
    sig = feed(rs, [(0, 0, 1.62)])
    assert sig[0].message == "m1/s1/CH4-T1: ch4 1.62 % >= power-off 1.5 % [ch4, firing]"
    assert (sig[0].value, sig[0].threshold, sig[0].source) == (1.62, 1.5, "rule")


def test_step_down_only_when_clear_holds() -> None:
    text = """
rules:
  - name: tank
    match: {kind: level}
    levels:
      - {level: orange, above: 80, clear_below: 75}
      - {level: red, above: 90, clear_below: 85}
"""
    rs = ruleset(text, registry({"sensor": "L1", "kind": "level"}))
    got = series(rs, 0, [91, 86, 84, 79, 76, 74.9])
    assert got == [
        (0.0, "tank", 0, "firing", "red"),
        (2.0, "tank", 0, "firing", "orange"),  # 84 < 85 clears red, 84 > 75 keeps orange
        (5.0, "tank", 0, "resolved", None),
    ]


def test_below_levels() -> None:
    text = """
rules:
  - name: o2_low
    match: {kind: o2}
    level: orange
    below: 20
    strict: true
"""
    rs = ruleset(text, registry({"sensor": "O2", "kind": "o2"}))
    assert series(rs, 0, [20.9, 20.0, 19.9, 20.0, 20.1]) == [
        (2.0, "o2_low", 0, "firing", "orange"),
        (3.0, "o2_low", 0, "resolved", None),
    ]


def test_for_needs_continuous_condition_and_one_false_reading_resets() -> None:
    text = """
rules:
  - name: hot
    match: {kind: temp}
    level: orange
    above: 26
    for: 30s
"""
    rs = ruleset(text, registry({"sensor": "T", "kind": "temp"}))
    got = series(rs, 0, [27, 27, 27, 25, 27, 27, 27, 27, 20], step=10)
    assert got == [
        (0.0, "hot", 0, "pending", "orange"),
        (30.0, "hot", 0, "resolved", None),  # pending dropped: one false reading resets
        (40.0, "hot", 0, "pending", "orange"),
        (70.0, "hot", 0, "firing", "orange"),  # 30 s after 40 s
        (80.0, "hot", 0, "resolved", None),
    ]


def test_keep_firing_for() -> None:
    text = """
rules:
  - name: hot
    match: {kind: temp}
    level: orange
    above: 26
    keep_firing_for: 20s
"""
    rs = ruleset(text, registry({"sensor": "T", "kind": "temp"}))
    got = series(rs, 0, [27, 20, 20, 27, 20, 20, 20], step=10)
    assert got == [(0.0, "hot", 0, "firing", "orange"), (60.0, "hot", 0, "resolved", None)]


def test_n_of_m() -> None:
    text = """
rules:
  - name: surge
    match: {kind: load_kw}
    level: yellow
    above: 100
    count: {n: 3, m: 5}
"""
    rs = ruleset(text, registry({"sensor": "P", "kind": "load_kw"}))
    vals = [120, 0, 120, 0, 0, 120, 120, 0, 0, 0, 0]
    got = series(rs, 0, vals)
    # t=6: the last 5 readings (t=2..6) are 120,0,0,120,120 -> 3 of 5; t=7: 0,0,120,120,0 -> 2
    assert got == [(6.0, "surge", 0, "firing", "yellow"), (7.0, "surge", 0, "resolved", None)]


def test_n_of_m_across_batches_uses_history() -> None:
    text = """
rules:
  - {name: c, match: {kind: x}, level: blue, above: 1, count: {n: 2, m: 3}}
"""
    rs = ruleset(text, registry({"sensor": "X", "kind": "x"}))
    assert brief(feed(rs, [(0, 0, 5)])) == []
    assert brief(feed(rs, [(1, 0, 0)])) == []
    assert brief(feed(rs, [(2, 0, 5), (3, 0, 0), (4, 0, 0)])) == [
        (2.0, "c", 0, "firing", "blue"),  # 5, 0, 5: 2 of 3
        (3.0, "c", 0, "resolved", None),  # 0, 5, 0: 1 of 3 and 0 < 1
    ]


def test_rate_per_minute() -> None:
    text = """
rules:
  - {name: rise, match: {kind: ch4}, of: rate, per: 1m, level: yellow, above: 0.3}
"""
    rs = ruleset(text, registry({"sensor": "C", "kind": "ch4"}))
    got = series(rs, 0, [0.2, 0.25, 0.35, 0.40, 0.41], step=10)
    # +0.1 in 10 s = 0.6/min at t=20; +0.05/10s = 0.3/min at t=30 (still >=); 0.06/min at 40
    assert got == [(20.0, "rise", 0, "firing", "yellow"), (40.0, "rise", 0, "resolved", None)]


def test_change_over_window() -> None:
    text = """
rules:
  - {name: jump, match: {kind: load_kw}, of: change, window: 30s, level: yellow, above: 50}
"""
    rs = ruleset(text, registry({"sensor": "P", "kind": "load_kw"}))
    got = series(rs, 0, [100, 110, 120, 160, 170, 175, 180, 180], step=10)
    # t=30: 160 - v(t>=0)=100 -> 60; t=40: 170-110=60; t=50: 175-120=55; t=60: 180-160=20
    assert got == [(30.0, "jump", 0, "firing", "yellow"), (60.0, "jump", 0, "resolved", None)]


def test_frozen_value() -> None:
    text = """
rules:
  - {name: stuck, match: {kind: ch4}, frozen: {for: 60s, tolerance: 0.001}}
"""
    rs = ruleset(text, registry({"sensor": "C", "kind": "ch4"}))
    got = series(rs, 0, [0.3, 0.31, 0.31, 0.3105, 0.31, 0.31, 0.31, 0.31, 0.32], step=10)
    # unchanged since t=10 (first 0.31): >= 60 s at t=70; changes at t=80
    assert got == [(70.0, "stuck", 0, "firing", "yellow"), (80.0, "stuck", 0, "resolved", None)]


def test_out_of_range_uses_catalogue_range_and_sees_fault_flagged_readings() -> None:
    text = """
rules:
  - {name: range, match: {kind: wind}, out_of_range: {}}
"""
    rs = ruleset(text, registry({"sensor": "W", "kind": "wind", "range_low": -5, "range_high": 5}))
    got = series(rs, 0, [1.0, -266.0, 5.0, 5.1], flags=[0, int(Flags.FAULT), 0, 0])
    assert got == [
        (1.0, "range", 0, "firing", "yellow"),
        (2.0, "range", 0, "resolved", None),
        (3.0, "range", 0, "firing", "yellow"),
    ]


def test_calibrating_readings_never_raise_and_never_clear() -> None:
    rs = ruleset(CH4, ch4_reg())
    c = int(Flags.CALIBRATING)
    got = series(rs, 0, [0.5, 2.0, 2.0, 1.2, 0.3, 0.3], flags=[0, c, c, 0, c, 0])
    assert got == [(3.0, "ch4", 0, "firing", "orange"), (5.0, "ch4", 0, "resolved", None)]


def test_duplicates_are_not_evaluated_again_and_out_of_order_readings_only_raise() -> None:
    rs = ruleset(CH4, ch4_reg())
    d, o = int(Flags.DUPLICATE), int(Flags.OUT_OF_ORDER)
    got = series(rs, 0, [0.5, 2.0, 1.2, 0.3, 0.3], flags=[0, o, 0, d, 0])
    # in order: 1.2 raises orange, the redelivered 0.3 counts once, the next 0.3 clears;
    # then the out-of-order 2.0 raises red (after the in-order readings: raise-only)
    assert got == [
        (2.0, "ch4", 0, "firing", "orange"),
        (4.0, "ch4", 0, "resolved", None),
        (1.0, "ch4", 0, "firing", "red"),
    ]


def test_calibration_overrun() -> None:
    text = """
rules:
  - {name: calib_long, match: {kind: ch4}, calibration: {max: 30m}}
"""
    rs = ruleset(text, registry({"sensor": "C", "kind": "ch4"}))
    c = int(Flags.CALIBRATING)
    got = series(rs, 0, [0.1, 2.0, 2.0, 2.0, 0.2], step=900, flags=[0, c, c, c, 0])
    assert got == [(2700.0, "calib_long", 0, "firing", "yellow"),
                   (3600.0, "calib_long", 0, "resolved", None)]  # fmt: skip


def test_latched_alert_survives_data_loss_and_deadman_fires() -> None:
    text = (
        CH4
        + """
  - {name: ch4_nodata, match: {kind: ch4}, no_data: {after: 30s}}
"""
    )
    reg = ch4_reg()
    rs = ruleset(text, reg)
    assert brief(feed(rs, [(0, 0, 1.6), (0, 1, 0.1)], now=0)) == [(0.0, "ch4", 0, "firing", "red")]
    assert brief(rs.tick(29 * S)) == []
    assert brief(rs.tick(31 * S)) == [
        (31.0, "ch4_nodata", 0, "firing", "yellow"),
        (31.0, "ch4_nodata", 1, "firing", "yellow"),
    ]
    assert brief(rs.tick(100 * S)) == []  # no repeats
    assert ("ch4", 0, "firing", rs.active()[0][3]) in rs.active()
    # data again: the deadman resolves, but 1.2 is not below restore 1.0, so red stays latched
    sig = feed(rs, [(100, 0, 1.2)], now=100)
    assert brief(sig) == [(100.0, "ch4_nodata", 0, "resolved", None)]
    # the resolution says how long data was missing: from the last reading (0 s) to 100 s
    assert (
        sig[0].message == "m1/s1/CH4-T1: data again after 100 s without data [ch4_nodata, resolved]"
    )
    assert sig[0].value == 100.0


def test_deadman_for_catalogued_sensor_that_never_reported() -> None:
    text = """
rules:
  - {name: nd, match: {kind: ch4}, no_data: {}}
"""
    reg = registry({"sensor": "A", "kind": "ch4", "period_s": 10}, {"sensor": "B", "kind": "ch4"})
    rs = ruleset(text, reg)
    rs.tick(1000 * S)  # start
    assert brief(rs.tick(1029 * S)) == []
    # A: 3 x period_s = 30 s; B has no period: the default 90 s
    assert brief(rs.tick(1030 * S)) == [(1030.0, "nd", 0, "firing", "yellow")]
    assert brief(rs.tick(1090 * S)) == [(1090.0, "nd", 1, "firing", "yellow")]


def test_deadman_event_time_and_arrival_time() -> None:
    text = """
rules:
  - {name: nd_event, match: {kind: x}, no_data: {after: 60s, clock: event}}
  - {name: nd_arrival, match: {kind: x}, no_data: {after: 60s, clock: arrival}}
"""
    reg = registry({"sensor": "A", "kind": "x"})
    rs = ruleset(text, reg)
    from riskwatch.model import Batch

    # a gateway replays buffered data: event time 10 min old, arriving now
    b = Batch.from_arrays([0], [0], [1.0], received=[600 * S])
    rs.process(b, 600 * S)
    assert brief(rs.tick(601 * S)) == [(601.0, "nd_event", 0, "firing", "yellow")]
    assert brief(rs.tick(661 * S)) == [(661.0, "nd_arrival", 0, "firing", "yellow")]


def test_site_deadman() -> None:
    text = """
rules:
  - {name: site_nd, match: {kind: "*"}, no_data: {after: 60s, per: site}}
"""
    reg = registry({"sensor": "A", "kind": "x"}, {"sensor": "B", "kind": "y"},
                   {"site": "s2", "sensor": "C", "kind": "x"})  # fmt: skip
    rs = ruleset(text, reg)
    feed(rs, [(0, 0, 1.0)])  # starts the rule set at t=0 (B never reported: counts from start)
    feed(rs, [(100, 2, 1.0)])
    sig = rs.tick(110 * S)
    assert [(s.group, s.state, s.sensor) for s in sig] == [("m1/s1", "firing", -1)]
    assert sig[0].extra == {"enterprise": "m1", "site": "s1"}
    sig = feed(rs, [(112, 1, 1.0)], now=112)
    assert [(s.group, s.state) for s in sig] == [("m1/s1", "resolved")]
    assert sig[0].message == "m1/s1: data again after 112 s without data [site_nd, resolved]"


def test_deadman_resolution_on_the_event_clock_counts_event_time() -> None:
    text = """
rules:
  - {name: nd_event, match: {kind: x}, no_data: {after: 60s, clock: event}}
"""
    rs = ruleset(text, registry({"sensor": "A", "kind": "x"}))
    feed(rs, [(10, 0, 1.0)])
    assert brief(rs.tick(75 * S)) == [(75.0, "nd_event", 0, "firing", "yellow")]
    sig = feed(rs, [(95, 0, 1.0)], now=96)
    assert sig[0].message == "m1/s1/A: data again after 85 s without data [nd_event, resolved]"


def test_feed_anomaly_compound() -> None:
    text = (
        CH4
        + """
  - name: feed_anomaly
    description: power-off level but the feed sensor still reads powered
    compound:
      by: [enterprise, site, sensor]
      link: controls
      all:
        - {rule: ch4, level: red}
        - {match: {kind: feed}, above: 0.5}
    for: 40s
"""
    )
    reg = ch4_reg()
    reg.apply_catalog([])
    from riskwatch.catalog import CatalogEntry

    reg.apply_catalog([CatalogEntry("m1", "s1", "FEED-1", "feed", tags={"controls": "CH4-T1"})])
    rs = ruleset(text, reg)
    assert brief(feed(rs, [(0, 2, 1.0), (0, 0, 1.6)])) == [
        (0.0, "ch4", 0, "firing", "red"),
        (0.0, "feed_anomaly", 0, "pending", "red"),  # remote power-off allowed <= 40 s
    ]
    assert brief(feed(rs, [(10, 2, 1.0)])) == []
    assert brief(feed(rs, [(50, 2, 1.0)])) == [(50.0, "feed_anomaly", 0, "firing", "red")]
    sig = feed(rs, [(60, 2, 0.0)])
    assert brief(sig) == [(60.0, "feed_anomaly", 0, "resolved", None)]
    assert sig[0].group == "m1/s1/CH4-T1"


def test_two_out_of_three_voting() -> None:
    text = """
rules:
  - {name: lel2, match: {kind: lel}, level: red, above: 50}
  - name: lel_vote
    compound: {by: [enterprise, site, asset], at_least: 2, of: [{rule: lel2}]}
"""
    rows = [{"sensor": f"G{i}", "kind": "lel", "asset": "tank1"} for i in range(3)]
    rs = ruleset(text, registry(*rows))
    assert [s.rule for s in feed(rs, [(0, 0, 60)])] == ["lel2"]
    sig = feed(rs, [(1, 1, 70)])
    assert brief(sig)[-1] == (1.0, "lel_vote", 0, "firing", "red")
    assert sig[-1].group == "m1/s1/tank1"


def test_calendar_shutdown_window_per_enterprise(tmp_path) -> None:
    (tmp_path / "orders.csv").write_text(
        "enterprise,site,start,end,reason\nm1,,2026-01-01T00:00:00+08:00,2026-01-02T00:00:00+08:00,"
        "rectification order\n"
    )
    text = f"""
calendars:
  shutdown: {{file: {tmp_path / "orders.csv"}}}
rules:
  - name: shutdown_load
    match: {{kind: load_kw}}
    level: red
    above: catalog.idle_kw
    calendar: {{inside: [shutdown]}}
"""
    reg = registry({"sensor": "P", "kind": "load_kw", "idle_kw": 50},
                   {"enterprise": "m2", "sensor": "P", "kind": "load_kw", "idle_kw": 50})  # fmt: skip
    rs = ruleset(text, reg)
    from riskwatch.rules.calendars import parse_time

    t0 = parse_time("2026-01-01T12:00:00+08:00") / S
    got = brief(feed(rs, [(t0 - 86400, 0, 200), (t0, 0, 200), (t0, 1, 200), (t0 + 86400, 0, 200)]))
    assert got == [(t0, "shutdown_load", 0, "firing", "red"),
                   (t0 + 86400, "shutdown_load", 0, "resolved", None)]  # fmt: skip


def test_weekly_night_calendar_and_holidays() -> None:
    import numpy as np

    from riskwatch.rules.calendars import Calendar, parse_time
    from riskwatch.rules.parse import CalendarSpec

    spec = {"night": CalendarSpec(days=["sun"], from_="22:00", to="06:00"),
            "hol": CalendarSpec(dates=["2026-10-01"]),
            "off": CalendarSpec(any_of=["night", "hol"])}  # fmt: skip
    cal = Calendar.build("off", spec["off"], spec, None)
    ts = ["2026-01-04T23:00:00+08:00",  # Sunday night
          "2026-01-05T05:59:00+08:00",  # Monday early morning (wraps)
          "2026-01-05T06:00:00+08:00",
          "2026-10-01T12:00:00+08:00",  # holiday
          "2026-10-02T00:00:00+08:00"]  # fmt: skip
    t = np.array([parse_time(x) for x in ts])
    e = np.array(["m"] * len(t), dtype=object)
    assert cal.active(t, e, e).tolist() == [True, True, False, True, False]


def test_new_sensor_at_run_time_and_state_kept_on_rebuild() -> None:
    rs = ruleset(CH4, ch4_reg())
    assert brief(feed(rs, [(0, 0, 1.2)])) == [(0.0, "ch4", 0, "firing", "orange")]
    new = rs.registry.intern("m1", "s1", ["CH4-NEW"], kinds=["ch4"])
    rs.registry.set_meta(int(new[0]), kind="ch4")
    got = brief(feed(rs, [(1, int(new[0]), 5.0), (1, 0, 1.1)]))
    # the new sensor has no catalogue setpoints: no thresholds, no alert; CH4-T1 stays orange
    assert got == []
    assert brief(feed(rs, [(2, 0, 0.5)])) == [(2.0, "ch4", 0, "resolved", None)]


def test_nan_values_do_not_clear() -> None:
    rs = ruleset(CH4, ch4_reg())
    assert series(rs, 0, [1.2, NAN, 1.2]) == [(0.0, "ch4", 0, "firing", "orange")]
