"""Human-readable alert messages for the chat and mail notifiers (DingTalk, WeCom, email),
in Chinese (``zh``, the default: the control rooms these channels serve) or English.

The notifiers receive the same JSON every notifier gets (docs/alerts.md, "Message fields")
and render it at send time, so the outbox keeps one payload per transition whatever the
channel. Times are shown in the site's time zone (``timezone``, default Asia/Shanghai;
``site_timezones`` overrides it per ``enterprise/site`` or per site) with the UTC offset
spelled out, so a message forwarded elsewhere is still unambiguous.

A payload carrying ``alerts: [...]`` (a group of notifications) renders as one message
listing every alert it stands for.

Templates (``title_template``, ``text_template``; placeholders in :data:`TEMPLATE_FIELDS`,
checked when the config loads) replace the built-in title and body of a single
notification, e.g. to carry the keyword a DingTalk robot's "custom keyword" security
setting requires; in a group each alert's line uses the title template.

>>> import orjson
>>> p = orjson.dumps({"id": "a1", "event": "a1:1", "rule": "ch4_face", "level": "red",
...     "state": "firing", "action": "firing", "enterprise": "m1", "site": "face1",
...     "sensor": "CH4-01", "value": 1.6, "threshold": 1.5, "ts": 1795880000000,
...     "message": "CH4 1.6 % at the face", "max_level": "red"})
>>> r = Renderer("zh")
>>> ns = notices(p)
>>> r.title(ns)
'【红色预警】触发 m1/face1/CH4-01: CH4 1.6 % at the face'
>>> print(r.text(ns))
【红色预警】触发 m1/face1/CH4-01: CH4 1.6 % at the face
级别: 红色
企业/场所: m1 / face1
测点: CH4-01
数值: 1.6 (阈值 1.5)
时间: 2026-11-28 23:33:20 (UTC+08:00)
规则: ch4_face
告警编号: a1
>>> Renderer("en", "UTC").title(ns)
'[RED] raised m1/face1/CH4-01: CH4 1.6 % at the face'
>>> t = Renderer("zh", title_template="安全监控 {level}预警 {site} {sensor}",
...              text_template="{message}，{time}")
>>> t.title(ns), t.text(ns)
('安全监控 红色预警 face1 CH4-01', 'CH4 1.6 % at the face，2026-11-28 23:33:20 (UTC+08:00)')
>>> check_template("{level} {colour}")[:40]
'unknown placeholder {colour}; known: act'
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from riskwatch.alerts.records import Action
from riskwatch.config.alerts import TEMPLATE_FIELDS, check_template
from riskwatch.errors import NotifyError

__all__ = ["TEMPLATE_FIELDS", "Lang", "Notice", "Renderer", "check_template", "notices"]

Lang = Literal["zh", "en"]

_RANK = {"red": 1, "orange": 2, "yellow": 3, "blue": 4}
_LEVEL = {
    "zh": {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"},
    "en": {"red": "RED", "orange": "ORANGE", "yellow": "YELLOW", "blue": "BLUE"},
}
# what happened, per action; "level" splits into a step up and a step down
_WHAT: dict[str, dict[str, str]] = {
    "zh": {
        Action.PENDING: "待确认", Action.FIRING: "触发", Action.RESOLVED: "恢复正常",
        Action.ACK: "已确认", Action.SHELVE: "已搁置", Action.UNSHELVE: "取消搁置",
        Action.OUT_OF_SERVICE: "停用检修", Action.RETURN_TO_SERVICE: "恢复投用",
        Action.CLOSE: "已关闭", Action.FLAPPING: "频繁波动", Action.SETTLED: "波动平息",
        Action.ESCALATE: "未确认，已升级通知", Action.REPEAT: "仍未确认",
        Action.UNMUTED: "屏蔽解除", "up": "级别升高", "down": "级别降低",
    },
    "en": {
        Action.PENDING: "pending", Action.FIRING: "raised", Action.RESOLVED: "cleared",
        Action.ACK: "acknowledged", Action.SHELVE: "shelved", Action.UNSHELVE: "unshelved",
        Action.OUT_OF_SERVICE: "out of service", Action.RETURN_TO_SERVICE: "back in service",
        Action.CLOSE: "closed", Action.FLAPPING: "flapping", Action.SETTLED: "settled",
        Action.ESCALATE: "unacknowledged, escalated", Action.REPEAT: "still unacknowledged",
        Action.UNMUTED: "no longer muted", "up": "stepped up", "down": "stepped down",
    },
}  # fmt: skip
_FIELDS = {
    "zh": {"level": "级别", "where": "企业/场所", "sensor": "测点", "group": "分组",
           "value": "数值", "threshold": "阈值", "time": "时间", "rule": "规则",
           "id": "告警编号", "by": "操作人", "note": "备注", "tier": "通知级次",
           "more": "共 {n} 条告警", "title_level": "【{lv}预警】", "none": "—"},
    "en": {"level": "Level", "where": "Enterprise/site", "sensor": "Sensor", "group": "Group",
           "value": "Value", "threshold": "threshold", "time": "Time", "rule": "Rule",
           "id": "Alert id", "by": "By", "note": "Note", "tier": "Tier",
           "more": "{n} alerts", "title_level": "[{lv}] ", "none": "-"},
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification, read from the JSON the recorder stores in the outbox."""

    id: str
    event: str
    rule: str
    level: str | None
    max_level: str | None
    state: str
    action: str
    enterprise: str
    site: str
    sensor: str | None
    group: str | None
    value: float | None
    threshold: float | None
    ts_ms: int
    since_ms: int
    message: str
    by: str
    note: str | None
    tier: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Notice:
        return cls(
            id=str(d.get("id", "")), event=str(d.get("event", "")), rule=str(d.get("rule", "")),
            level=d.get("level"), max_level=d.get("max_level"), state=str(d.get("state", "")),
            action=str(d.get("action", "")), enterprise=str(d.get("enterprise") or ""),
            site=str(d.get("site") or ""), sensor=d.get("sensor"), group=d.get("group"),
            value=d.get("value"), threshold=d.get("threshold"), ts_ms=int(d.get("ts") or 0),
            since_ms=int(d.get("since") or d.get("ts") or 0), message=str(d.get("message") or ""),
            by=str(d.get("by") or ""), note=d.get("note"), tier=int(d.get("tier") or 0),
        )  # fmt: skip

    @property
    def step(self) -> str:
        """The action, with a level change told apart as ``up`` or ``down`` (a level less
        severe than the alert's worst is a step down)."""
        if self.action != Action.LEVEL:
            return self.action
        now, worst = _RANK.get(self.level or "", 9), _RANK.get(self.max_level or "", 9)
        return "down" if now > worst else "up"

    @property
    def where(self) -> str:
        return f"{self.enterprise}/{self.site}/{self.sensor or self.group or ''}"


def notices(payload: bytes) -> list[Notice]:
    """The notifications a payload stands for (one, or every item of ``alerts``)."""
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # a stored payload we cannot read: never better
        raise NotifyError(f"unreadable notification payload: {exc}", retryable=False) from exc
    if isinstance(d, dict) and isinstance(d.get("alerts"), list):
        return [Notice.from_json(x) for x in d["alerts"] if isinstance(x, dict)]
    if not isinstance(d, dict):
        raise NotifyError("notification payload is not a JSON object", retryable=False)
    return [Notice.from_json(d)]


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


class Renderer:
    """Titles, plain text, markdown and HTML for a list of notices in one language."""

    def __init__(self, lang: Lang = "zh", timezone: str = "Asia/Shanghai",
                 site_timezones: Mapping[str, str] | None = None, *,
                 title_template: str | None = None, text_template: str | None = None,
                 ) -> None:  # fmt: skip
        self.lang = lang
        self.tz = ZoneInfo(timezone)
        self.site_tz = {k: ZoneInfo(v) for k, v in (site_timezones or {}).items()}
        self.f = _FIELDS[lang]
        self.title_template = title_template
        self.text_template = text_template

    def fields(self, n: Notice) -> dict[str, str]:
        """The template placeholders' values for ``n`` (all text)."""
        return {
            "action": n.action, "by": n.by, "enterprise": n.enterprise, "group": n.group or "",
            "id": n.id, "level": self.level(n), "message": n.message, "note": n.note or "",
            "rule": n.rule, "sensor": n.sensor or "", "site": n.site, "state": n.state,
            "threshold": _num(n.threshold), "tier": str(n.tier), "time": self.when(n),
            "value": _num(n.value), "what": _WHAT[self.lang].get(n.step, n.step),
            "where": n.where,
        }  # fmt: skip

    def when(self, n: Notice) -> str:
        """``ts`` in the site's zone, with its UTC offset."""
        tz = self.site_tz.get(f"{n.enterprise}/{n.site}") or self.site_tz.get(n.site) or self.tz
        dt = datetime.fromtimestamp(n.ts_ms / 1000, UTC).astimezone(tz)
        off = dt.strftime("%z")
        return f"{dt:%Y-%m-%d %H:%M:%S} (UTC{off[:3]}:{off[3:]})"

    def level(self, n: Notice) -> str:
        return _LEVEL[self.lang].get(n.level or n.max_level or "", self.f["none"])

    def headline(self, n: Notice) -> str:
        if self.title_template is not None:
            return self.title_template.format_map(self.fields(n))
        lv = self.f["title_level"].format(lv=self.level(n))
        what = _WHAT[self.lang].get(n.step, n.step)
        msg = n.message
        if msg.startswith(n.where):  # rule messages often start with the place already
            msg = msg[len(n.where) :].lstrip(": ")
        return f"{lv}{what} {n.where}: {msg}".rstrip(": ")

    def title(self, ns: list[Notice]) -> str:
        if len(ns) == 1:
            return self.headline(ns[0])
        worst = min(ns, key=lambda n: _RANK.get(n.level or "", 9))
        lv = self.f["title_level"].format(lv=self.level(worst))
        return f"{lv}{self.f['more'].format(n=len(ns))}"

    def _rows(self, n: Notice) -> list[tuple[str, str]]:
        f = self.f
        rows = [(f["level"], self.level(n)), (f["where"], f"{n.enterprise} / {n.site}")]
        if n.sensor:
            rows.append((f["sensor"], n.sensor))
        elif n.group:
            rows.append((f["group"], n.group))
        if n.value is not None:
            thr = f" ({f['threshold']} {_num(n.threshold)})" if n.threshold is not None else ""
            rows.append((f["value"], f"{_num(n.value)}{thr}"))
        rows.append((f["time"], self.when(n)))
        rows.append((f["rule"], n.rule))
        if n.by and n.by != "engine":
            rows.append((f["by"], n.by))
        if n.note:
            rows.append((f["note"], n.note))
        if n.tier:
            rows.append((f["tier"], str(n.tier)))
        rows.append((f["id"], n.id))
        return rows

    def text(self, ns: list[Notice]) -> str:
        if len(ns) == 1 and self.text_template is not None:
            return self.text_template.format_map(self.fields(ns[0]))
        if len(ns) == 1:
            return "\n".join([self.headline(ns[0])] + [f"{k}: {v}" for k, v in self._rows(ns[0])])
        lines = [self.title(ns)]
        lines += [f"- {self.headline(n)} ({self.when(n)})" for n in ns]
        return "\n".join(lines)

    def markdown(self, ns: list[Notice]) -> str:
        """Markdown both robots render (headings, bold, lists; no tables)."""
        if len(ns) == 1 and self.text_template is not None:
            return self.text_template.format_map(self.fields(ns[0]))
        if len(ns) == 1:
            body = [f"### {self.headline(ns[0])}", ""]
            body += [f"- **{k}**: {v}" for k, v in self._rows(ns[0])]
            return "\n".join(body)
        body = [f"### {self.title(ns)}", ""]
        body += [f"- {self.headline(n)} ({self.when(n)})" for n in ns]
        return "\n".join(body)

    def html(self, ns: list[Notice]) -> str:
        e = html.escape
        if len(ns) == 1 and self.text_template is not None:
            body = e(self.text_template.format_map(self.fields(ns[0]))).replace("\n", "<br>")
            return f"<html><body><p>{body}</p></body></html>"
        parts = ["<html><body>"]
        for n in ns:
            parts.append(f"<h3>{e(self.headline(n))}</h3><table>")
            parts += [f"<tr><th align=left>{e(k)}</th><td>{e(v)}</td></tr>"
                      for k, v in self._rows(n)]  # fmt: skip
            parts.append("</table>")
        parts.append("</body></html>")
        return "".join(parts)
