"""The alert sink's counters, on an injected Prometheus registry: signals by outcome,
transitions by action, and transitions recorded but not notified by reason. Label values
are the enums' values, so the label sets stay bounded.

>>> from prometheus_client import CollectorRegistry
>>> reg = CollectorRegistry()
>>> m = AlertMetrics(reg)
>>> m.signal(Outcome.DEDUP); m.transition(Action.ESCALATE); m.muted(SuppressReason.SILENCE)
>>> reg.get_sample_value("riskwatch_alert_muted_total", {"reason": "silence"})
1.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from riskwatch.alerts.records import Action, Outcome
from riskwatch.alerts.stages.muter import SuppressReason

__all__ = ["AlertMetrics"]


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.signals_total = Counter(
            "riskwatch_alert_signals", "Signals into the alert sink by outcome", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.transitions_total = Counter(
            "riskwatch_alert_transitions", "Alert transitions stored, by action", ["action"],
            registry=registry,
        )  # fmt: skip
        self.muted_total = Counter(
            "riskwatch_alert_muted", "Transitions recorded but not notified, by reason",
            ["reason"], registry=registry,
        )  # fmt: skip
        # children made up front for the outcomes every run has, the rest on first use
        self._signals = {
            o: self.signals_total.labels(o.value)
            for o in (Outcome.NEW, Outcome.TRANSITION, Outcome.DEDUP)
        }
        self._transitions: dict[Action, Counter] = {}

    def signal(self, outcome: Outcome) -> None:
        child = self._signals.get(outcome)
        if child is None:
            child = self._signals[outcome] = self.signals_total.labels(outcome.value)
        child.inc()

    def transition(self, action: Action) -> None:
        child = self._transitions.get(action)
        if child is None:
            child = self._transitions[action] = self.transitions_total.labels(action.value)
        child.inc()

    def muted(self, reason: SuppressReason) -> None:
        self.muted_total.labels(reason.value).inc()
