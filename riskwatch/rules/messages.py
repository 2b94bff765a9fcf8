"""Signals of per-reading rules and their messages: built-in templates (cached), a rule's own text.

A built-in message reads ``"<sensor key>: <body> [<rule>, <state>]"``. The body belongs
to the condition kind (``value 1.62 % >= power-off 1.5 %``) and depends only on the rule,
the state, the colour and the sensor's unit and kind, so it is compiled once per such
combination into a ``str.format`` template over (sensor key, value, threshold); a signal
then costs one ``format``. Condition kinds write their body with the :data:`VALUE` and
:data:`THRESHOLD` placeholders.

A rule's own ``message:`` is a ``str.format`` template over ``sensor, rule, state, level,
label, value, threshold, unit, kind, location``; unknown fields stay as written.
:class:`SignalWriter` turns the changed rows of a batch into :class:`~riskwatch.model.Signal` s.

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
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from riskwatch.catalog import SensorRegistry
from riskwatch.model import Signal, SignalSource, SignalState
from riskwatch.rules.levels import LEVELS

__all__ = [
    "THRESHOLD",
    "VALUE",
    "MessageBody",
    "MessageRule",
    "SignalWriter",
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


class MessageRule(MessageBody, Protocol):
    """What writing a per-reading rule's signals needs of it."""

    @property
    def own_message(self) -> str | None:
        """The rule's ``message:`` template, if it gives one."""
        ...

    def label(self, column: int) -> str: ...


_STATES = (SignalState.RESOLVED, SignalState.PENDING, SignalState.FIRING)  # by signal code


class SignalWriter:
    """Signals of the per-reading rules, with their message templates cached per (rule,
    state, colour, unit, kind): a signal costs one ``str.format``."""

    def __init__(self, rules: Sequence[MessageRule]) -> None:
        self.rules = list(rules)
        self.names = [r.name for r in self.rules]
        self.templates: dict[tuple[int, int, int, str, str], str] = {}

    def write(
        self, registry: SensorRegistry, rule: np.ndarray, sensor: np.ndarray, time: np.ndarray,
        code: np.ndarray, column: np.ndarray, value: np.ndarray, threshold: np.ndarray,
    ) -> list[Signal]:  # fmt: skip
        """One signal per row: rule index, sensor id, time, state code (0 resolved, 1
        pending, 2 firing), colour column, and the value and threshold it quotes."""
        reg = registry
        cols = {c: reg.column(c) for c in ("unit", "kind", "location")}
        ent, site, name = (
            reg.column(c).take(sensor).tolist() for c in ("enterprise", "site", "sensor")
        )
        templates = self.templates
        rules = self.rules
        names = self.names
        isfinite = math.isfinite
        out: list[Signal] = []
        append = out.append
        for c_, k_, t_, val, th, rule_i, sid, unit, kind, e_, si_, n_ in zip(
            code.tolist(), column.tolist(), time.tolist(), value.tolist(), threshold.tolist(),
            rule.tolist(), sensor.tolist(), cols["unit"].take(sensor).tolist(),
            cols["kind"].take(sensor).tolist(), ent, site, name, strict=True,
        ):  # fmt: skip
            state = _STATES[c_]
            tk = (rule_i, c_, k_, unit, kind)
            tpl = templates.get(tk)
            if tpl is None:
                r = rules[rule_i]
                tpl = templates[tk] = (
                    "" if r.own_message else builtin_template(r, state, k_, unit or "", kind)
                )
            if tpl:  # (fill_template, inlined)
                msg = tpl.format(
                    f"{e_}/{si_}/{n_}",  # the sensor key, as SensorRegistry.key
                    f"{val:.4g}" if isfinite(val) else "n/a",
                    f"{th:.4g}" if isfinite(th) else "n/a",
                ).replace("  ", " ")
            else:  # the rule's own message template
                r = rules[rule_i]
                assert r.own_message is not None
                msg = rule_message(
                    r.own_message, sensor=reg.key(sid), rule=r.name, state=state,
                    level=LEVELS[k_].colour, label=r.label(k_), value=val, threshold=th,
                    unit=cols["unit"][sid] or "", kind=cols["kind"][sid],
                    location=cols["location"][sid],
                )  # fmt: skip
            append(Signal(names[rule_i], sid, t_, state, LEVELS[k_] if c_ else None, val, th,
                          msg, SignalSource.RULE))  # fmt: skip
        return out
