"""What the console reads and acts on, each as a Protocol: the alert sink's public surface
(:class:`AlertBoard`, met by :class:`riskwatch.alerts.lifecycle.AlertSink`), its store's
queries (:class:`AlertQueries`), and stored sensor series (:class:`StoredSeries`, met by
:class:`riskwatch.storage.influx_query.InfluxSeriesReader`).

The console is built from these (and the registry, the in-memory window, the user file
and a reload callable), never from the engine, so that what it depends on is written
down here and checked by the type checker where the engine wires it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from riskwatch.alerts.state import Alert, Transition

__all__ = ["AlertBoard", "AlertQueries", "SilenceView", "StoredSeries", "TransitionListener"]

#: Called by the sink with each stored group commit: (alert, transition) pairs.
TransitionListener = Callable[[list[tuple[Alert, Transition]]], None]


class AlertQueries(Protocol):
    """The alert store's searches (closed alerts too) and histories."""

    def query(
        self,
        *,
        enterprises: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        site: str | None = None,
        rule: str | None = None,
        sensor: str | None = None,
        levels: Sequence[int] | None = None,
        open_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[Alert]]: ...

    def transitions(self, alert_id: str) -> list[Transition]: ...


class SilenceView(Protocol):
    """A silence as the console shows it."""

    @property
    def ends_ns(self) -> int: ...

    @property
    def matchers(self) -> Mapping[str, list[str]]: ...

    def as_json(self, now_ns: int) -> dict[str, Any]: ...


class AlertBoard(Protocol):
    """The alert sink as the console uses it: live alerts, operator actions, silences,
    alarm-system health, and a listener for every stored change."""

    @property
    def store(self) -> AlertQueries: ...

    @property
    def by_id(self) -> Mapping[str, Alert]: ...

    def open_alerts(self) -> list[Alert]: ...

    def get(self, alert_id: str) -> Alert: ...

    def add_listener(self, fn: TransitionListener) -> None: ...

    def ack(self, alert_id: str, who: str, note: str | None = None) -> Alert: ...

    def shelve(self, alert_id: str, who: str, reason: str, duration_s: float) -> Alert: ...

    def unshelve(self, alert_id: str, who: str, note: str | None = None) -> Alert: ...

    def close(self, alert_id: str, who: str, note: str) -> Alert: ...

    def silences(self) -> Sequence[SilenceView]: ...

    def add_silence(
        self, matchers: dict[str, list[str]], author: str, reason: str, ends_ns: int
    ) -> SilenceView: ...

    def health_snapshot(self) -> dict[str, Any]: ...


class StoredSeries(Protocol):
    """One sensor's stored readings: (times ns, values) oldest first, or None when the
    store cannot say (the chart then draws from memory)."""

    def series(
        self, enterprise: str, site: str, sensor: str, since_ns: int, limit: int = 5000
    ) -> tuple[np.ndarray, np.ndarray] | None: ...
