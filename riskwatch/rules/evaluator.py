"""A compiled rule set with its per-sensor state: :meth:`RuleSet.process` and :meth:`RuleSet.tick`.

How it works:

1. Compile: every rule's kind (:attr:`~riskwatch.rules.parse.RuleSpec.condition`) picks
   its class from the registry (:data:`~riskwatch.rules.conditions.CONDITIONS`). The
   per-reading rules (threshold on value / rate / change, frozen, out of range,
   calibration) go together into one :class:`~riskwatch.rules.readings.ReadingRules`,
   whose state lives in per-(rule, sensor) slot arrays and which evaluates a whole
   batch in one vectorised pass (its module docstring lists the steps). No-data and
   compound rules keep their own per-sensor or per-group state. All of them are
   :class:`~riskwatch.rules.conditions.base.Condition` s, run in phase order: readings,
   then silence (no data), then derived rules (compound, which read the others' states).
2. Rebuild: when the sensor registry grows, every member re-lays its arrays for the new
   sensors and keeps the state of what existed before.
3. Process a batch: sort it by time, record what some rule needs per sensor (last seen,
   last value), then each member returns the signals (state changes) the batch caused.
4. Tick: the timers (no data, compound) run at ``now`` without data.

Level semantics: each colour of a rule is an independent latch, set when its trigger
held (continuously for ``for``) and reset only when its clear condition held
(continuously for ``keep_firing_for``); the rule's level is the most severe latched
colour. Losing data never clears a latch: only real readings do.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CH4-1", "ch4", unit="%")])
>>> rf = load_rules_text('''
... rules:
...   - name: ch4
...     match: {kind: ch4}
...     levels:
...       - {level: orange, above: 1.0, label: alarm}
...       - {level: red, above: 1.5, clear_below: 1.0, label: power-off}
... ''')
>>> rs = RuleSet([rf], reg)
>>> sig = rs.process(Batch.from_arrays([1, 2, 3, 4], [0, 0, 0, 0], [0.5, 1.6, 1.2, 0.9]), 5)
>>> [(s.time, s.state.value, s.level and s.level.colour) for s in sig]
[(2, 'firing', 'red'), (4, 'resolved', None)]
>>> rs.active(), rs.memory()["slots"]
([], 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import Batch, Level, Signal, SignalState
from riskwatch.rules.calendars import Calendar, collect_calendars
from riskwatch.rules.conditions import CONDITIONS, CompileContext, Condition, ReadingCondition
from riskwatch.rules.conditions.base import ActiveAlert
from riskwatch.rules.parse import RuleFile, RuleSpec
from riskwatch.rules.readings import ReadingRules
from riskwatch.rules.sensor_memory import Needs, SensorMemory
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["RuleSet", "rule_fingerprint"]


def rule_fingerprint(rule: RuleSpec, calendars: dict[str, Any]) -> str:
    """Identity of a rule's behaviour: unchanged rules keep their state on reload."""
    cals = ""
    if rule.calendar is not None:
        cals = repr(
            sorted(
                (n, repr(calendars.get(n))) for n in rule.calendar.inside + rule.calendar.outside
            )
        )
    return repr(rule) + cals


class RuleSet:
    """A compiled rule set with its per-sensor state; :meth:`process` and :meth:`tick`.

    ``files`` are parsed :class:`RuleFile` s; ``base_dirs`` locate calendar files.
    Raises :class:`ConfigErrors` if calendars or references are invalid.
    """

    def __init__(
        self,
        files: Sequence[RuleFile],
        registry: SensorRegistry,
        *,
        base_dirs: Sequence[Path | None] | None = None,
        docs: Sequence[Any] | None = None,
    ) -> None:
        self.registry = registry
        self.files = list(files)
        n = len(self.files)
        self.calendars: dict[str, Calendar]
        self.calendars, errors = collect_calendars(
            self.files,
            list(base_dirs) if base_dirs is not None else [None] * n,
            list(docs) if docs else [None] * n,
        )
        self.specs: list[RuleSpec] = [r for rf in self.files for r in rf.rules if r.enabled]
        self.rule_file: dict[str, str] = {r.name: rf.file for rf in self.files for r in rf.rules}
        errors += self._reference_errors()
        ConfigErrors.raise_if(errors)
        # compile each rule by its kind; the per-reading ones share one slot table
        compiled = [
            CONDITIONS[spec.condition](
                spec, CompileContext(self.rule_file.get(spec.name, ""), self.calendars)
            )
            for spec in self.specs
        ]
        self.readings = ReadingRules([c for c in compiled if isinstance(c, ReadingCondition)])
        own_state: list[Condition] = [c for c in compiled if not isinstance(c, ReadingCondition)]
        # members in phase order (a stable sort: rule order within a phase)
        self.members: list[Condition] = sorted([self.readings, *own_state], key=lambda m: m.phase)
        self._member_of = {name: m for m in self.members for name in m.rule_names()}
        self.needs = Needs.NONE
        for m in self.members:
            self.needs |= m.needs
        self.sensors = SensorMemory()
        self._select_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.generation = -1
        self.n_sensors = 0
        self._rebuild()

    def _reference_errors(self) -> list[ConfigError]:
        """Unknown calendars, and compound terms naming unknown rules."""
        errors: list[ConfigError] = []
        names = {r.name for r in self.specs}
        for r in self.specs:
            if r.calendar is not None:
                for n in r.calendar.inside + r.calendar.outside:
                    if n not in self.calendars:
                        errors.append(
                            ConfigError(
                                f"{r.name}.calendar",
                                f"unknown calendar {n!r}",
                                file=self.rule_file[r.name],
                            )
                        )
            if r.compound is not None:
                for t in r.compound.terms:
                    if t.rule is not None and t.rule not in names:
                        errors.append(
                            ConfigError(
                                f"{r.name}.compound",
                                f"unknown rule {t.rule!r}",
                                file=self.rule_file[r.name],
                            )
                        )
        return errors

    # ------------------------------------------------------------------ what members see
    @property
    def select_cache(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Distinct values of the registry's text columns, for this registry generation."""
        return self._select_cache

    def firing_level(self, rule_name: str) -> np.ndarray:
        """Per sensor id: most severe firing level (1..4) of a rule, 0 if not firing."""
        m = self._member_of.get(rule_name)
        out = m.firing_level(rule_name, self.n_sensors) if m is not None else None
        return out if out is not None else np.zeros(self.n_sensors, np.uint8)

    def sensors_of(self, rule_name: str) -> np.ndarray:
        """Mask over sensor ids: the sensors a rule watches."""
        m = self._member_of.get(rule_name)
        out = m.sensors_of(rule_name, self.n_sensors) if m is not None else None
        return out if out is not None else np.zeros(self.n_sensors, bool)

    # ------------------------------------------------------------------ evaluation
    def _rebuild(self) -> None:
        """(Re)build every member's arrays for the registry's current sensors, keeping state."""
        self._select_cache = {}  # column values change with the registry
        self.n_sensors = len(self.registry)
        self.sensors.grow(self.n_sensors)
        for m in self.members:  # in phase order: compound rules read the others' layout
            m.rebuild(self)
        self.generation = self.registry.generation

    def process(self, batch: Batch, now_ns: int) -> list[Signal]:
        """Evaluate a batch; returns the transitions it caused, in time order per member
        (per-reading rules, then no data, then compound)."""
        # 1. new sensors since the last batch: re-lay the arrays (state is kept)
        if self.registry.generation != self.generation:
            self._rebuild()
        self.sensors.start(now_ns)
        if not len(batch):
            return []
        # 2. time order, and what the rules need per sensor (last seen, last value)
        batch = batch.sorted_by_time()  # a no-op check when it already is
        self.sensors.observe(batch, self.needs)
        # 3. each member's signals
        out: list[Signal] = []
        for m in self.members:
            out += m.on_batch(self, batch, now_ns)
        return out

    def tick(self, now_ns: int) -> list[Signal]:
        """Timers that fire without data: no-data (deadman) rules and compound rules."""
        if self.registry.generation != self.generation:
            self._rebuild()
        self.sensors.start(now_ns)
        out: list[Signal] = []
        for m in self.members:
            out += m.on_tick(self, now_ns)
        return out

    # ------------------------------------------------------------------ state views
    def active(self) -> list[tuple[str, int, SignalState, Level]]:
        """Current (rule, sensor or -1, state, level) of every non-inactive slot/group."""
        return [(a.rule, a.sensor, a.state, a.level) for m in self.members for a in m.active(self)]

    def active_subjects(self) -> list[tuple[str, str, SignalState, Level]]:
        """Like :meth:`active` with the subject as text: the sensor key, or the group name."""
        return [(a.rule, a.subject, a.state, a.level) for m in self.members for a in m.active(self)]

    def active_subjects_full(self) -> list[ActiveAlert]:
        """Every pending or firing subject with its sensor, subject text and group."""
        return [a for m in self.members for a in m.active(self)]

    def memory(self) -> dict[str, int]:
        """Bytes of rule state and parameters (for the benchmark's memory per sensor)."""
        state, params = self.sensors.nbytes(), 0
        for m in self.members:
            st, pa = m.nbytes()
            state += st
            params += pa
        return {"slots": self.readings.slots.n, "state_bytes": state, "param_bytes": params}

    def export_state(self) -> dict[str, Any]:
        """State of each rule keyed by rule name (to carry unchanged rules over a reload)."""
        rules: dict[str, object] = {}
        for m in self.members:
            rules.update(m.export_state())
        return {"rules": rules, "sensors": self.sensors.snapshot()}

    def import_state(
        self, st: dict[str, Any], keep: set[str], changed: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Take over the state of the rules named in ``keep`` from an exported state, and
        what is active of the rules named in ``changed`` (each member's ``adopt_state``:
        their alerts resolve on the next reading if the new condition does not hold)."""
        self.sensors.restore(st["sensors"])
        kept = {name: s for name, s in st["rules"].items() if name in keep}
        adopted = {name: s for name, s in st["rules"].items() if name in changed}
        for m in self.members:
            m.import_state(kept)
            if adopted:
                m.adopt_state(adopted)

    # ------------------------------------------------------------------ durable state
    def fingerprints(self) -> dict[str, str]:
        """Each rule's identity (a digest of :func:`rule_fingerprint`): a snapshot's state
        of a rule is taken over only by a rule of the same name and fingerprint."""
        return {
            r.name: hashlib.sha256(rule_fingerprint(r, self.calendars).encode()).hexdigest()[:24]
            for r in self.specs
        }

    def _state_key(self, m: Condition) -> str:
        """A member's name in a snapshot: the per-reading rules share one slot table."""
        return "readings" if m is self.readings else "+".join(m.rule_names())

    def dump_state(self) -> StateTree:
        """A snapshot of every member's state, with the rules' fingerprints."""
        if self.registry.generation != self.generation:
            self._rebuild()
        return {
            "v": 1,
            "fingerprints": self.fingerprints(),
            "sensors": self.sensors.dump_state(),
            "members": {self._state_key(m): m.dump_state() for m in self.members},
        }

    def load_state(self, tree: StateTree, sensors: SensorMap) -> Restored:
        """Take over a snapshot's state: rules by name and fingerprint (a changed rule
        starts fresh, as on a reload), sensors by key."""
        if self.registry.generation != self.generation:
            self._rebuild()  # sensors the snapshot registered again
        out = Restored()
        old_fp = tree.get("fingerprints")
        members = tree.get("members")
        if not isinstance(old_fp, dict) or not isinstance(members, dict):
            out.dropped.append("rules: no rule state in the snapshot")
            return out
        new_fp = self.fingerprints()
        keep = {n for n, fp in new_fp.items() if old_fp.get(n) == fp}
        changed = sorted(n for n in new_fp if n in old_fp and n not in keep)
        if changed:
            out.dropped.append("rules: changed since the snapshot (active subjects adopted, "
                               "timers reset): "
                               + ", ".join(changed))  # fmt: skip
        gone = sorted(set(old_fp) - set(new_fp))
        if gone:
            out.dropped.append("rules: no longer loaded: " + ", ".join(gone))
        mem = tree.get("sensors")
        if isinstance(mem, dict):
            out.counts["sensors seen"] = self.sensors.load_state(mem, sensors)
        for m in self.members:
            st = members.get(self._state_key(m))
            if isinstance(st, dict):
                out.merge(m.load_state(st, sensors, keep, set(changed)))
        out.counts["rules kept"] = len(keep)
        return out

    def resume(self, stopped_ns: int, now_ns: int) -> int:
        """After a restore and its replay: arrival-clock silences resume where they stood
        (:meth:`SensorMemory.resume`); returns the downtime skipped (ns)."""
        return self.sensors.resume(stopped_ns, now_ns)
