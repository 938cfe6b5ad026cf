"""A media's lifetime insights, drawn together so that they agree as the API's do.

A post reaches a share of its account's followers (by size, content type and hour, rates.py);
a share of those it reaches interact, and their interactions split into likes, comments, saves
and shares, so that ``total_interactions`` is exactly their sum (the media reference: "likes,
saves, comments, and shares ... minus the number of unlikes, unsaves, and deleted comments"),
and the media's ``like_count`` and ``comments_count`` fields are the same likes and comments
(world.py). ``views`` (times seen) is at least ``reach`` (accounts that saw it); a reel's total
watch time is its views times its average watch time. A story reaches its viewers; its
interactions are its replies and shares (GUESS: the reference lists no likes, saves or comments
for stories). A breakdown metric's value is the sum of its results.
"""

from __future__ import annotations

import msgspec

from .. import catalog
from . import rates
from .draws import noise, split

ACTION_WEIGHTS = {"bio_link_clicked": 0.45, "call": 0.08, "direction": 0.1, "email": 0.12, "other": 0.15,
                  "text": 0.1}
"""``profile_activity`` by ``action_type`` (GUESS: the link in bio leads)."""
NAVIGATION_WEIGHTS = {"swipe_forward": 0.16, "tap_back": 0.08, "tap_exit": 0.14, "tap_forward": 0.62}
"""A story's ``navigation`` by ``story_navigation_action_type`` (GUESS: most tap on to the next)."""
FOLLOWS_PER_REACH, VISITS_PER_REACH = 0.0015, 0.012
"""Follows and profile visits per account reached (GUESS; stories: a third more)."""
REPOSTS_PER_REACH = 0.002
"""Reposts per account reached (GUESS: the metric is new, December 2025; a repost is no
interaction of ``total_interactions``' definition)."""
DRAWS, COMMENTS_DRAW = 23, 20
"""Uniforms per media; the one that says whether comments are on (world.py draws it)."""


class MediaInsights(msgspec.Struct, frozen=True, gc=False):
    """Every lifetime metric of one media, and the non-zero results of its breakdown metrics in
    the catalog's value order."""

    values: dict[str, int]
    breakdowns: dict[str, tuple[tuple[str, int], ...]]
    comments_on: bool = True
    """The ``is_comment_enabled`` field, drawn here because a post with comments off has none."""


def post(u: list[float], kind: rates.Kind, followers: int, appeal: float, hour: int,
         comments_on: bool) -> MediaInsights:
    """A feed post's or a reel's insights from :data:`DRAWS` uniforms ``u``."""
    activity = rates.ACTIVITY[hour]
    reach_rate = rates.by_size(rates.REACH_RATE, followers)
    reach = round(followers * reach_rate * kind.reach * rates.hour_reach(activity) * appeal ** 0.5
                  * noise(0.25, u[0], u[1], u[2]))
    rate = rates.by_size(rates.ENGAGED_PER_FOLLOWER, followers) / reach_rate * kind.engagement \
        * rates.hour_engagement(activity) * appeal * noise(0.3, u[3], u[4], u[5])
    interactions = round(reach * min(rates.ENGAGEMENT_CAP, rate))
    mix = (kind.likes, kind.comments * (0.6 + 0.8 * u[6]) if comments_on else 0.0,
           kind.saved * (0.6 + 0.8 * u[7]), kind.shares * (0.6 + 0.8 * u[8]))
    likes, comments, saved, shares = split(interactions, mix)
    low, high = kind.views
    views = max(reach, round(reach * (low + (high - low) * u[9])))
    watch = int(2000 + 13000 * u[19])
    values = {"reach": reach, "views": views, "likes": likes, "comments": comments, "saved": saved,
              "shares": shares, "total_interactions": likes + comments + saved + shares,
              "ig_reels_avg_watch_time": watch, "ig_reels_video_view_total_time": views * watch,
              "reels_skip_rate": int(20 + 60 * u[22]), "reposts": round(reach * REPOSTS_PER_REACH * (0.5 + u[21])),
              **_profile(u, reach)}
    activity_results = _split(values["profile_activity"], u[12:18], "action_type", ACTION_WEIGHTS)
    return MediaInsights(values, {"profile_activity": activity_results}, comments_on)


def story(u: list[float], reach: int) -> MediaInsights:
    """A story's insights from :data:`DRAWS` uniforms ``u``; ``reach``: its viewers."""
    views = max(reach, round(reach * (1.1 + 0.5 * u[0])))
    replies = round(reach * 0.008 * (0.5 + u[1]))
    shares = round(reach * 0.004 * (0.5 + u[2]))
    values = {"reach": reach, "views": views, "replies": replies, "shares": shares,
              "total_interactions": replies + shares, "navigation": round(views * (0.85 + 0.15 * u[3])),
              "reposts": round(reach * REPOSTS_PER_REACH * (0.5 + u[21])), **_profile(u, round(reach * 4 / 3))}
    return MediaInsights(values, {
        "profile_activity": _split(values["profile_activity"], u[12:18], "action_type", ACTION_WEIGHTS),
        "navigation": _split(values["navigation"], u[4:8], "story_navigation_action_type", NAVIGATION_WEIGHTS)})


CONDITIONAL_DRAWS = 6
"""Uniforms per media for the metrics served on a condition (:func:`conditional`): drawn apart
from :data:`DRAWS`, so that adding them moved no other value of any world."""
PROMOTED = 0.2
"""Share of posts and reels boosted or run as an ad: their ``total_*`` exceed the organic values (GUESS)."""
FACEBOOK_VIEWS_SHARE = (0.05, 0.6)
"""A media shared to Facebook is seen there this share of its Instagram views, from low to high (GUESS)."""
LINK_CLICKS_PER_REACH = 0.01
"""Taps on a story's link sticker per viewer (GUESS: a story's link draws few)."""


def conditional(u: list[float], values: dict[str, int]) -> dict[str, int]:
    """The metrics a media has only on a condition (the catalog's ``condition``), from
    :data:`CONDITIONAL_DRAWS` uniforms and its other ``values``: ``total_likes``,
    ``total_comments``, ``total_views`` (the organic ones plus, for a promoted post, what its ad
    versions drew), ``facebook_views`` (views on Facebook), ``crossposted_views`` (GUESS: a
    reel's views on both apps) and a story's ``link_clicks``."""
    boost = 0.1 + 2.0 * u[1] if u[0] < PROMOTED and "likes" in values else 0.0
    low, high = FACEBOOK_VIEWS_SHARE
    facebook = round(values["views"] * (low + (high - low) * u[2]))
    out = {"total_views": values["views"] + round(values["views"] * boost), "facebook_views": facebook,
           "crossposted_views": values["views"] + facebook}
    if "likes" in values:
        out["total_likes"] = values["likes"] + round(values["likes"] * boost * (0.5 + u[3]))
        out["total_comments"] = values["comments"] + round(values["comments"] * boost * (0.5 + u[4]))
    else:
        out["link_clicks"] = round(values["reach"] * LINK_CLICKS_PER_REACH * (0.5 + u[5]))
    return out


def _profile(u: list[float], reach: int) -> dict[str, int]:
    """Follows, profile visits and the profile activity of those visits, from ``u[10]``, ``u[11]``, ``u[18]``."""
    visits = round(reach * VISITS_PER_REACH * (0.5 + u[10]))
    return {"follows": round(reach * FOLLOWS_PER_REACH * (0.5 + u[11])), "profile_visits": visits,
            "profile_activity": round(visits * (0.1 + 0.3 * u[18]))}


def _split(total: int, u: list[float], breakdown: str, weights: dict[str, float]) -> tuple[tuple[str, int], ...]:
    """``total`` over ``breakdown``'s values, each weight jittered by 0.5-1.5: the non-zero results."""
    names = catalog.BREAKDOWN_VALUES[breakdown]
    parts = split(total, [weights[n] * (0.5 + x) for n, x in zip(names, u, strict=True)])
    return tuple((n, v) for n, v in zip(names, parts, strict=True) if v)
