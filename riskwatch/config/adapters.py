"""The ``adapters:`` section of the engine file: inputs that do not speak riskwatch's MQTT
JSON, each off unless configured (``null``), each parsed once into frozen types here and
wired explicitly by the engine (docs/ingest.md).

- ``sparkplug``: Sparkplug B (ISO/IEC 20237) edge nodes on the engine's own MQTT
  connection; the engine is a primary host application (``host_id``);
- ``kj``: KJ monitoring files (MT/T 1201.1 ``CDDY``/``CDSS``/``YCBJ``) from a drop folder;
- ``http``: JSON batches over HTTP with per-enterprise API keys.

>>> from riskwatch.config.engine import load_engine_config_text
>>> cfg = load_engine_config_text(
...     "adapters:\\n  kj: {drop_dir: /srv/kj}\\n  sparkplug: {host_id: rw1}\\n")
>>> cfg.adapters.kj.settle_s, cfg.adapters.sparkplug.state_topic, cfg.adapters.http
(2.0, 'spBv1.0/STATE/rw1', None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from riskwatch.config.schema import check_listen
from riskwatch.config.secrets import resolve_secret
from riskwatch.config.servertls import ServerTlsConfig

__all__ = [
    "AdaptersConfig",
    "HttpIngestConfig",
    "HttpKey",
    "KjCap",
    "KjConfig",
    "SparkplugConfig",
]

_ID = re.compile(r"^[^/+#]+$")


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0, got {v}"


def _mqtt_id(v: str) -> str | None:
    return None if _ID.match(v) else f"must be one topic level (no '/', '+', '#'), got {v!r}"


@dataclass(frozen=True)
class SparkplugConfig:
    """Sparkplug B over the engine's MQTT connection (``mqtt.url``).

    The engine subscribes to ``spBv1.0/<group>/#`` for each of ``groups`` (``["+"]``: all)
    and publishes its STATE (``spBv1.0/STATE/<host_id>``, retained; the MQTT will says
    offline). Readings are keyed ``enterprise = group_id``, ``site = edge_node_id``,
    ``sensor = [device_id/]metric name``. ``offline_level`` is the level of the
    ``sparkplug_offline`` health alert; ``rebirth_min_interval_s`` bounds how often one
    node is asked to rebirth (a flood of gaps makes one request per interval)."""

    host_id: str = field(default="riskwatch", metadata={"check": _mqtt_id})
    groups: list[str] = field(default_factory=lambda: ["+"])
    offline_level: str = field(
        default="orange",
        metadata={"check": lambda v: None if v in ("red", "orange", "yellow", "blue")
                  else f"must be red, orange, yellow or blue, got {v!r}"},
    )  # fmt: skip
    rebirth_min_interval_s: float = field(default=5.0, metadata={"check": _positive})
    publish_state: bool = True

    @property
    def state_topic(self) -> str:
        return f"spBv1.0/STATE/{self.host_id}"

    def topics(self) -> list[str]:
        """What the engine subscribes to for Sparkplug (NCMD/DCMD/STATE are not data)."""
        return [f"spBv1.0/{g}/#" for g in self.groups]


@dataclass(frozen=True)
class KjCap:
    """The regulatory limits of one kind: a CDDY limit looser than these is warned and the
    cap used. ``alarm``/``power_off``/``restore`` bound from above (a higher value is
    looser); ``low`` from below (an O2 low alarm at a lower value is looser)."""

    alarm: float | None = None
    power_off: float | None = None
    restore: float | None = None
    low: float | None = None


def _default_caps() -> dict[str, KjCap]:
    # the coal pack's loosest caps over locations (riskwatch/config/rules/coal_mine.yaml;
    # stricter per-location caps stay the rules' job): CH4 working face 1.0 / 1.5 / < 1.0,
    # CO 24 ppm, O2 low 20 %
    return {
        "ch4": KjCap(alarm=1.0, power_off=1.5, restore=1.0),
        "co": KjCap(alarm=24.0),
        "o2": KjCap(low=20.0),
    }


def _default_kinds() -> dict[str, str]:
    # sensor-type names as KJ systems print them (secondary: vendor tables), and our kinds
    return {
        "甲烷": "ch4", "低浓甲烷": "ch4", "高低浓甲烷": "ch4", "激光甲烷": "ch4", "CH4": "ch4",
        "一氧化碳": "co", "CO": "co", "氧气": "o2", "O2": "o2", "二氧化碳": "co2", "CO2": "co2",
        "温度": "temp", "风速": "wind", "馈电": "feed", "馈电状态": "feed", "风门": "door",
        "局扇": "fan", "风机": "fan", "主扇": "fan", "粉尘": "dust",
    }  # fmt: skip


@dataclass(frozen=True)
class KjConfig:
    """KJ monitoring files from ``drop_dir`` (where the FTP server writes).

    A file is taken once its name fits ``<mine>_<TYPE>_<yyyyMMddHHmmss>.txt`` and its size
    and mtime did not change for ``settle_s`` (FTP servers write in place; a name ending in
    ``.tmp``/``.part`` or starting with ``.`` is never taken). Taken files move to
    ``<drop_dir>/processing``, then to ``archive_dir`` once their readings are stored or
    spooled, or to ``rejected_dir`` when the whole file is unusable. ``site`` is the site
    of every point (one KJ system per mine: enterprise = the mine code, or
    ``enterprises[mine code]``). ``kinds`` maps the file's sensor-type field to our kind;
    ``caps`` are the regulatory limits CDDY limits are checked against. ``utc_offset_h``:
    KJ times are local wall-clock times without an offset (China: +8)."""

    drop_dir: str
    archive_dir: str | None = None  # default <drop_dir>/archive
    rejected_dir: str | None = None  # default <drop_dir>/rejected
    site: str = "kj"
    enterprises: dict[str, str] = field(default_factory=dict)
    settle_s: float = field(default=2.0, metadata={"check": _positive})
    poll_s: float = field(default=1.0, metadata={"check": _positive})
    utc_offset_h: float = 8.0
    max_file_bytes: int = field(default=16 * 1024 * 1024, metadata={"check": _positive})
    kinds: dict[str, str] = field(default_factory=_default_kinds)
    caps: dict[str, KjCap] = field(default_factory=_default_caps)


@dataclass(frozen=True)
class HttpKey:
    """One API key: it may write ``enterprise`` only (``sites``: those sites, ``["*"]``:
    any). The secret comes from ``key_env`` or ``key_file``, never the YAML."""

    name: str
    enterprise: str
    sites: list[str] = field(default_factory=lambda: ["*"])
    key_env: str | None = None
    key_file: str | None = None

    def key(self) -> str | None:
        return resolve_secret(self.key_env, self.key_file, what=f"adapters.http.keys.{self.name}")

    def validate(self) -> list[tuple[tuple[str, ...], str]]:
        if not (self.key_env or self.key_file):
            return [(("key_env",), "set key_env or key_file")]
        return []


@dataclass(frozen=True)
class HttpIngestConfig:
    """``POST /ingest/v1/{enterprise}/{site}[/{gateway}]`` with ``Authorization: Bearer
    <key>`` (or ``X-API-Key``). The answer waits until the readings are stored or spooled,
    at most ``durable_timeout_s`` (then 503: the batch may still be stored; resending is
    safe, a reading keyed by series and time overwrites itself). ``encrypted_field``:
    the body is an envelope whose field of that name holds base64 ciphertext that the
    engine's ``decrypt`` callable turns into the JSON batch (ministry specs: ``data``,
    SM4-CBC); ``null`` = plain JSON bodies."""

    listen: str = field(default="127.0.0.1:9110", metadata={"check": check_listen})
    keys: list[HttpKey] = field(default_factory=list)
    max_body_bytes: int = field(default=4 * 1024 * 1024, metadata={"check": _positive})
    durable_timeout_s: float = field(default=10.0, metadata={"check": _positive})
    encrypted_field: str | None = None
    #: HTTPS (``cert_file``, ``key_file``): keys cross the network; beyond loopback
    #: without it the engine logs a WARNING
    tls: ServerTlsConfig | None = None


@dataclass(frozen=True)
class AdaptersConfig:
    sparkplug: SparkplugConfig | None = None
    kj: KjConfig | None = None
    http: HttpIngestConfig | None = None
