"""Durations: one parser for every duration a user writes, in nanoseconds.

Rule files, detector files, scenarios and the command line all take durations as
``"500ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"15d"``, ``"2w"`` or a number of
seconds (``90``, ``"90"``, ``2.5``). They are parsed once, at load, into a
:class:`Duration`: an ``int`` of nanoseconds that remembers how it was written, so
messages can quote the rule's own spelling ("pending for 5m") while the code only ever
compares integers.

>>> d = Duration.parse("1h30m")
>>> int(d), d.seconds, str(d)
(5400000000000, 5400.0, '1h30m')
>>> parse_duration("500ms"), parse_duration(2), parse_duration("90")
(500000000, 2000000000, 90000000000)
>>> Duration.parse("5m") > Duration.parse("90s")
True
>>> try:
...     parse_duration("5 minutes")
... except ValueError as exc:
...     print(exc)
bad duration '5 minutes' (use e.g. 30s, 5m, 1h30m, 15d, 500ms, or seconds)
"""

from __future__ import annotations

import re

__all__ = ["Duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_NS = {
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
}


def parse_duration(v: str | float | int | None) -> int:
    """Nanoseconds from a duration text or a number of seconds (``None`` is 0).

    Raises :class:`ValueError` naming the text for anything else, and for a negative
    duration.
    """
    if v is None:
        return 0
    if isinstance(v, bool):
        raise ValueError(f"bad duration {v!r} (use e.g. 30s, 5m, 1h30m, 15d, 500ms, or seconds)")
    if isinstance(v, (int, float)):
        if v < 0 or v != v:
            raise ValueError(f"duration must be >= 0, got {v}")
        return round(float(v) * 1e9)
    s = str(v).strip().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    try:
        secs = float(s)
    except ValueError:
        pass
    else:
        return parse_duration(secs)
    pos, total = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"bad duration {v!r} (use e.g. 30s, 5m, 1h30m, 15d, 500ms, or seconds)")
    return total


class Duration(int):
    """Nanoseconds (an ``int``) that remember their text: ``str(d)`` is what was written.

    Arithmetic gives plain ``int`` nanoseconds; equality and hashing are the integer's,
    so ``Duration.parse("60s") == Duration.parse("1m")``.
    """

    text: str

    def __new__(cls, ns: int = 0, text: str | None = None) -> Duration:
        self = super().__new__(cls, ns)
        self.text = text if text is not None else _format(int(ns))
        return self

    @classmethod
    def parse(cls, v: str | float | int | Duration | None) -> Duration:
        """Parse a duration text or seconds (see :func:`parse_duration`)."""
        if isinstance(v, Duration):
            return v
        ns = parse_duration(v)
        if v is None:
            text = "0s"
        elif isinstance(v, str):
            text = v.strip()
        else:
            text = f"{v:g}s"
        return cls(ns, text)

    @property
    def ns(self) -> int:
        return int(self)

    @property
    def seconds(self) -> float:
        return int(self) / 1e9

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __reduce__(self) -> tuple[type[Duration], tuple[int, str]]:
        return (Duration, (int(self), self.text))


def _format(ns: int) -> str:
    """Shortest exact text of whole units (``5400 s`` -> ``1h30m``)."""
    if ns % 10**6:
        return f"{ns / 1e9:g}s"
    if ns == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        u = _UNIT_NS[unit]
        if ns >= u:
            q, ns = divmod(ns, u)
            out.append(f"{q}{unit}")
    return "".join(out)
