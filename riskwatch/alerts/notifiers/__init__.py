"""Notifier plugins (a registry: YAML ``kind`` -> factory) and their runner.

Kinds: ``mqtt``, ``webhook`` (riskwatch's JSON or Alertmanager's), ``log``, ``dingtalk``,
``wecom`` and ``email``; each plugin only sends, :class:`NotifierRunner` does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from riskwatch.alerts.notifiers.base import NotifierMetrics, NotifierRunner, NotifyResult
from riskwatch.alerts.notifiers.email import EmailNotifier
from riskwatch.alerts.notifiers.log import LogNotifier
from riskwatch.alerts.notifiers.message import Renderer
from riskwatch.alerts.notifiers.mqtt import MqttNotifier
from riskwatch.alerts.notifiers.robots import DingTalkNotifier, WeComNotifier
from riskwatch.alerts.notifiers.webhook import WebhookNotifier
from riskwatch.config.alerts import NotifierConfig
from riskwatch.errors import NotifyError

__all__ = [
    "NOTIFIERS",
    "DingTalkNotifier",
    "EmailNotifier",
    "LogNotifier",
    "MqttNotifier",
    "NotifierMetrics",
    "NotifierRunner",
    "NotifyError",
    "NotifyResult",
    "WeComNotifier",
    "WebhookNotifier",
    "build_notifier",
]


def _mqtt(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> MqttNotifier:
    return MqttNotifier(c.label, publisher, c.topic, c.summary_topic, c.qos)


def _webhook(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> WebhookNotifier:
    return WebhookNotifier(c.label, c.post_url(), c.secret(), c.timeout_s, format=c.format,
                           signature=c.signature, external_url=c.external_url)  # fmt: skip


def _log(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> LogNotifier:
    return LogNotifier(c.label, base(c.file) if c.file else None)


def _renderer(c: NotifierConfig) -> Renderer:
    return Renderer(c.lang, c.timezone, c.site_timezones, title_template=c.title_template,
                    text_template=c.text_template)  # fmt: skip


def _dingtalk(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> DingTalkNotifier:
    return DingTalkNotifier(c.label, c.post_url(), c.token(), c.secret(), _renderer(c),
                            at_mobiles=tuple(c.at_mobiles), timeout_s=c.timeout_s)  # fmt: skip


def _wecom(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> WeComNotifier:
    return WeComNotifier(c.label, c.post_url(), c.token(), _renderer(c), timeout_s=c.timeout_s)


def _email(c: NotifierConfig, publisher: Any, base: Callable[[str], Path]) -> EmailNotifier:
    assert c.smtp_host is not None and c.from_addr is not None  # validate() says so
    return EmailNotifier(c.label, c.smtp_host, c.smtp_port, c.smtp_security, c.username,
                         c.password(), c.from_addr, tuple(c.to), _renderer(c),
                         timeout_s=c.timeout_s)  # fmt: skip


NOTIFIERS: dict[str, Callable[[NotifierConfig, Any, Callable[[str], Path]], Any]] = {
    "mqtt": _mqtt,
    "webhook": _webhook,
    "log": _log,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "email": _email,
}


def build_notifier(c: NotifierConfig, publisher: Any, base: Callable[[str], Path] = Path) -> Any:
    return NOTIFIERS[c.kind](c, publisher, base)
