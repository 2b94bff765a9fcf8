"""Alert lifecycle for control rooms: state machine, durable store, timers, noise control,
notifiers, operator API and alarm-system health.

Importing this package is cheap; the ``alerts:`` config section is :mod:`riskwatch.config.alerts`;
:func:`build_sink` imports the heavy parts when the engine asks for a sink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from riskwatch.alerts.sink import AlertSink

__all__ = ["build_sink"]


def build_sink(
    cfg: Any, registry: Any, publisher: Any, metrics_registry: Any, clock: Any
) -> AlertSink:
    """The engine's signal sink: see :class:`riskwatch.alerts.sink.AlertSink`."""
    from riskwatch.alerts.sink import AlertSink

    return AlertSink.from_engine_config(cfg, registry, publisher, metrics_registry, clock)
