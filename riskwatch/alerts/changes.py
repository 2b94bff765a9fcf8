"""What one batch of signals, one tick or one operator action changed, waiting for the
store: alerts opened and changed, transitions, notifications, (alert, transition) pairs
for the listeners, and the sites whose summaries are out of date.

The sink queues one :class:`Changes` per call; the outbox's writer merges everything
queued (:func:`merge`) into one transaction. Alerts are kept by id, the latest copy
winning, so an alert opened in one batch and changed in the next is inserted once, as
it is now.

>>> from riskwatch.alerts.state import Alert, AlertState
>>> a1 = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule", AlertState.FIRING,
...            True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> first, second = Changes(), Changes()
>>> first.opened(a1)
>>> a2 = a1.copy(); a2.state = AlertState.RESOLVED
>>> second.touched(a2)
>>> both = merge([first, second])
>>> [a.state.value for a in both.new.values()], both.changed, sorted(both.sites)
(['resolved'], {}, [('m1', 'f1')])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from riskwatch.alerts.state import Alert, Transition
from riskwatch.alerts.store import Delivery

__all__ = ["Changes", "TransitionListener", "merge"]

#: gets the (alert, transition) pairs of each stored group (e.g. the InfluxDB writer);
#: the alerts are copies as they were right after each transition
TransitionListener = Callable[[list[tuple[Alert, Transition]]], None]


@dataclass
class Changes:
    new: dict[str, Alert] = field(default_factory=dict)
    changed: dict[str, Alert] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    pairs: list[tuple[Alert, Transition]] = field(default_factory=list)
    sites: set[tuple[str, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.transitions)

    def opened(self, a: Alert) -> None:
        """A new alert (inserted, not updated)."""
        self.new[a.id] = a
        self.sites.add((a.enterprise, a.site))

    def touched(self, a: Alert) -> None:
        """The latest copy of an alert to write."""
        if a.id in self.new:
            self.new[a.id] = a
        else:
            self.changed[a.id] = a
        self.sites.add((a.enterprise, a.site))

    def recorded(self, a: Alert, t: Transition, deliveries: Sequence[Delivery]) -> None:
        """``a`` as it is right after transition ``t``, and the notifications of ``t``."""
        if a.id in self.new:  # touched(a), inline: once per transition
            self.new[a.id] = a
        else:
            self.changed[a.id] = a
        self.sites.add((a.enterprise, a.site))
        self.transitions.append(t)
        self.deliveries.extend(deliveries)
        self.pairs.append((a, t))


def merge(queued: list[Changes]) -> Changes:
    """Everything queued, in order, as one group."""
    if len(queued) == 1:
        return queued[0]
    out = Changes()
    for ch in queued:
        for a in ch.new.values():
            out.opened(a)
        for a in ch.changed.values():
            out.touched(a)
        out.transitions += ch.transitions
        out.deliveries += ch.deliveries
        out.pairs += ch.pairs
        out.sites |= ch.sites
    return out
