"""Strict parsing of YAML data into frozen dataclasses, reporting every error in one pass.

A config type is a ``@dataclass(frozen=True)``; field types drive validation
(``str``, ``int``, ``float``, ``bool``, ``X | None``, ``list[X]``, ``tuple[X, ...]``,
``dict[str, X]``, ``Literal[...]``, enums, :class:`~riskwatch.durations.Duration` (a
duration text or seconds, parsed here once) and nested dataclasses). Extra checks go in
field metadata: ``field(default=1, metadata={"check": lambda v: None if v > 0 else
"must be > 0"})``. Unknown keys, wrong types and missing required keys are errors that
name file, line and key path.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Mqtt:
...     url: str
...     qos: int = field(default=1, metadata={"check": lambda v: None if v in (0, 1, 2)
...                                           else f"must be 0, 1 or 2, got {v}"})
>>> doc = YamlDoc.from_text("url: mqtt://x\\nqos: 3\\nqso: 1\\n", file="e.yaml")
>>> try:
...     parse(Mqtt, doc)
... except ConfigErrors as e:
...     print(e)
e.yaml:2:6: qos: must be 0, 1 or 2, got 3
e.yaml:3:1: qso: unknown key (known: qos, url)
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from riskwatch.config.yamldoc import KeyPath, YamlDoc, format_path
from riskwatch.durations import Duration
from riskwatch.errors import ConfigError, ConfigErrors

__all__ = ["MISSING", "check_listen", "parse", "parse_value"]

T = TypeVar("T")
MISSING = dataclasses.MISSING

_hints_cache: dict[type, dict[str, Any]] = {}
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)?$")


def check_listen(v: str | None) -> str | None:
    """What is wrong with a listen address ``host:port`` (port 0 picks a free one), or
    None. Checked at load so that ``--check`` catches what would stop ``run`` later.

    >>> check_listen("127.0.0.1:9108") is None, check_listen("[::1]:0") is None
    (True, True)
    >>> check_listen("abc")
    "must be host:port such as 127.0.0.1:9108, got 'abc'"
    >>> check_listen("0.0.0.0:70000")
    'port must be within 0..65535, got 70000'
    """
    if v is None:
        return None
    host, sep, port = v.rpartition(":")
    if not sep or not port.isdigit() or not _HOST.match(host):
        return f"must be host:port such as 127.0.0.1:9108, got {v!r}"
    if not 0 <= int(port) <= 65535:
        return f"port must be within 0..65535, got {int(port)}"
    return None


def _hints(cls: type) -> dict[str, Any]:
    h = _hints_cache.get(cls)
    if h is None:
        h = get_type_hints(cls)
        _hints_cache[cls] = h
    return h


def parse(cls: type[T], doc: YamlDoc, path: KeyPath = (), data: Any = MISSING) -> T:
    """Parse ``doc.data`` (or ``data`` found at ``path``) into ``cls``; raise ConfigErrors."""
    errors: list[ConfigError] = []
    value = doc.data if data is MISSING else data
    if value is None:
        value = {}
    out = parse_value(cls, value, doc, path, errors)
    ConfigErrors.raise_if(errors)
    return typing.cast(T, out)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return "mapping"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp)


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {v}"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} {v!r}"


def parse_value(tp: Any, v: Any, doc: YamlDoc, path: KeyPath, errors: list[ConfigError]) -> Any:
    """Convert one value; append errors instead of raising. Returns None on failure."""
    origin = get_origin(tp)
    if tp is Any:
        return v
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if v is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return parse_value(non_none[0], v, doc, path, errors)
        for a in non_none:
            trial: list[ConfigError] = []
            out = parse_value(a, v, doc, path, trial)
            if not trial:
                return out
        names = " or ".join(_type_name(a) for a in non_none)
        errors.append(doc.error(path, f"expected {names}, got {_describe(v)}"))
        return None
    if origin is Literal:
        allowed = get_args(tp)
        if v not in allowed:
            errors.append(
                doc.error(path, f"must be one of {', '.join(map(repr, allowed))}, got {v!r}")
            )
            return None
        return v
    if origin in (list, tuple):
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if not isinstance(v, list):
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and origin is list:
                v = [v]  # a single item where a list is expected is accepted
            else:
                errors.append(doc.error(path, f"expected a list, got {_describe(v)}"))
                return None
        items = [parse_value(item_tp, x, doc, (*path, i), errors) for i, x in enumerate(v)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        kt, vt = get_args(tp) or (str, Any)
        if not isinstance(v, dict):
            errors.append(doc.error(path, f"expected a mapping, got {_describe(v)}"))
            return None
        return {
            parse_value(kt, k, doc, path, errors): parse_value(vt, x, doc, (*path, k), errors)
            for k, x in v.items()
        }
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _parse_dataclass(tp, v, doc, path, errors)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            if isinstance(v, str):
                by_name = {m.name.lower(): m for m in tp}
                if v.lower() in by_name:
                    return by_name[v.lower()]
            return tp(v)
        except (ValueError, KeyError):
            names = ", ".join(m.name.lower() for m in tp)
            errors.append(doc.error(path, f"must be one of {names}, got {v!r}"))
            return None
    if tp is Duration:
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            try:
                return Duration.parse(v)
            except ValueError as exc:
                errors.append(doc.error(path, str(exc)))
                return None
        errors.append(doc.error(path, f"expected a duration (30s, 5m, 1h), got {_describe(v)}"))
        return None
    if tp is bool:
        if isinstance(v, bool):
            return v
        errors.append(doc.error(path, f"expected a boolean, got {_describe(v)}"))
        return None
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        errors.append(doc.error(path, f"expected an integer, got {_describe(v)}"))
        return None
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        errors.append(doc.error(path, f"expected a number, got {_describe(v)}"))
        return None
    if tp is str:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)
        errors.append(doc.error(path, f"expected a string, got {_describe(v)}"))
        return None
    errors.append(doc.error(path, f"unsupported config type {tp!r}"))
    return None


def _parse_dataclass(
    cls: type, v: Any, doc: YamlDoc, path: KeyPath, errors: list[ConfigError]
) -> Any:
    if v is None:
        v = {}
    if not isinstance(v, dict):
        errors.append(doc.error(path, f"expected a mapping, got {_describe(v)}"))
        return None
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    aliases = {f.metadata.get("yaml", f.name): f.name for f in fields.values()}
    kwargs: dict[str, Any] = {}
    n_before = len(errors)
    for key, raw in v.items():
        name = aliases.get(key)
        if name is None:
            known = ", ".join(sorted(aliases))
            errors.append(doc.error((*path, key), f"unknown key (known: {known})", at_key=True))
            continue
        f = fields[name]
        out = parse_value(hints[name], raw, doc, (*path, key), errors)
        check = f.metadata.get("check")
        if check is not None and out is not None and len(errors) == n_before:
            msg = check(out)
            if msg:
                errors.append(doc.error((*path, key), msg))
        kwargs[name] = out
    for yname, name in aliases.items():
        f = fields[name]
        if (
            name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            errors.append(doc.error(path, f"missing required key {format_path((*path, yname))!r}"))
    if len(errors) != n_before:
        return None
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        errors.append(doc.error(path, str(exc)))
        return None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        for key, msg in validate() or ():
            errors.append(doc.error((*path, *key), msg))
    return obj
