"""Conformance over every registered notifier plugin, and the runner's retry/give-up rules
with a scripted plugin (the real MQTT and webhook plugins are tested in integration)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from riskwatch.alerts.notifiers import (
    NOTIFIERS,
    NotifierMetrics,
    NotifierRunner,
    NotifyError,
    build_notifier,
)
from riskwatch.alerts.store import AlertStore, Delivery
from riskwatch.config.alerts import NotifierConfig
from riskwatch.config.engine import load_engine_config_text
from tests.unit.alerts.helpers import CapturePublisher

SAMPLE_DIR = Path(str(resources.files("riskwatch.config"))) / "notifiers"
SAMPLE_SECRETS = ("RW_DISPATCH_HMAC", "RW_AM_BRIDGE_HMAC", "RW_DINGTALK_TOKEN",
                  "RW_DINGTALK_SECRET", "RW_WECOM_KEY", "RW_SMTP_PASSWORD")  # fmt: skip


def _sample(path: Path) -> NotifierConfig:
    cfg = load_engine_config_text(path.read_text(encoding="utf-8"), file=str(path))
    (nc,) = cfg.alerts.notify
    return nc


def test_every_plugin_has_a_sample() -> None:
    """`riskwatch config sample notifiers/KIND` prints a sample for every registered kind."""
    kinds = {_sample(p).kind for p in SAMPLE_DIR.glob("*.yaml")}
    assert kinds == set(NOTIFIERS)


@pytest.mark.parametrize("path", sorted(SAMPLE_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_plugin_contract(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SAMPLE_SECRETS:
        monkeypatch.setenv(var, "x")
    nc = _sample(path)
    n = build_notifier(nc, CapturePublisher(), lambda p: tmp_path / p)
    assert n.name == nc.label
    assert callable(n.send) and callable(n.close)
    n.close()


class Scripted:
    """Fails as told, then succeeds."""

    name = "scripted"

    def __init__(self, errors: list[NotifyError]) -> None:
        self.errors = errors
        self.sent: list[str] = []

    def send(self, d: Delivery) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(d.id)

    def close(self) -> None:
        return None


def _run(tmp_path: Path, errors: list[NotifyError]) -> tuple[Scripted, NotifierRunner]:
    store = AlertStore(tmp_path / "a.sqlite")
    ds = [Delivery(f"e{i}:scripted", "a", "scripted", b"{}", "m1", "f1", i) for i in range(3)]
    store.write([], [], [], ds)
    plugin = Scripted(errors)
    r = NotifierRunner(plugin, store, NotifierMetrics(CollectorRegistry()),
                       retry_initial_s=0.01, retry_max_s=0.02)  # fmt: skip
    r.start()
    r.request_catch_up()
    return plugin, r


def test_retryable_errors_are_retried_in_order(tmp_path: Path) -> None:
    plugin, r = _run(tmp_path, [NotifyError("503", retryable=True)] * 3)
    import time

    deadline = time.monotonic() + 10
    while not r.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert plugin.sent == ["e0:scripted", "e1:scripted", "e2:scripted"]
    assert r.store.delivery_counts() == {("scripted", "delivered"): 3}
    r.stop()


def test_a_non_retryable_error_gives_up_that_one_only(tmp_path: Path) -> None:
    plugin, r = _run(tmp_path, [NotifyError("400", retryable=False)])
    import time

    deadline = time.monotonic() + 10
    while not r.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert plugin.sent == ["e1:scripted", "e2:scripted"]
    assert r.store.delivery_counts() == {("scripted", "delivered"): 2, ("scripted", "failed"): 1}
    assert (r.failed_total, r.last_error) == (1, "400")
    r.stop()


def test_mqtt_waits_for_the_connection() -> None:
    """The engine's receiver process drops what is published before it runs: the notifier
    must fail (retryable) instead of counting it as sent."""
    import threading

    from riskwatch.alerts.notifiers import MqttNotifier

    pub = CapturePublisher()
    pub.connected = threading.Event()  # type: ignore[attr-defined]
    n = MqttNotifier("mqtt", pub, "al/{enterprise}", None)
    d = Delivery("x", "a", "mqtt", b"{}", "m1", "f1", 0)
    with pytest.raises(NotifyError, match="not connected") as ei:
        n.send(d)
    assert ei.value.retryable and pub.sent == []
    pub.connected.set()  # type: ignore[attr-defined]
    n.send(d)
    assert [t for t, *_ in pub.sent] == ["al/m1"]


def test_new_notifications_wait_behind_an_outbox_backlog(tmp_path: Path) -> None:
    """A notification offered while older ones still wait in the outbox (the queue was
    full) is delivered after them, not ahead: catching up keeps the order."""
    import threading

    class Gated(Scripted):
        def __init__(self) -> None:
            super().__init__([])
            self.entered, self.gate = threading.Event(), threading.Event()

        def send(self, d: Delivery) -> None:
            self.entered.set()
            assert self.gate.wait(10)
            super().send(d)

    store = AlertStore(tmp_path / "a.sqlite")
    ds = [Delivery(f"e{i}:scripted", "a", "scripted", b"{}", "m1", "f1", i) for i in range(6)]
    store.write([], [], [], ds[:5])
    plugin = Gated()
    r = NotifierRunner(plugin, store, NotifierMetrics(CollectorRegistry()), queue_max=2,
                       retry_initial_s=0.01, retry_max_s=0.02)  # fmt: skip
    r.start()
    r.request_catch_up()  # e0, e1 queued; e2..e4 wait in the outbox
    assert plugin.entered.wait(10)  # e0 in flight, e1 queued: the queue has room again
    with store.lock:  # what the sink does: commit the row, then offer it
        store.write([], [], [], ds[5:])
        r.offer(ds[5:])
    plugin.gate.set()
    import time

    deadline = time.monotonic() + 10
    while not r.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    r.stop()
    assert plugin.sent == [d.id for d in ds]


def test_the_runner_reads_only_its_injected_clocks(tmp_path: Path) -> None:
    """Give-up age from the injected monotonic clock (no waiting: each reading jumps an
    hour), the outbox's done time from the injected wall clock."""
    import itertools
    import sqlite3
    import time

    hours = itertools.count(0, 3600.0)
    store = AlertStore(tmp_path / "a.sqlite")
    ds = [Delivery(f"e{i}:scripted", "a", "scripted", b"{}", "m1", "f1", i) for i in range(2)]
    store.write([], [], [], ds)
    plugin = Scripted([NotifyError("503", retryable=True)])
    r = NotifierRunner(plugin, store, NotifierMetrics(CollectorRegistry()),
                       retry_initial_s=0.01, give_up_after_s=1800.0,
                       monotonic=lambda: next(hours), time_ns=lambda: 42)  # fmt: skip
    r.start()
    r.request_catch_up()
    deadline = time.monotonic() + 10
    while not r.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    r.stop()
    assert plugin.sent == ["e1:scripted"]  # e0 was an hour old at its first failure
    assert r.failed_total == 1
    db = sqlite3.connect(tmp_path / "a.sqlite")
    rows = db.execute("select id, status, done_ns from rw_outbox order by n").fetchall()
    assert rows == [("e0:scripted", "failed", 42), ("e1:scripted", "delivered", 42)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/robot/send?access_token=TOPSECRET",  # connection refused
        "http://bot:TOPSECRET@127.0.0.1:9/hook",  # credentials in the URL
        "http://127.0.0.1:99999/hook?k=TOPSECRET",  # a broken port: not retryable
    ],
    ids=["query", "userinfo", "invalid"],
)
def test_webhook_errors_never_name_the_secret(url: str) -> None:
    from riskwatch.alerts.notifiers.webhook import WebhookNotifier

    n = WebhookNotifier("hook", url, None, timeout_s=1)
    with pytest.raises(NotifyError) as ei:
        n.send(Delivery("e1:hook", "a", "hook", b"{}", "m1", "f1", 0))
    n.close()
    assert "TOPSECRET" not in str(ei.value)
    assert str(ei.value).startswith("webhook http://127.0.0.1:")
