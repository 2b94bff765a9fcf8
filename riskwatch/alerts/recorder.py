"""From a step's records to stored transitions and queued notifications.

The pure steps say *what* to record; the :class:`Recorder` writes it into the alert's
history: it numbers the transition (``{alert}:{seq}``), asks the :class:`Muter` whether
it goes out, and if so builds the notification once and routes one outbox row per
notifier. A muted transition is recorded all the same, with its reason in ``muted``; if
a silence or an inhibition muted it, the alert is marked ``undelivered`` so a timer
notifies it (``unmuted``) once nothing mutes it any more.

Here the :class:`~riskwatch.alerts.stages.muter.Suppression` becomes text: the stored
``muted`` column (``silence:<id>``, ``inhibited``, ``flapping``, ``shelved``,
``out_of_service``, ``quiet`` or empty) and the metric label.

>>> from prometheus_client import CollectorRegistry
>>> from riskwatch.alerts.metrics import AlertMetrics
>>> from riskwatch.alerts.records import Action, Record
>>> from riskwatch.alerts.stages import FlappingStage, MuteSequence, Router
>>> from riskwatch.alerts.state import Alert, AlertState
>>> from riskwatch.config.alerts import NotifierConfig
>>> rec = Recorder(MuteSequence([FlappingStage()]), Router([NotifierConfig(kind="log")]),
...                AlertMetrics(CollectorRegistry()))
>>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule", AlertState.FIRING,
...           True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5, flapping=True)
>>> ch = Changes()
>>> b = rec.record(a, Record(Action.FIRING, AlertState.RESOLVED, 2, 1.1), 100, ch)
>>> c = rec.record(b, Record(Action.FLAPPING, AlertState.FIRING, 2, 1.1), 100, ch)
>>> [(t.id, t.action, t.muted) for t in ch.transitions]
[('a1:1', 'firing', 'flapping'), ('a1:2', 'flapping', '')]
>>> [(d.id, d.notifier) for d in ch.deliveries], c.last_notified_ns, (a.seq, b.seq, c.seq)
([('a1:2:log', 'log')], 100, (0, 1, 2))
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from riskwatch.alerts.changes import Changes
from riskwatch.alerts.metrics import AlertMetrics
from riskwatch.alerts.records import Record
from riskwatch.alerts.stages.muter import QUIET, Muter
from riskwatch.alerts.stages.routing import Router
from riskwatch.alerts.state import Alert, Transition
from riskwatch.alerts.store import Delivery
from riskwatch.model import Level

__all__ = ["Recorder", "notification"]


class Recorder:
    def __init__(self, muter: Muter, router: Router, metrics: AlertMetrics) -> None:
        self.muter = muter
        self.router = router
        self.metrics = metrics

    def record(
        self, alert: Alert, rec: Record, now: int, changes: Changes, *, owned: bool = False
    ) -> Alert | None:
        """Record ``rec`` on ``alert`` at ``now`` into ``changes``; returns the alert as it
        is after the transition, or None when ``rec`` asked to be dropped while muted.
        ``owned``: ``alert`` is a copy nobody else holds yet, so it is changed in place
        (else a copy is); either way the alert returned is held by ``changes`` and must
        not change again."""
        why = self.muter(alert, rec.action, now) if rec.notify else QUIET
        if why is not None and rec.if_unmuted:
            return None
        a = alert if owned else alert.copy()
        a.seq += 1
        a.updated_ns = now
        t = Transition(
            id=f"{a.id}:{a.seq}", alert_id=a.id, seq=a.seq, at_ns=now,
            ts_ns=rec.ts_ns if rec.ts_ns is not None else now, who=rec.who,
            action=rec.action.value,
            from_state=rec.from_state.value if rec.from_state is not None else None,
            to_state=a.state.value, level=rec.level, value=rec.value, note=rec.note,
            muted=why.text if why is not None else "",
            reason=rec.reason.value if rec.reason is not None else "",
        )  # fmt: skip
        self.metrics.transition(rec.action)
        if why is not None:
            if why.reason.counted:
                self.metrics.muted(why.reason)
            if why.reason.resend_when_lifted:
                a.undelivered = True
            changes.recorded(a, t, ())
            return a
        a.undelivered = False
        a.last_notified_ns = now
        payload = orjson.dumps(notification(a, t))
        deliveries = [
            Delivery(f"{t.id}:{name}", a.id, name, payload, a.enterprise, a.site, now)
            for name in self.router.targets(a.labels(), a.tier)
        ]
        changes.recorded(a, t, deliveries)
        return a


def notification(a: Alert, t: Transition) -> dict[str, Any]:
    """The JSON every notifier sends for transition ``t`` of ``a`` (see docs/alerts.md,
    "Message fields"): ``level`` is the transition's, ``max_level`` the alert's worst."""
    return {
        "id": a.id, "event": t.id, "rule": a.rule, "level": _colour(t.level),
        "state": a.state.value, "action": t.action, "enterprise": a.enterprise,
        "site": a.site, "sensor": a.sensor, "group": a.group, "kind": a.kind,
        "value": _num(t.value), "threshold": _num(a.threshold), "ts": t.ts_ns // 1_000_000,
        "since": a.since_ns // 1_000_000, "message": a.message, "acked": a.acked,
        "tier": a.tier, "flapping": a.flapping, "by": t.who, "note": t.note,
        "source": a.source, "max_level": _colour(a.max_level), "reason": t.reason or None,
    }  # fmt: skip


_COLOURS = {int(level): level.colour for level in Level}


def _colour(level: int | None) -> str | None:
    return _COLOURS[level] if level else None


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None
