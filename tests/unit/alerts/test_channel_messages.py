"""What the chat and mail notifiers put in their bodies, from config to bytes: templates
pass through the registry, step up and step down read differently, WeCom's 4096-byte
limit holds for Chinese text, and the Alertmanager body of a clear is ``resolved``."""

from __future__ import annotations

import orjson
import pytest

from riskwatch.alerts.notifiers import build_notifier
from riskwatch.alerts.notifiers.alertmanager import ZERO_TIME, to_alertmanager
from riskwatch.alerts.notifiers.robots import WECOM_MAX_BYTES
from riskwatch.alerts.store import Delivery
from riskwatch.config.alerts import NotifierConfig

BASE = {"id": "a1", "event": "a1:2", "rule": "ch4_face", "state": "firing",
        "enterprise": "m1", "site": "face1", "sensor": "CH4-01", "value": 1.2,
        "threshold": 1.0, "ts": 1795880000000, "since": 1795879990000,
        "message": "CH4 high", "max_level": "red"}  # fmt: skip


def _d(**kw: object) -> Delivery:
    return Delivery("a1:2:n", "a1", "n", orjson.dumps({**BASE, **kw}), "m1", "face1", 0)


@pytest.mark.parametrize(
    ("action", "level", "zh", "en"),
    [
        ("firing", "red", "【红色预警】触发", "[RED] raised"),
        ("level", "red", "【红色预警】级别升高", "[RED] stepped up"),
        ("level", "orange", "【橙色预警】级别降低", "[ORANGE] stepped down"),
        ("resolved", None, "【红色预警】恢复正常", "[RED] cleared"),
        ("ack", "red", "【红色预警】已确认", "[RED] acknowledged"),
        ("escalate", "red", "【红色预警】未确认，已升级通知", "[RED] unacknowledged, escalated"),
    ],
)
def test_headlines(action: str, level: str | None, zh: str, en: str) -> None:
    for lang, want in (("zh", zh), ("en", en)):
        n = build_notifier(NotifierConfig(kind="wecom", url="http://h/?key=k", lang=lang), None)  # type: ignore[arg-type]
        content = orjson.loads(n.body(_d(action=action, level=level)))["markdown"]["content"]
        assert content.startswith(f"### {want} m1/face1/CH4-01: CH4 high"), content
        n.close()


def test_dingtalk_template_and_wecom_limit() -> None:
    dt = build_notifier(NotifierConfig(kind="dingtalk", url="http://h/?access_token=t",
                                       title_template="监控 {level} {where}",
                                       text_template="{what}: {message} @ {time}"), None)  # fmt: skip
    body = orjson.loads(dt.body(_d(action="firing", level="red")))
    assert body["markdown"] == {"title": "监控 红色 m1/face1/CH4-01",
                                "text": "触发: CH4 high @ 2026-11-28 23:33:20 (UTC+08:00)"}  # fmt: skip
    dt.close()
    wc = build_notifier(NotifierConfig(kind="wecom", url="http://h/?key=k"), None)
    content = orjson.loads(wc.body(_d(action="firing", level="red", message="甲烷" * 3000)))
    raw = content["markdown"]["content"].encode()
    assert len(raw) <= WECOM_MAX_BYTES and raw.decode().endswith("…")
    wc.close()


def test_alertmanager_clear_is_resolved_with_the_same_fingerprint() -> None:
    fire = orjson.loads(to_alertmanager(_d(action="firing", level="red").payload, receiver="r"))
    clear = orjson.loads(to_alertmanager(
        _d(action="resolved", level=None, state="resolved").payload, receiver="r"))  # fmt: skip
    assert fire["status"] == "firing" and fire["alerts"][0]["endsAt"] == ZERO_TIME
    assert clear["status"] == "resolved"
    assert clear["alerts"][0]["endsAt"] == "2026-11-28T15:33:20Z"
    assert clear["alerts"][0]["startsAt"] == "2026-11-28T15:33:10Z"
    assert clear["alerts"][0]["fingerprint"] == fire["alerts"][0]["fingerprint"]
    assert clear["alerts"][0]["labels"]["severity"] == "red"  # the worst level, once cleared
    down = orjson.loads(to_alertmanager(_d(action="level", level="orange").payload, receiver="r"))
    assert down["alerts"][0]["labels"]["severity"] == "orange"
    assert down["alerts"][0]["fingerprint"] == fire["alerts"][0]["fingerprint"]
    zero = orjson.loads(to_alertmanager(_d(action="firing", level="blue", value=0.0,
                                           threshold=0.0).payload, receiver="r"))  # fmt: skip
    ann = zero["alerts"][0]["annotations"]
    assert (ann["value"], ann["threshold"], "tier" in ann) == ("0", "0", False)
