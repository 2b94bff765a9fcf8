"""The chat, mail and Alertmanager channels through a real ``riskwatch run`` over the real
Mosquitto: a methane reading at a working face raises a red alarm and a lower one clears
it; the DingTalk robot (signature checked the way DingTalk documents it), the WeCom robot,
an Alertmanager receiver validating the version-4 schema and the timestamped signature,
and a local SMTP server each get both messages, in Chinese (English where configured),
with the reading's time in Asia/Shanghai. A robot refusing a wrong signature is given up
(not retried) and counted as ``failed``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from tests.integration.channel_receivers import ChannelReceiver, SmtpReceiver, port_in_range
from tests.integration.spine_helpers import Collector, Publisher, unique, wait_for

pytestmark = pytest.mark.integration

PACK = Path(str(resources.files("riskwatch") / "config" / "rules" / "coal_mine.yaml"))
SECRETS = {
    "RW_T17NTF_DT_TOKEN": "dt-token-1", "RW_T17NTF_DT_SECRET": "SECdingtalk123",
    "RW_T17NTF_DT_WRONG": "SECwrong", "RW_T17NTF_WECOM_KEY": "wecom-key-1",
    "RW_T17NTF_HOOK": "hook-secret",
}  # fmt: skip


def _metric(text: str, name: str, **labels: str) -> float | None:
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_methane_alarm_reaches_dingtalk_wecom_alertmanager_and_email(
    tmp_path: Path, mqtt_addr: tuple[str, int]
) -> None:
    root = unique("t17ntf")
    http_port = port_in_range(29100)
    smtp_port = port_in_range(http_port + 1)
    metrics_port = port_in_range(smtp_port + 1)
    recv = ChannelReceiver(http_port, dingtalk_token="dt-token-1",
                           dingtalk_secret="SECdingtalk123", wecom_key="wecom-key-1",
                           hook_secret=b"hook-secret")  # fmt: skip
    smtp = SmtpReceiver(smtp_port)
    (tmp_path / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        "mine1,face1,CH4-T1,ch4,%,working_face,GW-1,3600,0,4\n"
    )
    base = recv.base
    retry = "retry_initial_s: 0.05, retry_max_s: 0.2"
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(
        f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_addr[1]}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp_path}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, deadletter: {{file: '{tmp_path}/dl.jsonl', topic: null}}}}\n"
        f"metrics: {{listen: '127.0.0.1:{metrics_port}'}}\n"
        f"catalog: ['{tmp_path}/catalog.csv']\nrules: ['{PACK}']\n"
        "alerts:\n  notify:\n"
        f"    - {{kind: mqtt, topic: '{root}-alerts/{{enterprise}}', summary_topic: null}}\n"
        f"    - {{kind: dingtalk, url: '{base}/robot/send', token_env: RW_T17NTF_DT_TOKEN,"
        f" secret_env: RW_T17NTF_DT_SECRET, at_mobiles: ['13800000000'], {retry}}}\n"
        f"    - {{kind: dingtalk, name: dingtalk-wrong, url: '{base}/robot/send',"
        f" token_env: RW_T17NTF_DT_TOKEN, secret_env: RW_T17NTF_DT_WRONG, {retry}}}\n"
        f"    - {{kind: wecom, url: '{base}/cgi-bin/webhook/send', token_env: RW_T17NTF_WECOM_KEY,"
        f" lang: en, {retry}}}\n"
        f"    - {{kind: webhook, name: am, url: '{base}/am', format: alertmanager,"
        f" secret_env: RW_T17NTF_HOOK, external_url: 'https://console.example', {retry}}}\n"
        f"    - {{kind: email, name: mail, smtp_host: 127.0.0.1, smtp_port: {smtp_port},"
        f" smtp_security: none, from_addr: riskwatch@mine1.example,"
        f" to: [duty@mine1.example, safety@mine1.example], {retry}}}\n"
    )
    col = Collector(*mqtt_addr, f"{root}-alerts/#")
    pub = Publisher(*mqtt_addr)
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "engine.log", "ab"),
        start_new_session=True, env={**os.environ, **SECRETS},
    )  # fmt: skip
    murl = f"http://127.0.0.1:{metrics_port}/metrics"

    def metrics() -> str:
        try:
            return httpx.get(murl, timeout=2).text
        except httpx.HTTPError:
            return ""

    try:
        wait_for(lambda: _metric(metrics(), "riskwatch_mqtt_connected") == 1.0, timeout=30,
                 what="engine connected")  # fmt: skip
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        readings = [(now_ms - 2000, 0.5), (now_ms - 1000, 1.6), (now_ms, 0.8)]
        for ts, v in readings:
            pub.send(f"{root}/mine1/face1/GW-1", {"sensor": "CH4-T1", "ts": ts, "value": v})
        wait_for(lambda: len(col.messages) >= 2, timeout=20, what="firing + resolved on MQTT")
        native = [orjson.loads(p) for _, p in col.messages]
        assert [(m["action"], m["level"]) for m in native] == [("firing", "red"),
                                                               ("resolved", None)]  # fmt: skip
        aid = native[0]["id"]
        wait_for(lambda: (len(recv.dingtalk), len(recv.wecom), len(recv.am),
                          len(smtp.messages)) == (2, 2, 2, 2),
                 timeout=20, what="both messages on every channel")  # fmt: skip
        shown = datetime.fromtimestamp((now_ms - 1000) / 1000, ZoneInfo("Asia/Shanghai"))
        when = f"{shown:%Y-%m-%d %H:%M:%S} (UTC+08:00)"

        # DingTalk: markdown in Chinese, signed (the receiver checked it), @-mention
        d0, d1 = recv.dingtalk
        assert d0["msgtype"] == "markdown"
        assert d0["markdown"]["title"].startswith("【红色预警】触发 mine1/face1/CH4-T1")
        text = d0["markdown"]["text"]
        assert f"- **时间**: {when}" in text and "- **测点**: CH4-T1" in text
        assert "- **数值**: 1.6 (阈值 1.5)" in text and f"- **告警编号**: {aid}" in text
        assert text.endswith("@13800000000") and d0["at"]["atMobiles"] == ["13800000000"]
        assert d1["markdown"]["title"].startswith("【红色预警】恢复正常 mine1/face1/CH4-T1")
        # the wrong secret was refused by the receiver and given up, not retried
        assert recv.refused.count(("dingtalk", "sign")) == 2

        # WeCom, in English
        w0, w1 = (m["markdown"]["content"] for m in recv.wecom)
        assert w0.startswith("### [RED] raised mine1/face1/CH4-T1")
        assert f"- **Time**: {when}" in w0
        assert w1.startswith("### [RED] cleared mine1/face1/CH4-T1")

        # Alertmanager: schema validated by the receiver; firing, then resolved
        a0, a1 = recv.am
        assert (a0["version"], a0["status"], a0["receiver"]) == ("4", "firing", "am")
        assert a0["groupKey"] == '{}:{alertname="ch4_face", enterprise="mine1", site="face1"}'
        al = a0["alerts"][0]
        assert al["labels"] == {"alertname": "ch4_face", "severity": "red",
                                "enterprise": "mine1", "site": "face1", "sensor": "CH4-T1",
                                "kind": "ch4", "source": "rule"}  # fmt: skip
        assert al["endsAt"] == "0001-01-01T00:00:00Z"
        assert al["generatorURL"] == f"https://console.example/alert/{aid}"
        assert a1["status"] == "resolved" and a1["alerts"][0]["endsAt"] != al["endsAt"]
        assert a1["alerts"][0]["fingerprint"] == al["fingerprint"]
        assert not [r for r in recv.refused if r[0] != "dingtalk"]

        # email: plain text + HTML, both recipients
        frm, rcpt, m0 = smtp.messages[0]
        assert frm == "riskwatch@mine1.example"
        assert rcpt == ["duty@mine1.example", "safety@mine1.example"]
        assert str(m0["Subject"]).startswith("【红色预警】触发 mine1/face1/CH4-T1")
        assert m0.get_content_type() == "multipart/alternative"
        plain = m0.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = m0.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"时间: {when}" in plain and "<th align=left>测点</th><td>CH4-T1</td>" in html
        assert str(smtp.messages[1][2]["Subject"]).startswith("【红色预警】恢复正常")

        # outcome counters by notifier and result
        def counts() -> dict[tuple[str, str], float | None]:
            t = metrics()
            return {(n, r): _metric(t, "riskwatch_alert_notifications_total", notifier=n,
                                    result=r)
                    for n in ("dingtalk", "dingtalk-wrong", "wecom", "am", "mail")
                    for r in ("sent", "failed")}  # fmt: skip

        wait_for(lambda: counts()[("dingtalk-wrong", "failed")] == 2.0, timeout=10,
                 what="the refused robot given up twice")  # fmt: skip
        c = counts()
        assert {k: v for k, v in c.items() if k[1] == "sent"} == {
            ("dingtalk", "sent"): 2.0, ("dingtalk-wrong", "sent"): 0.0, ("wecom", "sent"): 2.0,
            ("am", "sent"): 2.0, ("mail", "sent"): 2.0}  # fmt: skip
        assert _metric(metrics(), "riskwatch_alert_notifications_total",
                       notifier="dingtalk-wrong", result="retry") == 0.0  # fmt: skip
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        pub.close()
        col.close()
        recv.close()
        smtp.close()
