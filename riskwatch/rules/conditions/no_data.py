"""No data (deadman): no reading for ``after``, per sensor or per site / gateway.

Per sensor, a watched sensor fires once its last reading (arrival or event time, per
``clock``) is ``after`` old at a tick, and resolves on its next reading. Per site or
gateway, the group fires when none of its watched sensors reported for ``after`` (the
longest ``after`` among them), and resolves on the next reading of any of them.
``after`` is a duration, or ``k * catalog.NAME`` (seconds, per sensor, with ``default``
for sensors without it). With ``never_reported`` (the default) a catalogued sensor that
never reported counts from the start of the rule set.

>>> from riskwatch.catalog import SensorRegistry, CatalogEntry
>>> from riskwatch.model import Batch
>>> from riskwatch.rules.evaluator import RuleSet
>>> from riskwatch.rules.parse import load_rules_text
>>> reg = SensorRegistry()
>>> reg.apply_catalog([CatalogEntry("m1", "s1", "CH4-1", "ch4", period_s=10)])
>>> rs = RuleSet([load_rules_text(NoDataCondition.sample)], reg)
>>> S = 10**9
>>> _ = rs.process(Batch.from_arrays([0], [0], [0.3]), 0)
>>> [s.message for s in rs.tick(29 * S) + rs.tick(30 * S)]
['m1/s1/CH4-1: no data for 30 s (limit 30 s, arrival time) [ch4_silent, firing]']
>>> [s.message for s in rs.process(Batch.from_arrays([40 * S], [0], [0.3]), 40 * S)]
['m1/s1/CH4-1: data again after 40 s without data [ch4_silent, resolved]']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import numpy as np

from riskwatch.model import Batch, Signal, SignalState
from riskwatch.rules.compile import resolve_number, select
from riskwatch.rules.conditions.base import ActiveAlert, CompileContext, Phase, RuleEnv
from riskwatch.rules.parse import RuleSpec, Setpoint
from riskwatch.rules.sensor_memory import Needs
from riskwatch.rules.slots import NEVER
from riskwatch.state.tree import Restored, SensorMap, StateTree

__all__ = ["NoDataCondition", "NoDataState"]


class NoDataState(NamedTuple):
    fired: np.ndarray  # per sensor
    group_names: list[str]
    group_fired: np.ndarray  # per group
    #: per sensor / per group: the last data time (per ``clock``) before the silence
    #: that fired, so the resolution can say how long data was missing (None: unknown)
    since: np.ndarray | None = None
    group_since: np.ndarray | None = None


class NoDataCondition:
    """One no-data rule: its watched sensors, limits and fired flags (per sensor or group)."""

    phase: ClassVar[Phase] = Phase.SILENCE
    needs: ClassVar[Needs] = Needs.SEEN
    sample: ClassVar[str] = """\
rules:
  - name: ch4_silent
    description: a methane sensor stopped reporting
    match: {kind: ch4}
    no_data:
      after: 3 * catalog.period_s   # or a duration (90s); per sensor from the catalogue
      default: 90s                  # for sensors without period_s
      # clock: arrival              # or event (the readings' own timestamps)
      # per: sensor                 # or site / gateway: the whole group went silent
      # never_reported: true        # catalogued sensors that never reported count too
"""

    def __init__(self, spec: RuleSpec, ctx: CompileContext) -> None:
        assert spec.no_data is not None
        self.spec = spec
        self.nd = spec.no_data
        self.level = spec.out_level
        self.mask = np.zeros(0, bool)  # watched sensors
        self.after = np.zeros(0, np.int64)  # limit per sensor, ns
        self.fired = np.zeros(0, bool)  # per sensor (per: sensor)
        self.since = np.zeros(0, np.int64)  # last data time before the silence that fired
        self.group = np.zeros(0, np.int64)  # group of each sensor (per: site / gateway)
        self.group_names: list[str] = []
        self.group_fired = np.zeros(0, bool)
        self.group_since = np.zeros(0, np.int64)

    @property
    def name(self) -> str:
        return self.spec.name

    def rule_names(self) -> list[str]:
        return [self.spec.name]

    def nbytes(self) -> tuple[int, int]:
        # all per-sensor, counted as rule state (as the benchmark reports it)
        per_sensor = self.mask.nbytes + self.after.nbytes + self.fired.nbytes + self.since.nbytes
        return per_sensor + self.group.nbytes + self.group_since.nbytes, 0

    def rebuild(self, env: RuleEnv) -> None:
        reg = env.registry
        n = len(reg)
        self.mask = select(reg, self.spec.match, self.spec.exclude, env.select_cache)
        limit = self.nd.limit
        if isinstance(limit, Setpoint):  # k * catalog.NAME seconds, per sensor
            sec = resolve_number(reg, limit, np.arange(n), 1)
            ns = np.where(np.isnan(sec), int(self.nd.default), np.nan_to_num(sec) * 1e9)
            self.after = ns.astype(np.int64)
        else:
            self.after = np.full(n, int(limit), np.int64)
        fired = np.zeros(n, bool)
        fired[: len(self.fired)] = self.fired[:n]
        self.fired = fired
        since = np.full(n, NEVER, np.int64)
        since[: len(self.since)] = self.since[:n]
        self.since = since
        if self.nd.per != "sensor":
            cols = ["enterprise", "site"] + (["gateway"] if self.nd.per == "gateway" else [])
            keys = reg.column(cols[0]).astype(str)
            for c in cols[1:]:
                keys = np.char.add(np.char.add(keys, "/"), reg.column(c).astype(str))
            keys = np.char.rstrip(keys, "/")  # no gateway column: the site is the group
            names, inv = (
                np.unique(keys, return_inverse=True)
                if n
                else (np.zeros(0, str), np.zeros(0, np.int64))
            )
            old = dict(zip(self.group_names, self.group_fired.tolist(), strict=False))
            old_since = dict(zip(self.group_names, self.group_since.tolist(), strict=False))
            self.group_names = names.tolist()
            self.group = inv.astype(np.int64)
            self.group_fired = np.array([old.get(g, False) for g in self.group_names], bool)
            self.group_since = np.array(
                [old_since.get(g, NEVER) for g in self.group_names], np.int64
            )

    def _seen(self, env: RuleEnv) -> np.ndarray:
        mem = env.sensors
        seen = mem.seen_arrival if self.nd.clock == "arrival" else mem.seen_event
        if self.nd.never_reported:
            seen = np.where(seen == NEVER, mem.start_ns or 0, seen)
        return seen

    def _signal(
        self,
        env: RuleEnv,
        sensor: int,
        t: int,
        state: SignalState,
        age: int,
        group: str | None,
        after: int,
    ) -> Signal:
        who = group if group is not None else env.registry.key(sensor)
        if state == SignalState.FIRING:
            msg = (
                f"{who}: no data for {age / 1e9:.0f} s "
                f"(limit {after / 1e9:.0f} s, {self.nd.clock} time)"
            )
        else:
            msg = f"{who}: data again after {age / 1e9:.0f} s without data"
        extra = None
        if group is not None:
            parts = group.split("/")
            extra = {"enterprise": parts[0], "site": parts[1] if len(parts) > 1 else ""}
        return Signal(
            rule=self.spec.name,
            sensor=sensor,
            time=t,
            state=state,
            level=self.level if state == SignalState.FIRING else None,
            value=age / 1e9,
            threshold=after / 1e9,
            message=msg + f" [{self.spec.name}, {state}]",
            group=group,
            extra=extra,
        )

    def on_tick(self, env: RuleEnv, now_ns: int) -> list[Signal]:
        """Fire the sensors (groups) whose silence reached the limit at ``now_ns``."""
        if not len(self.mask):
            return []
        seen = self._seen(env)
        age = now_ns - seen
        out: list[Signal] = []
        if self.nd.per == "sensor":
            silent = self.mask & (age >= self.after) & (seen != NEVER)
            new = np.flatnonzero(silent & ~self.fired)
            self.fired |= silent
            self.since[new] = seen[new]
            for i in new.tolist():
                out.append(
                    self._signal(
                        env, i, now_ns, SignalState.FIRING, int(age[i]), None, int(self.after[i])
                    )
                )
            return out
        n_groups = len(self.group_names)
        m = np.flatnonzero(self.mask)
        group_seen = np.full(n_groups, NEVER, np.int64)
        np.maximum.at(group_seen, self.group[m], seen[m])
        group_after = np.zeros(n_groups, np.int64)
        np.maximum.at(group_after, self.group[m], self.after[m])
        watched = np.zeros(n_groups, bool)
        watched[self.group[m]] = True
        silent = watched & (now_ns - group_seen >= group_after) & (group_seen != NEVER)
        for g in np.flatnonzero(silent & ~self.group_fired).tolist():
            self.group_since[g] = group_seen[g]
            out.append(
                self._signal(
                    env,
                    -1,
                    now_ns,
                    SignalState.FIRING,
                    int(now_ns - group_seen[g]),
                    self.group_names[g],
                    int(group_after[g]),
                )
            )
        self.group_fired |= silent
        return out

    def on_batch(self, env: RuleEnv, batch: Batch, now_ns: int) -> list[Signal]:
        """Resolve the fired sensors (groups) that reported again, at their first reading."""
        out: list[Signal] = []
        if self.nd.per == "sensor":
            if not self.fired.any():
                return out
            hit = self.fired[batch.sensor]
            if self.nd.clock == "event":  # a reading older than the limit is no news
                hit &= (now_ns - batch.time) < self.after[batch.sensor]
            if not hit.any():
                return out
            idx = np.flatnonzero(hit)
            sens, first = np.unique(batch.sensor[idx], return_index=True)
            back = self._data_time(batch)
            for sid, i in zip(sens.tolist(), idx[first].tolist(), strict=True):
                self.fired[sid] = False
                out.append(
                    self._signal(
                        env,
                        sid,
                        int(batch.time[i]),
                        SignalState.RESOLVED,
                        _gap(int(back[i]), int(self.since[sid])),
                        None,
                        int(self.after[sid]),
                    )
                )
            return out
        if not self.group_fired.any():
            return out
        ok = self.mask[batch.sensor]
        g = self.group[batch.sensor]
        hit = ok & self.group_fired[g]
        if not hit.any():
            return out
        idx = np.flatnonzero(hit)
        groups, first = np.unique(g[idx], return_index=True)
        back = self._data_time(batch)
        for gi, i in zip(groups.tolist(), idx[first].tolist(), strict=True):
            self.group_fired[gi] = False
            gap = _gap(int(back[i]), int(self.group_since[gi]))
            out.append(
                self._signal(
                    env, -1, int(batch.time[i]), SignalState.RESOLVED, gap, self.group_names[gi], 0
                )
            )
        return out

    def _data_time(self, batch: Batch) -> np.ndarray:
        """When each reading's data came, on the rule's clock."""
        return batch.received if self.nd.clock == "arrival" else batch.time

    def active(self, env: RuleEnv) -> list[ActiveAlert]:
        name, firing = self.spec.name, SignalState.FIRING
        if self.nd.per == "sensor":
            key = env.registry.key
            return [
                ActiveAlert(name, int(i), key(int(i)), firing, self.level)
                for i in np.flatnonzero(self.fired)
            ]
        return [
            ActiveAlert(
                name, -1, self.group_names[int(g)], firing, self.level, self.group_names[int(g)]
            )
            for g in np.flatnonzero(self.group_fired)
        ]

    def firing_level(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        if rule_name != self.spec.name:
            return None
        out = np.zeros(n_sensors, np.uint8)
        if self.fired.shape[0] == n_sensors:
            out[self.fired] = int(self.spec.out_level)
        return out

    def sensors_of(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        return self.mask.copy() if rule_name == self.spec.name else None

    def export_state(self) -> dict[str, object]:
        return {
            self.spec.name: NoDataState(
                self.fired, self.group_names, self.group_fired, self.since, self.group_since
            )
        }

    def import_state(self, states: Mapping[str, object]) -> None:
        old = states.get(self.spec.name)
        if old is None:
            return
        assert isinstance(old, NoDataState)
        n = min(len(old.fired), len(self.fired))
        self.fired[:n] = old.fired[:n]
        if old.since is not None:
            m = min(len(old.since), len(self.since))
            self.since[:m] = old.since[:m]
        by_group = dict(zip(old.group_names, old.group_fired.tolist(), strict=False))
        self.group_fired = np.array([by_group.get(g, False) for g in self.group_names], bool)
        if old.group_since is not None:
            since = dict(zip(old.group_names, old.group_since.tolist(), strict=False))
            self.group_since = np.array([since.get(g, NEVER) for g in self.group_names], np.int64)

    def adopt_state(self, states: Mapping[str, object]) -> None:
        """A changed no-data rule keeps the silence alarms of the sensors (groups) it still
        watches: they resolve on the next reading, as before."""
        self.import_state(states)
        if self.nd.per == "sensor":
            self.fired &= self.mask
        else:
            self.fired[:] = False  # per group: the sensor flags are not this rule's
            watched = np.zeros(len(self.group_names), bool)
            watched[self.group[self.mask]] = True
            self.group_fired &= watched

    def dump_state(self) -> StateTree:
        """Which sensors (per sensor id) and groups (by name) have fired, and since when
        their data was missing (for the resolution's "data again after")."""
        return {
            "v": 2,
            "fired": self.fired.copy(),
            "since": self.since.copy(),
            "groups": list(self.group_names),
            "group_fired": self.group_fired.copy(),
            "group_since": self.group_since.copy(),
        }

    def load_state(
        self, tree: StateTree, sensors: SensorMap, keep: set[str], changed: set[str]
    ) -> Restored:
        if self.spec.name not in keep | changed:
            return Restored()
        n = len(self.fired)
        fired, since = tree.get("fired"), tree.get("since")
        if isinstance(fired, np.ndarray) and fired.dtype == bool:
            self.fired = sensors.scatter(fired, False, n) & self.mask
        if isinstance(since, np.ndarray) and since.dtype == np.int64:
            self.since = sensors.scatter(since, NEVER, n)
        names, g_fired, g_since = (
            tree.get("groups"),
            tree.get("group_fired"),
            tree.get("group_since"),
        )
        if (
            isinstance(names, list)
            and isinstance(g_fired, np.ndarray)
            and len(g_fired) == len(names)
        ):
            by_name = dict(zip(names, g_fired.tolist(), strict=True))
            self.group_fired = np.array([by_name.get(g, False) for g in self.group_names], bool)
            if isinstance(g_since, np.ndarray) and len(g_since) == len(names):
                at = dict(zip(names, g_since.tolist(), strict=True))
                self.group_since = np.array([at.get(g, NEVER) for g in self.group_names], np.int64)
        elif isinstance(tree.get("fired_groups"), list):  # the first layout: names only
            old = set(tree["fired_groups"])
            self.group_fired = np.array([g in old for g in self.group_names], bool)
        if self.spec.name in changed and self.nd.per != "sensor":  # as adopt_state does
            watched = np.zeros(len(self.group_names), bool)
            watched[self.group[self.mask]] = True
            self.group_fired &= watched
        return Restored({"no-data fired": int(self.fired.sum()) + int(self.group_fired.sum())})


def _gap(back_ns: int, since_ns: int) -> int:
    """How long data was missing: from the last data before the silence to the reading
    that ended it (0 when the start is unknown, e.g. state from an older version)."""
    return max(0, back_ns - since_ns) if since_ns != NEVER else 0
