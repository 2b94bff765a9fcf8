"""Small helpers for alert tests: a capturing publisher (the Publisher protocol), a sink on
a real SQLite file with a manual clock, and signal builders."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from riskwatch.alerts.sink import AlertSink
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import ManualClock
from riskwatch.config.alerts import AlertsConfig, NotifierConfig
from riskwatch.model import Level, Signal
from riskwatch.pipeline import StageContext

T0 = 1_795_880_000 * 1_000_000_000
S = 1_000_000_000


class CapturePublisher:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[str, bytes, int, bool]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        with self.lock:
            self.sent.append((topic, payload, qos, retain))

    def alerts(self, prefix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [orjson.loads(p) for t, p, q, r in self.sent if not r and t.startswith(prefix)]

    def retained(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {t: orjson.loads(p) for t, p, q, r in self.sent if r}


class Rig:
    """A started sink on ``tmp/alerts.sqlite``; ``sig`` / ``tick`` drive it."""

    def __init__(self, tmp: Path, **cfg: Any) -> None:
        self.tmp = tmp
        self.reg = SensorRegistry()
        self.ids = self.reg.intern("m1", "face1", ["CH4-01", "CH4-02", "CO-01"]).tolist()
        self.reg.intern("m1", "face2", ["CH4-01"])
        self.reg.intern("m2", "pit", ["CH4-01"])
        self.clock = ManualClock(T0)
        self.pub = CapturePublisher()
        cfg.setdefault("store", str(tmp / "alerts.sqlite"))
        cfg.setdefault("notify", [NotifierConfig(kind="mqtt", topic="al/{enterprise}")])
        self.cfg = AlertsConfig(**cfg)
        self.sink = self.new_sink()

    def new_sink(self) -> AlertSink:
        s = AlertSink(self.cfg, self.reg, self.pub, CollectorRegistry(), self.clock)
        s.start()
        return s

    def ctx(self) -> StageContext:
        return StageContext(self.clock.now_ns(), self.reg)

    def sig(self, state: str, level: Level | None = Level.ORANGE, sensor: int = 0,
            rule: str = "ch4", value: float = 1.2, **kw: Any) -> None:  # fmt: skip
        self.sig_nowait(state, level, sensor, rule, value, **kw)
        assert self.sink.wait_idle()

    def sig_nowait(self, state: str, level: Level | None = Level.ORANGE, sensor: int = 0,
                   rule: str = "ch4", value: float = 1.2, **kw: Any) -> None:  # fmt: skip
        s = Signal(rule, sensor, self.clock.now_ns(), state,  # type: ignore[arg-type]
                   level if state != "resolved" else None, value, 1.0, f"{rule} {state}", **kw)  # fmt: skip
        self.sink.handle([s], self.ctx())

    def tick(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self.sink.tick(self.ctx())
        assert self.sink.wait_idle()

    def sent(self) -> list[tuple[str, str, str | None]]:
        """(action, state, level) of every MQTT alert message so far."""
        return [(m["action"], m["state"], m["level"]) for m in self.pub.alerts("al/")]

    def only(self):  # type: ignore[no-untyped-def]
        (a,) = self.sink.open_alerts()
        return a
