"""The API as it changes under a harvest: metrics refused, served and retired on demand.

Meta adds and retires metrics every few months, and refuses some for media types its own tables
allow (``shares`` on IMAGE posts: exileum/meta-mcp #120). A :class:`Drift` makes the simulator
do the same, with the API's words: a cataloged metric refused for one media type ("does not
support the X metric for this media product type"), metrics the catalog does not know served
with values (and listed in the "must be one of" enum), and a metric retired at a given moment of
simulated time (asking it then answers "metric[i] must be one of ...", as retired metrics do).
:func:`without_refused` is the ground truth of a drifting world: the world's, less what it refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from .. import catalog
from ..records import NaturalKey
from . import errors as E
from .errors import SimReply
from .world import Media, World

SERVED_RATE = 0.01
"""A served uncataloged metric's value per follower (stories: per viewer)."""


class Drift(msgspec.Struct, frozen=True):
    refuse: tuple[tuple[str, str], ...] = ()
    """(metric, media type): that media metric is refused for media of that type (IMAGE, VIDEO,
    CAROUSEL_ALBUM), whatever the catalog allows."""
    serve: tuple[str, ...] = ()
    """Media metrics the catalog does not know, answered with values and listed in the enum."""
    refuse_some: tuple[tuple[str, str, float], ...] = ()
    """(metric, media type, share): that metric is refused for that share of the media of that
    type (drawn per media from the world's seed) and served to the others: a refusal that says
    nothing of the kind."""
    retire: tuple[tuple[str, float], ...] = ()
    """(metric, seconds): from so long after the world's ``now`` (simulated time), the metric is
    retired: asking it answers "metric[i] must be one of" a list without it."""

    def describe(self) -> str:
        """One line for the simulator's banner."""
        parts = [f"{m} refused for {t}" for m, t in self.refuse]
        parts += [f"{m} refused for {share:.0%} of {t}" for m, t, share in self.refuse_some]
        parts += [f"{m} served (not in the catalog)" for m in self.serve]
        parts += [f"{m} retired {after:g} s after now" for m, after in self.retire]
        return "; ".join(parts) or "none"

    def refusal(self, world: World, names: Sequence[str], media: Media, elapsed: float) -> SimReply | None:
        """The API's refusal of the first refused or retired metric of ``names``, else None."""
        for i, name in enumerate(names):
            if self.retired(name, elapsed):
                return E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=", ".join(self.enum(elapsed))))
            if self.refuses(world, name, media):
                return E.invalid(E.NOT_FOR_PRODUCT.format(metric=name))
        return None

    def refuses(self, world: World, metric: str, media: Media) -> bool:
        """Whether ``metric`` is refused for ``media`` (whatever the time)."""
        if (metric, media.media_type) in self.refuse:
            return True
        return any(metric == m and media.media_type == t and world.unit("drift refuses", media.id, m) < share
                   for m, t, share in self.refuse_some)

    def retired(self, name: str, elapsed: float) -> bool:
        return any(name == metric and elapsed >= after for metric, after in self.retire)

    def enum(self, elapsed: float) -> list[str]:
        """The media metric names the API lists as valid ``elapsed`` seconds into the run."""
        names = E.MEDIA_METRIC_ENUM.split(", ") + [n for n in self.serve if n not in E.MEDIA_METRIC_ENUM]
        return [n for n in names if not self.retired(n, elapsed)]

    def served(self, names: Sequence[str]) -> list[str]:
        """The names of ``names`` that this drift answers although the catalog does not know them."""
        return [n for n in names if n in self.serve and catalog.media_metric(n) is None]


def served_item(world: World, media: Media, metric: str) -> dict[str, Any]:
    """A served uncataloged metric's insights item, as the API answers any lifetime metric."""
    audience = media.viewers if media.viewers is not None else world.account(media.account).followers
    value = int(audience * SERVED_RATE * (0.5 + world.unit("drift_value", media.id, metric)))
    return {"name": metric, "period": "lifetime", "values": [{"value": value}], "title": metric,
            "description": "A metric the catalog does not know (simulated drift).",
            "id": f"{media.id}/insights/{metric}/lifetime"}


DEMO = Drift(refuse=(("shares", "IMAGE"),), serve=("watch_through_rate",),
             retire=(("ig_reels_video_view_total_time", 3600.0),))
"""``harvester simulate --drift``: shares refused on IMAGE posts (as practitioners saw),
watch_through_rate served to every media (the catalog does not know it), and one metric retired an
hour into the run."""


def without_refused(truth: Mapping[NaturalKey, Any], world: World, drift: Drift) -> dict[NaturalKey, Any]:
    """The ground truth of a drifting world: ``truth`` less the records of refused metrics (every
    other metric of a refused media stays). Retirement is a matter of when: not applied here."""
    names = {name for name, _ in drift.refuse} | {name for name, _, _ in drift.refuse_some}
    refused = {}
    for key, value in truth.items():
        object_id, metric = key[0], key[1]
        if metric in names:
            media = world.media_by_id(object_id)
            if media is not None and drift.refuses(world, metric, media):
                continue
        refused[key] = value
    return refused
