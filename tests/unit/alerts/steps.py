"""Builders for the pure step tests: an alert in a given condition, and signals."""

from __future__ import annotations

from typing import Any

from riskwatch.alerts.state import Alert, AlertState
from riskwatch.model import Level, Signal, SignalState

S = 1_000_000_000
T0 = 1_795_880_000 * S


def alert(state: AlertState = AlertState.FIRING, **kw: Any) -> Alert:
    """An open alert of rule ch4 on m1/f1/S1 at orange, opened and fired at T0."""
    active = state in (AlertState.FIRING, AlertState.ACKNOWLEDGED)
    fields: dict[str, Any] = {
        "id": "a1", "key": "ch4|m1/f1/S1", "rule": "ch4", "enterprise": "m1", "site": "f1",
        "sensor": "S1", "group": None, "kind": "ch4", "source": "rule", "state": state,
        "active": active, "acked": state is AlertState.ACKNOWLEDGED, "level": 2,
        "max_level": 2, "value": 1.1, "threshold": 1.0, "message": "CH4 high",
        "since_ns": T0, "ts_ns": T0, "updated_ns": T0,
        "fired_ns": T0 if state is not AlertState.PENDING else None, "flap_times": [],
    }  # fmt: skip
    fields.update(kw)
    return Alert(**fields)


def signal(state: SignalState, level: Level | None = Level.ORANGE, at: int = T0,
           value: float = 1.2) -> Signal:  # fmt: skip
    return Signal("ch4", 0, at, state, level, value, 1.0, f"CH4 {state}")
