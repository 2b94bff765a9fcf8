"""Alarm-system health, as ISA-18.2 / IEC 62682 and EEMUA 191 ask a control room to watch:
per site and per operator console, annunciated alarms per 10 minutes (a *flood* when
more than 10), chattering alarms (3 or more annunciations of one alarm within 60 s),
stale alarms (active for more than 24 h), time-to-acknowledge percentiles and the top-10
most frequent alarms of the last 24 h. Exposed as Prometheus metrics (a collector on the
injected registry) and through the API (``GET /api/v1/health``).

Beside the 24-hour figures, the collector exports what Prometheus itself should
aggregate: ``riskwatch_alarm_time_to_ack_seconds``, a real histogram (cumulative buckets,
``_sum``, ``_count`` per site and console since the engine started, so ``rate()`` and
``histogram_quantile()`` work across engines and time), and ``riskwatch_alerts_open``,
open alerts by level and state as of the last snapshot (every level × state present, at
zero when none, so a series never vanishes).

>>> h = HealthTracker({"north": {"site": ["face1"]}})
>>> lab = {"enterprise": "m1", "site": "face1", "rule": "ch4"}
>>> for i in range(12):
...     h.annunciate(lab, f"ch4|m1/face1/S{i % 2}", i * 1_000_000_000)
>>> snap = h.snapshot(12_000_000_000, [])
>>> s = snap["sites"]["m1/face1"]
>>> s["alarms_10min"], s["flood"], sorted(s["chattering"])
(12, True, ['ch4|m1/face1/S0', 'ch4|m1/face1/S1'])
>>> snap["consoles"]["north"]["alarms_10min"]
12
>>> h.acknowledged(lab, 42.0, 12_000_000_000)
>>> fam = next(f for f in h.collect() if f.name == "riskwatch_alarm_time_to_ack_seconds")
>>> for s in fam.samples:
...     if s.labels["scope"] == "site" and s.labels.get("le") in (None, "30.0", "60.0", "+Inf"):
...         print(s.name, s.labels.get("le"), s.value)
riskwatch_alarm_time_to_ack_seconds_bucket 30.0 0.0
riskwatch_alarm_time_to_ack_seconds_bucket 60.0 1.0
riskwatch_alarm_time_to_ack_seconds_bucket +Inf 1.0
riskwatch_alarm_time_to_ack_seconds_count None 1.0
riskwatch_alarm_time_to_ack_seconds_sum None 42.0
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.alerts.state import OPEN_STATES, Alert
from riskwatch.model import Level

__all__ = ["HealthTracker"]

S = 1_000_000_000
WINDOW_FLOOD = 600 * S
FLOOD_LIMIT = 10
CHATTER_WINDOW = 60 * S
CHATTER_COUNT = 3
STALE_AFTER = 24 * 3600 * S
HISTORY = 24 * 3600 * S
#: time-to-acknowledge buckets (s): EEMUA 191 asks for seconds to minutes on a red alarm
ACK_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
               43200.0, 86400.0)  # fmt: skip
_OPEN_STATES = sorted(s.value for s in OPEN_STATES)


class HealthTracker(Collector):
    """Keeps 24 h of annunciations and acknowledgements (bounded deques)."""

    def __init__(self, consoles: Mapping[str, Mapping[str, list[str]]] | None = None,
                 max_events: int = 200_000) -> None:  # fmt: skip
        self.consoles = {name: Matchers(m) for name, m in (consoles or {}).items()}
        # (time, site key, alert key, consoles)
        self._ann: collections.deque[tuple[int, str, str, tuple[str, ...]]] = collections.deque(
            maxlen=max_events
        )
        # (time, site key, consoles, seconds to acknowledge)
        self._ack: collections.deque[tuple[int, str, tuple[str, ...], float]] = collections.deque(
            maxlen=max_events
        )
        self._lock = threading.Lock()
        # (scope, name) -> [count per bucket (the last is +Inf)], and the sum of seconds
        self._tta: dict[tuple[str, str], list[int]] = {}
        self._tta_sum: dict[tuple[str, str], float] = {}
        self._open_counts: dict[tuple[str, str], int] = {}
        self._last: dict[str, Any] = {"sites": {}, "consoles": {}}
        self._open: list[Alert] = []
        self._now = 0

    def _consoles(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(n for n, m in self.consoles.items() if m(labels))

    def annunciate(self, labels: Mapping[str, str], key: str, now_ns: int) -> None:
        """An alarm became active and unacknowledged (an annunciation to the operator)."""
        site = f"{labels.get('enterprise', '')}/{labels.get('site', '')}"
        with self._lock:
            self._ann.append((now_ns, site, key, self._consoles(labels)))

    def acknowledged(self, labels: Mapping[str, str], seconds: float, now_ns: int) -> None:
        site = f"{labels.get('enterprise', '')}/{labels.get('site', '')}"
        consoles = self._consoles(labels)
        i = int(np.searchsorted(ACK_BUCKETS, float(seconds), side="left"))
        with self._lock:
            self._ack.append((now_ns, site, consoles, float(seconds)))
            for g in (("site", site), *(("console", c) for c in consoles)):
                counts = self._tta.setdefault(g, [0] * (len(ACK_BUCKETS) + 1))
                counts[i] += 1
                self._tta_sum[g] = self._tta_sum.get(g, 0.0) + float(seconds)

    def _prune(self, now_ns: int) -> None:
        cut = now_ns - HISTORY
        while self._ann and self._ann[0][0] < cut:
            self._ann.popleft()
        while self._ack and self._ack[0][0] < cut:
            self._ack.popleft()

    def snapshot(self, now_ns: int, open_alerts: Iterable[Alert]) -> dict[str, Any]:
        """Health per site and per console at ``now_ns`` (also kept for the collector)."""
        open_list = list(open_alerts)
        with self._lock:
            self._prune(now_ns)
            ann = list(self._ann)
            ack = list(self._ack)
        groups: dict[tuple[str, str], dict[str, list[Any]]] = collections.defaultdict(
            lambda: {"ann": [], "ack": [], "stale": []}
        )
        for t, site, key, cons in ann:
            for g in (("sites", site), *(("consoles", c) for c in cons)):
                groups[g]["ann"].append((t, key))
        for _t, site, cons, secs in ack:
            for g in (("sites", site), *(("consoles", c) for c in cons)):
                groups[g]["ack"].append(secs)
        for a in open_list:
            if a.active and a.fired_ns is not None and now_ns - a.fired_ns > STALE_AFTER:
                site = f"{a.enterprise}/{a.site}"
                for g in (("sites", site), *(("consoles", c) for c in self._consoles(a.labels()))):
                    groups[g]["stale"].append(a.id)
        out: dict[str, Any] = {"sites": {}, "consoles": {n: _empty() for n in self.consoles}}
        for (kind, name), grp in groups.items():
            out[kind][name] = _summarise(grp, now_ns)
        open_counts: dict[tuple[str, str], int] = collections.Counter(
            (Level(a.level or a.max_level or Level.BLUE).colour, a.state.value)
            for a in open_list
            if a.state in OPEN_STATES
        )
        with self._lock:
            self._last = out
            self._open_counts = open_counts
        return out

    def collect(self) -> Iterator[Metric]:
        snap = self._last
        with self._lock:
            tta = {g: list(c) for g, c in self._tta.items()}
            tta_sum = dict(self._tta_sum)
            open_counts = dict(self._open_counts)
        hist = HistogramMetricFamily(
            "riskwatch_alarm_time_to_ack_seconds",
            "Time from annunciation to acknowledgement, since the engine started",
            labels=["scope", "name"],
        )
        for (scope, name), counts in sorted(tta.items()):
            cum = np.cumsum(counts).tolist()
            les = [floatToGoString(b) for b in ACK_BUCKETS] + ["+Inf"]
            hist.add_metric([scope, name], list(zip(les, map(float, cum), strict=True)),
                            tta_sum[(scope, name)])  # fmt: skip
        yield hist
        opened = GaugeMetricFamily(
            "riskwatch_alerts_open", "Open alerts by level and state (as of the last health "
            "snapshot, every 10 s of engine time)", labels=["level", "state"],
        )  # fmt: skip
        for lv in Level:
            for st in _OPEN_STATES:
                opened.add_metric([lv.colour, st], float(open_counts.get((lv.colour, st), 0)))
        yield opened
        fams = {
            "alarms_10min": GaugeMetricFamily(
                "riskwatch_alarm_rate_10min", "Alarms annunciated in the last 10 minutes",
                labels=["scope", "name"]),
            "flood": GaugeMetricFamily(
                "riskwatch_alarm_flood", "1 while more than 10 alarms per 10 minutes",
                labels=["scope", "name"]),
            "chattering_count": GaugeMetricFamily(
                "riskwatch_alarm_chattering", "Alarms annunciated 3+ times within 60 s (24 h)",
                labels=["scope", "name"]),
            "stale_count": GaugeMetricFamily(
                "riskwatch_alarm_stale", "Alarms active for more than 24 h",
                labels=["scope", "name"]),
        }  # fmt: skip
        tta24 = GaugeMetricFamily(
            "riskwatch_alarm_time_to_ack_24h_seconds",
            "Time to acknowledge over the last 24 h, as quantiles (0.5, 0.9, 0.99)",
            labels=["scope", "name", "quantile"],
        )
        for scope in ("sites", "consoles"):
            for name, s in snap.get(scope, {}).items():
                for k, fam in fams.items():
                    fam.add_metric([scope[:-1], name], float(s[k]))
                for q, label in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
                    v = s["time_to_ack_s"][q]
                    if v is not None:
                        tta24.add_metric([scope[:-1], name, label], float(v))
        yield from fams.values()
        yield tta24


def _empty() -> dict[str, Any]:
    return _summarise({"ann": [], "ack": [], "stale": []}, 0)


def _summarise(g: dict[str, list[Any]], now_ns: int) -> dict[str, Any]:
    ann: list[tuple[int, str]] = g["ann"]
    recent = sum(1 for t, _ in ann if t > now_ns - WINDOW_FLOOD)
    per_key: dict[str, list[int]] = collections.defaultdict(list)
    for t, key in ann:
        per_key[key].append(t)
    chattering = []
    for key, ts in per_key.items():
        if len(ts) < CHATTER_COUNT:
            continue
        arr = np.asarray(ts, dtype=np.int64)
        if len(arr) >= CHATTER_COUNT:
            span = arr[CHATTER_COUNT - 1 :] - arr[: len(arr) - CHATTER_COUNT + 1]
            if bool((span <= CHATTER_WINDOW).any()):
                chattering.append(key)
    top = sorted(per_key.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    acks = np.asarray(g["ack"], dtype=np.float64)
    q = (
        {f"p{p}": round(float(np.percentile(acks, p)), 3) for p in (50, 90, 99)}
        if len(acks)
        else {"p50": None, "p90": None, "p99": None}
    )
    return {
        "alarms_10min": recent,
        "flood": recent > FLOOD_LIMIT,
        "chattering": sorted(chattering),
        "chattering_count": len(chattering),
        "stale": sorted(g["stale"]),
        "stale_count": len(g["stale"]),
        "time_to_ack_s": {**q, "n": len(acks)},
        "top10": [{"key": k, "count": len(v)} for k, v in top],
    }
