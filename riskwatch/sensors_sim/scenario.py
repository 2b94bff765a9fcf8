"""Scenario files: which plants to simulate and which faults to inject, parsed strictly.

A scenario is YAML parsed with :func:`riskwatch.config.schema.parse`, so every mistake is
reported as ``file:line:col: key.path: message``. Bundled scenarios live in
``riskwatch/config/scenarios/`` and are found by name; a path to any ``.yaml`` file works
too.

>>> sc = load_scenario_text('''
... name: tiny
... seed: 3
... plants:
...   - {type: tailings, enterprise: pond1}
... events:
...   - {type: stuck, at: 10m, duration: 1h, target: {kind: displacement}, count: 1}
... ''')
>>> sc.plants[0].type, sc.events[0].start_s, sc.events[0].duration_s
('tailings', 600.0, 3600.0)
>>> try:
...     load_scenario_text("name: x\\nplants: [{type: volcano, enterprise: e}]\\n", file="x.yaml")
... except ConfigErrors as e:
...     print(str(e).replace(", got", ",\\n  got"))
x.yaml:2:17: plants[0].type: must be one of 'coal_mine', 'hazchem', 'tailings', 'electricity',
  got 'volcano'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from riskwatch.config.schema import parse
from riskwatch.config.yamldoc import YamlDoc
from riskwatch.durations import Duration
from riskwatch.errors import ConfigError, ConfigErrors

__all__ = [
    "EVENT_TYPES",
    "TRANSPORT_EVENTS",
    "EventSpec",
    "PlantSpec",
    "Scenario",
    "bundled_scenarios",
    "load_scenario",
    "load_scenario_text",
    "scenario_path",
]

PlantType = Literal["coal_mine", "hazchem", "tailings", "electricity"]

#: Events that change values (applied by the plant model) ...
VALUE_EVENTS = (
    "ch4_buildup",
    "outburst",
    "gas_leak",
    "tank_overfill",
    "slope_acceleration",
    "shutdown_production",
    "drift",
    "stuck",
    "spike",
    "calibration",
    "feed_failure",
)
#: ... and events that change what reaches the broker (applied by the publisher).
TRANSPORT_EVENTS = (
    "dropout",
    "gateway_dropout",
    "late",
    "out_of_order",
    "duplicate",
    "malformed",
)
EVENT_TYPES = VALUE_EVENTS + TRANSPORT_EVENTS
EventType = Literal[
    "ch4_buildup",
    "outburst",
    "gas_leak",
    "tank_overfill",
    "slope_acceleration",
    "shutdown_production",
    "drift",
    "stuck",
    "spike",
    "calibration",
    "feed_failure",
    "dropout",
    "gateway_dropout",
    "late",
    "out_of_order",
    "duplicate",
    "malformed",
]

@dataclass(frozen=True)
class Target:
    """Sensor selector: every given column must match (a list means any of)."""

    enterprise: str | list[str] | None = None
    site: str | list[str] | None = None
    gateway: str | list[str] | None = None
    sensor: str | list[str] | None = None
    kind: str | list[str] | None = None
    location: str | list[str] | None = None

    def items(self) -> list[tuple[str, list[str]]]:
        out = []
        for k in ("enterprise", "site", "gateway", "sensor", "kind", "location"):
            v = getattr(self, k)
            if v is not None:
                out.append((k, [v] if isinstance(v, str) else list(v)))
        return out


@dataclass(frozen=True)
class EventSpec:
    """One injected fault (or ``repeat`` copies of it, ``every`` apart).

    ``count`` picks that many of the matching sensors (or gateways for
    ``gateway_dropout``) per instance, rotating through them on repeats; without it every
    matching sensor is a target. ``peak`` is the size of the fault in the sensor's unit
    (defaults per event type and kind), ``p`` the share of readings hit (spike,
    malformed), ``delay`` how long late readings are held back.
    """

    type: EventType
    at: Duration = field(default=Duration.parse(0))
    duration: Duration = field(default=Duration.parse("10m"))
    target: Target = field(default_factory=Target)
    count: int | None = field(
        default=None, metadata={"check": lambda v: None if v > 0 else "must be > 0"}
    )
    repeat: int = field(default=1, metadata={"check": lambda v: None if v > 0 else "must be > 0"})
    every: Duration = field(default=Duration.parse("1h"))
    peak: float | None = None
    p: float = field(
        default=0.2, metadata={"check": lambda v: None if 0 < v <= 1 else "must be in (0, 1]"}
    )
    delay: Duration = field(default=Duration.parse("5m"))
    label: str | None = None

    @property
    def start_s(self) -> float:
        return self.at.seconds

    @property
    def duration_s(self) -> float:
        return self.duration.seconds

    @property
    def every_s(self) -> float:
        return self.every.seconds

    @property
    def delay_s(self) -> float:
        return self.delay.seconds


@dataclass(frozen=True)
class PlantSpec:
    """One simulated plant. Sizes default to a small realistic plant; ``scale`` multiplies
    the number of units (faces, tanks, ponds' monitoring sections, enterprises) so one
    scenario file can drive 100k sensors. ``period`` overrides every sensor's reporting
    period (e.g. to speed up 15-min meters in the demo)."""

    type: PlantType
    enterprise: str
    scale: int = field(default=1, metadata={"check": lambda v: None if v > 0 else "must be > 0"})
    period: Duration | None = None
    # coal mine: areas per district (one site and substation/gateway per district);
    # larger districts mean more readings per MQTT message
    group: int = field(default=1, metadata={"check": lambda v: None if v > 0 else "must be > 0"})
    enterprises: list[str] | None = None  # electricity: the metered enterprises
    shutdown_orders: list[ShutdownOrder] = field(default_factory=list)


@dataclass(frozen=True)
class ShutdownOrder:
    """A regulator's shutdown order for ``enterprise`` from ``at`` for ``duration``."""

    enterprise: str
    at: Duration = field(default=Duration.parse(0))
    duration: Duration = field(default=Duration.parse("1d"))
    reason: str = "停产整顿 shutdown order (simulated)"


@dataclass(frozen=True)
class Scenario:
    """A whole scenario file."""

    name: str
    description: str = ""
    seed: int = 1
    start: str | None = None  # RFC 3339; default: now (live) or now - duration (fast replay)
    duration: Duration = field(default=Duration.parse("1h"))
    tick: Duration = field(default=Duration.parse("1s"))
    form: Literal["single", "list", "envelope", "columns"] = "envelope"
    plants: list[PlantSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    source: str | None = field(default=None, metadata={"yaml": "__source__"})

    @property
    def duration_s(self) -> float:
        return self.duration.seconds

    @property
    def tick_s(self) -> float:
        return self.tick.seconds

    def validate(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        if not self.plants:
            out.append((("plants",), "a scenario needs at least one plant"))
        if self.tick_s <= 0:
            out.append((("tick",), "must be > 0"))
        if self.start is not None:
            from datetime import datetime

            try:
                dt = datetime.fromisoformat(self.start)
                if dt.tzinfo is None:
                    out.append((("start",), "needs a UTC offset, e.g. 2026-06-01T08:00:00+08:00"))
            except ValueError:
                out.append((("start",), f"not an RFC 3339 time: {self.start!r}"))
        seen: set[tuple[str, str]] = set()
        for i, p in enumerate(self.plants):
            key = (p.type, p.enterprise)
            if key in seen:
                out.append(
                    (("plants", i, "enterprise"), f"duplicate {p.type} plant {p.enterprise!r}")
                )
            seen.add(key)
        return out


def load_scenario_text(text: str, file: str = "<string>") -> Scenario:
    doc = YamlDoc.from_text(text, file=file)
    sc = parse(Scenario, doc)
    return sc


def _bundled_dir() -> Path:
    return Path(str(resources.files("riskwatch") / "config" / "scenarios"))


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files (sorted by name)."""
    d = _bundled_dir()
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


def scenario_path(name_or_path: str | Path) -> Path:
    """A bundled scenario by name, or a file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    found = bundled_scenarios().get(str(name_or_path))
    if found is None:
        names = ", ".join(bundled_scenarios())
        raise ConfigErrors(
            [ConfigError("", f"no bundled scenario {name_or_path!r} (have: {names})")]
        )
    return found


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a bundled scenario by name or a scenario file; raises ConfigErrors."""
    p = scenario_path(name_or_path)
    doc = YamlDoc.from_path(p)
    sc = parse(Scenario, doc)
    from dataclasses import replace

    return replace(sc, source=str(p))
