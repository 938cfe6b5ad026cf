"""Media refresh by age: lifetime values move for weeks after posting, then hardly at all.

A media is due when the time since its last harvest reaches the interval of its age tier. The
defaults re-read a media daily in its first week, weekly until 90 days, monthly after that;
stories are harvested while they live (24 h) whatever the tiers say. A small slack lets a run
scheduled every 24 h not slip a day because the previous one finished a few minutes later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..config.model import DEFAULT_TIERS, Tier
from ..days import DAY

SLACK_SECONDS = 3 * 3600


def interval(age_seconds: float, tiers: tuple[Tier, ...]) -> float:
    for tier in tiers:
        if tier.max_age_days is None or age_seconds < tier.max_age_days * DAY:
            return tier.every_days * DAY
    return tiers[-1].every_days * DAY


def due(posted: float | None, last_harvested: float | None, now: float,
        tiers: tuple[Tier, ...] = DEFAULT_TIERS) -> bool:
    if last_harvested is None or posted is None or not tiers:
        return True
    return now - last_harvested >= interval(now - posted, tiers) - SLACK_SECONDS


class RefreshCheck:
    """Which media of a page are due this run, from when other runs last harvested them (one
    state query per page). Stories are always due: they live 24 h."""

    def __init__(self, last_harvested: Callable[[Sequence[str]], Mapping[str, float]], now: float,
                 tiers: tuple[Tier, ...] = DEFAULT_TIERS):
        self.last_harvested, self.now, self.tiers = last_harvested, now, tiers

    def due(self, media: Sequence[tuple[str, float | None, str | None]]) -> list[bool]:
        """For each ``(media_id, posted, product_type)``, whether it is harvested this run."""
        last = self.last_harvested([media_id for media_id, _, _ in media])
        return [product == "STORY" or due(posted, last.get(media_id), self.now, self.tiers)
                for media_id, posted, product in media]
