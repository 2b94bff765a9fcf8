"""Limits on new sensors: how many one enterprise may register, and how fast.

Without a catalogue (``ingest.strict: false``) every new sensor id a gateway sends is
registered, and each costs memory for good (about 2 KB with the bundled packs). A gateway
with a bug, or an attacker who can publish, could register millions. :class:`SensorLimits`
admits new sensors while the enterprise is under ``max_sensors_per_enterprise`` and the
engine under ``max_new_sensors_per_minute`` (a token bucket refilled continuously); the
rest are dead-lettered as ``sensor_limit`` and counted. Catalogued sensors never count.
For catalogued plants strict mode (``ingest.strict: true``) is the production default:
nothing outside the catalogue is registered at all.

Time is passed in (the messages' arrival), never read here.

>>> lim = SensorLimits(per_enterprise=3, per_minute=2)
>>> lim.admit("entA", 5, now_ns=0)  # the bucket holds 2
2
>>> lim.admit("entA", 5, now_ns=60 * 10**9)  # a minute later: 2 more, then entA is full
1
>>> lim.admit("entB", 1, now_ns=60 * 10**9), lim.refused
(1, Counter({'per_enterprise': 4, 'per_minute': 3}))
"""

from __future__ import annotations

import logging
from collections import Counter

__all__ = ["SensorLimits"]

_MINUTE_NS = 60 * 10**9

log = logging.getLogger(__name__)


class SensorLimits:
    """Admits new (uncatalogued) sensors under both limits; counts what it refused."""

    def __init__(self, *, per_enterprise: int, per_minute: int) -> None:
        self.per_enterprise = per_enterprise
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._last_ns: int | None = None
        self._count: Counter[str] = Counter()
        #: refused sensors by the limit that refused them (``per_enterprise``, ``per_minute``)
        self.refused: Counter[str] = Counter()
        #: refused sensors by enterprise, and the arrival time of the last refusal
        self.refused_by_enterprise: Counter[str] = Counter()
        self.last_refused_ns: dict[str, int] = {}
        self._logged_ns: dict[str, int] = {}

    def admit(self, enterprise: str, n: int, *, now_ns: int) -> int:
        """How many of ``n`` new sensors of ``enterprise`` may be registered now."""
        if self._last_ns is not None and now_ns > self._last_ns:
            elapsed = now_ns - self._last_ns
            refill = self.per_minute * elapsed / _MINUTE_NS
            self._tokens = min(float(self.per_minute), self._tokens + refill)
        self._last_ns = now_ns if self._last_ns is None else max(self._last_ns, now_ns)
        room = self.per_enterprise - self._count[enterprise]
        ok = max(0, min(n, room, int(self._tokens)))
        if ok < n:  # counted against the limit that bound
            limit = "per_enterprise" if room <= self._tokens else "per_minute"
            self.refused[limit] += n - ok
            self.refused_by_enterprise[enterprise] += n - ok
            self.last_refused_ns[enterprise] = now_ns
            last = self._logged_ns.get(limit)
            if last is None or now_ns - last >= _MINUTE_NS:  # at most once a minute
                self._logged_ns[limit] = now_ns
                log.warning(
                    "new sensors refused (%s limit: %d per enterprise, %d new per minute); "
                    "%s has %d registered; %d refused so far, dead-lettered as sensor_limit",
                    limit, self.per_enterprise, self.per_minute, enterprise,
                    self._count[enterprise] + ok, sum(self.refused.values()),
                )  # fmt: skip
        self._tokens -= ok
        self._count[enterprise] += ok
        return ok
