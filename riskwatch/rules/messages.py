"""Signal messages of per-reading rules: built-in templates (cached) and a rule's own text.

A built-in message reads ``"<sensor key>: <body> [<rule>, <state>]"``. The body belongs
to the condition kind (``value 1.62 % >= power-off 1.5 %``) and depends only on the rule,
the state, the colour and the sensor's unit and kind, so it is compiled once per such
combination into a ``str.format`` template over (sensor key, value, threshold); a signal
then costs one ``format``. Condition kinds write their body with the :data:`VALUE` and
:data:`THRESHOLD` placeholders.

A rule's own ``message:`` is a ``str.format`` template over ``sensor, rule, state, level,
label, value, threshold, unit, kind, location``; unknown fields stay as written.

>>> class Hot:
...     name = "hot"
...     def message_body(self, state, column, unit, kind_col):
...         return f"{kind_col} {VALUE} {unit} >= {THRESHOLD} {unit}"
>>> tpl = builtin_template(Hot(), SignalState.FIRING, 0, "°C", "temp")
>>> fill_template(tpl, "m/s/T1", 31.25, 30.0)
'm/s/T1: temp 31.25 °C >= 30 °C [hot, firing]'
>>> rule_message("{sensor} {value}{unit} {nope}", sensor="m/s/T1", rule="hot",
...              state=SignalState.FIRING, level="red", label="red", value=31.25,
...              threshold=30.0, unit="°C", kind="temp", location="")
'm/s/T1 31.25°C {nope}'
"""

from __future__ import annotations

import math
from typing import Protocol

from riskwatch.model import SignalState

__all__ = [
    "THRESHOLD",
    "VALUE",
    "MessageBody",
    "builtin_template",
    "fill_template",
    "format_number",
    "rule_message",
]

VALUE, THRESHOLD = "\x01", "\x02"  # placeholders in a body, made format fields below
_KEY = "\x03"


class MessageBody(Protocol):
    """What a built-in template needs of a compiled rule."""

    @property
    def name(self) -> str: ...

    def message_body(self, state: SignalState, column: int, unit: str, kind_col: str) -> str:
        """The body with :data:`VALUE` / :data:`THRESHOLD` where the numbers go."""
        ...


def format_number(x: float) -> str:
    """Four significant digits; ``n/a`` for NaN and infinities."""
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}"


def builtin_template(
    rule: MessageBody, state: SignalState, column: int, unit: str, kind_col: str
) -> str:
    """The built-in message as a ``str.format`` template over (sensor key, value, threshold)."""
    body = rule.message_body(state, column, unit, kind_col)
    text = f"{_KEY}: {body} [{rule.name}, {state}]"
    text = text.replace("{", "{{").replace("}", "}}")
    return text.replace(_KEY, "{0}").replace(VALUE, "{1}").replace(THRESHOLD, "{2}")


def fill_template(template: str, key: str, value: float, threshold: float) -> str:
    """A message from a :func:`builtin_template` (the per-signal path inlines this)."""
    return template.format(key, format_number(value), format_number(threshold)).replace("  ", " ")


class _KeepUnknown(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def rule_message(
    template: str,
    *,
    sensor: str,
    rule: str,
    state: SignalState,
    level: str,
    label: str,
    value: float,
    threshold: float,
    unit: str,
    kind: str,
    location: str,
) -> str:
    """A rule's own ``message:`` template filled in (unknown fields stay as written)."""
    fields = _KeepUnknown(
        sensor=sensor,
        rule=rule,
        state=state,
        level=level,
        label=label,
        value=format_number(value),
        threshold=format_number(threshold),
        unit=unit,
        kind=kind,
        location=location,
    )
    return template.format_map(fields)
