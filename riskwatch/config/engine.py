"""The engine config file, parsed once into frozen dataclasses.

Secrets never live in the YAML: a key such as ``password_env`` names an environment
variable and ``password_file`` a file holding the secret;
:func:`~riskwatch.config.secrets.resolve_secret` reads it.
Relative paths are resolved against the config file's folder.

>>> from riskwatch.errors import ConfigErrors
>>> cfg = load_engine_config_text("mqtt: {url: 'mqtt://127.0.0.1:1883'}\\n")
>>> cfg.mqtt.qos, cfg.mqtt.topic_template
(1, 'rw/{enterprise}/{site}/{gateway}')
>>> try:
...     load_engine_config_text("mqtt: {qos: 3}\\n", file="e.yaml")
... except ConfigErrors as e:
...     print(e)
e.yaml:1:13: mqtt.qos: must be 0, 1 or 2, got 3
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from riskwatch.config.adapters import AdaptersConfig
from riskwatch.config.alerts import AlertsConfig
from riskwatch.config.schema import check_listen, parse
from riskwatch.config.secrets import resolve_secret
from riskwatch.config.servertls import ServerTlsConfig, check_server_tls
from riskwatch.config.yamldoc import YamlDoc
from riskwatch.durations import Duration
from riskwatch.errors import ConfigErrors

__all__ = [
    "AdaptersConfig",
    "AlertsConfig",
    "ConsoleConfig",
    "DeadLetterConfig",
    "EngineConfig",
    "InfluxConfig",
    "IngestConfig",
    "MetricsConfig",
    "MqttConfig",
    "MqttWill",
    "ServerTlsConfig",
    "StateConfig",
    "StorageConfig",
    "TlsConfig",
    "load_engine_config",
    "load_engine_config_text",
]


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0, got {v}"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else f"must be >= 0, got {v}"


def _pos(default: Any) -> Any:
    return field(default=default, metadata={"check": _positive})


def _url(*schemes: str) -> Any:
    def check(v: str) -> str | None:
        s = urlsplit(v)
        if s.scheme not in schemes or not s.hostname:
            return f"must be a URL like {schemes[0]}://host:port, got {v!r}"
        return None

    return check


@dataclass(frozen=True)
class TlsConfig:
    """TLS for MQTT (``mqtts://`` URLs turn it on with system CAs)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MqttWill:
    """The MQTT will (last will and testament): the broker publishes it when the engine's
    connection is lost without a DISCONNECT. Set by the engine's wiring (the Sparkplug
    host's offline STATE), not usually in the YAML."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class MqttConfig:
    url: str = field(default="mqtt://127.0.0.1:1883", metadata={"check": _url("mqtt", "mqtts")})
    client_id: str = "riskwatch-1"
    topics: list[str] = field(default_factory=lambda: ["rw/#"])
    topic_template: str = "rw/{enterprise}/{site}/{gateway}"
    qos: int = field(
        default=1,
        metadata={"check": lambda v: None if v in (0, 1, 2) else f"must be 0, 1 or 2, got {v}"},
    )
    protocol: Literal["5", "3.1.1"] = "5"
    clean_start: bool = False
    session_expiry_s: int = _pos(7 * 24 * 3600)
    keepalive_s: int = _pos(30)
    receive_maximum: int = field(
        default=2000,
        metadata={"check": lambda v: None if 1 <= v <= 65535 else "must be within 1..65535"},
    )
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    tls: TlsConfig | None = None
    reconnect_min_s: float = _pos(0.5)
    reconnect_max_s: float = _pos(30.0)
    max_payload_bytes: int = _pos(1_048_576)
    will: MqttWill | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        s = urlsplit(self.url)
        return s.port or (8883 if s.scheme == "mqtts" else 1883)

    @property
    def use_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts" or self.tls is not None

    def password(self) -> str | None:
        return resolve_secret(self.password_env, self.password_file, what="mqtt.password")

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        out: list[tuple[tuple[str, ...], str]] = []
        if "{" not in self.topic_template and self.topic_template.count("/") == 0:
            out.append((("topic_template",), "must contain levels such as {enterprise}/{site}"))
        for name in ("enterprise", "site"):
            if "{" + name + "}" not in self.topic_template:
                out.append((("topic_template",), f"must contain the level {{{name}}}"))
        if self.reconnect_max_s < self.reconnect_min_s:
            out.append((("reconnect_max_s",), "must be >= reconnect_min_s"))
        return out


@dataclass(frozen=True)
class DeadLetterConfig:
    topic: str | None = "rw-deadletter"
    file: str | None = "var/deadletter.jsonl"
    max_file_bytes: int = _pos(100 * 1024 * 1024)
    #: readings of one message recorded one by one; the rest of that message's bad
    #: readings become one summary record with their count by reason (a 1 MB message of
    #: junk would otherwise make half a million records)
    max_per_message: int = _pos(100)


def _epoch_ns(text: str) -> int:
    """RFC 3339 text (``Z`` or an offset) as ns since the epoch; ValueError if it is not."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def _rfc3339(v: str) -> str | None:
    try:
        _epoch_ns(v)
    except ValueError:
        return f"must be an RFC 3339 time such as 2000-01-01T00:00:00Z, got {v!r}"
    return None


@dataclass(frozen=True)
class IngestConfig:
    batch_max_readings: int = _pos(20_000)
    batch_max_wait_ms: int = _pos(200)
    # a batch is also cut once no message arrived for this long (0 = off): the end of a
    # burst is stored and acknowledged at once instead of waiting out batch_max_wait_ms
    batch_idle_ms: int = field(default=20, metadata={"check": _non_negative})
    queue_max_messages: int = _pos(20_000)
    # only catalogued sensors (the production default for catalogued plants); else new ids
    # are registered as they come, within the two limits below
    strict: bool = False
    # each registered sensor costs memory for good: a runaway gateway or a publisher that
    # should not be one is stopped here (refused readings: dead letter `sensor_limit`)
    max_sensors_per_enterprise: int = _pos(100_000)
    max_new_sensors_per_minute: int = _pos(10_000)
    # absurd: further ahead of arrival than this is dead-lettered (a broken clock)
    max_future_s: float = _pos(300.0)
    # a fast clock: further ahead than this (but not absurd) is flagged clock_skew, stored
    # and evaluated raise-only, and never advances the sensor's watermark (docs/rules.md)
    max_clock_skew_s: float = field(default=2.0, metadata={"check": _non_negative})
    min_time: str = field(default="2000-01-01T00:00:00Z", metadata={"check": _rfc3339})
    late_after_s: float = _pos(120.0)
    tick_ms: int = _pos(500)
    # "process": paho runs in a child process (two cores: MQTT and decoding in parallel);
    # "thread": everything in one process (simpler to debug, about half the throughput)
    receiver: Literal["process", "thread"] = "process"
    reload_check_s: float = _pos(2.0)
    deadletter: DeadLetterConfig = field(default_factory=DeadLetterConfig)

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if self.max_clock_skew_s >= self.max_future_s:
            return [(("max_clock_skew_s",), "must be < max_future_s (the absurd limit)")]
        return []

    @property
    def min_time_ns(self) -> int:
        """``min_time`` in ns since the epoch: readings before it are absurd."""
        return _epoch_ns(self.min_time)


@dataclass(frozen=True)
class InfluxConfig:
    url: str = field(default="http://127.0.0.1:8086", metadata={"check": _url("http", "https")})
    api: Literal["v1", "v2"] = "v1"
    # v1
    database: str = "riskwatch"
    retention_policy: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    # v2
    org: str = "riskwatch"
    bucket: str = "riskwatch"
    token_env: str | None = None
    token_file: str | None = None
    timeout_s: float = _pos(10.0)
    verify_tls: bool = True

    def password(self) -> str | None:
        return resolve_secret(self.password_env, self.password_file, what="storage.influx.password")

    def token(self) -> str | None:
        return resolve_secret(self.token_env, self.token_file, what="storage.influx.token")


@dataclass(frozen=True)
class StorageConfig:
    influx: InfluxConfig | None = field(default_factory=InfluxConfig)
    spool_dir: str = "var/spool"
    spool_max_bytes: int = _pos(1024 * 1024 * 1024)
    queue_max_batches: int = _pos(8)
    write_max_points: int = _pos(50_000)
    retry_initial_s: float = _pos(0.5)
    retry_max_s: float = _pos(30.0)


@dataclass(frozen=True)
class MetricsConfig:
    """``/metrics`` for Prometheus on ``listen``. Its figures span every enterprise: keep it
    on loopback or the scraper's network, or require a bearer token (``token_env`` or
    ``token_file``; Prometheus' scrape config sets ``authorization: {credentials: ...}``)."""

    listen: str | None = field(default="127.0.0.1:9108", metadata={"check": check_listen})
    token_env: str | None = None
    token_file: str | None = None

    def token(self) -> str | None:
        return resolve_secret(self.token_env, self.token_file, what="metrics.token")


@dataclass(frozen=True)
class ConsoleConfig:
    """The operator web console (riskwatch.console): ``listen`` (``host:port``, port 0 picks
    a free one) turns it on; ``users`` is the user file managed by ``riskwatch users``."""

    listen: str | None = field(default=None, metadata={"check": check_listen})
    users: str = "var/console-users.json"
    session_ttl_s: float = _pos(8 * 3600.0)
    window_readings: int = _pos(1_000_000)
    #: HTTPS for the console (``cert_file``, ``key_file``); the session cookie is then
    #: ``Secure`` and answers carry ``Strict-Transport-Security``
    tls: ServerTlsConfig | None = None


def _positive_duration(v: Duration) -> str | None:
    return None if int(v) > 0 else f"must be > 0, got {v}"


@dataclass(frozen=True)
class StateConfig:
    """Durable engine state (quality watermarks, rule and detector state): a snapshot
    every ``snapshot_every`` and a journal of the batches since, fsynced before their
    messages are acknowledged (``fsync: false`` survives a killed process but not a
    power cut). ``dir`` is relative to this file; ``null`` switches it off."""

    dir: str | None = "var/state"
    snapshot_every: Duration = field(
        default=Duration.parse("60s"), metadata={"check": _positive_duration}
    )
    fsync: bool = True


@dataclass(frozen=True)
class EngineConfig:
    """The whole engine file. ``source`` is the file it came from (for relative paths)."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    catalog: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    detectors: list[str] = field(default_factory=list)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    state: StateConfig = field(default_factory=StateConfig)
    adapters: AdaptersConfig = field(default_factory=AdaptersConfig)
    source: str | None = field(default=None, metadata={"yaml": "__source__"})

    def path(self, p: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        pp = Path(p)
        if pp.is_absolute() or self.source is None:
            return pp
        return Path(self.source).resolve().parent / pp

    def state_dir(self) -> Path | None:
        """The state folder, or None when it is off or cannot be derived (a relative
        folder of a config that came from no file)."""
        d = self.state.dir
        if d is None or (self.source is None and not Path(d).is_absolute()):
            return None
        return self.path(d)


def load_engine_config_text(text: str, file: str = "<string>") -> EngineConfig:
    doc = YamlDoc.from_text(text, file=file)
    cfg = parse(EngineConfig, doc)
    _check_tls(cfg, doc)
    return cfg


def load_engine_config(path: str | Path) -> EngineConfig:
    """Load and validate an engine YAML file; raises :class:`ConfigErrors`."""
    doc = YamlDoc.from_path(path)
    cfg = replace(parse(EngineConfig, doc), source=str(path))
    _check_tls(cfg, doc)
    return cfg


def _check_tls(cfg: EngineConfig, doc: YamlDoc) -> None:
    """Load each server's certificate and key now: a bad pair fails the load, not the start."""
    servers = (
        (("console", "tls"), cfg.console.tls),
        (("alerts", "api", "tls"), cfg.alerts.api.tls),
        (("adapters", "http", "tls"), cfg.adapters.http.tls if cfg.adapters.http else None),
    )
    errors = []
    for key, tls in servers:
        why = check_server_tls(tls, cfg.path) if tls is not None else None
        if why:
            errors.append(doc.error(key, why))
    ConfigErrors.raise_if(errors)
