"""Conformance over every registered condition kind: its sample rule file parses into that
kind, compiles, raises and resolves on data made for it, a reload that keeps the rule
keeps its state, and a reload that changes it takes over its active subjects. And the rule set finds kinds only through the registry."""

from __future__ import annotations

import numpy as np
import pytest
from rules_helpers import S, registry

from riskwatch.model import Batch, Flags, Signal, SignalSource, SignalState
from riskwatch.rules.conditions import CONDITIONS, ReadingCondition, ValueCondition, samples
from riskwatch.rules.conditions.base import Rows
from riskwatch.rules.evaluator import RuleSet
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.parse import load_rules_text
from riskwatch.rules.slots import SlotTable

CAL = int(Flags.CALIBRATING)


def catalog():
    return registry(
        {"sensor": "O2", "kind": "o2", "unit": "%"},
        {"sensor": "T", "kind": "temp"},
        {"sensor": "P", "kind": "load_kw"},
        {"sensor": "CO", "kind": "co"},
        {"sensor": "W", "kind": "wind", "range_low": 0, "range_high": 15},
        {"sensor": "CH4", "kind": "ch4", "period_s": 10},
        {"sensor": "FEED", "kind": "feed"},
    )


# per kind: readings (t seconds, sensor, value, flags) and ticks (t seconds) between them
# that raise the sample's last rule, then resolve it
CASES: dict[ConditionKind, list[tuple[float, int, float, int] | float]] = {
    ConditionKind.VALUE: [(0, 0, 20.0, 0), (1, 0, 19.0, 0), (2, 0, 20.0, 0)],
    ConditionKind.RATE: [(0, 1, 20.0, 0), (60, 1, 23.0, 0), (120, 1, 23.0, 0)],
    ConditionKind.CHANGE: [(0, 2, 100.0, 0), (10, 2, 170.0, 0), (60, 2, 170.0, 0)],
    ConditionKind.FROZEN: [(0, 3, 4.0, 0), (3600, 3, 4.0, 0), (7200, 3, 4.0, 0), (7300, 3, 5.0, 0)],
    ConditionKind.OUT_OF_RANGE: [(0, 4, 3.0, 0), (1, 4, -266.0, int(Flags.FAULT)), (2, 4, 4.0, 0)],
    ConditionKind.CALIBRATION: [(0, 5, 1.0, CAL), (7200, 5, 1.0, CAL), (7201, 5, 1.0, 0)],
    ConditionKind.NO_DATA: [(0, 5, 0.3, 0), 31.0, (40, 5, 0.3, 0)],
    ConditionKind.COMPOUND: [(0, 5, 1.6, 0), (0, 6, 1.0, 0), (1, 5, 0.5, 0)],
}


def run(rs: RuleSet, steps: list[tuple[float, int, float, int] | float]) -> list[Signal]:
    out: list[Signal] = []
    for step in steps:
        if isinstance(step, tuple):
            t, sensor, v, f = step
            out += rs.process(Batch.from_arrays([round(t * S)], [sensor], [v], [f]), round(t * S))
        else:
            out += rs.tick(round(step * S))
    return out


def test_every_kind_is_registered_with_a_sample() -> None:
    assert set(CONDITIONS) == set(ConditionKind)
    assert set(CASES) == set(ConditionKind)
    assert all(text.startswith("rules:\n") for text in samples().values())
    for kind, cls in CONDITIONS.items():  # a per-reading kind's class names its slot code
        if isinstance(cls, type) and issubclass(cls, ReadingCondition):
            assert cls.kind is kind


@pytest.mark.parametrize("kind", list(ConditionKind), ids=lambda k: k.key)
def test_sample_raises_resolves_and_survives_a_reload(kind: ConditionKind) -> None:
    rf = load_rules_text(CONDITIONS[kind].sample)
    rule = rf.rules[-1]
    assert rule.condition is kind
    rs = RuleSet([rf], catalog())
    sigs = [s for s in run(rs, CASES[kind]) if s.rule == rule.name]
    states = [s.state for s in sigs]
    assert SignalState.FIRING in states
    assert states[-1] is SignalState.RESOLVED
    assert all(s.source is SignalSource.RULE and s.message.endswith(f"[{rule.name}, {s.state}]")
               for s in sigs)  # fmt: skip
    # stop right after it fired, hand the state to a new rule set (a reload that keeps
    # the rule): the rest of the run is then what the uninterrupted run gives
    steps = CASES[kind]
    cut = next(i for i in range(1, len(steps) + 1) if (rule.name, SignalState.FIRING) in
               [(s.rule, s.state) for s in run(RuleSet([rf], catalog()), steps[:i])])  # fmt: skip
    before = RuleSet([rf], catalog())
    run(before, steps[:cut])
    assert [a[2] for a in before.active() if a[0] == rule.name] == [SignalState.FIRING]
    kept = RuleSet([load_rules_text(CONDITIONS[kind].sample)], before.registry)
    kept.import_state(before.export_state(), keep={r.name for r in rf.rules})
    assert kept.active() == before.active()
    assert run(kept, steps[cut:]) == run(before, steps[cut:])
    reset = RuleSet([load_rules_text(CONDITIONS[kind].sample)], before.registry)
    reset.import_state(before.export_state(), keep=set())
    assert not [a for a in reset.active() if a[0] == rule.name]
    # a reload that changed the rule: it takes over what was active, so its alert is
    # neither stranded (the rest of the run resolves it) nor raised again
    before = RuleSet([rf], catalog())  # stopped right after it fired, as above
    run(before, steps[:cut])
    changed = RuleSet([load_rules_text(CONDITIONS[kind].sample)], before.registry)
    others = {r.name for r in rf.rules} - {rule.name}
    changed.import_state(before.export_state(), keep=others, changed={rule.name})
    assert [a for a in changed.active() if a[0] == rule.name] == [
        a for a in before.active() if a[0] == rule.name
    ]
    after = [s.state for s in run(changed, steps[cut:]) if s.rule == rule.name]
    assert after and after[-1] is SignalState.RESOLVED and SignalState.FIRING not in after


class AbsValueCondition(ValueCondition):
    """A stand-in kind: compares |value| (to show the rule set wires kinds by registry only)."""

    @classmethod
    def quantity(cls, rows: Rows, slots: SlotTable, columns: None) -> tuple[np.ndarray, np.ndarray]:
        return np.abs(rows.value), rows.time


def test_the_rule_set_takes_kinds_from_the_registry(monkeypatch) -> None:
    monkeypatch.setitem(CONDITIONS, ConditionKind.VALUE, AbsValueCondition)
    rs = RuleSet([load_rules_text("rules: [{name: big, match: {kind: t}, level: red, above: 5}]")],
                 registry({"sensor": "T", "kind": "t"}))  # fmt: skip
    assert isinstance(rs.readings.rules[0], AbsValueCondition)
    sig = rs.process(Batch.from_arrays([1, 2], [0, 0], [-6.0, 1.0]), 2)
    assert [(s.time, s.state) for s in sig] == [(1, SignalState.FIRING), (2, SignalState.RESOLVED)]


def _seen(rs: RuleSet, sigs: list[Signal]) -> list[tuple]:
    """Signals with the sensor as its key (ids differ between registries)."""
    return [(s.rule, s.group or rs.registry.key(s.sensor), s.time, s.state, s.level, s.message)
            for s in sigs]  # fmt: skip


@pytest.mark.parametrize("kind", list(ConditionKind), ids=lambda k: k.key)
def test_sample_survives_a_snapshot_into_a_reordered_catalogue(kind: ConditionKind) -> None:
    """Durable state: stop right after the sample fired, write the rule set's state to a
    snapshot file, read it into a new process's rule set whose catalogue lists the sensors
    in another order (other dense ids) with one more: the rest of the run is what the
    uninterrupted run gives."""
    import tempfile
    from pathlib import Path

    from riskwatch.state import SensorTable, read_snapshot, write_snapshot

    rf = load_rules_text(CONDITIONS[kind].sample)
    rule = rf.rules[-1]
    steps = CASES[kind]
    cut = next(i for i in range(1, len(steps) + 1) if (rule.name, SignalState.FIRING) in
               [(s.rule, s.state) for s in run(RuleSet([rf], catalog()), steps[:i])])  # fmt: skip
    before = RuleSet([rf], catalog())
    run(before, steps[:cut])
    path = Path(tempfile.mkdtemp()) / "state.snap"
    write_snapshot(path, {"rules": before.dump_state()}, SensorTable.capture(before.registry),
                   written_ns=0, journal_from=0)  # fmt: skip
    snap = read_snapshot(path)
    old_reg = catalog()
    rows = [old_reg.meta(i) for i in range(len(old_reg))]
    new_reg = registry(
        {"sensor": "NEW", "kind": "ch4"},
        *[{k: v for k, v in r.items() if k in ("sensor", "kind", "unit") or
           (k in ("range_low", "range_high", "period_s") and v == v)} for r in reversed(rows)],
    )  # fmt: skip
    after = RuleSet([load_rules_text(CONDITIONS[kind].sample)], new_reg)
    restored = after.load_state(snap.stages["rules"], snap.sensors.bind(new_reg))
    assert restored.counts["rules kept"] == len(rf.rules)
    assert sorted((a[0], a[1], a[2]) for a in after.active_subjects()) == sorted(
        (a[0], a[1], a[2]) for a in before.active_subjects())  # fmt: skip
    # the same readings, by key, in the new ids
    new_id = {new_reg.key(i): i for i in range(len(new_reg))}
    moved = [(t[0], new_id[old_reg.key(t[1])], t[2], t[3]) if isinstance(t, tuple) else t
             for t in steps[cut:]]  # fmt: skip
    assert _seen(after, run(after, moved)) == _seen(before, run(before, steps[cut:]))
