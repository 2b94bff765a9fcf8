"""The alert sink's counters, on an injected Prometheus registry: signals by outcome,
transitions by action, and transitions recorded but not notified by reason. Label values
are the enums' values, so the label sets stay bounded.

The engine's ``riskwatch_build_info{version, python}`` (always 1, Prometheus' info-metric
convention: join it on to tell which version produced a series) is registered here too,
since every engine builds exactly one alert sink per registry.

>>> from prometheus_client import CollectorRegistry
>>> reg = CollectorRegistry()
>>> m = AlertMetrics(reg)
>>> m.signal(Outcome.DEDUP); m.transition(Action.ESCALATE); m.muted(SuppressReason.SILENCE)
>>> reg.get_sample_value("riskwatch_alert_muted_total", {"reason": "silence"})
1.0
>>> import platform, riskwatch
>>> reg.get_sample_value("riskwatch_build_info", {"version": riskwatch.__version__,
...                      "python": platform.python_version()})
1.0
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge

import riskwatch
from riskwatch.alerts.records import Action, Outcome
from riskwatch.alerts.stages.muter import SuppressReason

__all__ = ["AlertMetrics", "register_build_info"]


def register_build_info(registry: CollectorRegistry) -> Gauge:
    """``riskwatch_build_info{version, python} 1`` on ``registry``."""
    g = Gauge("riskwatch_build_info", "riskwatch build: version and Python (always 1)",
              ["version", "python"], registry=registry)  # fmt: skip
    g.labels(riskwatch.__version__, platform.python_version()).set(1)
    return g


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.build_info = register_build_info(registry)
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
