"""An account's interaction totals over a window, their breakdowns, and its online followers.

The API answers totals for any window ``[since, until)``. Every metric of one window comes from
one draw, so that they agree as the API's do:

- ``total_interactions`` = likes + comments + saves + shares + replies: the account reference
  counts "post interactions, story interactions, reels interactions ..."; a story's interactions
  are its replies and shares (posts.py), and ``shares`` counts stories' shares too.
- ``accounts_engaged`` <= ``reach`` <= ``views``: reach counts accounts, which come back day after
  day, so n days reach ``n ** 0.75`` days' worth (API-FACTS: summing daily reach overstates the
  window's by half); views and interactions grow in proportion to the window.
- A breakdown's results add up to the total (the reference: "sum of breakdown set values"); two
  breakdowns at once split each result of the first (in catalog order, whichever order they are
  asked in) by the second.
- ``follows_and_unfollows`` is follows + unfollows, its ``follow_type`` results FOLLOWER and
  NON_FOLLOWER (GUESS, as practitioners read them); ``follower_count``, a US-Pacific day's new
  followers, is the follows of that day's window (world.py).
"""

from __future__ import annotations

import math

from .. import catalog
from . import rates
from .draws import noise, split

WINDOW_DRAWS = 16
FOLLOWS_PER_DAY = 0.0015
"""New followers a day, per follower: 4.5 % a month before unfollows ([S1]: 0-3 % net growth)."""
PRIORS: dict[str, dict[str, float]] = {
    "media_product_type": {"AD": 0.0, "CAROUSEL_CONTAINER": 0.3, "POST": 0.3, "REEL": 0.3, "STORY": 0.1},
    "follow_type": {"FOLLOWER": 0.45, "NON_FOLLOWER": 0.5, "UNKNOWN": 0.05},
    "follower_type": {"FOLLOWER": 0.45, "NON_FOLLOWER": 0.5, "UNKNOWN": 0.05},
    "contact_button_type": {"BOOK_NOW": 0.05, "CALL": 0.15, "DIRECTION": 0.2, "EMAIL": 0.2, "INSTANT_EXPERIENCE": 0.02,
                            "TEXT": 0.18, "UNDEFINED": 0.2},
}
"""Each breakdown value's share before the account's own draws (GUESS)."""
NOT_ON_STORIES = frozenset({"likes", "comments", "saves"})
"""Account metrics the reference counts on posts, reels and videos only: no STORY results."""
ADVERTISERS, AD_SHARE = 0.2, 0.08
"""Share of accounts that run ads, and the AD result's weight for them (the account metrics count
ads; media insights never do)."""
PROFILE_DRAWS = 8
"""Per account: whether it advertises, and which contact buttons its profile has."""


def window(u: list[float], followers: int, appeal: float, days: float) -> dict[str, int]:
    """Every interaction metric of a window of ``days`` days, from :data:`WINDOW_DRAWS` uniforms."""
    reach_rate = rates.by_size(rates.REACH_RATE, followers)
    daily_reach = followers * reach_rate * rates.DAILY_REACH * math.sqrt(appeal) * noise(0.15, u[0], u[1], u[2])
    reach = round(daily_reach * days ** 0.75)
    views = max(reach, round(daily_reach * days * (2.0 + 1.5 * u[3])))
    per_day = followers * rates.by_size(rates.ENGAGED_PER_FOLLOWER, followers) * rates.POSTS_PER_DAY * appeal
    total = round(per_day * days * noise(0.2, u[4], u[5], u[6]))
    likes, comments, saves, shares, replies = split(total, (0.8, 0.035 * (0.6 + 0.8 * u[7]), 0.07 * (0.6 + 0.8 * u[8]),
                                                            0.065 * (0.6 + 0.8 * u[9]), 0.03 * (0.6 + 0.8 * u[10])))
    follows = round(followers * FOLLOWS_PER_DAY * days * (0.3 + 1.4 * u[11]))
    unfollows = round(follows * (0.3 + 0.6 * u[12]))
    return {"reach": reach, "views": views, "likes": likes, "comments": comments, "saves": saves, "shares": shares,
            "replies": replies, "total_interactions": total,
            "accounts_engaged": min(reach, round(total * (0.55 + 0.25 * u[13]))),
            "reposts": round(total * 0.01 * (0.5 + u[14])),
            "profile_links_taps": round(daily_reach * days * 0.004 * (0.5 + u[15])),
            "follows": follows, "unfollows": unfollows, "follows_and_unfollows": follows + unfollows}


def canonical(breakdowns: tuple[str, ...]) -> tuple[str, ...]:
    """The breakdowns in catalog order: the order they are split in."""
    return tuple(sorted(breakdowns, key=catalog.INTERACTION_BREAKDOWNS.index))


def draws_for(breakdowns: tuple[str, ...]) -> int:
    """How many uniforms :func:`table` needs for ``breakdowns`` (one per cell at each level)."""
    n, cells = 0, 1
    for b in breakdowns:
        cells *= len(catalog.BREAKDOWN_VALUES[b])
        n += cells
    return n


def table(u: list[float], totals: dict[str, int], metric: str, breakdowns: tuple[str, ...],
          profile: list[float]) -> dict[tuple[str, ...], int]:
    """Every combination of ``breakdowns``' values (canonical order) -> its result, adding up to
    the metric's total; ``u``: :func:`draws_for` uniforms; ``profile``: the account's."""
    cells: dict[tuple[str, ...], int] = {(): totals[metric]}
    at = 0
    for b in breakdowns:
        names = catalog.BREAKDOWN_VALUES[b]
        base = _weights(metric, b, names, totals, profile)
        nxt: dict[tuple[str, ...], int] = {}
        for combo, value in cells.items():
            jitter = u[at:at + len(names)]
            at += len(names)
            weights = base if metric == "follows_and_unfollows" else [w * (0.5 + x) for w, x in zip(base, jitter,
                                                                                                    strict=True)]
            for name, part in zip(names, split(value, weights), strict=True):
                nxt[(*combo, name)] = part
        cells = nxt
    return cells


def _weights(metric: str, breakdown: str, names: tuple[str, ...], totals: dict[str, int],
             profile: list[float]) -> list[float]:
    if metric == "follows_and_unfollows":
        return [float(totals["follows"]), float(totals["unfollows"]), 0.0]
    prior = PRIORS[breakdown]
    out = []
    for i, name in enumerate(names):
        w = prior[name]
        if name == "AD" and profile[0] < ADVERTISERS:
            w = AD_SHARE
        elif name == "STORY" and metric in NOT_ON_STORIES:
            w = 0.0
        elif breakdown == "contact_button_type" and name != "UNDEFINED" and profile[1 + i] < 0.5:
            w = 0.0                                         # the profile has no such button
        out.append(w)
    return out


def online(u: list[float], followers: int) -> dict[str, int]:
    """Followers online in each hour "0".."23" of a US-Pacific day, from 24 uniforms."""
    return {str(h): round(followers * rates.ONLINE_AT_PEAK * a * (0.85 + 0.3 * x))
            for h, (a, x) in enumerate(zip(rates.ACTIVITY, u, strict=True))}
