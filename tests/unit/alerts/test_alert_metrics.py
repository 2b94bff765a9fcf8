"""The alert metrics Prometheus scrapes, over a sink on a manual clock: time-to-ack is a
real histogram (buckets, sum, count; no gauge with a ``quantile="50"``), open alerts are a
gauge by level and state, the build is an info metric, and notification outcomes count by
notifier and result."""

from __future__ import annotations

import platform
from pathlib import Path

import riskwatch
from riskwatch.alerts.notifiers import NotifierMetrics, NotifierRunner, NotifyError
from riskwatch.alerts.store import AlertStore, Delivery
from riskwatch.model import Level
from tests.unit.alerts.helpers import Rig


def _v(rig: Rig, metric: str, **labels: str) -> float | None:
    return rig.sink.metrics_registry.get_sample_value(metric, labels)


def test_time_to_ack_histogram_and_open_alerts_by_level_and_state(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", Level.RED, sensor=0)
    r.sig("firing", Level.ORANGE, sensor=1)
    r.tick(45)  # 45 s later an operator acknowledges the red one
    red = next(a for a in r.sink.open_alerts() if a.level == Level.RED)
    r.sink.ack(red.id, "Li")
    assert r.sink.wait_idle()
    r.tick(11)  # the next health snapshot (every 10 s of engine time)
    site = {"scope": "site", "name": "m1/face1"}
    h = "riskwatch_alarm_time_to_ack_seconds"
    assert _v(r, f"{h}_bucket", **site, le="30.0") == 0.0
    assert _v(r, f"{h}_bucket", **site, le="60.0") == 1.0
    assert _v(r, f"{h}_bucket", **site, le="+Inf") == 1.0
    assert (_v(r, f"{h}_count", **site), _v(r, f"{h}_sum", **site)) == (1.0, 45.0)
    assert _v(r, h, **site, quantile="50") is None  # the old gauge is gone
    assert _v(r, "riskwatch_alarm_time_to_ack_24h_seconds", **site, quantile="0.5") == 45.0
    o = "riskwatch_alerts_open"
    assert _v(r, o, level="red", state="acknowledged") == 1.0
    assert _v(r, o, level="orange", state="firing") == 1.0
    assert _v(r, o, level="red", state="firing") == 0.0  # present at zero, never missing
    r.sig("resolved", None, sensor=1)  # resolved unacknowledged: still open (ISA-18.2)
    r.tick(11)
    assert _v(r, o, level="orange", state="firing") == 0.0
    assert _v(r, o, level="orange", state="resolved") == 1.0
    assert _v(r, "riskwatch_build_info", version=riskwatch.__version__,
              python=platform.python_version()) == 1.0  # fmt: skip
    r.sink.stop()


class Flaky:
    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, d: Delivery) -> None:
        self.calls += 1
        if d.id.startswith("bad"):
            raise NotifyError("refused", retryable=False)
        if self.calls == 1:
            raise NotifyError("busy", retryable=True)

    def close(self) -> None:
        return None


def test_outcomes_by_notifier_and_result(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    store = AlertStore(tmp_path / "a.sqlite")
    ds = [Delivery("ok1", "a", "flaky", b"{}", "m1", "f1", 1),
          Delivery("bad1", "a", "flaky", b"{}", "m1", "f1", 2)]  # fmt: skip
    store.write([], [], [], ds)
    reg = CollectorRegistry()
    run = NotifierRunner(Flaky(), store, NotifierMetrics(reg), retry_initial_s=0.01)
    run.request_catch_up()
    run.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while not run.idle() and time.monotonic() < deadline:
            time.sleep(0.01)
        got = {res: reg.get_sample_value("riskwatch_alert_notifications_total",
                                         {"notifier": "flaky", "result": res})
               for res in ("sent", "retry", "failed", "error")}  # fmt: skip
        assert got == {"sent": 1.0, "retry": 1.0, "failed": 1.0, "error": 0.0}
    finally:
        run.stop()
