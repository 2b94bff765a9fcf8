"""Alertmanager's webhook JSON (version 4) from riskwatch notifications, so receivers built
for Prometheus Alertmanager (DingTalk and WeCom bridges, incident tools) take riskwatch's
webhook unchanged (``format: alertmanager``).

The body has Alertmanager's top-level keys (``version: "4"``, ``groupKey``,
``truncatedAlerts``, ``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL``, ``alerts``) and each alert its ``status``,
``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL`` and
``fingerprint``. Labels: ``alertname`` (the rule), ``severity`` (the level's colour),
``enterprise``, ``site`` and, where set, ``sensor``, ``group``, ``kind``, ``source``.
The fingerprint is Prometheus' label-set fingerprint (FNV-1a 64 over the sorted labels)
of the identifying labels, all but ``severity``: it stays the same across the alert's
transitions, level changes included. A transition that leaves the alert
active (raise, level change, ack, escalation, repeat) is ``firing`` with a zero
``endsAt``; one that ends it (resolved, closed) is ``resolved`` with ``endsAt`` set.
What riskwatch adds (the action, state, value, threshold, ids) goes into annotations;
with ``external_url`` (the operator console's address) ``generatorURL`` links the
console's page of the alert.

>>> import orjson
>>> p = orjson.dumps({"id": "a1", "event": "a1:1", "rule": "ch4", "level": "red",
...     "state": "firing", "action": "firing", "enterprise": "m1", "site": "f1",
...     "sensor": "S1", "value": 1.6, "threshold": 1.5, "ts": 1795880000000,
...     "since": 1795880000000, "message": "CH4 high", "max_level": "red"})
>>> body = orjson.loads(to_alertmanager(p, receiver="am"))
>>> body["version"], body["status"], body["groupKey"]
('4', 'firing', '{}:{alertname="ch4", enterprise="m1", site="f1"}')
>>> a = body["alerts"][0]
>>> a["labels"]["severity"], a["startsAt"], a["endsAt"], a["fingerprint"]
('red', '2026-11-28T15:33:20Z', '0001-01-01T00:00:00Z', 'ef83ad92d20e6aa8')
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from riskwatch.errors import NotifyError

__all__ = ["fingerprint", "to_alertmanager"]

ZERO_TIME = "0001-01-01T00:00:00Z"
_ENDED = frozenset(("resolved", "closed"))
_LABELS = ("enterprise", "site", "sensor", "group", "kind", "source")
_GROUP_BY = ("alertname", "enterprise", "site")
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' ``LabelSet.Fingerprint``: FNV-1a 64 over name, 0xff, value, 0xff for
    the names in sorted order, as 16 hex digits.

    >>> fingerprint({})
    'cbf29ce484222325'
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in part.encode():
                h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _rfc3339(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    frac = f".{ms % 1000:03d}" if ms % 1000 else ""
    return f"{dt:%Y-%m-%dT%H:%M:%S}{frac}Z"


def _alert(n: dict[str, Any], external_url: str) -> dict[str, Any]:
    labels = {"alertname": str(n.get("rule") or "")}
    lv = n.get("level") or n.get("max_level")
    if lv:
        labels["severity"] = str(lv)
    for k in _LABELS:
        v = n.get(k)
        if v not in (None, ""):
            labels[k] = str(v)
    ended = n.get("state") in _ENDED
    ann = {"summary": str(n.get("message") or ""), "action": str(n.get("action") or ""),
           "state": str(n.get("state") or ""), "riskwatch_id": str(n.get("id") or ""),
           "riskwatch_event": str(n.get("event") or "")}  # fmt: skip
    for k in ("value", "threshold", "by", "note", "tier", "max_level", "reason"):
        v = n.get(k)
        if v is not None and v != "" and not (k == "tier" and v == 0):
            ann[k] = f"{v:g}" if isinstance(v, float) else str(v)
    ts = int(n.get("ts") or 0)
    gen = f"{external_url.rstrip('/')}/alert/{n.get('id', '')}" if external_url else ""
    return {
        "status": "resolved" if ended else "firing", "labels": labels, "annotations": ann,
        "startsAt": _rfc3339(int(n.get("since") or ts)),
        "endsAt": _rfc3339(ts) if ended else ZERO_TIME, "generatorURL": gen,
        "fingerprint": fingerprint({k: v for k, v in labels.items() if k != "severity"}),
    }  # fmt: skip


def _common(ds: list[dict[str, str]]) -> dict[str, str]:
    if not ds:
        return {}
    out = dict(ds[0])
    for d in ds[1:]:
        out = {k: v for k, v in out.items() if d.get(k) == v}
    return out


def to_alertmanager(payload: bytes, *, receiver: str, external_url: str = "") -> bytes:
    """The Alertmanager webhook body for a stored notification (one transition, or a
    payload with ``alerts: [...]``)."""
    try:
        d = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise NotifyError(f"unreadable notification payload: {exc}", retryable=False) from exc
    items = d["alerts"] if isinstance(d, dict) and isinstance(d.get("alerts"), list) else [d]
    alerts = [_alert(n, external_url) for n in items if isinstance(n, dict)]
    common = _common([a["labels"] for a in alerts])
    group = {k: common[k] for k in _GROUP_BY if k in common}
    key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}"
    firing = any(a["status"] == "firing" for a in alerts)
    body = {
        "version": "4", "groupKey": key, "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved", "receiver": receiver,
        "groupLabels": group, "commonLabels": common,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url, "alerts": alerts,
    }  # fmt: skip
    return orjson.dumps(body)
