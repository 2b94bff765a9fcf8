"""Reload over a real ``riskwatch run`` and the real Mosquitto: a removed rule's alert ends
with ``rule_removed`` and closes through ``riskwatch alerts close``; a changed threshold
above the current value resolves the alert on the next reading; a rules file added to
engine.yaml fires without a restart; a broken engine.yaml is rejected and keeps the
running set; ``riskwatch_reload_total{result}`` counts each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.spine_helpers import Collector, Publisher, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

API_PORT, METRICS_PORT = 24101, 24102
TOKEN = "reload-secret"
RULES_A = """
rules:
  - {name: t15_hot, match: {kind: temp}, level: orange, above: HOT}
  - {name: t15_gone, match: {kind: temp}, level: red, above: 50}
"""
RULES_B = "rules:\n  - {name: t15_new, match: {kind: temp}, level: yellow, above: 30}\n"


def engine_yaml(tmp: Path, mqtt_port: int, root: str, rules: list[str], extra: str = "") -> str:
    return (
        f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_port}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp}/spool'}}\n"
        "ingest: {batch_max_wait_ms: 50, reload_check_s: 600, "
        f"deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
        f"metrics: {{listen: '127.0.0.1:{METRICS_PORT}'}}\n"
        f"catalog: ['{tmp}/catalog.csv']\nrules: [{', '.join(rules)}]\n"
        f"alerts:\n  store: '{tmp}/alerts.sqlite'\n  topic: '{root}-al/{{enterprise}}'\n"
        f"  api: {{listen: '127.0.0.1:{API_PORT}', tokens: [{{name: ops, token_env: RW_T15_TOKEN}}]}}\n"
        + extra
    )


def test_reload_ends_removed_rules_resolves_changed_and_loads_new_files(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("t15reload")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(RULES_A.replace("HOT", "50"))
    b.write_text(RULES_B)
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,gateway\nm1,s1,T1,temp,C,GW\n"
    )
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(engine_yaml(tmp_path, mqtt_addr[1], root, [str(a)]))
    env = {**os.environ, "RW_T15_TOKEN": TOKEN, "RW_ALERTS_TOKEN": TOKEN}
    col = Collector(*mqtt_addr, f"{root}-al/#")
    pub = Publisher(*mqtt_addr)
    api = httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}",
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
    last_ts = [0]

    def send(value: float) -> None:
        last_ts[0] = max(now_ms(), last_ts[0] + 1)
        pub.send(f"{root}/m1/s1/GW", {"sensor": "T1", "ts": last_ts[0], "value": value})

    def msgs() -> list[dict]:
        return [orjson.loads(p) for _, p in col.messages]

    def got() -> list[tuple[str, str, str | None]]:
        return [(m["rule"], m["action"], m["reason"]) for m in msgs()]

    def reloads(result: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
        line = f'riskwatch_reload_total{{result="{result}"}} '
        return next(float(x.split()[-1]) for x in text.splitlines() if x.startswith(line))

    def api_up() -> bool:
        try:
            r = api.get("/healthz")
            return r.status_code == 200 and r.json() == {"status": "ok"}
        except httpx.HTTPError:
            return False

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "riskwatch.cli", "alerts", "--url",
             f"http://127.0.0.1:{API_PORT}", *argv],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    log = open(tmp_path / "engine.log", "ab")
    p = subprocess.Popen([sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=log, env=env)  # fmt: skip
    try:
        wait_for(api_up, timeout=30, what="engine API")
        send(60)
        wait_for(lambda: len(msgs()) == 2, timeout=20, what="two alerts")
        assert sorted(got()) == [("t15_gone", "firing", None), ("t15_hot", "firing", None)]
        gone = next(m["id"] for m in msgs() if m["rule"] == "t15_gone")
        refused = cli("close", gone, "--note", "rule retired")
        assert refused.returncode == 1 and "still active" in refused.stdout + refused.stderr

        # 1. remove t15_gone, raise t15_hot above the current value; SIGHUP
        a.write_text(RULES_A.replace("HOT", "70").replace(
            "  - {name: t15_gone, match: {kind: temp}, level: red, above: 50}\n", ""))  # fmt: skip
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: len(msgs()) == 3, timeout=20, what="the end of t15_gone")
        assert got()[2] == ("t15_gone", "resolved", "rule_removed")
        assert msgs()[2]["id"] == gone and msgs()[2]["state"] == "resolved"
        closed = cli("--json", "close", gone, "--note", "rule retired with the old pack")
        assert closed.returncode == 0, closed.stdout + closed.stderr
        assert json.loads(closed.stdout)["state"] == "closed"
        shown = json.loads(cli("--json", "show", gone).stdout)
        assert [(h["action"], h["reason"], h["who"]) for h in shown["history"]] == [
            ("firing", "", "engine"), ("resolved", "rule_removed", "reload"),
            ("close", "", "ops"),
        ]  # fmt: skip
        assert reloads("success") == 1.0
        send(65)  # below the new threshold 70: the changed rule resolves its alert
        wait_for(lambda: len(msgs()) == 5, timeout=20, what="the resolve of t15_hot")
        assert got()[3:] == [("t15_gone", "close", None), ("t15_hot", "resolved", None)]

        # 2. a rules file added to engine.yaml fires without a restart
        cfg.write_text(engine_yaml(tmp_path, mqtt_addr[1], root, [str(a), str(b)]))
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads("success") == 2.0, timeout=20, what="the second reload")
        send(40)
        wait_for(lambda: len(msgs()) == 6, timeout=20, what="the new file's alert")
        assert got()[5] == ("t15_new", "firing", None)

        # 3. a broken engine.yaml is rejected; the running set keeps working
        cfg.write_text(
            engine_yaml(tmp_path, mqtt_addr[1], root, [str(a)], "console: {window_readings: 0}\n")
        )
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads("rejected") == 1.0, timeout=20, what="the rejected reload")
        send(20)  # t15_new (from b.yaml, still loaded) resolves
        wait_for(lambda: len(msgs()) == 7, timeout=20, what="the resolve of t15_new")
        assert got()[6] == ("t15_new", "resolved", None)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
        pub.close()
        col.close()
    text = (tmp_path / "engine.log").read_text()
    assert "changed (active subjects taken over): t15_hot; added: none; removed: t15_gone" in text
    assert f"rules files: added {b}; removed none" in text
    assert f"reload rejected: {cfg} is invalid, keeping the running set" in text
    assert f"{cfg}:11:28: console.window_readings: must be > 0, got 0" in text
    assert "ended 1 alerts of removed rules (t15_gone)" in text
