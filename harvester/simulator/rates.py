"""How the simulated audience behaves: reach, engagement and their mix by account size, content
type and hour, with where each figure comes from.

Benchmarks disagree by a factor of two (by industry, year, brands or creators); the world takes
values inside their ranges, so that a harvest of it reads like a real account's:

- [S1] startmotionmedia.com, "Instagram benchmarks: key insights" (mid-2024 ranges): reach per
  feed post 20-40 % of followers under 10k, 15-30 % at 10k-100k, 10-20 % at 100k-1M; engagement
  (likes + comments + saves) per follower 2-5 %, 1-3 %, 0.7-1.5 %; story reach 7-15 %, 5-12 %,
  4-10 %; reels reach 1.5-3x what images reach; carousels engage 1.2-1.8x more than images.
- [S2] Later, 2022 industry benchmark (63 million posts, reels excluded; meganericson.com's
  summary): engagement 1.55 % of followers, reach 15.49 % of followers: 10 % of those reached.
- [S3] A study of business accounts' posts ("Instagram Reels are a win for any business", read at
  sem.groupbuyseotools.store/news/262476): per post, images 1,009 likes, 65 comments, 62 saves of
  1,148 engagements; carousels 1,082, 41, 151 of 1,268; reels 1,541, 54, 194 of 2,009 (the rest
  shares).
- [S4] buzzmonitor, 30,000 profiles (byd.pt): 4.7 % of those reached interact.
- [S5] Mention's Instagram report: posts published 20:00-21:00 engage most, 08:00-09:00 least.

So a post reaches a quarter of a mid-size account's followers and ~6 % of those it reaches
interact (the report's engagement rate); a reel reaches twice as many and engages fewer of them.
The hour effect (twice the engagement at the evening peak as at 03:00) is stronger than [S5]'s so
that the report's best-time view finds it in 90 days of a few accounts' posts; it follows the same
curve as the world's ``online_followers``: posts do best when the followers are online.
"""

from __future__ import annotations

import functools
import itertools
import math

import msgspec

from ..days import DAY, from_unix, pacific_dst_at_midnight

Anchors = tuple[tuple[int, float], ...]
"""(followers, value) points, interpolated on log10(followers), flat beyond the ends."""

REACH_RATE: Anchors = ((100, 0.35), (1_000, 0.29), (10_000, 0.22), (100_000, 0.15), (1_000_000, 0.09))
"""Share of its followers a feed image reaches [S1, S2]."""
ENGAGED_PER_FOLLOWER: Anchors = ((100, 0.026), (1_000, 0.019), (10_000, 0.013), (100_000, 0.0085),
                                 (1_000_000, 0.005))
"""A feed image's interactions per follower [S1, S2]; divided by REACH_RATE, the share of those
reached who interact: 7.4 % at 100 followers, 5.7 % at 100k [S2, S4]."""
STORY_REACH_RATE: Anchors = ((100, 0.14), (1_000, 0.10), (10_000, 0.07), (100_000, 0.05), (1_000_000, 0.04))
"""Share of its followers a story reaches [S1]."""


class Kind(msgspec.Struct, frozen=True):
    """How one content type fares against a feed image: reach and engagement factors, the mix of
    its interactions [S3], and its views per account reached (low, high)."""

    reach: float
    engagement: float
    likes: float
    comments: float
    saved: float
    shares: float
    views: tuple[float, float]


KINDS = {
    ("IMAGE", "FEED"): Kind(1.0, 1.0, 0.87, 0.055, 0.055, 0.02, (1.2, 1.8)),
    ("CAROUSEL_ALBUM", "FEED"): Kind(1.15, 1.3, 0.84, 0.035, 0.115, 0.01, (1.5, 3.0)),
    ("VIDEO", "FEED"): Kind(1.2, 0.9, 0.84, 0.05, 0.06, 0.05, (1.3, 2.2)),
    ("VIDEO", "REELS"): Kind(2.2, 0.75, 0.77, 0.027, 0.097, 0.106, (1.4, 2.6)),
}
"""(media_type, media_product_type) -> its :class:`Kind` (GUESS for feed videos: between images and reels)."""

ENGAGEMENT_CAP = 0.4
"""No post has more interactions than 40 % of its reach (so never more than its reach)."""
POSTS_PER_DAY = 0.5
"""An account's daily interactions are this many posts' worth ([S1]: 3-5 feed posts a week)."""
DAILY_REACH = 0.8
"""An account's daily reach, relative to one post's (its posts, stories and older posts together)."""

ACTIVITY = (0.45, 0.3, 0.2, 0.15, 0.15, 0.2, 0.35, 0.5, 0.55, 0.6, 0.62, 0.66,
            0.72, 0.7, 0.68, 0.7, 0.75, 0.82, 0.9, 0.97, 1.0, 0.95, 0.8, 0.62)
"""Share of the followers online at each US-Pacific hour, relative to the evening peak at 20:00
[S5]: quiet at night (GUESS: [S5]'s worst hour is 08:00, of the hours posts were published in),
rising through the day. The API's ``online_followers`` hours are those of a
US-Pacific day; the simulated audience keeps those hours."""
ONLINE_AT_PEAK = 0.3
"""Share of its followers online in the peak hour."""


@functools.lru_cache(maxsize=65536)
def by_size(anchors: Anchors, followers: int) -> float:
    """The anchors' value at ``followers``, interpolated on a log scale."""
    if followers <= anchors[0][0]:
        return anchors[0][1]
    for (f0, v0), (f1, v1) in itertools.pairwise(anchors):
        if followers <= f1:
            t = (math.log10(followers) - math.log10(f0)) / (math.log10(f1) - math.log10(f0))
            return v0 + t * (v1 - v0)
    return anchors[-1][1]


def pacific_hour(ts: int) -> int:
    """The hour (0-23) of ``ts`` in America/Los_Angeles (daylight time as at the day's midnight)."""
    return (ts - _pacific_offset((ts - 8 * 3600) // DAY)) // 3600 % 24


@functools.lru_cache(maxsize=4096)
def _pacific_offset(day: int) -> int:
    """Seconds behind UTC on the Pacific day that starts ``day`` days after the epoch."""
    return (7 if pacific_dst_at_midnight(from_unix(day * DAY)) else 8) * 3600


def hour_reach(activity: float) -> float:
    """A post's reach factor for the share of followers online when it is published."""
    return 0.8 + 0.4 * activity


def hour_engagement(activity: float) -> float:
    """A post's engagement factor for the share of followers online when it is published: 0.72 at
    night, 1.4 at the evening peak."""
    return 0.6 + 0.8 * activity
