"""Media not shared to Facebook: their call of the metrics that need the share is not asked again
for a week.

``facebook_views`` and ``crossposted_views`` are served only to media shared to Facebook, in a
call of their own (:func:`harvester.plan.units.media_units`); a media not shared answers that
call -1/2207086, a skip. Each refresh of the media would ask it again (a call more per media
refreshed, most of them not shared), so the state keeps the media that answered so
(``not_shared``), and later runs leave the call out for :data:`REPROBE_SECONDS`. Then it is
asked again: a media can be shared later. ``harvester run --refresh`` asks it whatever the state says.
"""

from __future__ import annotations

from ..graph.policy import Decision
from .refusals import REPROBE_SECONDS

__all__ = ["NOT_SHARED", "REPROBE_SECONDS", "is_not_shared"]

NOT_SHARED = (-1, 2207086)
"""The API's code and subcode for a media not shared to Facebook (the error policy's SKIP)."""


def is_not_shared(decision: Decision) -> bool:
    """Whether ``decision`` is the API's "not shared to Facebook" answer."""
    return (decision.code, decision.subcode) == NOT_SHARED
