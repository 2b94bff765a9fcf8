"""Silences: created through the API or CLI with matchers, an end time, an author and a
reason; while one is active, matching alerts' transitions are recorded but not notified.

:class:`Silencer` holds the silences; :class:`SilenceStage` is its muter stage.

>>> from riskwatch.alerts.store import Silence
>>> s = Silencer([Silence("s1", {"site": ["face1"]}, 0, 100, "li", "calibration", 0)])
>>> s.match({"site": "face1"}, 50), s.match({"site": "face1"}, 100)
('s1', None)
>>> s.expire("s1", 40).ends_ns, s.match({"site": "face1"}, 50)
(40, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from riskwatch.alerts.records import Action
from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.alerts.stages.muter import Suppression, SuppressReason
from riskwatch.alerts.state import Alert
from riskwatch.alerts.store import Silence

__all__ = ["SilenceStage", "Silencer"]


class Silencer:
    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._items: dict[str, tuple[Silence, Matchers]] = {}
        for s in silences:
            self.add(s)

    def add(self, s: Silence) -> None:
        self._items[s.id] = (s, Matchers(s.matchers))

    def expire(self, silence_id: str, at_ns: int) -> Silence | None:
        hit = self._items.get(silence_id)
        if hit is None:
            return None
        s = hit[0]
        if s.ends_ns > at_ns:
            s = replace(s, ends_ns=at_ns)
            self._items[silence_id] = (s, hit[1])
        return s

    def get(self, silence_id: str) -> Silence | None:
        hit = self._items.get(silence_id)
        return hit[0] if hit else None

    def all(self) -> list[Silence]:
        return [s for s, _ in self._items.values()]

    def match(self, labels: Mapping[str, str], now_ns: int) -> str | None:
        """Id of an active silence that matches, or None."""
        for s, m in self._items.values():
            if s.active(now_ns) and m(labels):
                return s.id
        return None

    def prune(self, before_ns: int) -> None:
        """Forget silences that ended before ``before_ns`` (they stay in the store)."""
        for k in [k for k, (s, _) in self._items.items() if s.ends_ns < before_ns]:
            del self._items[k]


class SilenceStage:
    """Muted while an active silence matches the alert's labels (``silence:<id>``)."""

    def __init__(self, silencer: Silencer) -> None:
        self.silencer = silencer

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None:
        silence_id = self.silencer.match(alert.labels(), now_ns)
        if silence_id is None:
            return None
        return Suppression(SuppressReason.SILENCE, silence_id)
