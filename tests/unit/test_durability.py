"""Durable engine state over the real stages (quality, the bundled coal pack, the default
detectors) on a manual clock: the process "dies" at every point of a run (the objects are
dropped without a stop, as kill -9 leaves them: a snapshot and the journal after it), a new
process restores, and the rest of the run gives exactly the uninterrupted run's signals and
state. Plus what a changed catalogue, a changed rule and broken files do at start."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.catalog import SensorRegistry
from riskwatch.detectors.stage import DetectorStage
from riskwatch.durability import EngineState
from riskwatch.model import Batch, Signal
from riskwatch.pipeline import Pipeline, StageContext
from riskwatch.quality import QualityStage
from riskwatch.rules.stage import RuleStage
from riskwatch.state import RecordKind, read_segment

CONFIG = Path(__file__).resolve().parents[2] / "riskwatch" / "config"
CATALOG = CONFIG / "catalog" / "coal_mine.csv"
S = 1_000_000_000
T0 = 1_795_880_000 * S
FACE = "mine1/face1/CH4-F1-T1"  # ch4_face: red >= 1.5, clears below 1.0; orange >= 1.0


# beside the default detectors (300 readings of warm-up), one that learns in ten, so that
# the series raises and clears a detector window across the crash points
QUICK = Path(tempfile.mkdtemp()) / "quick.yaml"
QUICK.write_text("""
detectors:
  - name: temp_quick
    match: {kind: temp}
    level: blue
    threshold: 0.7
    hold: 20s
    calibrate: 0.01
    members:
      level: {type: robust, alpha: 0.1, warmup: 10}
      shift: {type: cusum, warmup: 10}
    combine: {any: [level, shift]}
""")


def engine(reg: SensorRegistry, rules: Path | None = None) -> Pipeline:
    return Pipeline([
        QualityStage(),
        RuleStage([rules or CONFIG / "rules" / "coal_mine.yaml"], reg),
        DetectorStage([CONFIG / "detectors" / "default.yaml", QUICK], reg),
    ])  # fmt: skip


def registry(catalog: Path = CATALOG) -> SensorRegistry:
    reg = SensorRegistry()
    reg.load_catalog([catalog])
    return reg


Step = tuple[str, int, list[tuple[str, float]]]  # ("batch" | "tick", now, [(key, value)])


def series(n_steps: int = 40, seed: int = 3) -> list[Step]:
    """A mine's readings every 5 s: noise around each kind's normal value, methane at the
    face rising to 1.6 % (red), back to 1.2 % (stays red: latched), then 0.8 % (clears);
    one CO sensor goes silent (no data) and comes back; ticks between batches."""
    reg = registry()
    rng = np.random.default_rng(seed)
    normal = {"ch4": 0.3, "co": 5.0, "o2": 20.8, "co2": 0.2, "temp": 22.0, "wind": 2.0,
              "feed": 0.0, "fan": 1.0, "door": 0.0, "dust": 2.0}  # fmt: skip
    keys = [reg.key(i) for i in range(len(reg))]
    kinds = [reg.meta(i)["kind"] for i in range(len(reg))]
    face = {10: 1.6, 11: 1.7, 12: 1.2, 13: 1.3, 20: 1.2, 24: 0.8}
    out: list[Step] = []
    v_face = 0.3
    for k in range(n_steps):
        now = T0 + k * 5 * S
        rows = []
        for key, kind in zip(keys, kinds, strict=True):
            if key.endswith("/CO-F1") and 15 <= k < 33:
                continue  # silent for 90 s
            v = normal.get(kind, 1.0) * (1 + 0.02 * rng.standard_normal())
            if kind == "temp" and 26 <= k < 29:
                v += 15.0  # a hot spell the quick detector flags
            if key == FACE:
                v_face = face.get(k, v_face if k > 10 else v)
                v = v_face
            rows.append((key, round(float(v), 4)))
        out.append(("batch", now, rows))
        out.append(("tick", now + 2 * S, []))
    return out


def run(pipeline: Pipeline, reg: SensorRegistry, steps: list[Step],
        state: EngineState | None = None) -> list[tuple]:  # fmt: skip
    """Feed the steps as the spine does (journal, then stages); signals by sensor key."""
    out: list[Signal] = []
    for kind, now, rows in steps:
        ctx = StageContext(now, reg)
        if kind == "batch":
            ids = [reg.id_of(k) for k, _ in rows]
            b = Batch.from_arrays([now - S] * len(rows), ids, [v for _, v in rows],
                                  received=[now] * len(rows))  # fmt: skip
            if state is not None:
                state.durable(state.record_batch(now, b))
            out += pipeline.run(b, ctx)[1]
        else:
            sig = pipeline.tick(ctx)
            if state is not None:
                state.record_tick(now, bool(sig))
            out += sig
    return seen(reg, out)


def seen(reg: SensorRegistry, sigs: list[Signal]) -> list[tuple]:
    return [(s.rule, s.group or reg.key(s.sensor), s.time, s.state.value,
             s.level and s.level.colour, s.message) for s in sigs]  # fmt: skip


class Sink:
    """Collects what the restore replays (the alert sink's place)."""

    def __init__(self, reg: SensorRegistry) -> None:
        self.reg, self.got = reg, []

    def handle(self, signals, ctx) -> None:  # type: ignore[no-untyped-def]
        self.got += seen(self.reg, list(signals))


def rule_trees(p: Pipeline) -> dict:
    return {s.name: s.dump_state() for s in p.stages if s.name in ("quality", "rules")}


def same_tree(a, b) -> bool:  # type: ignore[no-untyped-def]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


STEPS = series()


def uninterrupted(steps: list[Step]) -> tuple[list[tuple], Pipeline]:
    reg = registry()
    p = engine(reg)
    return run(p, reg, steps), p


def test_the_series_raises_latches_and_clears_as_the_pack_says() -> None:
    sigs, _ = uninterrupted(STEPS)
    face = [(s[3], s[4]) for s in sigs if s[1] == FACE and s[0] == "ch4_face"]
    assert face == [("firing", "red"), ("resolved", None)]
    assert any(s[0] == "coal_no_data" and s[3] == "firing" for s in sigs)


@pytest.mark.parametrize("cut", [3, 21, 22, 25, 27, 41, 53, 54, 57, 66])
@pytest.mark.parametrize("every_s", [1, 30, 10_000])
def test_kill_anywhere_then_restore_continues_exactly(tmp_path: Path, cut: int,
                                                     every_s: int) -> None:  # fmt: skip
    """``cut`` steps, then the process is gone (no stop, no final snapshot); snapshots every
    ``every_s`` (1 s: one per tick; 10000 s: none, the journal holds everything)."""
    want, whole = uninterrupted(STEPS)
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=every_s * S, background=False)
    st.restore(STEPS[0][1], sink=None)
    before = run(p, reg, STEPS[:cut], st)
    partial = rule_trees(p)
    del st, p  # kill -9: nothing more is written

    reg2 = registry()
    p2 = engine(reg2)
    sink = Sink(reg2)
    st2 = EngineState(tmp_path, p2, reg2, snapshot_every_ns=every_s * S, background=False)
    rep = st2.restore(STEPS[cut - 1][1], sink=sink)  # restarted at once
    assert rep.problems == [] and rep.restored.dropped == []
    assert same_tree(rule_trees(p2), partial)  # the state of the moment it died
    # what the replay re-emits is the tail of what was emitted before the crash
    assert sink.got == before[len(before) - len(sink.got) :]
    after = run(p2, reg2, STEPS[cut:], st2)
    assert before + after == want
    assert same_tree(rule_trees(p2), rule_trees(whole))


def test_clean_stop_leaves_one_snapshot_and_no_journal(tmp_path: Path) -> None:
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=10_000 * S)
    st.restore(T0, sink=None)
    run(p, reg, STEPS[:30], st)
    st.close(T0 + 200 * S)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["state.lock", "state.snap"]
    reg2 = registry()
    p2 = engine(reg2)
    rep = EngineState(tmp_path, p2, reg2, snapshot_every_ns=S, background=False).restore(
        T0 + 260 * S, sink=None)  # fmt: skip
    assert rep.age_s == pytest.approx(60.0) and rep.batches == 0
    assert rep.restored.counts["rules: latched"] == 1  # the face's red power-off latch
    got, want = rule_trees(p2), rule_trees(p)
    # the 60 s the engine was down are not counted as silence on the arrival clock
    arrived, was = got["rules"]["sensors"]["seen_arrival"], want["rules"]["sensors"]["seen_arrival"]
    assert (arrived - was).tolist() == [60 * S] * len(was)
    assert got["rules"]["sensors"]["start_ns"] == want["rules"]["sensors"]["start_ns"] + 60 * S
    for t in (got, want):
        del t["rules"]["sensors"]["seen_arrival"], t["rules"]["sensors"]["start_ns"]
    assert same_tree(got, want)


def test_a_latched_red_stays_red_at_1_2_percent_after_restart(tmp_path: Path) -> None:
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=S, background=False)
    st.restore(T0, sink=None)
    fid = reg.id_of(FACE)
    ctx = StageContext(T0, reg)
    st.record_batch(T0, b := Batch.from_arrays([T0], [fid], [1.6]))
    assert [s.level.colour for s in p.run(b, ctx)[1] if s.rule == "ch4_face"] == ["red"]
    st.record_tick(T0 + S, False)  # a snapshot, then the process dies
    reg2 = registry()
    p2 = engine(reg2)
    EngineState(tmp_path, p2, reg2, snapshot_every_ns=S, background=False).restore(T0, None)
    rules = p2.stages[1]
    assert isinstance(rules, RuleStage)
    at = [(a[0], a[1], a[3].colour) for a in rules.ruleset.active_subjects()]
    assert ("ch4_face", FACE, "red") in at
    later = [s for s in p2.run(Batch.from_arrays([T0 + 5 * S], [fid], [1.2]),
                               StageContext(T0 + 5 * S, reg2))[1] if s.rule == "ch4_face"]  # fmt: skip
    assert later == []  # no step down to orange
    cleared = p2.run(Batch.from_arrays([T0 + 9 * S], [fid], [0.9]), StageContext(T0 + 9 * S, reg2))
    assert [(s.rule, s.state.value) for s in cleared[1]] == [("ch4_face", "resolved")]


def test_changed_catalogue_and_rule_load_what_matches_and_say_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=10_000 * S, background=False)
    st.restore(T0, None)
    run(p, reg, STEPS[:26], st)  # the face latched red
    st.close(T0 + 130 * S)
    # the next start: a catalogue with a new sensor first and one sensor gone (ids move),
    # and the coal pack with ch4_return edited
    lines = CATALOG.read_text().splitlines()
    new_cat = tmp_path / "cat.csv"
    new_cat.write_text("\n".join([lines[0], "mine1,face1,CH4-NEW,ch4,%,working_face,GW-face1,"
                                  "0,10,10,1,1.5,1,,,,",
                                  *[ln for ln in lines[1:] if "CO-F1," not in ln]]) + "\n")  # fmt: skip
    rules = tmp_path / "coal.yaml"
    rules.write_text((CONFIG / "rules" / "coal_mine.yaml").read_text().replace(
        "default: 1.0, cap: 1.0}\n      - level: red\n        label: power-off\n"
        "        above: {setpoint: power_off, default: 1.0, cap: 1.0}",
        "default: 0.9, cap: 1.0}\n      - level: red\n        label: power-off\n"
        "        above: {setpoint: power_off, default: 1.0, cap: 1.0}", 1))  # fmt: skip
    reg2 = registry(new_cat)
    p2 = engine(reg2, rules)
    with caplog.at_level(logging.INFO, logger="riskwatch.state"):
        rep = EngineState(tmp_path, p2, reg2, snapshot_every_ns=S, background=False).restore(
            T0 + 131 * S, None)  # fmt: skip
    dropped = "\n".join(rep.restored.dropped)
    assert "1 sensor(s) of the snapshot no longer exist" in dropped
    assert (
        "changed since the snapshot (active subjects adopted, timers reset): ch4_return" in dropped
    )
    assert "detectors: sensor ids moved" in dropped
    assert rep.restored.counts["rules: latched"] == 1
    rules_stage = p2.stages[1]
    assert isinstance(rules_stage, RuleStage)
    assert ("ch4_face", FACE, "red") in [(a[0], a[1], a[3].colour)
                                         for a in rules_stage.ruleset.active_subjects()]  # fmt: skip
    log = caplog.text
    assert "state: restored from" in log and "age 1.0 s" in log and "ch4_return" in log


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_broken_snapshot_is_logged_set_aside_and_the_journal_still_replays(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=30 * S, background=False)
    st.restore(T0, None)
    run(p, reg, STEPS[:30], st)
    snap = tmp_path / "state.snap"
    data = snap.read_bytes()
    snap.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00junk" * 99,
                      "empty": b""}[damage])  # fmt: skip
    reg2 = registry()
    with caplog.at_level(logging.WARNING, logger="riskwatch.state"):
        rep = EngineState(tmp_path, engine(reg2), reg2, snapshot_every_ns=S,
                          background=False).restore(T0 + 150 * S, None)  # fmt: skip
    assert rep.problems and "snapshot ignored" in rep.problems[0]
    assert "snapshot ignored" in caplog.text
    assert (tmp_path / "state.snap.bad").exists() and rep.batches > 0


def test_a_torn_journal_tail_replays_up_to_the_last_whole_record(tmp_path: Path) -> None:
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=10_000 * S, background=False)
    st.restore(T0, None)
    run(p, reg, STEPS[:20], st)
    (seg,) = st.journal.segments()
    path = st.journal.segment_path(seg)
    whole = read_segment(path).records
    path.write_bytes(path.read_bytes()[:-7])  # the last record half written
    reg2 = registry()
    rep = EngineState(tmp_path, engine(reg2), reg2, snapshot_every_ns=S,
                      background=False).restore(T0, None)  # fmt: skip
    kept = [r.kind for r in whole[:-1]]  # all but the torn one
    assert (rep.batches, rep.ticks) == (kept.count(RecordKind.BATCH), kept.count(RecordKind.TICK))
    assert len(rep.problems) == 1
    assert rep.problems[0].startswith(f"journal segment {seg}: torn or corrupt record at byte")


def test_the_engines_downtime_is_not_a_sensors_silence_on_the_arrival_clock(
    tmp_path: Path,
) -> None:
    """A sensor silent for 20 s of a 30 s no-data limit when the engine dies; the engine is
    back 10 minutes later. Its readings of those minutes wait in the broker, so the
    downtime does not count: the alarm comes 10 s after the restart if nothing arrives,
    not at the first tick; a sensor that had already fired stays fired."""
    rules = tmp_path / "nd.yaml"
    rules.write_text("rules:\n  - {name: silent, match: {kind: ch4}, no_data: {after: 30s}}\n")
    reg = registry()
    p = Pipeline([QualityStage(), RuleStage([rules], reg)])
    st = EngineState(tmp_path / "st", p, reg, snapshot_every_ns=10_000 * S, background=False)
    st.restore(T0, None)
    ch4 = [i for i in range(len(reg)) if reg.meta(i)["kind"] == "ch4"]
    quiet, rest = ch4[0], ch4[1:]
    b = Batch.from_arrays([T0] * len(ch4), ch4, [0.3] * len(ch4))
    st.record_batch(T0, b)
    p.run(b, StageContext(T0, reg))
    b = Batch.from_arrays([T0 + 40 * S] * len(rest), rest, [0.3] * len(rest))
    st.record_batch(T0 + 40 * S, b)  # all but one report again; the quiet one fires at 40 s
    p.run(b, StageContext(T0 + 40 * S, reg))
    fired = p.tick(StageContext(T0 + 40 * S, reg))
    st.record_tick(T0 + 40 * S, bool(fired))
    assert [(s.rule, reg.key(s.sensor)) for s in fired] == [("silent", reg.key(quiet))]
    for t in (50, 60):  # quiet ticks: the journal marks that the engine ran
        st.record_tick(T0 + t * S, bool(p.tick(StageContext(T0 + t * S, reg))))
    # dies at 60 s (the others silent for 20 s); back at 660 s
    reg2 = registry()
    p2 = Pipeline([QualityStage(), RuleStage([rules], reg2)])
    back = T0 + 660 * S
    EngineState(tmp_path / "st", p2, reg2, snapshot_every_ns=10_000 * S,
                background=False).restore(back, None)  # fmt: skip
    assert p2.tick(StageContext(back, reg2)) == []
    later = p2.tick(StageContext(back + 10 * S, reg2))
    assert sorted(reg2.key(s.sensor) for s in later) == sorted(reg.key(i) for i in rest)
    active = [a[1] for a in p2.stages[1].ruleset.active_subjects()]  # type: ignore[attr-defined]
    assert reg.key(quiet) in active


SMALL = Path(tempfile.mkdtemp()) / "small.csv"
SMALL.write_text(
    "enterprise,site,sensor,kind,unit,location,gateway,range_low,range_high,period_s,alarm,"
    "power_off,restore\n"
    "m1,f1,T1,ch4,%,working_face,G1,0,10,10,1,1.5,1\n"
    "m1,f1,T2,ch4,%,return_airway,G1,0,10,10,1,1,1\n"
    "m1,f1,CO,co,ppm,return_airway,G1,0,500,10,24,,\n"
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from([0.2, 0.9, 1.0, 1.2, 1.5, 1.6, 30.0]),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 40),
    st.sampled_from([1, 7, 10_000]),
)
def test_property_any_series_any_crash_point_continues_as_uninterrupted(
    readings: list[tuple[int, float, int]], cut: int, every_s: int
) -> None:
    """Readings (sensor, value, seconds after the previous) with ticks between, killed after
    any step and restarted at once, with snapshots every 1 s / 7 s / never: the signals and
    the rule state are the uninterrupted run's."""
    t, steps = T0, []
    reg0 = registry(SMALL)
    for sensor, value, gap in readings:
        t += gap * S
        steps.append(("batch", t, [(reg0.key(sensor), value)]))
        steps.append(("tick", t + S // 2, []))
    cut = min(cut, len(steps) - 1)

    def pipeline(reg: SensorRegistry) -> Pipeline:
        return Pipeline([QualityStage(), RuleStage([CONFIG / "rules" / "coal_mine.yaml"], reg)])

    reg_u = registry(SMALL)
    p_u = pipeline(reg_u)
    want = run(p_u, reg_u, steps)
    with tempfile.TemporaryDirectory() as d:
        reg = registry(SMALL)
        p = pipeline(reg)
        st1 = EngineState(Path(d), p, reg, snapshot_every_ns=every_s * S, background=False)
        st1.restore(T0, None)
        before = run(p, reg, steps[:cut], st1)
        reg2 = registry(SMALL)
        p2 = pipeline(reg2)
        st2 = EngineState(Path(d), p2, reg2, snapshot_every_ns=every_s * S, background=False)
        st2.restore(steps[cut - 1][1] if cut else T0, None)
        after = run(p2, reg2, steps[cut:], st2)
    assert before + after == want
    assert same_tree(rule_trees(p2), rule_trees(p_u))


def test_a_second_engine_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    reg = registry()
    EngineState(tmp_path, engine(reg), reg, snapshot_every_ns=S, background=False).restore(T0, None)
    code = (
        "import sys; from pathlib import Path\n"
        "from riskwatch.catalog import SensorRegistry\n"
        "from riskwatch.durability import EngineState\n"
        "from riskwatch.errors import SnapshotError\n"
        "from riskwatch.pipeline import Pipeline\n"
        "try:\n"
        f"    EngineState(Path({str(tmp_path)!r}), Pipeline([]), SensorRegistry(),\n"
        "                snapshot_every_ns=1).restore(0, None)\n"
        "except SnapshotError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"{tmp_path}: in use by another running engine"


def test_a_rule_edited_while_the_engine_was_down_adopts_its_alert_and_resolves_it(
    tmp_path: Path,
) -> None:
    """As on a reload: the state of a changed rule is not taken over whole (its timers
    start anew), but what was active is, so its open alert resolves on the next reading
    if the new condition does not hold, instead of being stranded."""
    reg = registry()
    p = engine(reg)
    st = EngineState(tmp_path, p, reg, snapshot_every_ns=S, background=False)
    st.restore(T0, None)
    fid = reg.id_of(FACE)
    b = Batch.from_arrays([T0], [fid], [1.6])
    st.record_batch(T0, b)
    p.run(b, StageContext(T0, reg))
    st.close(T0 + S)
    rules = tmp_path / "coal.yaml"
    rules.write_text(
        (CONFIG / "rules" / "coal_mine.yaml")
        .read_text()
        .replace(
            "description: methane at a working face", "description: methane at a face (edited)", 1
        )
    )
    reg2 = registry()
    p2 = engine(reg2, rules)
    rep = EngineState(tmp_path, p2, reg2, snapshot_every_ns=S, background=False).restore(
        T0 + 2 * S, None
    )
    assert any("changed since the snapshot" in d and "ch4_face" in d for d in rep.restored.dropped)
    rs = p2.stages[1]
    assert isinstance(rs, RuleStage)
    assert ("ch4_face", FACE, "red") in [(a[0], a[1], a[3].colour)
                                         for a in rs.ruleset.active_subjects()]  # fmt: skip
    held = p2.run(Batch.from_arrays([T0 + 3 * S], [fid], [1.2]), StageContext(T0 + 3 * S, reg2))
    assert [s for s in held[1] if s.rule == "ch4_face"] == []  # still latched at 1.2 %
    out = p2.run(Batch.from_arrays([T0 + 4 * S], [fid], [0.8]), StageContext(T0 + 4 * S, reg2))
    assert [(s.rule, s.state.value) for s in out[1]] == [("ch4_face", "resolved")]
