"""Inhibition: while an open, *active* alert matches a rule's ``source``, alerts matching
``target`` with equal ``equal`` labels are muted (still recorded). Typical rules: a
site-wide power-off or gateway outage mutes the site's sensor alerts; a red mutes the
lower levels of the same site (``lower_only``).

:class:`Inhibitor` holds the rules; :class:`InhibitionStage` is its muter stage over the
open alerts of the alert's site.

>>> from riskwatch.config.alerts import InhibitRule
>>> inh = Inhibitor([InhibitRule(source={"rule": ["gateway_down"]}, target={})])
>>> src = {"rule": "gateway_down", "enterprise": "e", "site": "s", "level": "yellow"}
>>> tgt = {"rule": "ch4", "enterprise": "e", "site": "s", "level": "orange"}
>>> inh.inhibited(tgt, 2, "a2", [("a1", src, 3)])
True
>>> inh.inhibited(tgt, 2, "a2", [])
False
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from riskwatch.alerts.records import Action
from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.alerts.stages.muter import INHIBITED, Suppression
from riskwatch.alerts.state import Alert
from riskwatch.config.alerts import InhibitRule

__all__ = ["InhibitionStage", "Inhibitor"]

#: (enterprise, site) -> the open alerts of that site
SiteAlerts = Callable[[str, str], Iterable[Alert]]


class Inhibitor:
    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self.rules = [(Matchers(r.source), Matchers(r.target), list(r.equal), r) for r in rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def inhibited(
        self,
        labels: Mapping[str, str],
        level: int | None,
        alert_id: str,
        sources: Iterable[tuple[str, Mapping[str, str], int | None]],
    ) -> bool:
        """Is an alert with ``labels`` muted by any of the active ``sources``
        ``(id, labels, level)``? An alert never inhibits itself."""
        if not self.rules:
            return False
        cand = [(sid, sl, slev) for sid, sl, slev in sources if sid != alert_id]
        for src_m, tgt_m, equal, rule in self.rules:
            if not tgt_m(labels):
                continue
            for _sid, sl, slev in cand:
                if not src_m(sl):
                    continue
                if any(sl.get(k, "") != labels.get(k, "") for k in equal):
                    continue
                if rule.lower_only and not (
                    slev is not None and level is not None and slev < level
                ):
                    continue
                return True
        return False


class InhibitionStage:
    """Muted (``inhibited``) while another active open alert of the same site inhibits it.

    >>> from riskwatch.alerts.state import AlertState
    >>> from riskwatch.config.alerts import InhibitRule
    >>> def alert(i, rule, level):
    ...     return Alert(i, f"{rule}|m1/f1/S{i}", rule, "m1", "f1", f"S{i}", None, "ch4",
    ...                  "rule", AlertState.FIRING, True, False, level, level, 1.0, 1.0, "",
    ...                  0, 0, 0)
    >>> red, orange = alert("a1", "power_off", 1), alert("a2", "ch4", 2)
    >>> stage = InhibitionStage(Inhibitor([InhibitRule(lower_only=True)]),
    ...                         lambda enterprise, site: [red, orange])
    >>> stage(orange, Action.FIRING, 0).text, stage(red, Action.FIRING, 0)
    ('inhibited', None)
    """

    def __init__(self, inhibitor: Inhibitor, site_alerts: SiteAlerts) -> None:
        self.inhibitor = inhibitor
        self.site_alerts = site_alerts

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None:
        sources = [
            (other.id, other.labels(), other.level)
            for other in self.site_alerts(alert.enterprise, alert.site)
            if other.active and other.id != alert.id
        ]
        if self.inhibitor.inhibited(alert.labels(), alert.level, alert.id, sources):
            return INHIBITED
        return None
