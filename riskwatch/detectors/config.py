"""Detector config files: which detectors watch which sensors, how they combine, and at
which level they alert. Parsed strictly (errors carry file:line:col and key path).

.. code-block:: yaml

    detectors:
      - name: ch4_background          # the Signal's rule name
        match: {kind: ch4}            # registry columns; {} = every sensor
        level: blue                   # blue unless configured otherwise
        threshold: 0.5                # on the combined score
        hold: 1h                      # a window closes 1 h after its last hot reading
        min_history: 300              # no window before a sensor's 300th reading
        clear_below: 0.3              # ... or after its last reading scoring 0.3 or more
        repeats: {floor: 0.3, hold: 3h}  # decision score: weak episodes count once
        members:
          level: {type: robust, alpha: 0.02}
          drift: {type: page_hinkley, delta: 0.25, lam: 25}
        combine: {any: [level, drift]}

Durations (``hold``, ``repeats.hold``) are parsed at load into
:class:`~riskwatch.durations.Duration`: nanoseconds that keep the file's spelling for
messages.

>>> spec = load_detector_text(
...     "detectors: [{name: d, hold: 90m, members: {z: {type: robust, alpha: 0.1}}}]",
...     file="d.yaml")
>>> entry = spec.detectors[0]
>>> entry.build().members["z"].alpha, int(entry.hold) // 10**9, str(entry.hold)
(0.1, 5400, '90m')
>>> try:
...     load_detector_text("detectors: [{name: d, members: {z: {type: robust, alpha: 2}}}]",
...                        file="d.yaml")
... except ConfigErrors as e:
...     print(e)
d.yaml:1:58: detectors[0].members.z.alpha: must be in (0, 1], got 2
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskwatch.config.schema import parse
from riskwatch.config.yamldoc import KeyPath, YamlDoc
from riskwatch.detectors.base import Detector, HyperParameterError
from riskwatch.detectors.ensemble import Ensemble
from riskwatch.detectors.expression import OPERATORS, Combine
from riskwatch.detectors.registry import DETECTORS
from riskwatch.durations import Duration
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import Level

__all__ = [
    "DetectorFile",
    "DetectorSpec",
    "Repeats",
    "build_member",
    "load_detector_file",
    "load_detector_text",
]


_ONE_HOUR = Duration.parse("1h")  # the default hold of windows and quiet episodes


def _unit(v: float) -> str | None:
    return None if 0.0 < v <= 1.0 else f"must be in (0, 1], got {v}"


@dataclass(frozen=True)
class Repeats:
    """Repeat suppression of the decision score below the alert threshold: a reading at
    or above ``floor`` opens a quiet episode that lasts until ``hold`` passes without
    another one; its later sub-threshold readings score 0 in the decision (see
    :mod:`.decision`). Alerts are unchanged; ranking at any cut-off is what changes."""

    floor: float = field(metadata={"check": _unit})
    hold: Duration = _ONE_HOUR


@dataclass(frozen=True)
class DetectorSpec:
    """One detector entry: selector, members, combine expression, decision, level."""

    name: str
    members: dict[str, dict[str, Any]]
    match: dict[str, Any] = field(default_factory=dict)
    exclude: dict[str, Any] = field(default_factory=dict)
    combine: Any = None
    threshold: float = field(default=0.5, metadata={"check": _unit})
    hold: Duration = _ONE_HOUR
    calibrate: float = field(
        default=0.0,
        metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"},
    )
    calibrate_prior: float = field(
        default=10.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"}
    )
    repeats: Repeats | None = None
    min_history: int = field(
        default=0, metadata={"check": lambda v: None if v >= 0 else f"must be >= 0, got {v}"}
    )
    clear_below: float | None = field(default=None, metadata={"check": _unit})
    clear_after: int = field(
        default=0, metadata={"check": lambda v: None if v >= 0 else f"must be >= 0, got {v}"}
    )
    level: Level = Level.BLUE
    enabled: bool = True
    description: str = ""

    def build(self, jit: bool | None = None) -> Ensemble:
        """A fresh :class:`Ensemble` (state empty) for this spec (``jit``: see
        :class:`Ensemble`)."""
        members = {k: build_member(v) for k, v in self.members.items()}
        return Ensemble(
            members,
            _combine(self.combine),
            threshold=self.threshold,
            hold_ns=int(self.hold),
            calibrate_alpha=self.calibrate,
            calibrate_prior=self.calibrate_prior,
            repeat_floor=None if self.repeats is None else self.repeats.floor,
            repeat_hold_ns=int(self.repeats.hold) if self.repeats else 0,
            min_history=self.min_history,
            clear_below=self.clear_below,
            clear_after=self.clear_after,
            jit=jit,
        )

    def fingerprint(self) -> str:
        return repr(
            (self.members, self.combine, self.threshold, self.hold, self.calibrate,
             self.calibrate_prior, self.repeats, self.min_history, self.clear_below,
             self.clear_after)
        )  # fmt: skip


@dataclass(frozen=True)
class DetectorFile:
    detectors: list[DetectorSpec] = field(default_factory=list)
    file: str = ""


def build_member(params: dict[str, Any]) -> Detector:
    """Construct a detector from ``{type: NAME, **hyper_parameters}``."""
    p = dict(params)
    cls = DETECTORS[p.pop("type")]
    return cls(**p)


def _combine(raw: Any) -> Combine | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    ((op, args),) = raw.items()
    return (op, [_combine(a) for a in args])  # type: ignore[return-value]


def _check_combine(raw: Any, doc: YamlDoc, path: KeyPath, members: dict[str, Any]) -> list:
    if isinstance(raw, str):
        if raw not in members:
            return [doc.error(path, f"unknown member {raw!r} (have: {', '.join(members)})")]
        return []
    if not (isinstance(raw, dict) and len(raw) == 1):
        return [
            doc.error(
                path, "expected a member name or {any: [...]} / {all: [...]} / {pooled: [...]}"
            )
        ]
    ((op, args),) = raw.items()
    if op not in OPERATORS:
        return [doc.error((*path, op), "must be 'any', 'all' or 'pooled'", at_key=True)]
    if not isinstance(args, list) or not args:
        return [doc.error((*path, op), "expected a non-empty list")]
    out = []
    for i, a in enumerate(args):
        out += _check_combine(a, doc, (*path, op, i), members)
    return out


def _check_member(raw: Any, doc: YamlDoc, path: KeyPath) -> list[ConfigError]:
    if not isinstance(raw, dict):
        return [doc.error(path, "expected a mapping with 'type' and hyper-parameters")]
    typ = raw.get("type")
    if typ not in DETECTORS:
        where = (*path, "type") if "type" in raw else path
        return [doc.error(where, f"unknown detector type {typ!r} (have: {', '.join(DETECTORS)})")]
    cls = DETECTORS[typ]
    sig = inspect.signature(cls.__init__)
    known = [k for k in sig.parameters if k != "self"]
    errs = [
        doc.error((*path, k), f"unknown key (known: type, {', '.join(known)})", at_key=True)
        for k in raw
        if k != "type" and k not in known
    ]
    if errs:
        return errs
    try:
        build_member(raw)
    except HyperParameterError as exc:
        return [doc.error((*path, exc.param), exc.message)]
    except (TypeError, ValueError) as exc:
        return [doc.error(path, str(exc))]
    return []


def _load(doc: YamlDoc) -> DetectorFile:
    f = parse(DetectorFile, doc)
    errors: list[ConfigError] = []
    seen: set[str] = set()
    for i, spec in enumerate(f.detectors):
        base: KeyPath = ("detectors", i)
        if spec.name in seen:
            errors.append(doc.error((*base, "name"), f"duplicate detector name {spec.name!r}"))
        seen.add(spec.name)
        if not spec.members:
            errors.append(doc.error((*base, "members"), "needs at least one member"))
        for k, v in spec.members.items():
            errors += _check_member(v, doc, (*base, "members", k))
        if spec.combine is not None:
            errors += _check_combine(spec.combine, doc, (*base, "combine"), spec.members)
        if spec.clear_below is not None and spec.clear_below > spec.threshold:
            errors.append(
                doc.error(
                    (*base, "clear_below"),
                    f"must be at most the threshold ({spec.threshold}), got {spec.clear_below}",
                )
            )
        if spec.repeats is not None and spec.repeats.floor >= spec.threshold:
            errors.append(
                doc.error(
                    (*base, "repeats", "floor"),
                    f"must be below the threshold ({spec.threshold}), got {spec.repeats.floor}",
                )
            )
    ConfigErrors.raise_if(errors)
    return DetectorFile(f.detectors, doc.file)


def load_detector_text(text: str, file: str = "<string>") -> DetectorFile:
    """Parse detector YAML text; raises :class:`ConfigErrors` naming file, line and key."""
    return _load(YamlDoc.from_text(text, file=file))


def load_detector_file(path: str | Path) -> DetectorFile:
    """Parse one detector YAML file."""
    return _load(YamlDoc.from_path(path))
