"""``/{ig-media}/insights``: a media's lifetime metrics, asked by id or nested in a page of media,
with every rule of the reference the simulator knows (product types, the login that may ask a
metric, breakdowns, stories' viewers, posts from before the business conversion) and the
changes a drift made (:mod:`.drift`). Values come from :class:`~.world.World`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import catalog
from . import errors as E
from .drift import Drift, served_item
from .errors import SimReply
from .request import Query, metric_list, ok
from .tokenbook import TokenKind
from .world import Media, World

MEDIA_ENUM = frozenset(E.MEDIA_METRIC_ENUM.split(", "))
NO_LONGER_FOR_PRODUCT = frozenset({"plays", "clips_replays_count"})
"""Retired media metrics answered with "does not support ... for this media product type"."""


class MediaInsights:
    """The media insights of one world, as ``drift`` changed them by the simulated present ``wall``."""

    def __init__(self, world: World, drift: Drift | None, wall: Callable[[], float]):
        self.world, self.drift, self.wall = world, drift, wall

    def answer(self, media: Media, query: Query, login: TokenKind) -> SimReply:
        """``/{media}/insights`` with ``query`` by a token of ``login``: asked by id, or nested in
        a page of media."""
        metrics = metric_list(query)
        if isinstance(metrics, SimReply):
            return metrics
        if media.child is not None:
            return E.invalid(E.ALBUM_CHILD)  # GUESS: the reference says only "not available"
        served: list[str] = []
        if self.drift is not None:
            refusal = self.drift.refusal(self.world, metrics, media, self.wall() - self.world.now)
            if refusal is not None:
                return refusal
            served = self.drift.served(metrics)
            metrics = [n for n in metrics if n not in served]
        chosen = media_metrics(metrics, media, login)
        if isinstance(chosen, SimReply):
            return chosen
        breakdowns = tuple(b for b in query.get("breakdown", "").split(",") if b)
        if any(b not in m.breakdowns for m in chosen for b in breakdowns) or len(breakdowns) > 1:
            return E.unknown_error()
        if any(m.condition == "shared_to_facebook" for m in chosen) and not self.world.shared_to_facebook(media):
            return E.not_shared_to_facebook()        # the whole call, whatever else it asks
        if media.expired:
            return ok({"data": []})  # GUESS: an expired story's insights as "no data"
        if self.world.before_conversion(media):
            return E.before_conversion()
        if media.viewers is not None and media.viewers < catalog.STORY_MIN_VIEWERS:
            return E.not_enough_viewers()
        return ok({"data": [self._media_metric(media, m, breakdowns) for m in chosen]
                    + [served_item(self.world, media, n) for n in served]})

    def _media_metric(self, media: Media, m: catalog.Metric, breakdowns: tuple[str, ...]) -> dict:
        value = self.world.media_value(media, m.name)
        out: dict[str, Any] = {"name": m.name, "period": "lifetime", "values": [{"value": value}],
                               "title": m.title, "description": m.description}
        if breakdowns:
            results = [{"dimension_values": [v], "value": n}
                       for v, n in self.world.media_breakdown(media, m.name, breakdowns[0])]
            out["total_value"] = {"value": value, "breakdowns": [{"dimension_keys": [breakdowns[0]],
                                                                  "results": results}]}
        out["id"] = f"{media.id}/insights/{m.name}/lifetime"
        return out


def media_metrics(names: list[str], media: Media, login: str) -> list[catalog.Metric] | SimReply:
    """The catalog's metrics for ``names``, or the error the API gives for the first bad one
    (to a token of Instagram Login, the metrics of Facebook Login only are unknown names)."""
    product = media.product_type
    chosen, unsupported = [], []
    for i, name in enumerate(names):
        m = catalog.media_metric(name)
        if m is not None and not catalog.served_to(m, login):
            return E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=E.INSTAGRAM_LOGIN_MEDIA_ENUM))
        if m is not None and product in m.product_types:
            chosen.append(m)
        elif name == "impressions":
            feed_still = media.media_type in ("IMAGE", "CAROUSEL_ALBUM") or product == "STORY"
            return E.invalid(E.IMPRESSIONS_MEDIA_V22 if feed_still else E.IMPRESSIONS_MEDIA_PRODUCT)
        elif m is not None or name in NO_LONGER_FOR_PRODUCT or name in MEDIA_ENUM:
            unsupported.append(name)
        else:
            return E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=E.MEDIA_METRIC_ENUM))
    if len(unsupported) == 1:
        return E.invalid(E.NOT_FOR_PRODUCT.format(metric=unsupported[0]))
    if unsupported:
        return E.invalid(E.NOT_FOR_PRODUCT_MANY.format(metrics=", ".join(unsupported)))
    return chosen
