"""Simulator behaviour: determinism, injected events against their labels, interlock,
payload forms through the engine's own decoder, scenario errors, bundled files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskwatch.catalog import SensorRegistry, load_catalog
from riskwatch.errors import ConfigErrors
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import Flags
from riskwatch.sensors_sim.cli import list_scenarios, write_catalog
from riskwatch.sensors_sim.labels import LabelWriter, read_labels
from riskwatch.sensors_sim.publisher import MemorySink, encoder_for, run_scenario
from riskwatch.sensors_sim.scenario import bundled_scenarios, load_scenario, load_scenario_text
from riskwatch.sensors_sim.simulator import Readings, Simulator

T0 = 1_780_000_000_000_000_000  # 2026-05-28T20:26:40Z
MS = 1_000_000

EVENTS = """
name: events
seed: 5
duration: 40m
plants:
  - {type: coal_mine, enterprise: m1}
  - {type: hazchem, enterprise: c1}
events:
  - {type: ch4_buildup, at: 2m, duration: 10m, peak: 1.8, target: {sensor: CH4-F1-T1}}
  - {type: feed_failure, at: 20m, duration: 10m, target: {sensor: FEED-F2}}
  - {type: ch4_buildup, at: 20m, duration: 10m, peak: 1.8, target: {sensor: CH4-F2-T1}}
  - {type: stuck, at: 5m, duration: 10m, target: {sensor: CH4-F2-T0}}
  - {type: dropout, at: 3m, duration: 4m, target: {sensor: CO-H1}}
  - {type: gateway_dropout, at: 8m, duration: 3m, target: {site: main}}
  - {type: late, at: 12m, duration: 2m, delay: 5m, target: {sensor: T-F1}}
  - {type: out_of_order, at: 14m, duration: 2m, target: {sensor: WS-F1}}
  - {type: duplicate, at: 16m, duration: 2m, target: {sensor: O2-F1}}
  - {type: malformed, at: 18m, duration: 5m, p: 0.5, target: {site: heading1}}
  - {type: spike, at: 25m, duration: 5m, p: 0.5, target: {sensor: WS-F2}}
  - {type: calibration, at: 30m, duration: 5m, target: {sensor: CH4-F1-T2}}
  - {type: gas_leak, at: 1m, duration: 10m, target: {sensor: [TK101-GD1, TK101-TX]}}
  - {type: tank_overfill, at: 10m, duration: 10m, target: {sensor: TK102-LT}}
  - {type: drift, at: 10m, duration: 20m, peak: 0.4, target: {sensor: TK103-PT}}
"""


def make(seed: int | None = None, text: str = EVENTS) -> Simulator:
    return Simulator(load_scenario_text(text), start_ns=T0, seed=seed)


@pytest.fixture(scope="module")
def run() -> tuple[Simulator, Readings]:
    sim = make()
    return sim, sim.run_all()


def series(sim: Simulator, r: Readings, sensor: str) -> tuple[np.ndarray, np.ndarray]:
    m = sim.table.sensor[r.idx] == sensor
    return r.ts_ms[m], r.value[m]


def label(sim: Simulator, typ: str, sensor: str = "") -> dict:
    (lb,) = [x for x in sim.labels if x["type"] == typ and (not sensor or x["sensor"] == sensor)]
    return lb


def test_same_seed_same_readings_and_payloads() -> None:
    a, b = make(), make()
    ra, rb = a.run_all(), b.run_all(fast=False)  # skipping idle ticks changes nothing
    for f in Readings.__slots__:
        assert np.array_equal(getattr(ra, f), getattr(rb, f)), f
    ea = encoder_for(a, "envelope", 100).encode(ra)
    eb = encoder_for(b, "envelope", 100).encode(rb)
    assert ea == eb
    assert a.labels == b.labels


def test_other_seed_other_values_same_schedule_shape() -> None:
    ra, rc = make().run_all(), make(seed=99).run_all()
    assert len(ra) > 1000
    assert not np.array_equal(ra.value[:500], rc.value[:500])


def test_every_sensor_reports_at_its_period_without_events() -> None:
    sim = make(
        text="name: q\nduration: 10m\nplants: [{type: tailings, enterprise: p, period: 60s}]\n"
    )
    r = sim.run_all()
    counts = np.bincount(r.idx, minlength=len(sim.table))
    assert counts.tolist() == [10] * len(sim.table)
    # a substation polls its points together: one timestamp per gateway cycle
    assert len(np.unique(r.ts_ms)) == 10


def test_buildup_exceeds_alarm_only_inside_its_window(run: tuple[Simulator, Readings]) -> None:
    sim, r = run
    lb = label(sim, "ch4_buildup", "CH4-F1-T1")
    ts, v = series(sim, r, "CH4-F1-T1")
    inside = (ts >= lb["start"]) & (ts < lb["end"])
    assert v[inside].max() >= 1.7
    assert v[~inside].max() < 1.0
    assert lb["end"] - lb["start"] == 10 * 60_000


def test_interlock_cuts_power_and_feed_failure_keeps_it(run: tuple[Simulator, Readings]) -> None:
    sim, r = run
    ts1, f1 = series(sim, r, "FEED-F1")
    tc, c1 = series(sim, r, "CH4-F1-T1")
    # face 1: the feed reads 0 after CH4 reached power-off (1.5) and before it fell below 1.0
    first_trip = tc[np.argmax(c1 >= 1.5)]
    assert (f1[ts1 > first_trip + 10_000][:3] == 0).all()
    assert f1[ts1 < first_trip].min() == 1
    # face 2: feed failure -> the feed still reads 1 while CH4 is at power-off
    ts2, f2 = series(sim, r, "FEED-F2")
    lb = label(sim, "feed_failure")
    assert (f2[(ts2 >= lb["start"]) & (ts2 < lb["end"])] == 1).all()


def test_stuck_is_constant_inside_and_moves_outside(run: tuple[Simulator, Readings]) -> None:
    sim, r = run
    lb = label(sim, "stuck")
    ts, v = series(sim, r, "CH4-F2-T0")
    inside = (ts >= lb["start"]) & (ts < lb["end"])
    assert len(set(v[inside].tolist())) == 1 and inside.sum() == 60
    assert len(set(v[ts >= lb["end"]].tolist())) > 1


def test_dropouts_leave_holes_exactly_in_their_windows(run: tuple[Simulator, Readings]) -> None:
    sim, r = run
    lb = label(sim, "dropout")
    ts, _ = series(sim, r, "CO-H1")
    assert not ((ts >= lb["start"]) & (ts < lb["end"])).any()
    assert np.diff(np.sort(ts)).max() == 4 * 60_000 + 10_000
    gl = [x for x in sim.labels if x["type"] == "gateway_dropout"]
    assert [(x["site"], x["gateway"], x["sensor"]) for x in gl] == [("main", "GW-main", "")]
    m = sim.table.gateway[r.idx] == "GW-main"
    assert m.sum() > 0
    assert not ((r.ts_ms[m] >= gl[0]["start"]) & (r.ts_ms[m] < gl[0]["end"])).any()


def test_transport_events_late_out_of_order_duplicate_malformed(
    run: tuple[Simulator, Readings],
) -> None:
    sim, r = run
    order = np.arange(len(r))
    # late: T-F1 readings of the window are published after readings 5 min newer
    lb = label(sim, "late")
    m = sim.table.sensor[r.idx] == "T-F1"
    ts, pos = r.ts_ms[m], order[m]
    late = (ts >= lb["start"]) & (ts < lb["end"])
    assert late.sum() == 12
    newest_before = np.maximum.accumulate(ts)
    assert (newest_before[late] - ts[late] >= 4 * 60_000).all()
    assert (ts[~late] == newest_before[~late]).all()  # everything else in order
    # out of order: some WS-F1 readings arrive after a newer one
    ts, _ = series(sim, r, "WS-F1")
    back = np.flatnonzero(np.diff(ts) < 0)
    lb = label(sim, "out_of_order")
    assert len(back) > 0 and ((ts[back + 1] >= lb["start"]) & (ts[back + 1] < lb["end"])).all()
    # duplicates: exactly the window's O2-F1 readings appear twice
    lb = label(sim, "duplicate")
    ts, _ = series(sim, r, "O2-F1")
    uniq, cnt = np.unique(ts, return_counts=True)
    dup = uniq[cnt == 2]
    assert len(dup) == 12 and ((dup >= lb["start"]) & (dup < lb["end"])).all()
    assert cnt.max() == 2
    # malformed: damage only on heading1 sensors inside the window
    lbs = [x for x in sim.labels if x["type"] == "malformed"]
    d = r.damage != 0
    assert d.sum() > 10
    assert set(sim.table.site[r.idx[d]]) == {"heading1"}
    assert ((r.ts_ms[d] >= lbs[0]["start"]) & (r.ts_ms[d] < lbs[0]["end"])).all()
    assert set(r.damage[d].tolist()) == {1, 2, 3, 4}
    del pos


def test_value_events_spike_calibration_leak_overfill_drift(
    run: tuple[Simulator, Readings],
) -> None:
    sim, r = run
    ts, v = series(sim, r, "WS-F2")
    lb = label(sim, "spike")
    inside = (ts >= lb["start"]) & (ts < lb["end"])
    assert (v[inside] == 18.0).sum() >= 10 and (v[~inside] < 15).all()
    m = sim.table.sensor[r.idx] == "CH4-F1-T2"
    lb = label(sim, "calibration")
    inside = (r.ts_ms[m] >= lb["start"]) & (r.ts_ms[m] < lb["end"])
    assert (r.quality[m][inside] == 1).all() and (r.value[m][inside] == 2.0).all()
    assert (r.quality[m][~inside] == 0).all()
    _, gd = series(sim, r, "TK101-GD1")
    _, tx = series(sim, r, "TK101-TX")
    assert gd.max() >= 60 and tx.max() >= 250
    _, lt = series(sim, r, "TK102-LT")
    assert lt.max() >= 95
    ts, pt = series(sim, r, "TK103-PT")
    lb = label(sim, "drift")
    inside = (ts >= lb["start"]) & (ts < lb["end"])
    assert pt[inside][-1] > 0.6 and pt[~inside].max() < 0.4


def test_payload_forms_decode_to_the_same_readings(run: tuple[Simulator, Readings]) -> None:
    sim, r = run
    good = r.take(r.damage == 0)
    got = {}
    for form in ("single", "list", "envelope", "columns"):
        enc = encoder_for(sim, form, 7)  # type: ignore[arg-type]
        reg = SensorRegistry()
        dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"), max_future_s=1e9)
        out = dec.decode_many([(t, p, T0) for t, p in enc.encode(good)])
        assert not out.deadletters, form
        keys = np.array([reg.key(i) for i in out.batch.sensor], dtype=object)
        order = np.lexsort((out.batch.value, out.batch.time, keys))
        got[form] = (
            keys[order],
            out.batch.time[order],
            out.batch.value[order],
            out.batch.flags[order],
        )
        assert len(out.batch) == len(good)
    for form in ("list", "envelope", "columns"):
        for a, b in zip(got["single"], got[form], strict=True):
            assert np.array_equal(a, b), form
    cal = got["columns"][3] == int(Flags.CALIBRATING)
    assert cal.sum() == (good.quality == 1).sum() > 0


def test_malformed_readings_are_dead_lettered_by_the_engine(
    run: tuple[Simulator, Readings],
) -> None:
    sim, r = run
    bad = r.take(r.damage != 0)
    enc = encoder_for(sim, "envelope", 50)
    dec = Decoder(
        SensorRegistry(), TopicTemplate("rw/{enterprise}/{site}/{gateway}"), max_future_s=1e9
    )
    out = dec.decode_many([(t, p, T0) for t, p in enc.encode(bad)])
    assert len(out.batch) == 0
    assert len(out.deadletters) == len(bad)
    assert {d.reason.value for d in out.deadletters} == {
        "invalid_json", "non_numeric_value", "missing_value", "bad_timestamp",
    }  # fmt: skip


def test_batch_size_limits_readings_per_message() -> None:
    sim = make(text="name: b\nduration: 30s\nplants: [{type: hazchem, enterprise: c}]\n")
    r = sim.run_all()
    msgs = encoder_for(sim, "columns", 5).encode_counted(r)
    assert max(n for _, _, n in msgs) == 5
    assert sum(n for _, _, n in msgs) == len(r)


def test_labels_file_jsonl_and_csv_round_trip(tmp_path: Path) -> None:
    sim = make()
    for name in ("l.jsonl", "l.csv"):
        w = LabelWriter.open(tmp_path / name)
        w.write(sim.labels)
        w.close()
        back = read_labels(tmp_path / name)
        assert [(b["type"], b["sensor"], b["start"], b["end"]) for b in back] == [
            (a["type"], a["sensor"], a["start"], a["end"]) for a in sim.labels
        ]


def test_run_scenario_reports_labels_as_events_start() -> None:
    sim = make()
    seen: list[int] = []
    stamps: list[int] = []
    rep = run_scenario(
        sim, encoder_for(sim, "columns", 500), MemorySink(), speed=None,
        on_labels=lambda recs: (seen.extend(x["start"] for x in recs), stamps.append(sim.t_ns)),
    )  # fmt: skip
    assert sorted(seen) == sorted(x["start"] for x in sim.labels)
    assert rep.readings > 0 and rep.kept_up


def test_labels_clipped_to_the_run() -> None:
    sim = Simulator(load_scenario_text(EVENTS), start_ns=T0, duration_s=9 * 60)
    types = {x["type"] for x in sim.labels}
    assert "tank_overfill" not in types  # starts at 10m, after the run
    lb = label(sim, "gateway_dropout")
    assert lb["end"] == (T0 // MS) + 9 * 60_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nplants: []\n", "x.yaml:2:9: plants: a scenario needs at least one plant"),
        (
            "name: x\nplants: [{type: tailings, enterprise: p}]\nevents:\n"
            "  - {type: stuck, at: 5 minutes}\n",
            "x.yaml:4:23: events[0].at: bad duration '5 minutes'",
        ),
        (
            "name: x\nplants: [{type: tailings, enterprise: p}]\nevents:\n"
            "  - {type: fire, at: 5m}\n",
            "x.yaml:4:12: events[0].type: must be one of",
        ),
        (
            "name: x\nplants: [{type: tailings, enterprise: p, sclae: 2}]\n",
            "x.yaml:2:42: plants[0].sclae: unknown key",
        ),
    ],
)
def test_scenario_errors_name_file_line_key(text: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as ei:
        load_scenario_text(text, file="x.yaml")
    assert str(ei.value).startswith(message), str(ei.value)


def test_event_target_matching_nothing_is_an_error() -> None:
    sc = load_scenario_text(
        "name: x\nplants: [{type: tailings, enterprise: p}]\nevents:\n"
        "  - {type: gas_leak, at: 5m}\n",
        file="x.yaml",
    )
    with pytest.raises(ConfigErrors, match=r"events\[0\].target: matches no simulated sensor"):
        Simulator(sc, start_ns=T0)


def test_every_bundled_scenario_loads_and_its_catalogue_matches(tmp_path: Path) -> None:
    names = list(bundled_scenarios())
    assert {"coal_mine", "hazchem", "tailings", "electricity", "mixed", "load_100k"} <= set(names)
    lines = list_scenarios()
    assert len(lines) == len(names) and all(ln.split()[0] in names for ln in lines)
    cat_dir = Path(__file__).resolve().parents[3] / "riskwatch" / "config" / "catalog"
    for name in names:
        sc = load_scenario(name)
        if name == "load_100k":
            continue
        sim = Simulator(sc, start_ns=T0)
        write_catalog(sim, tmp_path / f"{name}.csv")
        shipped = (cat_dir / f"{name}.csv").read_text(encoding="utf-8")
        assert (tmp_path / f"{name}.csv").read_text(encoding="utf-8") == shipped, name
        entries = load_catalog([cat_dir / f"{name}.csv"])
        assert len(entries) == len(sim.table)


def test_shutdown_orders_idle_unless_production_event() -> None:
    sim = Simulator(load_scenario("electricity"), start_ns=T0)
    r = sim.run_all()
    rated = sim.table.setpoints["rated_kw"]
    idle = sim.table.setpoints["idle_kw"]
    orders = {o["enterprise"]: o for o in sim.shutdown_calendar()}
    assert set(orders) == {"grid02", "grid05"}
    ent = sim.table.enterprise[r.idx]
    for e in ("grid02", "grid05"):
        ls = [
            lb for lb in sim.labels if lb["type"] == "shutdown_production" and lb["enterprise"] == e
        ]
        m = ent == e
        ts, v = r.ts_ms[m], r.value[m]
        i = int(np.flatnonzero(sim.table.enterprise == e)[0])
        start = sim.orders[[o[0] for o in sim.orders].index(e)][1] // MS
        end = sim.orders[[o[0] for o in sim.orders].index(e)][2] // MS
        in_order = (ts >= start) & (ts < end)
        prod = np.zeros(len(ts), bool)
        for lb in ls:
            prod |= (ts >= lb["start"]) & (ts < lb["end"])
        assert (v[in_order & ~prod] < idle[i]).all(), e
        if ls:
            assert (v[in_order & prod] > idle[i]).mean() > 0.9
        assert v[~in_order].max() > 0.6 * rated[i]


def test_load_generator_pool_and_rate_outcome() -> None:
    from riskwatch.sensors_sim.publisher import build_pool, run_rate

    sim = Simulator(load_scenario("hazchem"), start_ns=T0)
    enc = encoder_for(sim, "columns", 500)
    pool = build_pool(sim, enc, min_readings=1000)
    assert sum(n for _, _, n in pool) >= 1000
    for _, parts, n in pool:  # one timestamp placeholder per message, swapped at send time
        assert len(parts) == 2 and n > 0
    sink = MemorySink()
    ok = run_rate(pool, sink, rate=2000, duration_s=0.5, batch_size=500, qos=0, form="columns")
    assert ok.reached and "rate reached: " in ok.summary()
    assert sink.messages and b"9999999999999" not in sink.messages[0][1]
    # a clock that jumps 10 s per reading makes any rate unreachable: the report says so
    ticks = iter(range(0, 10_000, 10))
    bad = run_rate(pool, MemorySink(), rate=1000, duration_s=25, batch_size=500, qos=1,
                   form="columns", clock=lambda: float(next(ticks)))  # fmt: skip
    assert not bad.reached
    assert bad.summary().startswith("COULD NOT reach the asked rate: ")
