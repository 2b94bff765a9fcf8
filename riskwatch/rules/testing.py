"""Rule unit tests in YAML (``riskwatch rules test``), in the spirit of ``promtool test rules``.

A test file names the rule files under test, an inline point table, and test cases. Each
case gives input series in a compact notation and the alerts expected at given times::

    rule_files: [coal_mine.yaml]
    catalog:
      - {enterprise: m1, site: w1, sensor: CH4-T1, kind: ch4, unit: "%", location: working_face}
    tests:
      - name: methane crosses alarm, power-off and restore
        interval: 10s
        series:
          - {sensor: m1/w1/CH4-T1, values: "0.5+0.25x4 1.2 0.9"}
        alerts:
          - at: 30s
            rules: [ch4_face]
            expect: [{rule: ch4_face, sensor: m1/w1/CH4-T1, level: orange, state: firing}]

Series notation: numbers separated by spaces; ``a+bxn`` expands to a, a+b, ..., a+n·b
(``a-bxn`` counts down); ``axn`` repeats a n+1 times; ``_`` is a missing sample and
``_xn`` n missing samples; a trailing ``c`` marks calibrating readings and ``f`` readings
a gateway flagged faulty (``2.0x3c``). The i-th value is at ``start + i·interval``.

At each ``at`` time, every reading up to that time is processed (one batch per step), the
timers tick at that time, and the set of pending/firing alerts of the listed ``rules``
(default: every rule) must equal ``expect`` exactly.

>>> expand_series("0.5+0.25x2 _ 1x1 2c")
[(0.5, 0), (0.75, 0), (1.0, 0), None, (1.0, 0), (1.0, 0), (2.0, 1)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from riskwatch.catalog import SensorRegistry, _parse_rows
from riskwatch.config.schema import parse
from riskwatch.config.yamldoc import YamlDoc
from riskwatch.durations import Duration
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.model import Batch, Flags, Level, SignalState
from riskwatch.rules.calendars import parse_time
from riskwatch.rules.stage import compile_files

__all__ = ["TestFile", "expand_series", "run_test_file"]

_TOKEN = re.compile(
    r"^(?P<a>_|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
    r"(?:(?P<op>[+-])(?P<b>(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?))?"
    r"(?:x(?P<n>\d+))?(?P<flag>[cf]?)$"
)


def expand_series(text: str) -> list[tuple[float, int] | None]:
    """Expand the compact series notation into (value, flags) or None (missing)."""
    out: list[tuple[float, int] | None] = []
    for tok in str(text).split():
        m = _TOKEN.match(tok)
        if not m:
            raise ValueError(f"bad series token {tok!r} (use e.g. 1.5, 0.5+0.1x10, 2x3, _, 1.2c)")
        flag = {"": 0, "c": int(Flags.CALIBRATING), "f": int(Flags.FAULT)}[m.group("flag")]
        n = int(m.group("n")) if m.group("n") is not None else None
        if m.group("a") == "_":
            if m.group("op"):
                raise ValueError(f"bad series token {tok!r}")
            out += [None] * (n if n is not None else 1)
            continue
        a = float(m.group("a"))
        b = float(m.group("b") or 0) * (-1 if m.group("op") == "-" else 1)
        if n is None:
            if m.group("op"):
                raise ValueError(f"bad series token {tok!r}: a+b needs xN")
            out.append((a, flag))
            continue
        out += [(round(a + b * i, 9), flag) for i in range(n + 1)]
    return out


@dataclass(frozen=True)
class SeriesSpec:
    sensor: str
    values: str
    interval: Duration | None = None


@dataclass(frozen=True)
class Expected:
    rule: str
    sensor: str
    level: Level
    state: SignalState = SignalState.FIRING


@dataclass(frozen=True)
class Check:
    at: Duration
    expect: list[Expected] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TestCase:
    name: str
    series: list[SeriesSpec]
    alerts: list[Check]
    interval: Duration = field(default=Duration.parse("10s"))
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TestFile:
    rule_files: list[str]
    tests: list[TestCase]
    catalog: list[dict[str, Any]] = field(default_factory=list)
    catalog_files: list[str] = field(default_factory=list)
    start: str = "2026-03-02T08:00:00+08:00"


@dataclass
class CaseResult:
    name: str
    ok: bool
    lines: list[str]


def _registry(tf: TestFile, doc: YamlDoc, base: Path) -> SensorRegistry:
    reg = SensorRegistry()
    errors: list[ConfigError] = []
    rows = [(doc.where(("catalog", i))[0] or 0, r) for i, r in enumerate(tf.catalog)]
    entries = _parse_rows(rows, doc.file, errors)
    ConfigErrors.raise_if(errors)
    if tf.catalog_files:
        reg.load_catalog([base / p for p in tf.catalog_files])
    reg.apply_catalog(entries)
    return reg


def _subject(rs: Any, rule: str, sensor: int, group: str | None) -> str:
    return group if group is not None else rs.registry.key(sensor)


def run_case(tf: TestFile, case: TestCase, doc: YamlDoc, base: Path) -> CaseResult:
    reg = _registry(tf, doc, base)
    rs = compile_files([base / p for p in tf.rule_files], reg)
    t0 = parse_time(tf.start)
    rows: list[tuple[int, int, float, int]] = []
    for s in case.series:
        sid = reg.id_of(s.sensor)
        if sid is None:
            parts = s.sensor.split("/")
            if len(parts) != 3:
                msg = f"sensor {s.sensor!r} must be enterprise/site/sensor"
                raise ConfigErrors([ConfigError("series.sensor", msg, file=doc.file)])
            sid = int(reg.intern(parts[0], parts[1], [parts[2]])[0])
        step = int(s.interval if s.interval is not None else case.interval)
        for i, item in enumerate(expand_series(s.values)):
            if item is not None:
                rows.append((t0 + i * step, sid, item[0], item[1]))
    rows.sort(key=lambda r: r[0])
    times = np.array([r[0] for r in rows], np.int64)
    lines: list[str] = []
    ok = True
    done = 0
    checks = sorted(case.alerts, key=lambda c: int(c.at))
    for chk in checks:
        at = t0 + int(chk.at)

        upto = int(np.searchsorted(times, at, side="right"))
        if upto > done:
            part = rows[done:upto]
            b = Batch.from_arrays([r[0] for r in part], [r[1] for r in part],
                                  [r[2] for r in part], [r[3] for r in part])  # fmt: skip
            rs.process(b, at)
            done = upto
        rs.tick(at)
        only = set(chk.rules or case.rules)
        got = set()
        for rule, subject, state, level in rs.active_subjects():
            if only and rule not in only:
                continue
            got.add((rule, subject, level.colour, state))
        want = {(e.rule, e.sensor, e.level.colour, e.state) for e in chk.expect}
        if got != want:
            ok = False
            lines.append(f"  at {chk.at}:")
            lines.append("    expected: " + (_fmt(want) or "(no alerts)"))
            lines.append("    got:      " + (_fmt(got) or "(no alerts)"))
            for x in sorted(want - got):
                lines.append(f"    missing:  {_one(x)}")
            for x in sorted(got - want):
                lines.append(f"    extra:    {_one(x)}")
    return CaseResult(case.name, ok, lines)


def _one(x: tuple[str, str, str, SignalState]) -> str:
    return f"{x[0]} {x[1]} {x[2]} {x[3]}"


def _fmt(s: set[tuple[str, str, str, SignalState]]) -> str:
    return "; ".join(_one(x) for x in sorted(s))


def run_test_file(path: str | Path) -> tuple[bool, list[str]]:
    """Run every case of a test file; returns (all passed, report lines)."""
    p = Path(path)
    doc = YamlDoc.from_path(p)
    tf = parse(TestFile, doc)
    out: list[str] = []
    all_ok = True
    for case in tf.tests:
        try:
            res = run_case(tf, case, doc, p.resolve().parent)
        except (ConfigErrors, ValueError) as exc:
            all_ok = False
            out.append(f"FAIL {p}: {case.name}: {exc}")
            continue
        all_ok &= res.ok
        out.append(f"{'PASS' if res.ok else 'FAIL'} {p}: {case.name}")
        out += res.lines
    return all_ok, out
