"""Rule files (YAML) parsed strictly into frozen dataclasses.

A rule file holds ``rules:`` (a list of :class:`RuleSpec`) and optional ``calendars:``
(named :class:`CalendarSpec`). Every error names ``file:line:col: key.path``; all errors
of a file are reported in one pass (:func:`riskwatch.config.schema.parse`).

Durations (``for``, ``keep_firing_for``, ``per``, ``window``, ``frozen.for``,
``calibration.max``, ``no_data.after`` / ``default``) are parsed here, at load, into
:class:`~riskwatch.durations.Duration` s: integer nanoseconds that remember how they were
written, so messages quote the rule's own spelling. A bad duration is reported with its
file, line and key like any other error.

Numbers a rule compares against are either literals or references to the sensor
catalogue's per-point setpoints, optionally scaled and capped by a regulatory bound::

    above: 1.0                                   # literal
    above: catalog.alarm                         # the point's own setpoint
    above: 1.1 * catalog.red                     # scaled setpoint
    above: {setpoint: alarm, default: 1.0, cap: 1.0}   # missing -> default; never looser than cap

>>> f = load_rules_text('''
... rules:
...   - name: ch4_alarm
...     match: {kind: ch4}
...     levels:
...       - {level: orange, above: catalog.alarm, clear_below: catalog.restore}
... ''')
>>> r = f.rules[0]
>>> r.name, r.kind, r.condition, r.all_levels()[0].level.colour
('ch4_alarm', 'threshold', <ConditionKind.VALUE: 0>, 'orange')
>>> as_setpoint("1.1 * catalog.red")
Setpoint(setpoint='red', value=None, factor=1.1, default=None, cap=None)
>>> f = load_rules_text('''
... rules:
...   - {name: slow, match: {kind: t}, level: red, above: 30, for: 1h30m}
...   - {name: quiet, match: {kind: t}, no_data: {after: 3 * catalog.period_s}}
... ''')
>>> d = f.rules[0].for_
>>> int(d) // 10**9, str(d)
(5400, '1h30m')
>>> f.rules[1].no_data.limit, int(f.rules[1].no_data.default) // 10**9
(Setpoint(setpoint='period_s', value=None, factor=3.0, default=None, cap=None), 90)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from riskwatch.config.schema import parse
from riskwatch.config.yamldoc import YamlDoc
from riskwatch.durations import Duration, parse_duration
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import Level
from riskwatch.rules.kinds import ConditionKind

__all__ = [
    "CalendarSpec",
    "CalendarUse",
    "CalibrationSpec",
    "CompoundSpec",
    "CompoundTerm",
    "CountSpec",
    "FixedWindow",
    "FrozenSpec",
    "LevelSpec",
    "NoDataSpec",
    "RangeSpec",
    "RuleFile",
    "RuleSpec",
    "Setpoint",
    "as_setpoint",
    "load_rules",
    "load_rules_text",
]

_SP = re.compile(
    r"^\s*(?:(?P<f1>[0-9.]+)\s*\*\s*)?catalog\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s*\*\s*(?P<f2>[0-9.]+))?\s*$"
)


@dataclass(frozen=True)
class Setpoint:
    """A number taken from the catalogue (``setpoint``) or given (``value``).

    ``factor`` scales it, ``default`` replaces a missing catalogue value and ``cap`` is
    the regulatory bound: the effective trigger is never looser than ``cap`` (for an
    ``above`` trigger ``min(value, cap)``, for ``below`` ``max(value, cap)``).
    """

    setpoint: str | None = None
    value: float | None = None
    factor: float = 1.0
    default: float | None = None
    cap: float | None = None

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if (self.setpoint is None) == (self.value is None):
            return [((), "give exactly one of setpoint or value")]
        return []


NumberSpec = float | str | Setpoint


def as_setpoint(v: NumberSpec | None) -> Setpoint | None:
    """Normalise a number spec (number, ``"k * catalog.NAME"`` or mapping)."""
    if v is None or isinstance(v, Setpoint):
        return v
    if isinstance(v, (int, float)):
        return Setpoint(value=float(v))
    m = _SP.match(v)
    if m is None:
        try:
            return Setpoint(value=float(v))
        except ValueError:
            raise ValueError(
                f"expected a number, 'catalog.NAME' or 'K * catalog.NAME', got {v!r}"
            ) from None
    f = m.group("f1") or m.group("f2")
    return Setpoint(setpoint=m.group("name"), factor=float(f) if f else 1.0)


def _check_numbers(obj: Any, names: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, str):
            try:
                as_setpoint(v)
            except ValueError as exc:
                out.append(((n,), str(exc)))
    return out


@dataclass(frozen=True)
class LevelSpec:
    """One level of a threshold rule: trigger, clear value (hysteresis) and timing.

    ``above`` triggers on ``x >= above`` (``x > above`` when ``strict``) and the level
    clears only on ``x < clear_below`` (default: the trigger). ``below`` mirrors it.
    """

    level: Level
    above: NumberSpec | None = None
    below: NumberSpec | None = None
    clear_below: NumberSpec | None = None
    clear_above: NumberSpec | None = None
    strict: bool = False
    label: str = ""
    for_: Duration | None = field(default=None, metadata={"yaml": "for"})
    keep_firing_for: Duration | None = None

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        out = _check_numbers(self, ("above", "below", "clear_below", "clear_above"))
        if (self.above is None) == (self.below is None):
            out.append(((), "give exactly one of above or below"))
        if self.above is not None and self.clear_above is not None:
            out.append((("clear_above",), "an 'above' trigger clears with clear_below"))
        if self.below is not None and self.clear_below is not None:
            out.append((("clear_below",), "a 'below' trigger clears with clear_above"))
        return out

    @property
    def direction(self) -> int:
        return 1 if self.above is not None else -1

    @property
    def trigger(self) -> Setpoint:
        sp = as_setpoint(self.above if self.above is not None else self.below)
        assert sp is not None
        return sp

    @property
    def clear(self) -> Setpoint | None:
        return as_setpoint(self.clear_below if self.above is not None else self.clear_above)


@dataclass(frozen=True)
class CountSpec:
    """N of the last M readings must meet the trigger (M <= 64)."""

    n: int = field(metadata={"check": lambda v: None if v >= 1 else "must be >= 1"})
    m: int = field(metadata={"check": lambda v: None if 1 <= v <= 64 else "must be within 1..64"})

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        return [(("n",), f"n ({self.n}) must be <= m ({self.m})")] if self.n > self.m else []


@dataclass(frozen=True)
class NoDataSpec:
    """No reading for ``after``: a duration, or ``k * catalog.NAME`` (seconds per sensor,
    ``default`` where the catalogue has none). :attr:`limit` is ``after`` parsed."""

    after: Duration | str = "3 * catalog.period_s"  # as written (text: a catalogue number)
    default: Duration = field(default=Duration.parse("90s"))
    clock: Literal["arrival", "event"] = "arrival"
    per: Literal["sensor", "site", "gateway"] = "sensor"
    never_reported: bool = True
    #: ``after`` as a duration, or the catalogue number (seconds) it refers to
    limit: Duration | Setpoint = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        limit: Duration | Setpoint = Setpoint()  # invalid text: validate() reports it
        if isinstance(self.after, Duration):
            limit = self.after
        elif "catalog." in self.after:
            try:
                limit = as_setpoint(self.after) or limit
            except ValueError:
                pass
        object.__setattr__(self, "limit", limit)

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if isinstance(self.after, Duration):
            return []
        if "catalog." in self.after:
            return _check_numbers(self, ("after",))
        try:  # neither a duration nor a catalogue number: say what a duration looks like
            parse_duration(self.after)
        except ValueError as exc:
            return [(("after",), str(exc))]
        return []


@dataclass(frozen=True)
class FrozenSpec:
    """The same value (``|change| <= tolerance``) on every reading for longer than ``for``."""

    for_: Duration = field(default=Duration.parse("4h"), metadata={"yaml": "for"})
    tolerance: float = field(default=0.0, metadata={"check": lambda v: None if v >= 0 else "< 0"})


@dataclass(frozen=True)
class RangeSpec:
    """Outside the measuring range (defaults: the catalogue's range_low/range_high)."""

    low: NumberSpec = "catalog.range_low"
    high: NumberSpec = "catalog.range_high"
    for_: Duration | None = field(default=None, metadata={"yaml": "for"})

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        return _check_numbers(self, ("low", "high"))


@dataclass(frozen=True)
class CalibrationSpec:
    """A sensor flagged ``calibrating`` continuously for longer than ``max``."""

    max: Duration = field(default=Duration.parse("2h"))


@dataclass(frozen=True)
class CompoundTerm:
    """One input of a compound rule: another rule's state, or a sensor's last value."""

    rule: str | None = None
    level: Level | None = None
    match: dict[str, Any] = field(default_factory=dict)
    above: float | None = None
    below: float | None = None

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if (self.rule is None) == (not self.match):
            return [((), "give either rule (another rule's state) or match + above/below")]
        if self.match and (self.above is None) == (self.below is None):
            return [((), "a sensor term needs exactly one of above or below")]
        return []


@dataclass(frozen=True)
class CompoundSpec:
    """all / any / at_least N over terms, evaluated per group of sensors.

    ``by`` lists the catalogue columns that form a group (default enterprise + site);
    ``link`` names a tag whose value replaces the ``sensor`` column for sensors that
    carry it (e.g. a feed sensor's ``controls`` tag naming its methane sensor).
    """

    all: list[CompoundTerm] = field(default_factory=list)
    any: list[CompoundTerm] = field(default_factory=list)
    at_least: int | None = None
    of: list[CompoundTerm] = field(default_factory=list)
    by: list[str] = field(default_factory=lambda: ["enterprise", "site"])
    link: str | None = None

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        given = [bool(self.all), bool(self.any), self.at_least is not None]
        if sum(given) != 1:
            return [((), "give exactly one of all, any or at_least (with of)")]
        if self.at_least is not None and not self.of:
            return [(("of",), "at_least needs 'of' (the terms to count)")]
        if self.at_least is not None and self.at_least < 1:
            return [(("at_least",), "must be >= 1")]
        return []

    @property
    def terms(self) -> list[CompoundTerm]:
        return self.all or self.any or self.of


@dataclass(frozen=True)
class CalendarUse:
    """Where a rule applies: inside any ``inside`` calendar and outside every ``outside`` one."""

    inside: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FixedWindow:
    start: Any  # ISO text, or a YAML timestamp
    end: Any
    enterprise: str | None = None
    site: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class CalendarSpec:
    """A named set of time windows.

    - ``windows``: fixed windows (ISO times; optional per enterprise/site)
    - ``weekly``: ``days`` (mon..sun) and ``from``/``to`` clock times (overnight wraps)
    - ``dates``: whole days (holidays), ``YYYY-MM-DD``
    - ``file``: a CSV (``enterprise,site,start,end,reason``) or YAML list of windows,
      relative to the rule file (e.g. shutdown orders)
    - ``any_of``: union of other calendars
    Local times use ``utc_offset`` (China: +08:00, no daylight saving).
    """

    windows: list[FixedWindow] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    from_: str | None = field(default=None, metadata={"yaml": "from"})
    to: str | None = None
    dates: list[Any] = field(default_factory=list)  # YYYY-MM-DD (text or YAML date)
    file: str | None = None
    any_of: list[str] = field(default_factory=list)
    utc_offset: str = "+08:00"


@dataclass(frozen=True)
class RuleSpec:
    """One rule. Its condition kind is given by which keys are present (see :attr:`kind`)."""

    name: str
    description: str = ""
    match: dict[str, Any] = field(default_factory=dict)
    exclude: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    # threshold family
    levels: list[LevelSpec] = field(default_factory=list)
    level: Level | None = None
    above: NumberSpec | None = None
    below: NumberSpec | None = None
    clear_below: NumberSpec | None = None
    clear_above: NumberSpec | None = None
    strict: bool = False
    label: str = ""
    of: Literal["value", "rate", "change"] = "value"
    per: Duration = field(default=Duration.parse("1s"))
    window: Duration | None = None
    count: CountSpec | None = None
    for_: Duration | None = field(default=None, metadata={"yaml": "for"})
    keep_firing_for: Duration | None = None
    # other kinds
    no_data: NoDataSpec | None = None
    frozen: FrozenSpec | None = None
    out_of_range: RangeSpec | None = None
    calibration: CalibrationSpec | None = None
    compound: CompoundSpec | None = None
    calendar: CalendarUse | None = None
    message: str | None = None

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        out = _check_numbers(self, ("above", "below", "clear_below", "clear_above"))
        kinds = [
            k
            for k in ("no_data", "frozen", "out_of_range", "calibration", "compound")
            if getattr(self, k) is not None
        ]
        has_thr = bool(self.levels) or self.above is not None or self.below is not None
        if has_thr:
            kinds.append("threshold")
        if len(kinds) != 1:
            what = ", ".join(kinds) if kinds else "none"
            out.append(
                (
                    (),
                    "a rule needs exactly one condition: levels/above/below, no_data, frozen, "
                    f"out_of_range, calibration or compound (got {what})",
                )
            )
            return out
        if self.levels and (self.above is not None or self.below is not None):
            out.append((("levels",), "give either levels or a single above/below, not both"))
        if not self.levels and has_thr:
            if (self.above is None) == (self.below is None):
                out.append(((), "give exactly one of above or below"))
            if self.level is None:
                out.append(((), "missing required key 'level'"))
        if self.of == "change" and self.window is None:
            out.append((("window",), "of: change needs a window"))
        if self.of == "change" and has_thr:
            dirs = {lv.direction for lv in self.levels} if self.levels else set()
            if not self.levels:
                dirs = {1 if self.above is not None else -1}
            if len(dirs) > 1:
                out.append(
                    (
                        ("levels",),
                        "of: change compares the rise (above levels) or the fall (below "
                        "levels) within the window, not both: write two rules",
                    )
                )
        if self.of != "change" and self.window is not None:
            out.append((("window",), "window is only used with of: change"))
        if not has_thr:
            for k in ("count", "for_", "keep_firing_for"):
                if getattr(self, k) is not None and k != "for_":
                    out.append(((k,), f"{k} applies to threshold rules only"))
        if kinds[0] != "compound" and not self.match:
            out.append((("match",), "a rule must select sensors with match"))
        return out

    @property
    def kind(self) -> str:
        for k in ("no_data", "frozen", "out_of_range", "calibration", "compound"):
            if getattr(self, k) is not None:
                return k
        return "threshold"

    @property
    def condition(self) -> ConditionKind:
        """The condition kind: :attr:`kind`, or for a threshold rule what it compares (``of``)."""
        kind = self.kind
        return ConditionKind.from_key(self.of if kind == "threshold" else kind)

    def all_levels(self) -> list[LevelSpec]:
        """The levels of a threshold rule, with rule-wide defaults filled in."""
        if self.levels:
            return [
                replace(
                    lv,
                    for_=lv.for_ if lv.for_ is not None else self.for_,
                    keep_firing_for=(
                        lv.keep_firing_for
                        if lv.keep_firing_for is not None
                        else self.keep_firing_for
                    ),
                )
                for lv in self.levels
            ]
        if self.above is None and self.below is None:
            return []
        return [
            LevelSpec(
                level=self.level or Level.ORANGE,
                above=self.above,
                below=self.below,
                clear_below=self.clear_below,
                clear_above=self.clear_above,
                strict=self.strict,
                label=self.label,
                for_=self.for_,
                keep_firing_for=self.keep_firing_for,
            )
        ]

    @property
    def out_level(self) -> Level:
        """Level of a single-level kind (health rules default to yellow)."""
        if self.level is not None:
            return self.level
        if self.kind == "compound":
            return Level.RED
        return Level.YELLOW


@dataclass(frozen=True)
class RuleFile:
    rules: list[RuleSpec] = field(default_factory=list)
    calendars: dict[str, CalendarSpec] = field(default_factory=dict)
    file: str = field(default="", metadata={"yaml": "__file__"})


@dataclass
class LoadedRules:
    """Rules of several files, with where each rule was defined (for lint and logs)."""

    files: list[RuleFile]
    docs: list[YamlDoc]

    @property
    def rules(self) -> list[RuleSpec]:
        return [r for f in self.files for r in f.rules]

    def where(self, rule_name: str) -> tuple[RuleFile, YamlDoc, int] | None:
        for f, d in zip(self.files, self.docs, strict=True):
            for i, r in enumerate(f.rules):
                if r.name == rule_name:
                    return f, d, i
        return None


def _parse_doc(doc: YamlDoc) -> RuleFile:
    data = doc.data
    if isinstance(data, list):  # a bare list of rules is accepted
        data = {"rules": data}
        doc = YamlDoc(data, doc.file, {("rules", *k): v for k, v in doc.marks.items()},
                      {("rules", *k): v for k, v in doc.key_marks.items()})  # fmt: skip
    rf = parse(RuleFile, doc, data=data)
    errors: list[ConfigError] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(rf.rules):
        if r.name in seen:
            errors.append(
                doc.error(
                    ("rules", i, "name"),
                    f"duplicate rule name {r.name!r} (also rules[{seen[r.name]}])",
                )
            )
        seen[r.name] = i
    ConfigErrors.raise_if(errors)
    return replace(rf, file=doc.file)


def load_rules_text(text: str, file: str = "<rules>") -> RuleFile:
    """Parse one rule file's text; raises :class:`ConfigErrors`."""
    return _parse_doc(YamlDoc.from_text(text, file=file))


def load_rules(paths: list[str | Path] | tuple[str | Path, ...]) -> LoadedRules:
    """Parse several rule files; all errors of all files in one :class:`ConfigErrors`.

    Rule names must be unique across the files.
    """
    errors: list[ConfigError] = []
    files: list[RuleFile] = []
    docs: list[YamlDoc] = []
    names: dict[str, str] = {}
    for p in paths:
        try:
            doc = YamlDoc.from_path(p)
            rf = _parse_doc(doc)
        except ConfigErrors as exc:
            errors += exc.errors
            continue
        for i, r in enumerate(rf.rules):
            if r.name in names and names[r.name] != rf.file:
                errors.append(
                    doc.error(
                        ("rules", i, "name"), f"rule {r.name!r} also defined in {names[r.name]}"
                    )
                )
            names[r.name] = rf.file
        files.append(rf)
        docs.append(doc)
    ConfigErrors.raise_if(errors)
    return LoadedRules(files, docs)
