"""Detector config errors (file:line:key), the ensemble decision, the engine stage
(selection, one signal per window, tick, reload) and ``riskwatch score``."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskwatch.catalog import SensorRegistry
from riskwatch.cli import main
from riskwatch.config.engine import load_engine_config_text
from riskwatch.detectors import build_stage
from riskwatch.detectors.base import Detector
from riskwatch.detectors.cli import EPILOG, default_config_path, select_spec
from riskwatch.detectors.config import load_detector_file, load_detector_text
from riskwatch.detectors.ensemble import Ensemble
from riskwatch.detectors.expression import pooled
from riskwatch.detectors.robust import RobustZScore
from riskwatch.detectors.stage import DetectorStage
from riskwatch.durations import Duration
from riskwatch.errors import ConfigErrors
from riskwatch.model import Batch, EndReason, Flags, Level, SignalSource
from riskwatch.pipeline import StageContext

MIN = 60 * 10**9

BROKEN = [
    (
        "detectors:\n  - name: a\n    members: {z: {type: ewmaa}}\n",
        "f.yaml:3:25: detectors[0].members.z.type: unknown detector type 'ewmaa'",
    ),
    (
        "detectors:\n  - name: a\n    members:\n      z: {type: robust, alpah: 0.1}\n",
        "f.yaml:4:25: detectors[0].members.z.alpah: unknown key (known: type, alpha, c, min_std, warmup, threshold)",
    ),
    (
        "detectors:\n  - name: a\n    members:\n      z: {type: cusum, h: -1}\n",
        "f.yaml:4:27: detectors[0].members.z.h: must be > 0, got -1",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    combine: {any: [z, y]}\n",
        "f.yaml:4:24: detectors[0].combine.any[1]: unknown member 'y' (have: z)",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    threshold: 2\n",
        "f.yaml:4:16: detectors[0].threshold: must be in (0, 1], got 2.0",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    hold: 5 parsecs\n",
        "f.yaml:4:11: detectors[0].hold:",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    level: purple\n",
        "f.yaml:4:12: detectors[0].level: must be one of red, orange, yellow, blue, got 'purple'",
    ),
    (
        "detectors:\n  - {name: a, members: {z: {type: robust}}}\n  - {name: a, members: {z: {type: robust}}}\n",
        "f.yaml:3:12: detectors[1].name: duplicate detector name 'a'",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    combine: {most: [z]}\n",
        "f.yaml:4:15: detectors[0].combine.most: must be 'any', 'all' or 'pooled'",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    repeats: {floor: 0.6}\n",
        "f.yaml:4:22: detectors[0].repeats.floor: must be below the threshold (0.5), got 0.6",
    ),
    (
        "detectors:\n  - name: a\n    members: {z: {type: robust}}\n    repeats: {hold: 3h}\n",
        "f.yaml:4:14: detectors[0].repeats: missing required key 'detectors[0].repeats.floor'",
    ),
]


@pytest.mark.parametrize("text,message", BROKEN, ids=[m.split(": ")[1] for _, m in BROKEN])
def test_config_errors_name_file_line_key(text: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as e:
        load_detector_text(text, file="f.yaml")
    assert str(e.value).startswith(message), str(e.value)


def test_bundled_default_config_loads() -> None:
    f = load_detector_file(default_config_path())
    names = [s.name for s in f.detectors]
    assert names == ["generic", "cad_ose", "asset", "anomaly", "load_profile", "drift"]
    ens = f.detectors[0].build()
    assert (ens.repeat_floor, ens.repeat_hold_ns) == (0.3, 3 * 60 * MIN)
    d = ens.decision
    assert (d.min_history, d.clear_below, d.clear_after, ens.hold_ns) == (
        300,
        0.3,
        50,
        3 * 60 * MIN,
    )
    cad = f.detectors[1].build()
    assert cad.members["cad"].kind == "cad_ose" and cad.threshold == 0.75
    assert set(ens.members) == {
        "level", "daily_shift", "weekly_shift", "frozen", "shift", "slow", "asset"
    }  # fmt: skip


def test_ensemble_one_raise_per_window_and_clear_after_hold() -> None:
    ens = Ensemble({"z": RobustZScore(alpha=0.05, warmup=20)}, hold_ns=10 * MIN)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 300)
    x[200:205] = 30.0  # a five-reading episode
    t = np.arange(300, dtype=np.int64) * MIN
    out = ens.process(np.zeros(300, np.int32), x, t)
    assert np.flatnonzero(out.raised).tolist() == [200]
    (clear,) = np.flatnonzero(out.cleared).tolist()
    assert 210 <= clear <= 215
    assert (out.decision[201:clear] == 0).all()


class Echo(Detector):
    """Scripted member for decision tests: a reading's score is its value."""

    kind = "echo"

    def __init__(self) -> None:
        super().__init__(warmup=0)

    def _surprise(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> np.ndarray:
        return value * 10.0

    def _learn(self, sensor: np.ndarray, value: np.ndarray, time: np.ndarray) -> None:
        pass


def test_repeats_weak_episode_counts_once_at_every_cut_off() -> None:
    # one reading every 10 min; quiet episodes from 0.3 last 1 h past their last such reading
    ens = Ensemble(
        {"e": Echo()}, threshold=0.5, hold_ns=120 * MIN, repeat_floor=0.3, repeat_hold_ns=60 * MIN
    )
    x = np.array([0.1, 0.35, 0.4, 0.32, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.45, 0.2, 0.6, 0.4])
    t = np.arange(len(x), dtype=np.int64) * 10 * MIN
    out = ens.process(np.zeros(len(x), np.int32), x, t)
    np.testing.assert_array_equal(out.score, x)  # scores and alerts are not touched
    assert np.flatnonzero(out.raised).tolist() == [13]
    # episode 1 opens at 0.35 (t=10) and ends 60 min after 0.32 (t=30): quiet until t=90;
    # episode 2 opens at 0.45 (t=110); the 0.6 is an alert and reported; 0.4 is its repeat
    want = [0.1, 0.35, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.1, 0.45, 0, 0.6, 0]
    np.testing.assert_array_equal(out.decision, want)
    for cut in (0.3, 0.34, 0.4, 0.45):
        assert (out.decision >= cut).sum() == 2 + (cut <= 0.35) - (cut > 0.45)
    plain = Ensemble({"e": Echo()}, threshold=0.5, hold_ns=120 * MIN)
    assert (plain.process(np.zeros(len(x), np.int32), x, t).decision >= 0.3).sum() == 5


def test_repeats_change_only_the_decision_and_are_per_sensor() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    sensor = np.tile(np.arange(4, dtype=np.int32), n // 4)
    x = rng.standard_t(3, n)
    t = np.repeat(np.arange(n // 4, dtype=np.int64), 4) * MIN
    outs = []

    def ensemble(floor: float | None = 0.2) -> Ensemble:
        return Ensemble(
            {"z": RobustZScore(alpha=0.05, warmup=20)}, hold_ns=30 * MIN,
            repeat_floor=floor, repeat_hold_ns=30 * MIN,
        )  # fmt: skip

    for floor in (None, 0.2):
        outs.append(ensemble(floor).process(sensor, x, t))
    a, b = outs
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.raised, b.raised)
    np.testing.assert_array_equal(a.cleared, b.cleared)
    quiet = b.decision != a.decision
    assert quiet.any() and (b.decision[quiet] == 0).all() and (a.score[quiet] < 0.5).all()
    # per sensor: the same decision as that sensor's stream alone
    one = ensemble()
    m = sensor == 2
    alone = one.process(np.zeros(m.sum(), np.int32), x[m], t[m])
    np.testing.assert_array_equal(alone.decision, b.decision[m])
    # and the same in batches of any size (the engine's micro-batches)
    chunked = ensemble()
    parts = [chunked.process(sensor[a : a + 7], x[a : a + 7], t[a : a + 7]) for a in range(0, n, 7)]
    np.testing.assert_array_equal(np.concatenate([o.decision for o in parts]), b.decision)


@given(st.lists(st.tuples(*[st.floats(0.0, 1.0)] * 4), min_size=1, max_size=50))
def test_pooled_is_any_or_the_two_strongest_pooled(rows: list[tuple[float, ...]]) -> None:
    parts = [np.array(c) for c in zip(*rows, strict=True)]
    got = pooled(parts)
    top = np.sort(np.stack(parts), axis=0)
    assert (got >= top[-1]).all() and (got <= 1.0).all()
    # Fisher for two tails: P(U1 U2 <= q) = q (1 - ln q); 6 pairs of 4 parts
    for i, (u1, u2) in enumerate(zip(top[-1] * 10, top[-2] * 10, strict=True)):
        q = 10.0 ** -(u1 + u2)
        pair = -math.log10(q * (1.0 - math.log(q))) - math.log10(6.0)
        assert got[i] == pytest.approx(min(max(top[-1][i], pair / 10.0), 1.0), abs=1e-12)


def test_pooled_two_moderate_members_make_a_decision_one_strong_still_does() -> None:
    z = np.zeros(3)
    # 3.5 decades each: 7 pooled, minus 1.23 for Fisher and 1.18 for 15 pairs
    two = pooled([np.full(3, 0.35), np.full(3, 0.35), z, z, z, z])
    assert two[0] == pytest.approx(0.459, abs=1e-3)
    assert pooled([np.full(3, 0.45), np.full(3, 0.45), z, z, z, z])[0] >= 0.5
    assert pooled([np.full(3, 0.6), z, z, z, z, z])[0] == 0.6  # as `any`
    ens = (
        load_detector_text(
            "detectors:\n  - name: a\n    members:\n      a: {type: cusum, warmup: 5}\n"
            "      b: {type: robust, warmup: 5}\n    combine: {pooled: [a, b]}\n"
        )
        .detectors[0]
        .build()
    )
    x = np.r_[np.tile([0.0, 1.0], 50), 4.0]
    out = ens.process(np.zeros(len(x), np.int32), x, np.arange(len(x)) * MIN)
    np.testing.assert_array_equal(out.score, pooled([out.members["a"], out.members["b"]]))


def test_all_combination_needs_every_member() -> None:
    text = (
        "detectors:\n  - name: a\n    members:\n      fast: {type: robust, alpha: 0.3, warmup: 5}\n"
        "      slow: {type: robust, alpha: 0.01, warmup: 5}\n    combine: {all: [fast, slow]}\n"
    )
    ens = load_detector_text(text).detectors[0].build()
    x = np.r_[np.tile([0.0, 1.0], 100), np.full(60, 9.0)]  # a level shift
    out = ens.process(np.zeros(len(x), np.int32), x, np.arange(len(x)) * MIN)
    np.testing.assert_array_equal(out.score, np.minimum(out.members["fast"], out.members["slow"]))


def _registry() -> SensorRegistry:
    reg = SensorRegistry()
    reg.intern("e", "s", ["ch4-1", "ch4-2", "temp-1"], kinds=["ch4", "ch4", "temp"])
    return reg


def _stage(tmp_path: Path, reg: SensorRegistry, hold: str = "10m") -> DetectorStage:
    f = tmp_path / "det.yaml"
    f.write_text(
        "detectors:\n"
        "  - name: ch4_level\n"
        "    match: {kind: ch4}\n"
        "    level: yellow\n"
        f"    hold: {hold}\n"
        "    members: {z: {type: robust, alpha: 0.05, warmup: 50}}\n"
    )
    return DetectorStage([f], reg)


def _batch(i0: int, n: int, values: dict[int, np.ndarray], flags: int = 0) -> Batch:
    t = np.repeat(np.arange(i0, i0 + n, dtype=np.int64) * MIN, len(values))
    s = np.tile(np.array(list(values), dtype=np.int32), n)
    v = np.stack([values[k] for k in values], axis=1).reshape(-1)
    return Batch.from_arrays(t, s, v, np.full(len(t), flags, np.uint8))


def test_stage_selects_by_kind_and_emits_once_per_window(tmp_path: Path) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)
    rng = np.random.default_rng(1)
    vals = {k: rng.normal(1.0, 0.05, 300) for k in (0, 1, 2)}
    for k in (0, 2):  # an episode on ch4-1 and on temp-1 (not selected)
        vals[k][200:220] += 2.0
    signals = []
    for a in range(0, 300, 25):  # micro-batches of 25 minutes, 3 sensors interleaved
        chunk = {k: v[a : a + 25] for k, v in vals.items()}
        signals += st.process(_batch(a, 25, chunk), StageContext((a + 25) * MIN, reg))
    assert [(s.state, s.sensor) for s in signals] == [("firing", 0), ("resolved", 0)]
    assert signals[0].time // MIN == 200
    assert 210 <= signals[1].time // MIN <= 230
    fire = signals[0]
    assert fire.source == "detector" and fire.level is Level.YELLOW and fire.rule == "ch4_level"
    assert fire.score is not None and fire.score >= 0.5
    assert "e/s/ch4-1" in fire.message and fire.extra == {"members": {"z": fire.score}}
    assert signals[1].message == "ch4_level: e/s/ch4-1 back to normal (no anomaly for 10m)"


def test_stage_skips_calibrating_readings_and_tick_resolves_quiet_sensor(tmp_path: Path) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)
    rng = np.random.default_rng(2)
    ctx = StageContext(0, reg)
    st.process(_batch(0, 100, {0: rng.normal(1.0, 0.05, 100)}), ctx)
    assert st.process(_batch(100, 5, {0: np.full(5, 9.0)}, flags=Flags.CALIBRATING), ctx) == []
    sig = st.process(_batch(105, 1, {0: np.array([9.0])}), ctx)
    assert [s.state for s in sig] == ["firing"]
    assert st.tick(StageContext(110 * MIN, reg)) == []
    (res,) = st.tick(StageContext(115 * MIN, reg))
    assert (res.state, res.sensor, res.level) == ("resolved", 0, None)
    assert res.message == "ch4_level: e/s/ch4-1 window closed (quiet for 10m)"


def test_hold_durations_parsed_at_load_keep_their_spelling(tmp_path: Path) -> None:
    """``hold`` and ``repeats.hold`` are Durations from the file on: nanoseconds for the
    decision, the file's text for messages (600s stays 600s, not 10m)."""
    f = load_detector_text(
        "detectors:\n  - name: a\n    hold: 600s\n    repeats: {floor: 0.2, hold: 1h30m}\n"
        "    members: {z: {type: robust}}\n  - name: b\n    members: {z: {type: robust}}\n"
    )
    a, b = f.detectors
    assert isinstance(a.hold, Duration) and isinstance(a.repeats.hold, Duration)
    assert (int(a.hold), str(a.hold)) == (600 * 10**9, "600s")
    assert (int(a.repeats.hold), str(a.repeats.hold)) == (90 * MIN, "1h30m")
    assert (int(b.hold), str(b.hold)) == (60 * MIN, "1h")  # the default
    ens = a.build()
    assert (ens.hold_ns, ens.repeat_hold_ns) == (600 * 10**9, 90 * MIN)
    reg = _registry()
    st = _stage(tmp_path, reg, hold="600s")
    st.process(_batch(0, 100, {0: np.random.default_rng(2).normal(1.0, 0.05, 100)}),
               StageContext(0, reg))  # fmt: skip
    st.process(_batch(100, 1, {0: np.array([9.0])}), StageContext(0, reg))
    (res,) = st.tick(StageContext(111 * MIN, reg))
    assert res.message.endswith("(quiet for 600s)")


def test_stage_new_sensor_of_selected_kind_is_picked_up(tmp_path: Path) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)
    (new,) = reg.intern("e", "s", ["ch4-9"], kinds=["ch4"]).tolist()
    x = np.r_[np.random.default_rng(3).normal(1.0, 0.05, 100), 9.0]
    sig = st.process(_batch(0, 101, {new: x}), StageContext(0, reg))
    assert [(s.state, s.sensor) for s in sig] == [("firing", new)]


def test_reload_keeps_state_of_unchanged_and_rejects_broken(tmp_path: Path) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)
    ctx = StageContext(0, reg)
    st.process(_batch(0, 100, {0: np.random.default_rng(4).normal(1, 0.05, 100)}), ctx)
    ens = st.entries[0].ensemble
    f = st.watched_files()[0]
    f.write_text(f.read_text().replace("level: yellow", "level: orange"))
    st.reload(ctx)
    assert st.entries[0].ensemble is ens and st.entries[0].spec.level is Level.ORANGE
    f.write_text(f.read_text().replace("alpha: 0.05", "alpha: 0.1"))
    st.reload(ctx)
    assert st.entries[0].ensemble is not ens
    kept = st.entries[0]
    f.write_text(f.read_text().replace("alpha: 0.1", "alpha: 7"))
    with pytest.raises(ConfigErrors, match=r"det.yaml:6:\d+: detectors\[0\].members.z.alpha"):
        st.reload(ctx)
    assert st.entries[0] is kept


def test_build_stage_from_engine_config(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("detectors: [{name: a, members: {z: {type: robust}}}]\n")
    eng = tmp_path / "engine.yaml"
    eng.write_text("detectors: [d.yaml]\n")
    cfg = load_engine_config_text(eng.read_text(), file=str(eng))
    cfg = type(cfg)(**{**cfg.__dict__, "source": str(eng)}) if cfg.source is None else cfg
    st = build_stage(cfg, SensorRegistry())
    assert st is not None and st.names() == ["a"]
    assert build_stage(load_engine_config_text("{}\n"), SensorRegistry()) is None


def test_score_cli_row_for_row_no_look_ahead(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1500
    ts = pd.date_range("2024-01-01", periods=n, freq="5min")
    x = 20 + rng.normal(0, 1, n)
    x[1200] = 45.0
    src = tmp_path / "in.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": x}).to_csv(
        src, index=False
    )
    out = tmp_path / "out.csv"
    assert main(["score", str(src), "-o", str(out)]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["timestamp", "value", "anomaly_score", "alert"]
    assert len(got) == n
    assert got.anomaly_score.iloc[:1200].max() < 0.5 <= got.anomaly_score.iloc[1200]
    # no look-ahead: truncating the file does not change the scores of the rows kept
    pd.read_csv(src).iloc[:1100].to_csv(src, index=False)
    assert main(["score", str(src), "-o", str(out), "--detector", "robust"]) == 0
    short = pd.read_csv(out).anomaly_score.to_numpy()
    pd.read_csv(tmp_path / "in.csv")  # unchanged input contract
    full = tmp_path / "full.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": x}).to_csv(
        full, index=False
    )
    assert main(["score", str(full), "-o", str(out), "--detector", "robust"]) == 0
    np.testing.assert_array_equal(pd.read_csv(out).anomaly_score.to_numpy()[:1100], short)


def test_score_cli_several_columns_and_unknown_detector(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    ts = pd.date_range("2024-01-01", periods=200, freq="1min").strftime("%Y-%m-%d %H:%M:%S")
    pd.DataFrame({"timestamp": ts, "a": np.arange(200.0), "b": np.ones(200)}).to_csv(
        src, index=False
    )
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--detector", "flatline"]) == 0
    assert list(pd.read_csv(out).columns) == [
        "timestamp", "a", "b", "a_anomaly_score", "b_anomaly_score", "a_alert", "b_alert",
        "anomaly_score", "alert",
    ]  # fmt: skip
    assert main(["score", str(src), "-o", str(out), "--detector", "nope"]) != 0


def test_score_help_examples_name_real_entries() -> None:
    """Every ``--detector`` of the help's examples on the bundled file resolves (one
    once read ``--detector default``, which is no entry)."""
    names = [
        m.group(2)
        for m in re.finditer(r"riskwatch score .*?(--config \S+ )?--detector (\S+)", EPILOG)
        if not m.group(1)
    ]
    assert names
    for name in names:
        assert select_spec(None, name).name == name


def _fire(st: DetectorStage, reg: SensorRegistry, sensor: int = 0) -> None:
    """Warm ``sensor`` up for 100 minutes, then one reading of 9: its window opens at 100."""
    rng = np.random.default_rng(5)
    st.process(_batch(0, 100, {sensor: rng.normal(1, 0.05, 100)}), StageContext(0, reg))
    (sig,) = st.process(_batch(100, 1, {sensor: np.array([9.0])}), StageContext(0, reg))
    assert (sig.state, sig.sensor) == ("firing", sensor)


def test_reload_changed_entry_takes_over_open_windows_which_close_after_hold(
    tmp_path: Path,
) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)  # hold 10m
    _fire(st, reg)
    f = st.watched_files()[0]
    f.write_text(f.read_text().replace("alpha: 0.05", "alpha: 0.1"))
    result = st.reload(StageContext(101 * MIN, reg))
    assert (result.source, result.changed, result.removed, result.ended) == (
        SignalSource.DETECTOR, ("ch4_level",), (), (),
    )  # fmt: skip
    assert st.entries[0].ensemble.open_ids().tolist() == [0]
    assert st.tick(StageContext(109 * MIN, reg)) == []
    (res,) = st.tick(StageContext(110 * MIN, reg))  # hold after the last hot reading (100)
    assert (res.rule, res.sensor, res.state, res.reason) == ("ch4_level", 0, "resolved", None)


def test_reload_narrowed_entry_ends_unwatched_and_removed_entry_is_named(
    tmp_path: Path,
) -> None:
    reg = _registry()
    st = _stage(tmp_path, reg)
    _fire(st, reg, sensor=1)
    f = st.watched_files()[0]
    f.write_text(f.read_text().replace("{kind: ch4}", "{kind: ch4, sensor: ch4-1}"))
    result = st.reload(StageContext(101 * MIN, reg))
    assert [(s.rule, s.sensor, s.state, s.reason, s.source) for s in result.ended] == [
        ("ch4_level", 1, "resolved", EndReason.UNWATCHED, SignalSource.DETECTOR)
    ]
    f.write_text("detectors: []\n")
    result = st.reload(StageContext(102 * MIN, reg))
    assert (result.removed, result.changed, result.added) == (("ch4_level",), (), ())
    assert st.names() == []


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_score_cli_sniffs_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    rows = [f"2024-01-01 00:{i:02d}:00;{20 + (i % 3)},5;1" for i in range(40)]
    src = _csv(tmp_path / "s.csv", "timestamp;temp;flag\n" + "\n".join(rows) + "\n")
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--detector", "robust"]) == 0
    got = pd.read_csv(out)
    assert list(got.columns)[:3] == ["timestamp", "temp", "flag"] and len(got) == 40
    assert got.temp.iloc[0] == "20,5"  # values echoed as written


def test_score_cli_alert_opens_after_the_baseline_and_ends_with_the_evidence(
    tmp_path: Path,
) -> None:
    """generic: nothing in the first 300 readings (min_history), however wild; a +80
    sigma step opens an alert on its first reading, which stays open while the step
    lasts and closes 3 h (36 readings) after the scores went back below 0.3."""
    rng = np.random.default_rng(9)
    n = 900
    x = 20 + rng.normal(0, 1, n)
    x[10:20] = 500.0  # in warm-up: no alert
    x[600:620] += 80.0
    ts = pd.date_range("2024-01-01", periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
    src = tmp_path / "in.csv"
    pd.DataFrame({"timestamp": ts, "value": x}).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out)]) == 0
    got = pd.read_csv(out)
    assert got.alert.iloc[:300].sum() == 0 and got.anomaly_score.iloc[:300].max() == 0.0
    assert got.alert.iloc[599] == 0 and got.alert.iloc[600] == 1
    assert got.anomaly_score.iloc[600] >= 0.5
    assert got.alert.iloc[600:620].all()
    on = np.flatnonzero(got.alert.to_numpy()[600:]) + 600
    runs = np.split(on, np.flatnonzero(np.diff(on) > 1) + 1)
    assert runs[0][0] == 600 and runs[0][-1] < 700  # closed within hours, not 24 h


def test_score_starts_without_the_engine_stack(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "timestamp,value\n2024-01-01 00:00:00,1\n")
    code = (
        "import sys; from riskwatch.cli import main; "
        f"rc = main(['score', {str(src)!r}, '-o', {str(tmp_path / 'o.csv')!r}]); "
        "print(rc, sorted(m for m in ('pandas', 'numba', 'riskwatch.engine', "
        "'riskwatch.detectors.stage', 'riskwatch.alerts') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split("\n")[0] == "0 []"


def test_score_cli_asset_flag_scores_columns_jointly(tmp_path: Path) -> None:
    """Two columns that follow one load; late in the file they part ways, each within
    its own usual range: with --asset the joint member raises, without it that member
    (each column its own asset) stays 0."""
    rng = np.random.default_rng(4)
    n = 1200
    load = rng.uniform(0, 1, n)
    a, b = load + rng.normal(0, 0.02, n), load + rng.normal(0, 0.02, n)
    a[1000:1010], b[1000:1010] = 0.9, 0.1
    ts = pd.date_range("2024-01-01", periods=n, freq="1min").strftime("%Y-%m-%d %H:%M:%S")
    src = tmp_path / "in.csv"
    pd.DataFrame({"timestamp": ts, "amp": a, "flow": b}).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    spec = tmp_path / "d.yaml"
    spec.write_text(
        "detectors:\n  - name: j\n    threshold: 0.5\n    min_history: 300\n"
        "    hold: 0s\n    members: {joint: {type: asset_mahalanobis}}\n"
    )
    assert main(["score", str(src), "-o", str(out), "--config", str(spec), "--asset"]) == 0
    got = pd.read_csv(out)
    assert got.alert.iloc[:1000].sum() == 0 and got.alert.iloc[1000] == 1
    assert main(["score", str(src), "-o", str(out), "--config", str(spec)]) == 0
    assert pd.read_csv(out).anomaly_score.max() == 0.0


def test_score_cli_fast_sensor_alert_ends_within_clear_after_readings(tmp_path: Path) -> None:
    """1 Hz readings: the 3 h hold would be 10,800 readings; clear_after closes the
    alert 50 readings after the last reading scoring 0.3 or more."""
    rng = np.random.default_rng(12)
    n = 2000
    x = 5 + rng.normal(0, 0.1, n)
    x[1000:1030] += 3.0
    ts = pd.date_range("2024-01-01", periods=n, freq="1s").strftime("%Y-%m-%d %H:%M:%S")
    src = tmp_path / "in.csv"
    pd.DataFrame({"timestamp": ts, "value": x}).to_csv(src, index=False)
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--raw"]) == 0
    got = pd.read_csv(out)
    assert got.alert.iloc[:1000].sum() == 0 and got.alert.iloc[1000] == 1
    last_on = int(np.flatnonzero(got.alert.to_numpy())[-1])
    evidence = np.flatnonzero(got.anomaly_score.to_numpy()[: last_on + 1] >= 0.3)
    assert last_on == evidence[-1] + 49  # open through the 49th calm reading
    assert last_on < 1500
