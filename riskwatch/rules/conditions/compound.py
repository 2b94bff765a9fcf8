"""Compound rules: all / any / at least N of several inputs, per group of sensors.

An input (*term*) is another rule's state (firing at ``level`` or more severe) or a
sensor's last process value against ``above`` / ``below``. Sensors are grouped by the
catalogue columns ``by`` (default enterprise + site); ``link`` names a tag whose value
replaces the ``sensor`` column, so a feed sensor lands in the group of the methane sensor
it controls. A group whose condition holds is pending, and fires once it held for
``for`` (measured from the first evaluation it held at). Compound rules are evaluated
after each batch (at its newest event time) and on every tick (at ``now``), after every
other rule, since they read the others' states.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "w1", "CH4-1", "ch4"),
...                    CatalogEntry("m1", "w1", "FEED-1", "feed")])
>>> rs = RuleSet([load_rules_text(CompoundCondition.sample)], reg)
>>> sig = rs.process(Batch.from_arrays([1, 1], [0, 1], [1.6, 1.0]), 1)
>>> for s in sig:  # doctest: +ELLIPSIS
...     print(s.rule, s.state, s.group, s.sensor, "|", s.message)
ch4_power_off firing None 0 | m1/w1/CH4-1: ch4 1.6 >= red 1.5 [ch4_power_off, firing]
feed_anomaly firing m1/w1 0 | m1/w1: feed power on at power-off methane (2 input(s) true) [...]
>>> rs.active_subjects()[1]
('feed_anomaly', 'm1/w1', <SignalState.FIRING: 'firing'>, <Level.RED: 1>)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import numpy as np

from riskwatch.model import Batch, Signal, SignalState
from riskwatch.rules.compile import select
from riskwatch.rules.conditions.base import ActiveAlert, CompileContext, Phase, RuleEnv
from riskwatch.rules.parse import RuleSpec
from riskwatch.rules.sensor_memory import Needs
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["CompoundCondition", "CompoundState"]

_STATES = (SignalState.RESOLVED, SignalState.PENDING, SignalState.FIRING)  # by group status


class CompoundState(NamedTuple):
    names: list[str]  # group names
    status: np.ndarray  # per group: 0 inactive, 1 pending, 2 firing
    since: np.ndarray  # per group: when the condition started to hold


class CompoundCondition:
    """One compound rule: its groups, term masks and per-group status."""

    phase: ClassVar[Phase] = Phase.DERIVED
    needs: ClassVar[Needs] = Needs.LAST_VALUE
    sample: ClassVar[str] = """\
rules:
  - {name: ch4_power_off, match: {kind: ch4}, level: red, above: 1.5}
  - name: feed_anomaly
    description: feed power on at power-off methane
    compound:
      all:                                  # or any: [...], or at_least: N with of: [...]
        - {rule: ch4_power_off}             # another rule firing (level: at least this)
        - {match: {kind: feed}, above: 0.5} # a sensor's last value
      # by: [enterprise, site]              # the group columns
      # link: controls                      # a tag that names the sensor a sensor serves
    # for: 10s
"""

    def __init__(self, spec: RuleSpec, ctx: CompileContext) -> None:
        assert spec.compound is not None
        self.spec = spec
        self.c = spec.compound
        self.level = spec.out_level
        self.for_ns = int(spec.for_ or 0)
        self.group = np.zeros(0, np.int64)  # per sensor: its group, -1 if in no term
        self.names: list[str] = []  # group names
        self.term_masks: list[np.ndarray] = []  # per term: the sensors it reads
        self.status = np.zeros(0, np.uint8)  # per group: 0 inactive, 1 pending, 2 firing
        self.since = np.zeros(0, np.int64)

    @property
    def name(self) -> str:
        return self.spec.name

    def rule_names(self) -> list[str]:
        return [self.spec.name]

    def nbytes(self) -> tuple[int, int]:
        return 0, 0  # per group; not counted per sensor

    def rebuild(self, env: RuleEnv) -> None:
        reg = env.registry
        n = len(reg)
        key = None
        for c in self.c.by:
            col = (
                reg.column(c).astype(str)
                if reg.has_column(c)
                else np.full(n, "", dtype=object).astype(str)
            )
            if c == "sensor" and self.c.link and reg.has_column(self.c.link):
                link = reg.column(self.c.link).astype(str)
                col = np.where(link != "", link, col)
            key = col if key is None else np.char.add(np.char.add(key, "/"), col)
        self.term_masks = []
        for t in self.c.terms:
            if t.rule is not None:
                m = env.sensors_of(t.rule)
            else:
                m = select(reg, t.match, None, env.select_cache)
            self.term_masks.append(m)
        in_any = np.zeros(n, bool)
        for m in self.term_masks:
            in_any |= m
        old = dict(
            zip(
                self.names,
                zip(self.status.tolist(), self.since.tolist(), strict=True),
                strict=False,
            )
        )
        if key is None or not n:
            self.names, self.group = [], np.full(n, -1, np.int64)
        else:
            names, inv = np.unique(key[in_any], return_inverse=True)
            self.names = names.tolist()
            self.group = np.full(n, -1, np.int64)
            self.group[in_any] = inv
        n_groups = len(self.names)
        self.status = np.array([old.get(g, (0, 0))[0] for g in self.names], np.uint8).reshape(
            n_groups
        )
        self.since = np.array([old.get(g, (0, 0))[1] for g in self.names], np.int64).reshape(
            n_groups
        )

    def _term_true(self, env: RuleEnv, i: int) -> np.ndarray:
        t = self.c.terms[i]
        m = self.term_masks[i]
        if t.rule is not None:
            lv = env.firing_level(t.rule)
            want = int(t.level) if t.level is not None else 4
            return m & (lv > 0) & (lv <= want)
        vals = env.sensors.last_value
        with np.errstate(invalid="ignore"):
            return m & ((vals >= t.above) if t.above is not None else (vals <= t.below))

    def on_batch(self, env: RuleEnv, batch: Batch, now_ns: int) -> list[Signal]:
        return self.evaluate(env, int(batch.time.max()))

    def on_tick(self, env: RuleEnv, now_ns: int) -> list[Signal]:
        return self.evaluate(env, now_ns)

    def evaluate(self, env: RuleEnv, t_eval: int) -> list[Signal]:
        """Evaluate every group at ``t_eval``; the signals of the groups that changed."""
        n_groups = len(self.names)
        if not n_groups:
            return []
        # 1. per term and group: how many of the group's sensors make the term true
        counts = []
        for i in range(len(self.c.terms)):
            tt = self._term_true(env, i)
            g = self.group[tt]
            counts.append(np.bincount(g[g >= 0], minlength=n_groups))
        cm = np.stack(counts)
        # 2. the condition per group
        if self.c.all:
            cond = (cm >= 1).all(axis=0)
        elif self.c.any:
            cond = (cm >= 1).any(axis=0)
        else:
            assert self.c.at_least is not None
            cond = (
                (cm[0] >= self.c.at_least)
                if len(counts) == 1
                else ((cm >= 1).sum(axis=0) >= self.c.at_least)
            )
        # 3. pending while `for` runs (from the first evaluation the condition held at),
        # then firing until the condition stops holding
        new_status = self.status.copy()
        starting = cond & (self.status == 0)
        self.since[starting] = t_eval
        ready = cond & (t_eval - self.since >= self.for_ns)
        new_status[cond & ~ready & (self.status != 2)] = 1
        new_status[ready] = 2
        new_status[cond & (self.status == 2)] = 2
        new_status[~cond] = 0
        changed = np.flatnonzero(new_status != self.status)
        out: list[Signal] = []
        for g in changed.tolist():
            st = int(new_status[g])
            state = _STATES[st]
            desc = self.spec.description or self.spec.name
            n_true = int(cm[:, g].sum())
            msg = f"{self.names[g]}: {desc} ({n_true} input(s) true) [{self.spec.name}, {state}]"
            out.append(
                Signal(
                    rule=self.spec.name,
                    sensor=self._member(g),
                    time=int(t_eval),
                    state=state,
                    level=self.level if st else None,
                    value=float(n_true),
                    threshold=float(self.c.at_least or len(self.c.terms)),
                    message=msg,
                    group=self.names[g],
                )
            )
        self.status = new_status
        return out

    def _member(self, g: int) -> int:
        """The group's representative sensor: its first sensor of the first term (or -1)."""
        members = np.flatnonzero((self.group == g) & self.term_masks[0])
        return int(members[0]) if len(members) else -1

    def active(self, env: RuleEnv) -> list[ActiveAlert]:
        return [
            ActiveAlert(
                self.spec.name,
                self._member(g),
                self.names[g],
                _STATES[int(self.status[g])],
                self.level,
                self.names[g],
            )
            for g in np.flatnonzero(self.status).tolist()
        ]

    def firing_level(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        # a compound rule's state is per group, not per sensor: as a term it reads nothing
        return np.zeros(n_sensors, np.uint8) if rule_name == self.spec.name else None

    def sensors_of(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        return np.zeros(n_sensors, bool) if rule_name == self.spec.name else None

    def export_state(self) -> dict[str, object]:
        return {self.spec.name: CompoundState(self.names, self.status, self.since)}

    def import_state(self, states: Mapping[str, object]) -> None:
        old = states.get(self.spec.name)
        if old is None:
            return
        assert isinstance(old, CompoundState)
        by_group = dict(
            zip(old.names, zip(old.status.tolist(), old.since.tolist(), strict=True), strict=False)
        )
        for i, g in enumerate(self.names):
            if g in by_group:
                self.status[i], self.since[i] = by_group[g]

    def dump_state(self) -> StateTree:
        """Status and start per group, by group name (groups are named, not numbered)."""
        return {"v": 1, "names": list(self.names), "status": self.status.copy(),
                "since": self.since.copy()}  # fmt: skip

    def load_state(
        self, tree: StateTree, sensors: SensorMap, keep: set[str], changed: set[str]
    ) -> Restored:
        if self.spec.name not in keep | changed:  # a changed one keeps its groups too
            return Restored()
        names, status, since = tree.get("names"), tree.get("status"), tree.get("since")
        if not (
            isinstance(names, list)
            and isinstance(status, np.ndarray)
            and isinstance(since, np.ndarray)
            and len(names) == len(status) == len(since)
        ):
            return Restored(dropped=[f"rules: {self.spec.name}: group state unreadable"])
        by_group = dict(zip(names, zip(status.tolist(), since.tolist(), strict=True),
                            strict=True))  # fmt: skip
        n = 0
        for i, g in enumerate(self.names):
            if g in by_group:
                self.status[i], self.since[i] = by_group[g]
                n += 1
        return Restored({"compound groups": n})

    def adopt_state(self, states: Mapping[str, object]) -> None:
        """A changed compound rule keeps its groups' status: a firing group stays firing
        until the new condition stops holding at an evaluation, then resolves."""
        self.import_state(states)
