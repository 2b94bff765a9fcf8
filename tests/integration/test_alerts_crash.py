"""kill -9 of a process running the sink with open, pending and acknowledged alerts and
with webhook notifications still undelivered (receiver down); a restart restores every
alert and timer, delivers the backlog, and re-sends nothing that was already delivered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import free_port
from tests.integration.alerts_helpers import WebhookReceiver
from tests.integration.spine_helpers import Collector, unique, wait_for

pytestmark = pytest.mark.integration

T0 = 1_795_880_000 * 10**9


class Child:
    def __init__(self, db: Path, cfg: Path) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.alerts_helpers", str(db), str(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parents[2],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def cmd(self, **kw: Any) -> Any:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write((json.dumps(kw) + "\n").encode())
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, f"child died on {kw}"
        return json.loads(line)

    def kill9(self) -> None:
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(10)


def test_kill9_restores_everything_without_duplicates(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("rwk")
    hook_port = free_port()  # nothing listens yet: the webhook is down
    spec = {
        "t0": T0,
        "mqtt_port": mqtt_addr[1],
        "alerts": {
            "store": str(tmp_path / "alerts.sqlite"),
            "escalate_after_s": {"orange": 60},
            "notify": [
                {"kind": "mqtt", "topic": f"{root}/{{enterprise}}", "summary_topic": None},
                {"kind": "webhook", "url": f"http://127.0.0.1:{hook_port}/hook",
                 "secret_env": "RW_TEST_HOOK_SECRET", "retry_initial_s": 0.05,
                 "retry_max_s": 0.2, "timeout_s": 1},
            ],
        },
    }  # fmt: skip
    (tmp_path / "cfg.json").write_text(json.dumps(spec))
    os.environ["RW_TEST_HOOK_SECRET"] = "s3cret"
    col = Collector(*mqtt_addr, f"{root}/#")
    c = Child(tmp_path / "alerts.sqlite", tmp_path / "cfg.json")
    c.cmd(op="sig", rule="ch4", sensor=0, state="firing", level="orange")
    c.cmd(op="sig", rule="ch4", sensor=1, state="firing", level="red")
    c.cmd(op="sig", rule="ch4", sensor=2, state="pending", level="orange")
    opened = {a["sensor"]: a for a in c.cmd(op="open")}
    c.cmd(op="ack", id=opened["CH4-01"]["id"])
    wait_for(lambda: c.cmd(op="idle") is True, timeout=10, what="MQTT notifier idle")
    wait_for(lambda: len(col.messages) == 4, timeout=10, what="4 MQTT alerts before the kill")
    before = c.cmd(op="open")
    c.kill9()

    hook = WebhookReceiver(port=hook_port)  # the webhook comes back
    c2 = Child(tmp_path / "alerts.sqlite", tmp_path / "cfg.json")
    try:
        assert c2.cmd(op="open") == before
        wait_for(lambda: len(hook.received) == 4, timeout=15, what="webhook backlog delivered")
        c2.cmd(op="tick", s=60)  # escalation timer of CH4-00 survived the crash
        c2.cmd(op="sig", rule="ch4", sensor=2, state="firing", level="orange")
        wait_for(lambda: len(col.messages) == 6, timeout=10, what="2 more MQTT alerts")
        wait_for(lambda: len(hook.received) == 6, timeout=10, what="2 more webhook calls")
        msgs = [orjson.loads(p) for _, p in col.messages]
        events = [m["event"] for m in msgs]
        assert len(set(events)) == len(events) == 6  # nothing sent twice
        assert [(m["sensor"], m["action"]) for m in msgs] == [
            ("CH4-00", "firing"), ("CH4-01", "firing"), ("CH4-02", "pending"),
            ("CH4-01", "ack"), ("CH4-00", "escalate"), ("CH4-02", "firing"),
        ]  # fmt: skip
        assert hook.events() == events  # in order, each once
        assert hook.bad_signatures == 0
        assert {a["sensor"]: a["state"] for a in c2.cmd(op="open")} == {
            "CH4-00": "firing", "CH4-01": "acknowledged", "CH4-02": "firing"}  # fmt: skip
    finally:
        c2.kill9()
        hook.close()
        col.close()
