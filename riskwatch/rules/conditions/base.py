"""The condition protocol, and the base of the per-reading condition kinds.

A :class:`~riskwatch.rules.evaluator.RuleSet` is a sequence of :class:`Condition` s, run
in :class:`Phase` order on every batch and every tick; each returns the signals (state
changes) it caused and can hand its state to its successor on a reload:

- all *per-reading* rules together (:class:`~riskwatch.rules.readings.ReadingRules`):
  every reading is an evaluation; their (rule, sensor) state lives in the shared slot
  arrays and goes through one level pass per batch;
- each no-data rule (per-sensor / per-group silence timers) and each compound rule
  (per-group conditions over other rules' states), with their own state.

A per-reading kind is a :class:`ReadingCondition` subclass: its parameters (written
into the slot table, or into its own :class:`~riskwatch.rules.slots.SlotColumns`), how
its compared quantity is computed over its rows, which readings it skips, and its
message texts. An instance is one compiled rule of that kind; the class-level methods
work on all rows of the kind at once.

Adding a condition kind: a member of :class:`~riskwatch.rules.kinds.ConditionKind`, one
module here (a :class:`ReadingCondition` subclass, or a class with the
:class:`Condition` methods) and its line in the registry,
:data:`riskwatch.rules.conditions.CONDITIONS`, plus the YAML key that selects it
(:class:`~riskwatch.rules.parse.RuleSpec`). Nothing else names a kind: the rule set
finds its class in the registry. ``tests/unit/rules/test_rules_registry.py`` then checks
it like every other kind (its ``sample`` rule must parse, raise, resolve and survive a
reload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import PROCESS_SKIP, Batch, Flags, Level, Signal, SignalState
from riskwatch.rules.kinds import ConditionKind
from riskwatch.rules.levels import LEVELS
from riskwatch.rules.parse import RuleSpec
from riskwatch.rules.segments import run_ends, shift_in_segments
from riskwatch.rules.sensor_memory import Needs, SensorMemory
from riskwatch.rules.slots import SlotTable
from riskwatch.state.tree import Restored, SensorMap, StateTree

if TYPE_CHECKING:
    from riskwatch.rules.calendars import Calendar

__all__ = [
    "ActiveAlert",
    "CompileContext",
    "Condition",
    "Phase",
    "ReadingCondition",
    "Rows",
    "RuleEnv",
    "previous_reading",
]

SelectCache = dict[str, tuple[np.ndarray, np.ndarray]]


class Phase(IntEnum):
    """When a condition runs within a batch or tick (conditions of one phase in rule order)."""

    READINGS = 0  # on each reading
    SILENCE = 1  # on the absence of readings
    DERIVED = 2  # on other rules' states and sensors' last values: after those rules


class ActiveAlert(NamedTuple):
    """A pending or firing subject of a rule (``sensor`` is -1 for a group of its own).
    ``group`` names the group of a per-group subject (its signals carry it), else None."""

    rule: str
    sensor: int
    subject: str  # the sensor key, or the group's name
    state: SignalState
    level: Level
    group: str | None = None


class RuleEnv(Protocol):
    """What a condition may see of its rule set."""

    @property
    def registry(self) -> SensorRegistry: ...

    @property
    def select_cache(self) -> SelectCache:
        """Distinct values of the registry's text columns (this registry generation)."""
        ...

    @property
    def sensors(self) -> SensorMemory: ...

    def firing_level(self, rule_name: str) -> np.ndarray:
        """Per sensor id: most severe firing level (1..4) of a rule, 0 if not firing."""
        ...

    def sensors_of(self, rule_name: str) -> np.ndarray:
        """Mask over sensor ids: the sensors a rule watches."""
        ...


class Condition(Protocol):
    """A member of a rule set: turns batches and ticks into signals, and owns state."""

    phase: ClassVar[Phase]
    needs: ClassVar[Needs]  # what it reads from the rule set's SensorMemory

    def rule_names(self) -> list[str]: ...

    def rebuild(self, env: RuleEnv) -> None:
        """(Re)compile against the registry's current sensors, keeping state."""
        ...

    def on_batch(self, env: RuleEnv, batch: Batch, now_ns: int) -> list[Signal]:
        """The signals a time-sorted batch causes, in time order."""
        ...

    def on_tick(self, env: RuleEnv, now_ns: int) -> list[Signal]:
        """The signals timers cause at ``now_ns`` without data."""
        ...

    def active(self, env: RuleEnv) -> list[ActiveAlert]: ...

    def firing_level(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        """Per sensor: firing level of a rule of this member, or None if not one of its."""
        ...

    def sensors_of(self, rule_name: str, n_sensors: int) -> np.ndarray | None:
        """Mask of the sensors a rule of this member watches, or None if not one of its."""
        ...

    def export_state(self) -> dict[str, object]:
        """State by rule name (handed to the next rule set's members on a reload)."""
        ...

    def import_state(self, states: Mapping[str, object]) -> None:
        """Take over the states of its rules that ``states`` names (unchanged rules)."""
        ...

    def dump_state(self) -> StateTree:
        """A copy of its state for a snapshot: per-sensor arrays by sensor id, groups by
        name (the rule set adds the sensor table and each rule's fingerprint)."""
        ...

    def load_state(
        self, tree: StateTree, sensors: SensorMap, keep: set[str], changed: set[str]
    ) -> Restored:
        """Take over a snapshot's state of its rules named in ``keep`` (same name and
        definition), and what was active of those in ``changed`` (same name, another
        definition: as :meth:`adopt_state` does on a reload, so their alerts resolve on
        the next evaluation if the new condition does not hold), for the sensors that
        still exist (``sensors`` maps the snapshot's ids to today's); what does not match
        is dropped and said, never raised."""
        ...

    def adopt_state(self, states: Mapping[str, object]) -> None:
        """Take over what is active of its *changed* rules that ``states`` names (their
        predecessors' exported state): each subject the old rule had firing or pending,
        and the new one still watches, starts latched (firing) or pending, so the next
        evaluation resolves it if the new condition does not hold, and keeps it if it
        does. Nothing is raised here; timers (``for``, ``keep_firing_for``) start anew."""
        ...

    def nbytes(self) -> tuple[int, int]:
        """Bytes of (state, parameters)."""
        ...


@dataclass(frozen=True)
class CompileContext:
    """What compiling one rule needs besides its spec."""

    file: str = ""
    calendars: Mapping[str, Calendar] = field(default_factory=dict)


@dataclass(slots=True)
class Rows:
    """One kind's rows (reading x slot) of one rank table, grouped by slot, in time order."""

    slot: np.ndarray  # intp
    reading: np.ndarray | None  # the reading of each row; None: row i is reading i
    flags: np.ndarray | None  # the readings' flags; None when the batch has none set
    time: np.ndarray
    value: np.ndarray
    first: np.ndarray | None  # True at a slot's first row; None: every row is its own slot
    all_first: bool


def previous_reading(rows: Rows, slots: SlotTable) -> tuple[np.ndarray, np.ndarray]:
    """Time and value of each row's previous reading of its slot (``NEVER`` / NaN for
    none); the slots' last reading then becomes their last row's."""
    slot, t, v = rows.slot, rows.time, rows.value
    if rows.all_first:
        prev_t, prev_v = slots.last_time.take(slot), slots.last_value.take(slot)
        slots.last_time[slot] = t
        slots.last_value[slot] = v
        return prev_t, prev_v
    assert rows.first is not None
    prev_t = shift_in_segments(t, rows.first, slots.last_time.take(slot))
    prev_v = shift_in_segments(v, rows.first, slots.last_value.take(slot))
    last = np.flatnonzero(run_ends(rows.first))
    slots.last_time[slot[last]] = t[last]
    slots.last_value[slot[last]] = v[last]
    return prev_t, prev_v


C = TypeVar("C")


class ReadingCondition(Generic[C]):
    """A compiled per-reading rule; the class is its condition kind.

    ``C`` is the kind's own per-slot columns (``None`` for kinds without any).
    """

    kind: ClassVar[ConditionKind]
    #: readings with any of these flags never reach the kind (health kinds still see
    #: readings a gateway flagged faulty)
    skip_flags: ClassVar[int] = int(PROCESS_SKIP)
    #: the kind's quantity is the reading alone (pure), so out-of-order, clock-skewed and
    #: conflicting readings go through the raise-only pass (riskwatch.rules.raise_only)
    raise_only: ClassVar[bool] = False
    #: readings kept out of the raise-only pass too
    raise_only_never: ClassVar[int] = int(Flags.CALIBRATING | Flags.FAULT)
    #: a triggered colour waiting for `for` is reported as pending
    pends: ClassVar[bool] = True
    #: a resolved signal quotes the clear value (else the trigger)
    resolved_shows_clear: ClassVar[bool] = True
    #: the signal's value is the compared quantity (else the reading's value)
    shows_quantity: ClassVar[bool] = False
    #: a commented sample rule (``riskwatch`` docs and the registry's conformance test)
    sample: ClassVar[str] = ""

    def __init__(self, spec: RuleSpec, ctx: CompileContext) -> None:
        self.spec = spec
        self.file = ctx.file
        self.index = -1  # position among the rule set's per-reading rules (set there)
        self.calendar_in: list[Calendar] = []
        self.calendar_out: list[Calendar] = []
        if spec.calendar is not None:
            self.calendar_in = [ctx.calendars[n] for n in spec.calendar.inside]
            self.calendar_out = [ctx.calendars[n] for n in spec.calendar.outside]
        self.labels = self.column_labels()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def own_message(self) -> str | None:
        return self.spec.message

    @property
    def has_calendar(self) -> bool:
        return bool(self.calendar_in or self.calendar_out)

    def column_labels(self) -> dict[int, str]:
        """Label per colour column, for a rule's own ``message:`` (``{label}``)."""
        return {int(self.spec.out_level) - 1: self.spec.kind.replace("_", " ")}

    def label(self, column: int) -> str:
        return self.labels.get(column, LEVELS[column].colour)

    @classmethod
    def new_columns(cls, n_slots: int, kind_slots: np.ndarray) -> C | None:
        """The kind's own per-slot columns for a table of ``n_slots`` (None: it has none)."""
        return None

    def fill(
        self,
        slots: SlotTable,
        sel: np.ndarray,
        ids: np.ndarray,
        registry: SensorRegistry,
        columns: C,
    ) -> None:
        """Write the rule's parameters into its slots ``sel`` (for sensors ``ids``)."""
        raise NotImplementedError

    @classmethod
    def quantity(cls, rows: Rows, slots: SlotTable, columns: C) -> tuple[np.ndarray, np.ndarray]:
        """The compared quantity ``x`` per row, and the time a ``for`` run starting at the
        row counts from (usually the row's own time). May advance the kind's state."""
        raise NotImplementedError

    @classmethod
    def shown_threshold(
        cls, slots: SlotTable, columns: C, slot: np.ndarray, value: np.ndarray
    ) -> np.ndarray | None:
        """The threshold a signal quotes, if not the colour's trigger or clear value."""
        return None

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        """The built-in message body (see :mod:`~riskwatch.rules.messages`)."""
        raise NotImplementedError
