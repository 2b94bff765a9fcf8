"""Inhibition: while an open, *active* alert matches a rule's ``source``, alerts matching
``target`` with equal ``equal`` labels are muted (still recorded). Typical rules: a
site-wide power-off or gateway outage mutes the site's sensor alerts; a red mutes the
lower levels of the same site (``lower_only``).

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

from collections.abc import Iterable, Mapping, Sequence

from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.config.alerts import InhibitRule

__all__ = ["Inhibitor"]


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
