"""Routing: each notifier takes the alerts its ``match`` accepts and whose escalation tier
is at least its ``min_tier`` (so a tier-2 notifier hears only escalated alerts).

>>> from riskwatch.config.alerts import NotifierConfig
>>> r = Router([NotifierConfig(kind="log"), NotifierConfig(kind="mqtt", name="red-only",
...            match={"level": ["red"]}), NotifierConfig(kind="log", name="boss", min_tier=1)])
>>> r.targets({"level": "orange"}, tier=0), r.targets({"level": "red"}, tier=1)
(['log'], ['log', 'red-only', 'boss'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.config.alerts import NotifierConfig

__all__ = ["Router"]


class Router:
    def __init__(self, notifiers: Sequence[NotifierConfig]) -> None:
        self.routes = [(n.label, Matchers(n.match), n.min_tier) for n in notifiers]

    def targets(self, labels: Mapping[str, str], tier: int) -> list[str]:
        return [name for name, m, min_tier in self.routes if tier >= min_tier and m(labels)]
