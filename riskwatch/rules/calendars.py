"""Calendars: named sets of time windows that switch rules on or off, evaluated over arrays.

Kinds (combinable in one calendar, which is then their union): fixed windows (optionally
per enterprise/site, e.g. shutdown orders loaded from a CSV), weekly clock windows
(nights; overnight windows wrap), whole dates (holidays), and ``any_of`` other calendars.
Local clock times use a fixed UTC offset (China has no daylight saving).

>>> from riskwatch.rules.parse import CalendarSpec
>>> cal = Calendar.build("night", CalendarSpec(days=["mon", "tue", "wed", "thu", "fri", "sat",
...                      "sun"], from_="22:00", to="06:00"), {}, base=None)
>>> import numpy as np
>>> t = np.array([parse_time("2026-01-05T23:00:00+08:00"), parse_time("2026-01-05T12:00:00+08:00")])
>>> cal.active(t, np.array(["m1", "m1"], dtype=object), np.array(["s", "s"], dtype=object)).tolist()
[True, False]
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from riskwatch.config.yamldoc import YamlDoc
from riskwatch.errors import ConfigError, ConfigErrors
from riskwatch.rules.parse import CalendarSpec, RuleFile

__all__ = ["Calendar", "build_calendars", "collect_calendars", "parse_offset", "parse_time"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NS_DAY = 86400 * 10**9
_NS_WEEK = 7 * _NS_DAY
# 1970-01-01 was a Thursday: shift so that day 0 of the week is Monday
_EPOCH_WEEKDAY = 3


def parse_offset(s: str) -> int:
    """``"+08:00"`` → offset in ns."""
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", s.strip())
    if not m:
        raise ValueError(f"bad utc_offset {s!r} (use e.g. +08:00)")
    sign = 1 if m.group(1) == "+" else -1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60) * 10**9


def parse_time(s: str | datetime | date, offset_ns: int = 8 * 3600 * 10**9) -> int:
    """ISO time → epoch ns; a time without offset is local (``offset_ns``)."""
    if isinstance(s, datetime):
        dt = s
    elif isinstance(s, date):
        dt = datetime(s.year, s.month, s.day)
    else:
        dt = datetime.fromisoformat(str(s).strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone(timedelta(microseconds=offset_ns // 1000)))
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def _clock(s: str) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", s.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        raise ValueError(f"bad clock time {s!r} (use HH:MM)")
    return (int(m.group(1)) * 3600 + int(m.group(2)) * 60) * 10**9


@dataclass
class _Window:
    start: int
    end: int
    enterprise: str | None
    site: str | None
    reason: str = ""


@dataclass
class Calendar:
    """A compiled calendar; :meth:`active` is vectorised over readings."""

    name: str
    offset: int = 8 * 3600 * 10**9
    windows: list[_Window] = field(default_factory=list)
    weekly: list[tuple[int, int]] = field(default_factory=list)  # ns from Monday 00:00 local
    dates: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    parts: list[Calendar] = field(default_factory=list)
    source: str = ""

    @classmethod
    def build(
        cls,
        name: str,
        spec: CalendarSpec,
        others: Mapping[str, CalendarSpec],
        base: Path | None,
        _stack: tuple[str, ...] = (),
    ) -> Calendar:
        """Compile ``spec``; raises ValueError naming the problem."""
        off = parse_offset(spec.utc_offset)
        cal = cls(name, off)
        for w in spec.windows:
            s, e = parse_time(w.start, off), parse_time(w.end, off)
            if e <= s:
                raise ValueError(f"window {w.start} .. {w.end}: end must be after start")
            cal.windows.append(_Window(s, e, w.enterprise, w.site, w.reason))
        if spec.days or spec.from_ or spec.to:
            days = spec.days or list(_DAYS)
            bad = [d for d in days if d.lower()[:3] not in _DAYS]
            if bad:
                raise ValueError(f"unknown day(s) {bad}; use mon..sun")
            f = _clock(spec.from_ or "00:00")
            t = _clock(spec.to or "24:00")
            for d in days:
                di = _DAYS.index(d.lower()[:3])
                start = di * _NS_DAY + f
                end = di * _NS_DAY + t if t > f else (di + 1) * _NS_DAY + t
                if end > _NS_WEEK:  # Sunday night into Monday
                    cal.weekly.append((start, _NS_WEEK))
                    cal.weekly.append((0, end - _NS_WEEK))
                else:
                    cal.weekly.append((start, end))
        if spec.dates:
            days_ = []
            for d in spec.dates:
                day = d if isinstance(d, date) else datetime.fromisoformat(str(d)).date()
                if isinstance(day, datetime):
                    day = day.date()
                days_.append((day - date(1970, 1, 1)).days)
            cal.dates = np.unique(np.asarray(days_, dtype=np.int64))
        if spec.file:
            p = Path(spec.file)
            if base is not None and not p.is_absolute():
                p = base / p
            cal.source = str(p)
            cal.windows += _load_window_file(p, off)
        for other in spec.any_of:
            if other in _stack or other == name:
                raise ValueError(f"calendar {other!r} refers to itself")
            if other not in others:
                raise ValueError(f"unknown calendar {other!r} in any_of")
            cal.parts.append(cls.build(other, others[other], others, base, (*_stack, name)))
        return cal

    def active(self, t: np.ndarray, enterprise: np.ndarray, site: np.ndarray) -> np.ndarray:
        """Boolean per reading: is ``t`` inside this calendar (for that enterprise/site)?"""
        out = np.zeros(len(t), dtype=bool)
        for w in self.windows:
            m = (t >= w.start) & (t < w.end)
            if w.enterprise is not None:
                m &= enterprise == w.enterprise
            if w.site is not None:
                m &= site == w.site
            out |= m
        if self.weekly or len(self.dates):
            local = t + self.offset
            if self.weekly:
                tow = (local + _EPOCH_WEEKDAY * _NS_DAY) % _NS_WEEK
                for s, e in self.weekly:
                    out |= (tow >= s) & (tow < e)
            if len(self.dates):
                out |= np.isin(local // _NS_DAY, self.dates)
        for p in self.parts:
            out |= p.active(t, enterprise, site)
        return out

    def files(self) -> list[Path]:
        out = [Path(self.source)] if self.source else []
        for p in self.parts:
            out += p.files()
        return out


def _load_window_file(p: Path, off: int) -> list[_Window]:
    rows: list[tuple[int, dict[str, str]]] = []
    if p.suffix.lower() == ".csv":
        try:
            with p.open(newline="", encoding="utf-8-sig") as fh:
                r = csv.DictReader(fh)
                rows = [
                    (r.line_num, {k.strip(): (v or "").strip() for k, v in d.items() if k})
                    for d in r
                ]
        except OSError as exc:
            raise ValueError(f"cannot read calendar file {p}: {exc.strerror}") from exc
    else:
        try:
            doc = YamlDoc.from_path(p)
        except ConfigErrors as exc:
            raise ValueError(str(exc)) from exc
        data = doc.data.get("windows") if isinstance(doc.data, dict) else doc.data
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected a list of windows")
        rows = [
            (doc.where(("windows", i))[0] or 0, {k: str(v) for k, v in d.items()})
            for i, d in enumerate(data)
            if isinstance(d, dict)
        ]
    out = []
    for line, d in rows:
        try:
            s, e = parse_time(d["start"], off), parse_time(d["end"], off)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{p}:{line}: each window needs start and end times ({exc})") from exc
        if e <= s:
            raise ValueError(f"{p}:{line}: end must be after start")
        out.append(
            _Window(s, e, d.get("enterprise") or None, d.get("site") or None, d.get("reason", ""))
        )
    return out


def build_calendars(
    specs: Mapping[str, CalendarSpec], base: Path | None, doc: YamlDoc | None = None
) -> dict[str, Calendar]:
    """Compile all calendars of a rule file; errors name the calendar key."""
    out: dict[str, Calendar] = {}
    errors: list[ConfigError] = []
    for name, spec in specs.items():
        try:
            out[name] = Calendar.build(name, spec, specs, base)
        except ValueError as exc:
            if doc is not None:
                errors.append(doc.error(("calendars", name), str(exc)))
            else:
                errors.append(ConfigError(f"calendars.{name}", str(exc)))
    ConfigErrors.raise_if(errors)
    return out


def collect_calendars(
    files: Sequence[RuleFile],
    base_dirs: Sequence[Path | None],
    docs: Sequence[YamlDoc | None],
) -> tuple[dict[str, Calendar], list[ConfigError]]:
    """The calendars of several rule files by name, and the errors (a name given twice)."""
    calendars: dict[str, Calendar] = {}
    errors: list[ConfigError] = []
    for rf, base, doc in zip(files, base_dirs, docs, strict=True):
        try:
            cals = build_calendars(rf.calendars, base, doc)
        except ConfigErrors as exc:
            errors += exc.errors
            continue
        for k, c in cals.items():
            if k in calendars:
                errors.append(ConfigError(f"calendars.{k}", "calendar defined twice", file=rf.file))
            calendars[k] = c
    return calendars, errors
