"""Whether a recorded transition is notified: one :class:`Muter` protocol, stages in a
sequence (Alertmanager's ``MuteStage`` in a ``MultiStage``), a :class:`SuppressReason`.

Every transition is recorded; a muter only decides whether it also goes out. The sink
asks one :class:`MuteSequence` of small stages, in this order, and the first that mutes
gives the reason:

1. :class:`HiddenStage`: the alert is shelved or out of service (only the move into
   that state is notified);
2. :class:`~riskwatch.alerts.stages.silences.SilenceStage`: an operator silence matches;
3. :class:`~riskwatch.alerts.stages.inhibition.InhibitionStage`: another active alert of
   the site inhibits it (only when ``inhibit`` rules exist);
4. :class:`~riskwatch.alerts.stages.flapping.FlappingStage`: it is flapping (only the
   ``flapping`` and ``settled`` records go out).

A :class:`Suppression` is the reason plus the silence's id. It becomes text only where
it leaves the sink: the stored ``muted`` column of a transition (which the API, the
console and the store's readers show) and the ``reason`` label of
``riskwatch_alert_muted_total``.

>>> from riskwatch.alerts.state import Alert, AlertState
>>> a = Alert("a1", "k", "ch4", "m1", "f1", "S1", None, "ch4", "rule",
...           AlertState.SHELVED, True, False, 2, 2, 1.1, 1.0, "CH4 high", 0, 5, 5)
>>> mute = MuteSequence([HiddenStage()])
>>> mute(a, Action.RESOLVED, 0).text, mute(a, Action.SHELVE, 0)
('shelved', None)
>>> Suppression(SuppressReason.SILENCE, "s1").text, Suppression.parse("silence:s1").silence_id
('silence:s1', 's1')
>>> Suppression.parse("inhibited").reason, Suppression.parse("")
(<SuppressReason.INHIBITED: 'inhibited'>, None)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from riskwatch.alerts.records import Action
from riskwatch.alerts.state import Alert, AlertState

__all__ = ["HiddenStage", "MuteSequence", "Muter", "SuppressReason", "Suppression"]


class SuppressReason(StrEnum):
    """Why a recorded transition was not notified. The value is the stored text (for a
    silence followed by ``:<id>``) and the metric label. Hidden is two members because the
    stored text says which: ``shelved`` or ``out_of_service``."""

    SILENCE = "silence"
    INHIBITED = "inhibited"
    FLAPPING = "flapping"
    SHELVED = "shelved"
    OUT_OF_SERVICE = "out_of_service"
    QUIET = "quiet"  # recorded for the history only, never meant to be notified

    @property
    def resend_when_lifted(self) -> bool:
        """Muted by something that ends on its own (a silence, an inhibiting alert): the
        alert is marked undelivered and notified (``unmuted``) once nothing mutes it."""
        return self is SuppressReason.SILENCE or self is SuppressReason.INHIBITED

    @property
    def counted(self) -> bool:
        """Counted in ``riskwatch_alert_muted_total`` (everything but ``quiet``)."""
        return self is not SuppressReason.QUIET


@dataclass(frozen=True, slots=True)
class Suppression:
    """A reason, and for a silence which one."""

    reason: SuppressReason
    silence_id: str | None = None

    @property
    def text(self) -> str:
        """The stored form: ``silence:<id>``, else the reason's value."""
        if self.reason is SuppressReason.SILENCE:
            return f"{self.reason.value}:{self.silence_id}"
        return self.reason.value

    @classmethod
    def parse(cls, text: str) -> Suppression | None:
        """The stored form back (``""``: not muted)."""
        if not text:
            return None
        reason, _, silence_id = text.partition(":")
        return cls(SuppressReason(reason), silence_id or None)


INHIBITED = Suppression(SuppressReason.INHIBITED)
FLAPPING = Suppression(SuppressReason.FLAPPING)
QUIET = Suppression(SuppressReason.QUIET)


class Muter(Protocol):
    """One noise-control stage: why ``alert`` recording ``action`` at ``now_ns`` is not
    notified, or None. Stages read the alert and their own state; they change nothing."""

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None: ...


class MuteSequence:
    """Stages in order; the first that mutes answers."""

    def __init__(self, stages: Sequence[Muter]) -> None:
        self.stages = tuple(stages)

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None:
        for stage in self.stages:
            why = stage(alert, action, now_ns)
            if why is not None:
                return why
        return None


_HIDDEN = {
    AlertState.SHELVED: Suppression(SuppressReason.SHELVED),
    AlertState.OUT_OF_SERVICE: Suppression(SuppressReason.OUT_OF_SERVICE),
}
_HIDING = frozenset((Action.SHELVE, Action.OUT_OF_SERVICE))


class HiddenStage:
    """A shelved or out-of-service alert keeps following its condition; those changes
    are recorded, not annunciated. The move into the hidden state itself is notified."""

    def __call__(self, alert: Alert, action: Action, now_ns: int) -> Suppression | None:
        hidden = _HIDDEN.get(alert.state)
        if hidden is None or action in _HIDING:
            return None
        return hidden
