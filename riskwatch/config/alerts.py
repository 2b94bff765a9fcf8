"""The ``alerts:`` section of the engine file, parsed into frozen dataclasses.

Defaults work with no config at all: a SQLite store at ``var/alerts.sqlite`` (WAL) and one
MQTT notifier publishing JSON on ``rw-alerts/{enterprise}`` (QoS 1) plus a retained per-site
summary. ``store`` may also be a ``postgresql://`` URL (several engines, one database).

>>> from riskwatch.config.yamldoc import YamlDoc
>>> from riskwatch.config.schema import parse
>>> cfg = parse(AlertsConfig, YamlDoc.from_text("{}"))
>>> cfg.store, [n.kind for n in cfg.notifiers()]
('var/alerts.sqlite', ['mqtt'])
>>> try:
...     parse(AlertsConfig, YamlDoc.from_text("escalate_after_s: {purple: 3}", file="e.yaml"))
... except Exception as e:
...     print(e)
e.yaml:1:19: escalate_after_s: unknown level 'purple'; expected one of red, orange, yellow, blue
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from riskwatch.config.schema import check_listen
from riskwatch.config.secrets import resolve_secret
from riskwatch.config.servertls import ServerTlsConfig

__all__ = [
    "ROBOT_URLS",
    "TEMPLATE_FIELDS",
    "AlertsApiConfig",
    "AlertsConfig",
    "ApiToken",
    "FlappingConfig",
    "InhibitRule",
    "NotifierConfig",
    "check_matchers",
    "check_template",
    "unknown_rule_matchers",
]

LEVEL_NAMES = ("red", "orange", "yellow", "blue")
MATCH_KEYS = ("enterprise", "site", "sensor", "group", "rule", "level", "kind", "source")


def check_matchers(m: dict[str, list[str]]) -> str | None:
    """What is wrong with a matcher set (config, silences), or None."""
    for k, vals in m.items():
        if k not in MATCH_KEYS:
            return f"unknown matcher key {k!r} (known: {', '.join(MATCH_KEYS)})"
        for v in vals:
            if v.startswith("~"):
                try:
                    re.compile(v[1:])
                except re.error as exc:
                    return f"{k}: bad regular expression {v[1:]!r}: {exc}"
            elif k == "level" and v not in LEVEL_NAMES:
                return f"level: unknown level {v!r}; expected one of {', '.join(LEVEL_NAMES)}"
    return None


def _matchers(**kw: object) -> object:
    return field(default_factory=dict, metadata={"check": check_matchers, **kw})


def _pos(default: float) -> object:
    return field(default=default, metadata={"check": lambda v: None if v > 0 else "must be > 0"})


def _levels_check(d: dict[str, float]) -> str | None:
    for k, v in d.items():
        if k not in LEVEL_NAMES:
            return f"unknown level {k!r}; expected one of red, orange, yellow, blue"
        if v <= 0:
            return f"{k}: must be > 0, got {v}"
    return None


def _zone(v: str) -> str | None:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)"
    return None


def _zones(d: dict[str, str]) -> str | None:
    for k, v in d.items():
        msg = _zone(v)
        if msg:
            return f"{k}: {msg}"
    return None


#: what a message template may name
TEMPLATE_FIELDS = ("action", "by", "enterprise", "group", "id", "level", "message", "note",
                   "rule", "sensor", "site", "state", "threshold", "tier", "time", "value",
                   "what", "where")  # fmt: skip


def check_template(t: str) -> str | None:
    """What is wrong with a message template, or None (config check)."""
    try:
        parts = list(string.Formatter().parse(t))
    except ValueError as exc:
        return f"bad template: {exc}"
    for _lit, name, spec, conv in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            return f"unknown placeholder {{{name}}}; known: {', '.join(TEMPLATE_FIELDS)}"
        if spec or conv:
            return f"placeholder {{{name}}}: no format spec or conversion (the values are text)"
    return None


def _template(v: str | None) -> str | None:
    return None if v is None else check_template(v)


#: where a robot notifier posts when ``url`` is not given
ROBOT_URLS = {
    "dingtalk": "https://oapi.dingtalk.com/robot/send",
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
}


@dataclass(frozen=True)
class NotifierConfig:
    """One notifier. ``kind`` picks the plugin; ``match`` routes (all matchers must match;
    a list value means any of; ``~regex`` is a regular expression); ``min_tier`` makes it an
    escalation tier (only alerts escalated at least that many times reach it).

    Secrets never sit in the YAML: ``secret_env``/``secret_file`` (the webhook's HMAC key,
    DingTalk's signing secret), ``token_env``/``token_file`` (DingTalk's access_token,
    WeCom's key), ``password_env``/``password_file`` (the SMTP login)."""

    kind: Literal["mqtt", "webhook", "log", "dingtalk", "wecom", "email"]
    name: str = ""
    match: dict[str, list[str]] = _matchers()  # type: ignore[assignment]  # noqa: RUF009
    min_tier: int = 0
    queue_max: int = _pos(10_000)  # type: ignore[assignment]
    # mqtt
    topic: str = "rw-alerts/{enterprise}"
    summary_topic: str | None = "rw-alerts-summary/{enterprise}/{site}"
    qos: int = field(default=1, metadata={"check": lambda v: None if v in (0, 1, 2) else "0-2"})
    # webhook (url also for dingtalk and wecom, which have defaults)
    url: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    format: Literal["riskwatch", "alertmanager"] = "riskwatch"
    signature: Literal["timestamp", "body"] = "timestamp"
    external_url: str = ""  # the console's address: Alertmanager's externalURL, generatorURL
    timeout_s: float = _pos(5.0)  # type: ignore[assignment]
    retry_initial_s: float = _pos(0.5)  # type: ignore[assignment]
    retry_max_s: float = _pos(60.0)  # type: ignore[assignment]
    give_up_after_s: float = _pos(24 * 3600.0)  # type: ignore[assignment]
    # dingtalk, wecom
    token_env: str | None = None
    token_file: str | None = None
    at_mobiles: list[str] = field(default_factory=list)
    # dingtalk, wecom, email: the text
    lang: Literal["zh", "en"] = "zh"
    timezone: str = field(default="Asia/Shanghai", metadata={"check": _zone})
    site_timezones: dict[str, str] = field(default_factory=dict, metadata={"check": _zones})
    title_template: str | None = field(default=None, metadata={"check": _template})
    text_template: str | None = field(default=None, metadata={"check": _template})
    # email
    smtp_host: str | None = None
    smtp_port: int = 0  # 0: 25 (none), 587 (starttls), 465 (ssl)
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    from_addr: str | None = None
    to: list[str] = field(default_factory=list)
    # log
    file: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.kind

    def secret(self) -> str | None:
        return resolve_secret(self.secret_env, self.secret_file, what=f"{self.label}.secret")

    def token(self) -> str | None:
        return resolve_secret(self.token_env, self.token_file, what=f"{self.label}.token")

    def password(self) -> str | None:
        return resolve_secret(self.password_env, self.password_file,
                              what=f"{self.label}.password")  # fmt: skip

    def post_url(self) -> str:
        """Where an HTTP notifier posts (a robot's documented endpoint by default)."""
        url = self.url or ROBOT_URLS.get(self.kind)
        assert url is not None, "validate() requires a url"
        return url

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if self.kind == "webhook" and not self.url:
            return [(("url",), "a webhook notifier needs url: http(s)://...")]
        if self.url and not self.url.startswith(("http://", "https://")):
            return [(("url",), f"must be an http(s) URL, got {self.url!r}")]
        if self.kind in ROBOT_URLS and not (self.token_env or self.token_file) and (
            not self.url or "?" not in self.url
        ):
            what = "access_token" if self.kind == "dingtalk" else "key"
            return [(("token_env",), f"a {self.kind} robot needs its {what}: set token_env or "
                                     "token_file")]  # fmt: skip
        if self.kind == "email":
            out: list[tuple[tuple[str, ...], str]] = []
            if not self.smtp_host:
                out.append((("smtp_host",), "an email notifier needs smtp_host"))
            if not self.from_addr or "@" not in self.from_addr:
                out.append((("from_addr",), "an email notifier needs from_addr: an address"))
            if not self.to:
                out.append((("to",), "an email notifier needs at least one address in to"))
            if self.username and not (self.password_env or self.password_file):
                out.append((("password_env",), "username needs password_env or password_file"))
            return out
        return []


@dataclass(frozen=True)
class InhibitRule:
    """While an open, active alert matches ``source``, alerts matching ``target`` that agree
    on every ``equal`` label are muted (recorded, not notified). ``lower_only`` restricts
    muting to targets of a strictly lower severity than the source (a red mutes the orange
    of the same site)."""

    source: dict[str, list[str]] = _matchers()  # type: ignore[assignment]  # noqa: RUF009
    target: dict[str, list[str]] = _matchers()  # type: ignore[assignment]  # noqa: RUF009
    equal: list[str] = field(default_factory=lambda: ["enterprise", "site"])
    lower_only: bool = False


@dataclass(frozen=True)
class FlappingConfig:
    """Kapacitor-style flapping: more than ``high`` activations within ``window_s`` marks the
    alert flapping (notified once); it settles when the count falls to ``low`` or below."""

    window_s: float = _pos(600.0)  # type: ignore[assignment]
    high: int = 6
    low: int = 2

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        return [] if 0 <= self.low < self.high else [(("low",), "must be >= 0 and < high")]


@dataclass(frozen=True)
class ApiToken:
    """An API token: the secret comes from ``token_env`` or ``token_file`` (never the YAML).
    ``enterprises: ["*"]`` sees all; ``role``: read < operate (ack, shelve, close,
    silences) < admin."""

    name: str
    token_env: str | None = None
    token_file: str | None = None
    enterprises: list[str] = field(default_factory=lambda: ["*"])
    role: Literal["read", "operate", "admin"] = "operate"

    def token(self) -> str | None:
        what = f"alerts.api.tokens.{self.name}"
        return resolve_secret(self.token_env, self.token_file, what=what)

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if not (self.token_env or self.token_file):
            return [(("token_env",), "set token_env or token_file")]
        return []


@dataclass(frozen=True)
class AlertsApiConfig:
    """``listen`` (``host:port``) turns the API on; ``tls`` (``cert_file``, ``key_file``)
    serves it over HTTPS."""

    listen: str | None = field(default=None, metadata={"check": check_listen})
    tokens: list[ApiToken] = field(default_factory=list)
    tls: ServerTlsConfig | None = None


@dataclass(frozen=True)
class AlertsConfig:
    """Alerting section. ``topic`` and ``notify`` are kept from the minimal first version:
    ``topic`` sets the default MQTT notifier's topic when ``notify`` is empty."""

    store: str = "var/alerts.sqlite"
    topic: str = "rw-alerts/{enterprise}"
    notify: list[NotifierConfig] = field(default_factory=list)
    escalate_after_s: dict[str, float] = field(
        default_factory=lambda: {"red": 300.0, "orange": 900.0, "yellow": 3600.0},
        metadata={"check": _levels_check},
    )
    max_tier: int = 3
    repeat_interval_s: float = _pos(3600.0)  # type: ignore[assignment]
    flapping: FlappingConfig = field(default_factory=FlappingConfig)
    inhibit: list[InhibitRule] = field(default_factory=list)
    shelve_max_s: float = _pos(24 * 3600.0)  # type: ignore[assignment]
    retention_days: float = _pos(90.0)  # type: ignore[assignment]
    consoles: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    api: AlertsApiConfig = field(default_factory=AlertsApiConfig)
    # "async": a writer thread group-commits (the engine thread never waits for fsync);
    # "sync": every handle()/tick() commits before returning (a reading is acknowledged to
    # the broker only after its transitions are on disk; slower under load)
    write: Literal["async", "sync"] = "async"
    # which engine instance owns the open alerts it creates (default: mqtt.client_id);
    # instances sharing one PostgreSQL database restore and notify only their own
    instance: str | None = None

    def notifiers(self) -> list[NotifierConfig]:
        if self.notify:
            return list(self.notify)
        return [NotifierConfig(kind="mqtt", topic=self.topic)]

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        out: list[tuple[tuple[str, ...], str]] = []
        seen: set[str] = set()
        for i, n in enumerate(self.notify):
            if n.label in seen:
                out.append((("notify", str(i), "name"), f"duplicate notifier name {n.label!r}"))
            seen.add(n.label)
        for name, m in self.consoles.items():
            msg = check_matchers(m)
            if msg:
                out.append((("consoles", name), msg))
        return out


def unknown_rule_matchers(
    cfg: AlertsConfig, known: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Matchers on ``rule`` that name no known rule (a plain name not in ``known``, or a
    ``~regex`` that fully matches none): (key path under the engine file, message). Such
    a matcher never matches, so an inhibition, route or console on it silently does
    nothing; ``riskwatch run --check`` warns about each.

    >>> cfg = AlertsConfig(inhibit=[InhibitRule(source={"rule": ["gateway_no_data"]})])
    >>> [(".".join(map(str, p)), m) for p, m in unknown_rule_matchers(cfg, {"x"})]
    [('alerts.inhibit.0.source.rule.0', "no loaded rule or detector is named 'gateway_no_data'")]
    """
    sets: list[tuple[tuple[str | int, ...], dict[str, list[str]]]] = []
    for i, ir in enumerate(cfg.inhibit):
        sets += [(("alerts", "inhibit", i, "source"), ir.source),
                 (("alerts", "inhibit", i, "target"), ir.target)]  # fmt: skip
    sets += [(("alerts", "notify", i, "match"), n.match) for i, n in enumerate(cfg.notify)]
    sets += [(("alerts", "consoles", name), m) for name, m in cfg.consoles.items()]
    out: list[tuple[tuple[str | int, ...], str]] = []
    for path, m in sets:
        for j, v in enumerate(m.get("rule", [])):
            if v.startswith("~"):
                rx = re.compile(v[1:])
                if not any(rx.fullmatch(k) for k in known):
                    out.append(((*path, "rule", j), f"regex {v[1:]!r} matches no loaded rule "
                                                    "or detector"))  # fmt: skip
            elif v not in known:
                out.append(((*path, "rule", j), f"no loaded rule or detector is named {v!r}"))
    return out
