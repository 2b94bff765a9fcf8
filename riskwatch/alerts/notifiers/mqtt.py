"""MQTT notifier: the alert JSON on a per-enterprise topic (QoS 1), and a retained
per-site summary of open alerts so a console that connects late sees the current picture.

>>> class P:
...     def publish(self, topic, payload, qos=1, retain=False): print(topic, payload, qos, retain)
>>> from riskwatch.alerts.store import Delivery
>>> n = MqttNotifier("mqtt", P(), "al/{enterprise}", "sum/{enterprise}/{site}")
>>> n.send(Delivery("x", "a", "mqtt", b"{}", "m1", "f1", 0))
al/m1 b'{}' 1 False
>>> n.publish_summary("m1", "f1", b"[]")
sum/m1/f1 b'[]' 1 True
"""

from __future__ import annotations

import threading
from typing import Any

from riskwatch.alerts.store import Delivery
from riskwatch.errors import NotifyError

__all__ = ["MqttNotifier"]


class MqttNotifier:
    def __init__(
        self, name: str, publisher: Any, topic: str, summary_topic: str | None, qos: int = 1
    ) -> None:
        self.name = name
        self.publisher = publisher
        self.topic = topic
        self.summary_topic = summary_topic
        self.qos = qos

    def send(self, d: Delivery) -> None:
        if not self.ready():
            raise NotifyError("MQTT client not connected", retryable=True)
        topic = self.topic.format(enterprise=d.enterprise or "_", site=d.site or "_")
        try:
            self.publisher.publish(topic, d.payload, self.qos, False)
        except Exception as exc:
            raise NotifyError(f"MQTT publish to {topic} failed: {exc}", retryable=True) from exc

    def ready(self) -> bool:
        """Connected (when the publisher says: the engine's clients have a ``connected``
        event). The engine's receiver process drops what is published before it runs, so
        sending early would mark undelivered notifications delivered."""
        if self.publisher is None:
            return False
        conn = getattr(self.publisher, "connected", None)
        return not isinstance(conn, threading.Event) or conn.is_set()

    def publish_summary(self, enterprise: str, site: str, payload: bytes) -> None:
        if self.summary_topic is None or self.publisher is None:
            return
        topic = self.summary_topic.format(enterprise=enterprise or "_", site=site or "_")
        self.publisher.publish(topic, payload, self.qos, True)

    def close(self) -> None:
        return None
