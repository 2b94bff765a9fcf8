"""What the operator-facing surfaces (the HTTP API, the console) use of the alert sink, as a
Protocol: they are typed against this, not against the sink's module, so the sink, the
API and the console stay apart (the engine wires the sink into them).

:class:`~riskwatch.alerts.sink.AlertSink` satisfies it; a test may pass a small fake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from riskwatch.alerts.state import Alert
from riskwatch.alerts.store import AlertStore, Silence
from riskwatch.clock import Clock

__all__ = ["AlertService", "ReadyCheck"]


class ReadyCheck(Protocol):
    def ready(self) -> bool: ...


class AlertService(Protocol):
    @property
    def store(self) -> AlertStore: ...

    @property
    def clock(self) -> Clock: ...

    def get(self, alert_id: str) -> Alert: ...

    def live(self, alerts: Iterable[Alert]) -> list[Alert]: ...

    def open_alerts(self) -> list[Alert]: ...

    def open_count(self) -> int: ...

    def mqtt_notifiers(self) -> Sequence[ReadyCheck]: ...

    def health_snapshot(self) -> dict[str, Any]: ...

    def ack(self, alert_id: str, who: str, note: str | None = None) -> Alert: ...

    def shelve(self, alert_id: str, who: str, reason: str, duration_s: float) -> Alert: ...

    def unshelve(self, alert_id: str, who: str, note: str | None = None) -> Alert: ...

    def out_of_service(
        self, alert_id: str, who: str, reason: str, duration_s: float | None = None
    ) -> Alert: ...

    def return_to_service(self, alert_id: str, who: str, note: str | None = None) -> Alert: ...

    def close(self, alert_id: str, who: str, note: str) -> Alert: ...

    def add_silence(
        self, matchers: dict[str, list[str]], author: str, reason: str,
        ends_ns: int, starts_ns: int | None = None,
    ) -> Silence: ...  # fmt: skip

    def expire_silence(self, silence_id: str) -> Silence: ...

    def silences(self) -> list[Silence]: ...
