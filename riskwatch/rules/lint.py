"""Schema and semantic lint of rule files (``riskwatch rules check``).

Every finding names file, line, column and key path. Errors: anything the strict parser
rejects (unknown keys, wrong types, missing keys), a clear value on the wrong side of its
trigger, a colour given twice, levels in the wrong order (a more severe level must be
harder to reach), unknown calendars and unknown rule references, and an ``of: change``
window that could need more readings than a change window holds exactly
(:data:`~riskwatch.rules.conditions.CHANGE_MAX_KEPT`, at one reading a second). With a
catalogue, errors: a setpoint name that is not a catalogue column when the rule selects
sensors, with or without a ``default`` (naming the closest column: a misspelt name would
silently turn the default into every sensor's number, or the level off), and a change
window too long for the selected sensors' ``period_s``. Warnings: match keys that are not catalogue
columns, selectors that match no sensor, a rule that selects sensors of another domain
(or, without a ``domain`` selector, of several), catalogue setpoints looser than the
regulatory cap, sensors that lack a referenced setpoint (that level is then off for
them), and catalogued sensors without a domain when rules select by domain.

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

import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskwatch.catalog import NUMBER_COLUMNS, SensorRegistry
from riskwatch.config.yamldoc import KeyPath, YamlDoc, format_path
from riskwatch.errors import ConfigErrors
from riskwatch.rules.calendars import build_calendars
from riskwatch.rules.compile import looser_than_cap, resolve_number, select, unknown_columns
from riskwatch.rules.conditions.change import (
    ASSUMED_PERIOD_NS,
    CHANGE_MAX_KEPT,
    change_entries_needed,
)
from riskwatch.rules.parse import LevelSpec, RuleFile, RuleSpec, Setpoint, _parse_doc, as_setpoint

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


def _number_refs(rule: RuleSpec, base: KeyPath) -> list[tuple[Setpoint, KeyPath, str]]:
    """Every catalogue setpoint a rule reads: (setpoint, its key path, what it sets)."""
    out: list[tuple[Setpoint, KeyPath, str]] = []

    def add(raw: object, path: KeyPath, what: str) -> None:
        try:
            sp = as_setpoint(raw)  # type: ignore[arg-type]
        except ValueError:
            return
        if sp is not None and sp.setpoint is not None:
            out.append((sp, (*path, "setpoint") if isinstance(raw, Setpoint) else path, what))

    for lv, p in _level_paths(rule, base):
        for key in ("above", "below", "clear_below", "clear_above"):
            add(getattr(lv, key), (*p, key), f"level {lv.level.colour}")
    if rule.out_of_range is not None:
        add(rule.out_of_range.low, (*base, "out_of_range", "low"), "the range")
        add(rule.out_of_range.high, (*base, "out_of_range", "high"), "the range")
    if rule.no_data is not None and isinstance(rule.no_data.limit, Setpoint):
        out.append((rule.no_data.limit, (*base, "no_data", "after"), "the no-data limit"))
    return out


def _setpoint_columns(
    rule: RuleSpec, base: KeyPath, doc: YamlDoc, reg: SensorRegistry, n_selected: int
) -> tuple[list[Finding], set[str]]:
    """Setpoint names that are not catalogue columns (and the names reported)."""
    out: list[Finding] = []
    missing: set[str] = set()
    numeric = [*reg.setpoint_names(), *NUMBER_COLUMNS]
    for sp, path, what in _number_refs(rule, base):
        name = sp.setpoint
        assert name is not None
        if reg.has_column(name):
            continue
        missing.add(name)
        close = difflib.get_close_matches(name, numeric, n=1, cutoff=0.4)
        hint = f" (closest: {close[0]!r})" if close else (
            f" (setpoint columns: {', '.join(reg.setpoint_names()) or 'none'})")  # fmt: skip
        then = (f"the default {sp.default:g} would be used for all {n_selected} selected "
                "sensor(s)") if sp.default is not None else (
                f"{what} would be off for all {n_selected} selected sensor(s)")  # fmt: skip
        out.append(_f(doc, "error", path, f"no catalogue column {name!r}{hint}; {then}"))
    return out, missing


def _window(rule: RuleSpec, base: KeyPath, doc: YamlDoc, reg: SensorRegistry | None,
            ids: np.ndarray | None) -> list[Finding]:  # fmt: skip
    """A change window the deque cannot hold exactly (CHANGE_MAX_KEPT readings)."""
    if rule.of != "change" or rule.window is None:
        return []
    w = int(rule.window)
    limit = f"a change window holds {CHANGE_MAX_KEPT} readings per sensor exactly"
    if reg is None or ids is None or not len(ids):
        need = change_entries_needed(w, ASSUMED_PERIOD_NS)
        if need <= CHANGE_MAX_KEPT:
            return []
        return [_f(doc, "error", (*base, "window"),
                   f"window {rule.window} can need {need} readings per sensor at one a "
                   f"second and {limit}: shorten it, or lint with a catalogue whose "
                   "period_s says the sensors report less often")]  # fmt: skip
    period = reg.column("period_s")[ids]
    period_ns = np.where(np.isnan(period), ASSUMED_PERIOD_NS, period * 1e9).astype(np.int64)
    per_sensor = np.asarray(w // np.maximum(period_ns, 1) + 1)
    bad = np.asarray(per_sensor > CHANGE_MAX_KEPT)
    if not bad.any():
        return []
    keys = [reg.key(int(i)) for i in ids[bad][:3]]
    return [_f(doc, "error", (*base, "window"),
               f"window {rule.window} can need up to {int(per_sensor.max())} readings per sensor "
               f"for {int(bad.sum())} selected sensor(s) (e.g. {', '.join(keys)}; period_s, "
               f"or 1 s where none) and {limit}: shorten it")]  # fmt: skip


def _own_domains(m: Mapping[str, object]) -> set[str] | None:
    """The domains a selector names (None: it has no ``domain`` key)."""
    if "domain" not in m:
        return None
    v = m["domain"]
    vals = v if isinstance(v, (list, tuple)) else [v]
    return {str(x) for x in vals if str(x)}


def _domains(doc: YamlDoc, path: KeyPath, m: Mapping[str, object], ids: np.ndarray,
             reg: SensorRegistry) -> list[Finding]:  # fmt: skip
    """A selector that reaches sensors of another domain (or of several, without one)."""
    if not len(ids):
        return []
    dom = reg.column("domain")[ids].astype(str)
    seen = sorted(set(dom.tolist()) - {""})
    own = _own_domains(m)
    if own is None:
        if len(seen) < 2:
            return []
        counts = ", ".join(f"{d} ({int((dom == d).sum())})" for d in seen)
        return [_f(doc, "warning", path,
                   f"selects sensors of {len(seen)} domains: {counts}; select one with "
                   "match.domain (a pack's rules belong to one domain)")]  # fmt: skip
    others = [d for d in seen if d not in own]  # a glob reaching several is "another" too
    if not others:
        return []
    bad = np.isin(dom, others)
    keys = [reg.key(int(i)) for i in ids[bad][:3]]
    return [_f(doc, "warning", (*path, "domain"),
               f"selects {int(bad.sum())} sensor(s) of domain {', '.join(others)} (e.g. "
               f"{', '.join(keys)}), outside its own ({', '.join(sorted(own))})")]  # fmt: skip


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
        return out + _window(rule, base, doc, None, None)
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
        if bad:
            continue
        sel = np.flatnonzero(select(reg, m, rule.exclude if m is rule.match else None))
        if not len(sel):
            out.append(_f(doc, "warning", path, "selects no sensor of the catalogue"))
        out += _domains(doc, path, m, sel, reg)
    if not rule.match:
        return out
    ids = np.flatnonzero(select(reg, rule.match, rule.exclude))
    out += _window(rule, base, doc, reg, ids)
    if not len(ids):
        return out
    found, missing = _setpoint_columns(rule, base, doc, reg, len(ids))
    out += found
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
        if miss.any() and sp.setpoint not in missing:
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
    if reg is not None:
        out += _unlabelled(reg, [r for rf, _ in parsed for r in rf.rules], catalog)
    return out


def _unlabelled(
    reg: SensorRegistry, rules: Sequence[RuleSpec], catalog: Sequence[str | Path]
) -> list[Finding]:
    """One warning when rules select by domain and catalogued sensors have none."""
    if not any(r.match and "domain" in r.match for r in rules):
        return []
    none = np.flatnonzero(reg.column("domain") == "")
    if not len(none):
        return []
    keys = [reg.key(int(i)) for i in none[:3]]
    msg = (f"{len(none)} catalogued sensor(s) have no domain (e.g. {', '.join(keys)}): rules "
           "that select a domain see them only where they also take points without one (the "
           "bundled packs: by kind; o2 and temp as coal_mine)")  # fmt: skip
    return [Finding("warning", ", ".join(map(str, catalog)), None, None, "domain", msg)]


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
