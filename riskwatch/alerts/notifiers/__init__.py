"""Notifier plugins (a registry: YAML ``kind`` -> factory) and their runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskwatch.alerts.notifiers.base import NotifierMetrics, NotifierRunner
from riskwatch.alerts.notifiers.log import LogNotifier
from riskwatch.alerts.notifiers.mqtt import MqttNotifier
from riskwatch.alerts.notifiers.webhook import WebhookNotifier
from riskwatch.config.alerts import NotifierConfig
from riskwatch.errors import NotifyError

__all__ = [
    "NOTIFIERS",
    "LogNotifier",
    "MqttNotifier",
    "NotifierMetrics",
    "NotifierRunner",
    "NotifyError",
    "WebhookNotifier",
    "build_notifier",
]


def _mqtt(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> MqttNotifier:
    return MqttNotifier(c.label, publisher, c.topic, c.summary_topic, c.qos)


def _webhook(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> WebhookNotifier:
    assert c.url is not None
    return WebhookNotifier(c.label, c.url, c.secret(), c.timeout_s)


def _log(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> LogNotifier:
    return LogNotifier(c.label, base(c.file) if c.file else None)


NOTIFIERS: dict[str, Callable[[NotifierConfig, Any, Callable[[str], Path]], Any]] = {
    "mqtt": _mqtt,
    "webhook": _webhook,
    "log": _log,
}


def build_notifier(c: NotifierConfig, publisher: Any, base: Callable[[str], Path] = Path) -> Any:
    return NOTIFIERS[c.kind](c, publisher, base)
