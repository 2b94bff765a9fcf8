"""Noise control between a transition and its notifications, each a small object:

- :mod:`.muter`: the :class:`Muter` protocol, :class:`SuppressReason`, the
  :class:`MuteSequence` the sink asks, and :class:`HiddenStage` (shelved, out of service)
- :mod:`.silences`: operator silences with matchers, expiry, author and reason
- :mod:`.inhibition`: a source alert mutes dependent alerts of the same site
- :mod:`.flapping`: too many activations in a window -> notified once until it settles
- :mod:`.matchers`: label matchers shared by routing, silences, inhibition and consoles
- :mod:`.routing`: which notifier gets which alert

Dedup is the state machine itself: a signal that changes neither state nor level is a
no-op (counted in ``riskwatch_alert_signals_total{outcome="dedup"}``).
"""

from riskwatch.alerts.stages.flapping import Flapping, FlappingStage
from riskwatch.alerts.stages.inhibition import InhibitionStage, Inhibitor
from riskwatch.alerts.stages.matchers import Matchers
from riskwatch.alerts.stages.muter import (
    HiddenStage,
    Muter,
    MuteSequence,
    Suppression,
    SuppressReason,
)
from riskwatch.alerts.stages.routing import Router
from riskwatch.alerts.stages.silences import Silencer, SilenceStage

__all__ = [
    "Flapping",
    "FlappingStage",
    "HiddenStage",
    "InhibitionStage",
    "Inhibitor",
    "Matchers",
    "MuteSequence",
    "Muter",
    "Router",
    "SilenceStage",
    "Silencer",
    "SuppressReason",
    "Suppression",
]
