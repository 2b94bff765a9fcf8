"""The open alerts of one sink, found three ways: by key (one open alert per rule and
subject: dedup), by id (operator actions, the API) and by site (inhibition, the retained
site summaries). :meth:`OpenAlerts.put` keeps the three in step: a closed alert leaves
all of them. The sink swaps in each new copy of an alert with ``put``.

>>> from riskwatch.alerts.state import Alert, AlertState
>>> a = Alert("a1", "ch4|m1/f1/S1", "ch4", "m1", "f1", "S1", None, "ch4", "rule",
...           AlertState.FIRING, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> index = OpenAlerts()
>>> index.put(a)
>>> index.by_key["ch4|m1/f1/S1"] is index.by_id["a1"], list(index.in_site("m1", "f1"))
(True, ['a1'])
>>> closed = a.copy(); closed.state = AlertState.CLOSED
>>> index.put(closed)
>>> len(index), index.sites()
(0, [('m1', 'f1')])
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping

from riskwatch.alerts.state import Alert, AlertState

__all__ = ["OpenAlerts"]


class OpenAlerts:
    def __init__(self) -> None:
        self.by_key: dict[str, Alert] = {}
        self.by_id: dict[str, Alert] = {}
        # a site stays known once it had an alert: its summary then says 0 open
        self._by_site: dict[tuple[str, str], dict[str, Alert]] = collections.defaultdict(dict)

    def __len__(self) -> int:
        return len(self.by_key)

    def put(self, a: Alert) -> None:
        """``a`` is the current copy of its alert (a closed one leaves the index)."""
        site = self._by_site[(a.enterprise, a.site)]
        if a.state is AlertState.CLOSED:
            self.by_key.pop(a.key, None)
            self.by_id.pop(a.id, None)
            site.pop(a.id, None)
        else:
            self.by_key[a.key] = a
            self.by_id[a.id] = a
            site[a.id] = a

    def in_site(self, enterprise: str, site: str) -> Mapping[str, Alert]:
        """The open alerts of one site, by id."""
        return self._by_site.get((enterprise, site), {})

    def site_alerts(self, enterprise: str, site: str) -> Iterable[Alert]:
        return self.in_site(enterprise, site).values()

    def sites(self) -> list[tuple[str, str]]:
        """Every site that had an open alert since the sink started."""
        return list(self._by_site)

    def ordered(self) -> list[Alert]:
        """Most severe first, then newest, then by id (what consoles show)."""
        return sorted(self.by_key.values(), key=lambda a: (a.level or 9, -a.since_ns, a.id))
