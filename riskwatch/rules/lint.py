"""Schema and semantic lint of rule files (``riskwatch rules check``).

Every finding names file, line, column and key path. Errors: anything the strict parser
rejects (unknown keys, wrong types, missing keys), a clear value on the wrong side of its
trigger, a colour given twice, levels in the wrong order (a more severe level must be
harder to reach), unknown calendars and unknown rule references. With a catalogue,
warnings: match keys that are not catalogue columns, selectors that match no sensor,
catalogue setpoints looser than the regulatory cap, and sensors that lack a referenced
setpoint (that level is then off for them).

>>> fs = check_text('''
... rules:
...   - name: ch4
...     match: {kind: ch4}
...     levels:
...       - {level: red, above: 1.0}
...       - {level: orange, above: 1.5, clear_below: 1.6}
... ''', file="r.yaml")
>>> [(f.line, f.severity, f.key) for f in fs]
[(7, 'error', 'rules[0].levels[1].clear_below'), (6, 'error', 'rules[0].levels')]
>>> print(fs[0].message)
clear value 1.6 is above its trigger 1.5 (the alert could step down while still triggering)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.config.yamldoc import KeyPath, YamlDoc, format_path
from riskwatch.errors import ConfigErrors
from riskwatch.rules.calendars import build_calendars
from riskwatch.rules.compile import looser_than_cap, resolve_number, select, unknown_columns
from riskwatch.rules.parse import LevelSpec, RuleFile, RuleSpec, _parse_doc

__all__ = ["Finding", "check_files", "check_text"]


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    file: str
    line: int | None
    col: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        key = f"{self.key}: " if self.key else ""
        return f"{where}: {self.severity}: {key}{self.message}"


def _f(doc: YamlDoc, sev: str, path: KeyPath, msg: str) -> Finding:
    line, col = doc.where(path)
    return Finding(sev, doc.file, line, col, format_path(path), msg)


def _literal(v: object) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _level_paths(rule: RuleSpec, base: KeyPath) -> list[tuple[LevelSpec, KeyPath]]:
    if rule.levels:
        return [(lv, (*base, "levels", j)) for j, lv in enumerate(rule.levels)]
    return [(lv, base) for lv in rule.all_levels()]


def _check_rule(
    rule: RuleSpec,
    base: KeyPath,
    doc: YamlDoc,
    calendars: set[str],
    rule_names: set[str],
    reg: SensorRegistry | None,
) -> list[Finding]:
    out: list[Finding] = []
    levels = _level_paths(rule, base)
    seen: dict[int, KeyPath] = {}
    for lv, p in levels:
        if int(lv.level) in seen:
            out.append(_f(doc, "error", p, f"level {lv.level.colour} given twice"))
        seen[int(lv.level)] = p
        trig = _literal(lv.above if lv.above is not None else lv.below)
        ckey = "clear_below" if lv.above is not None else "clear_above"
        clr = _literal(getattr(lv, ckey))
        if trig is not None and clr is not None:
            if lv.above is not None and clr > trig:
                out.append(_f(doc, "error", (*p, ckey),
                              f"clear value {clr:g} is above its trigger {trig:g} (the alert could "
                              "step down while still triggering)"))  # fmt: skip
            if lv.below is not None and clr < trig:
                out.append(_f(doc, "error", (*p, ckey),
                              f"clear value {clr:g} is below its trigger {trig:g} (the alert could "
                              "step down while still triggering)"))  # fmt: skip
    # order: among same-direction literal triggers, more severe must be stricter
    for d in (1, -1):
        lits = []
        for lv, _p in levels:
            if lv.direction != d:
                continue
            tv = _literal(lv.above if d > 0 else lv.below)
            if tv is not None:
                lits.append((int(lv.level), tv, lv))
        lits.sort()
        for (_a, ta, la), (_b, tb, lb) in itertools.pairwise(lits):
            if (d > 0 and ta < tb) or (d < 0 and ta > tb):
                out.append(_f(doc, "error", (*base, "levels") if rule.levels else base,
                              f"{la.level.colour} (trigger {ta:g}) is easier to reach than "
                              f"{lb.level.colour} (trigger {tb:g}): a more severe level needs "
                              "a stricter trigger"))  # fmt: skip
    if rule.calendar is not None:
        for kind in ("inside", "outside"):
            for j, n in enumerate(getattr(rule.calendar, kind)):
                if n not in calendars:
                    known = ", ".join(sorted(calendars)) or "none defined"
                    out.append(_f(doc, "error", (*base, "calendar", kind, j),
                                  f"unknown calendar {n!r} (known: {known})"))  # fmt: skip
    if rule.compound is not None:
        key = "all" if rule.compound.all else "any" if rule.compound.any else "of"
        for j, t in enumerate(rule.compound.terms):
            if t.rule is not None and t.rule not in rule_names:
                out.append(_f(doc, "error", (*base, "compound", key, j, "rule"),
                              f"unknown rule {t.rule!r}"))  # fmt: skip
    if reg is None:
        return out
    # catalogue-aware checks
    selectors = [((*base, "match"), rule.match)] if rule.match else []
    if rule.compound is not None:
        key = "all" if rule.compound.all else "any" if rule.compound.any else "of"
        selectors += [
            ((*base, "compound", key, j, "match"), t.match)
            for j, t in enumerate(rule.compound.terms)
            if t.match
        ]
    for path, m in selectors:
        bad = unknown_columns(reg, m)
        for k in bad:
            out.append(_f(doc, "warning", (*path, k),
                          f"no catalogue column {k!r}, so this selects nothing "
                          f"(have: {', '.join(reg.columns)})"))  # fmt: skip
        if not bad and not select(reg, m, rule.exclude).any():
            out.append(_f(doc, "warning", path, "selects no sensor of the catalogue"))
    if not rule.match:
        return out
    ids = np.flatnonzero(select(reg, rule.match, rule.exclude))
    if not len(ids):
        return out
    keys = [reg.key(int(i)) for i in ids[:3]]
    for lv, p in levels:
        trig_key = "above" if lv.above is not None else "below"
        sp = lv.trigger
        loose = looser_than_cap(reg, sp, ids, lv.direction)
        if loose.any():
            bad_keys = [reg.key(int(i)) for i in ids[loose][:3]]
            out.append(_f(doc, "warning", (*p, trig_key),
                          f"catalogue setpoint {sp.setpoint!r} is looser than the regulatory cap "
                          f"{sp.cap:g} for {int(loose.sum())} sensor(s) (e.g. "
                          f"{', '.join(bad_keys)}); the cap {sp.cap:g} is used"))  # fmt: skip
        vals = resolve_number(reg, sp, ids, lv.direction)
        miss = np.isnan(vals)
        if miss.any():
            mk = [reg.key(int(i)) for i in ids[miss][:3]]
            out.append(_f(doc, "warning", (*p, trig_key),
                          f"{int(miss.sum())} selected sensor(s) have no setpoint "
                          f"{sp.setpoint!r} and no default, so level {lv.level.colour} is off "
                          f"for them (e.g. {', '.join(mk)})"))  # fmt: skip
        clear_sp = lv.clear
        if clear_sp is not None:
            cv = resolve_number(reg, clear_sp, ids, lv.direction)
            with np.errstate(invalid="ignore"):
                wrong = (cv > vals) if lv.direction > 0 else (cv < vals)
            if wrong.any():
                wk = [reg.key(int(i)) for i in ids[wrong][:3]]
                out.append(_f(doc, "error", p,
                              f"clear value on the wrong side of the trigger for "
                              f"{int(wrong.sum())} sensor(s) (e.g. {', '.join(wk)})"))  # fmt: skip
    del keys
    return out


def check_docs(
    docs: Sequence[YamlDoc], catalog: Sequence[str | Path] = ()
) -> list[Finding]:  # fmt: skip
    """Lint parsed YAML documents (one per rule file)."""
    out: list[Finding] = []
    reg: SensorRegistry | None = None
    if catalog:
        reg = SensorRegistry()
        try:
            reg.load_catalog(list(catalog))
        except ConfigErrors as exc:
            return [Finding("error", e.file or "", e.line, e.col, e.key_path, e.message)
                    for e in exc.errors]  # fmt: skip
    parsed: list[tuple[RuleFile, YamlDoc]] = []
    for doc in docs:
        try:
            parsed.append((_parse_doc(doc), doc))
        except ConfigErrors as exc:
            out += [Finding("error", e.file or doc.file, e.line, e.col, e.key_path, e.message)
                    for e in exc.errors]  # fmt: skip
    calendars: set[str] = set()
    names: dict[str, str] = {}
    for rf, doc in parsed:
        calendars |= set(rf.calendars)
        try:
            build_calendars(rf.calendars, Path(doc.file).resolve().parent, doc)
        except ConfigErrors as exc:
            out += [Finding("error", e.file or doc.file, e.line, e.col, e.key_path, e.message)
                    for e in exc.errors]  # fmt: skip
        for i, r in enumerate(rf.rules):
            if r.name in names and names[r.name] != doc.file:
                out.append(_f(doc, "error", ("rules", i, "name"),
                              f"rule {r.name!r} also defined in {names[r.name]}"))  # fmt: skip
            names[r.name] = doc.file
    base: KeyPath
    for rf, doc in parsed:
        bare = isinstance(doc.data, list)
        for i, r in enumerate(rf.rules):
            base = (i,) if bare else ("rules", i)
            out += _check_rule(r, base, doc, calendars, set(names), reg)
    return out


def check_files(paths: Sequence[str | Path], catalog: Sequence[str | Path] = ()) -> list[Finding]:
    """Lint rule files; YAML syntax errors are findings too."""
    docs: list[YamlDoc] = []
    out: list[Finding] = []
    for p in paths:
        try:
            docs.append(YamlDoc.from_path(p))
        except ConfigErrors as exc:
            out += [Finding("error", e.file or str(p), e.line, e.col, e.key_path, e.message)
                    for e in exc.errors]  # fmt: skip
    return out + check_docs(docs, catalog)


def check_text(
    text: str, file: str = "<rules>", catalog: Sequence[str | Path] = ()
) -> list[Finding]:
    try:
        doc = YamlDoc.from_text(text, file=file)
    except ConfigErrors as exc:
        return [Finding("error", e.file or file, e.line, e.col, e.key_path, e.message)
                for e in exc.errors]  # fmt: skip
    return check_docs([doc], catalog)
