"""Every insights metric the Graph API knows, as plain data.

The single source of truth for config validation, the planner and the simulator. Built from the
reference pages of Meta's Graph API (IG User insights, v25; IG Media insights, v23) with the
limitations they state; deprecated metrics are kept with the version that ended them so that a
config naming one gets a precise message instead of an API error at 3 a.m.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Level = Literal["account", "media"]
ProductType = Literal["FEED", "REELS", "STORY"]

#: Kinds of account metrics; the planner treats each kind differently.
#: - ``interaction``: ``period=day`` totals over since/until, with optional breakdowns.
#: - ``series``: daily values with an ``end_time`` (``reach``, ``follower_count``, ``online_followers``).
#: - ``demographic``: ``period=lifetime`` with a ``timeframe`` and a demographic breakdown.
#: - ``media``: ``period=lifetime`` values of one media object.
Kind = Literal["interaction", "series", "demographic", "media"]

#: What a media metric needs beyond its product type, as the media insights reference states it:
#: - ``facebook_login``: a token of Facebook Login (graph.facebook.com); known from the
#:   configuration (``login``), so such a metric is simply not asked with an Instagram Login token.
#: - ``shared_to_facebook``: a media shared to Facebook ("Throws if the media is not shared to
#:   Facebook"); no field of a media says so, so such a metric is asked in a call of its own,
#:   and a media not shared answers -1/2207086 for that call alone.
Condition = Literal["facebook_login", "shared_to_facebook"]


class Metric(msgspec.Struct, frozen=True):
    name: str
    level: Level
    kind: Kind
    period: str
    metric_types: tuple[str, ...] = ()
    breakdowns: tuple[str, ...] = ()
    product_types: tuple[ProductType, ...] = ()
    timeframes: tuple[str, ...] = ()
    min_followers: int = 0
    """Accounts with fewer followers get an empty data set (0 or :data:`MIN_FOLLOWERS`)."""
    last_days: int | None = None
    """Only the last N days can be queried (:data:`RECENT_DAYS` for ``follower_count``, ``online_followers``)."""
    object_value: bool = False
    """The value is an object (``online_followers``: hour -> count)."""
    condition: Condition | None = None
    """Served only where it holds (:data:`Condition`); None: wherever the product type allows."""
    title: str = ""
    description: str = ""


class Deprecated(msgspec.Struct, frozen=True):
    name: str
    level: Level
    version: str
    """The Graph API version from which the metric returns an error."""
    replacement: str | None = None


# Breakdown name -> the dimension values the API answers with (media breakdowns answer lower case).
BREAKDOWN_VALUES: dict[str, tuple[str, ...]] = {
    "media_product_type": ("AD", "CAROUSEL_CONTAINER", "POST", "REEL", "STORY"),
    "follow_type": ("FOLLOWER", "NON_FOLLOWER", "UNKNOWN"),
    "follower_type": ("FOLLOWER", "NON_FOLLOWER", "UNKNOWN"),
    "contact_button_type": (
        "BOOK_NOW", "CALL", "DIRECTION", "EMAIL", "INSTANT_EXPERIENCE", "TEXT", "UNDEFINED",
    ),
    "action_type": ("bio_link_clicked", "call", "direction", "email", "other", "text"),
    "story_navigation_action_type": ("swipe_forward", "tap_back", "tap_exit", "tap_forward"),
    "age": ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("F", "M", "U"),
    "country": (
        "US", "BR", "IN", "ID", "MX", "TR", "JP", "GB", "DE", "FR", "IT", "ES", "AR", "CO", "CA",
        "RU", "PH", "TH", "VN", "KR", "EG", "SA", "AE", "NG", "ZA", "PL", "NL", "BE", "SE", "CH",
        "AT", "PT", "GR", "CL", "PE", "VE", "MA", "DZ", "IQ", "PK", "BD", "MY", "SG", "AU", "NZ",
        "IE", "DK", "NO", "FI", "CZ", "RO", "HU", "UA", "IL", "KE", "GH", "LA", "EC", "UY", "PY",
    ),
    "city": tuple(
        f"{city}, {region}"
        for region, cities in (
            ("California", ("Los Angeles", "San Francisco", "San Diego", "San Jose", "Oakland")),
            ("New York", ("New York", "Brooklyn", "Buffalo", "Rochester")),
            ("Texas", ("Houston", "Dallas", "Austin", "San Antonio")),
            ("São Paulo (state)", ("São Paulo", "Campinas", "Santos")),
            ("Rio de Janeiro (state)", ("Rio de Janeiro", "Niterói")),
            ("England", ("London", "Manchester", "Birmingham", "Leeds", "Liverpool")),
            ("Île-de-France", ("Paris", "Boulogne-Billancourt")),
            ("Community of Madrid", ("Madrid", "Alcalá de Henares")),
            ("Lombardy", ("Milan", "Bergamo")),
            ("Berlin", ("Berlin",)),
            ("Bavaria", ("Munich", "Nuremberg")),
            ("Maharashtra", ("Mumbai", "Pune", "Nagpur")),
            ("Delhi", ("New Delhi",)),
            ("Jakarta", ("Jakarta",)),
            ("Mexico City", ("Mexico City",)),
            ("Jalisco", ("Guadalajara",)),
            ("Istanbul Province", ("Istanbul",)),
            ("Tokyo", ("Tokyo",)),
            ("Buenos Aires", ("Buenos Aires", "La Plata")),
            ("Bogotá", ("Bogotá",)),
            ("Lima Region", ("Lima",)),
            ("Ontario", ("Toronto", "Ottawa")),
            ("New South Wales", ("Sydney",)),
            ("Victoria", ("Melbourne",)),
        )
        for city in cities
    ),
}

INTERACTION_BREAKDOWNS = ("media_product_type", "follow_type", "follower_type", "contact_button_type")
DEMOGRAPHIC_BREAKDOWNS = ("age", "city", "country", "gender")

#: Demographic breakdowns harvested by default: each single one plus the age x gender cross-tab.
DEFAULT_DEMOGRAPHIC_BREAKDOWNS: tuple[tuple[str, ...], ...] = (
    ("age",), ("city",), ("country",), ("gender",), ("age", "gender"),
)
#: Timeframes accepted since v20 for demographics.
TIMEFRAMES = ("this_week", "this_month")
DEPRECATED_TIMEFRAMES = ("last_14_days", "last_30_days", "last_90_days", "prev_month")
DEFAULT_TIMEFRAMES = ("this_month",)

#: Demographics return at most this many results per breakdown.
DEMOGRAPHIC_TOP = 45
#: How long the API keeps insights, per level (days).
#:
#: - ``media``: 730. The media insights reference (updated June 2026) says "Metrics data is stored
#:   for up to 2 years."
#: - ``account``: 730. The sources conflict. The account insights reference (June 2026) states no
#:   retention; the insights guide (January 2025) says "User Metrics data is stored for up to 90
#:   days"; the older guide said 2 years for all metrics, and the v10 account reference says
#:   follower_count alone went from 2 years to 30 days. What the API does settles it: account
#:   insights are served back to 729 days, and a ``since`` older than 2 years is refused with
#:   "(#100) since param is not valid. Metrics data is available for the last 2 years" (measured
#:   against the API by practitioners in 2026; the same answer in Airbyte's source-instagram).
#:   The rule that loses no data the API still has yet spends no call on data it cannot have is
#:   the bound the API enforces: 90 days would give up 640 days it serves, and no planned call is
#:   older than 730 days (:func:`harvester.plan.units.earliest_since`).
#:
#: Inside the account level, ``follower_count`` and ``online_followers`` keep their own, shorter
#: limit: :data:`RECENT_DAYS` (``Metric.last_days``), refused with their own error.
#: docs/harvest-rules.md, "Retention", gives the addresses.
RETENTION_DAYS: dict[Level, int] = {"account": 730, "media": 730}
#: since/until may be at most this far apart (seconds).
MAX_RANGE_SECONDS = 30 * 86400
#: Accounts with fewer followers get no demographics and no follower metrics (follower_count,
#: online_followers, follows_and_unfollows): the API answers those with an empty data set.
MIN_FOLLOWERS = 100
#: engaged_audience_demographics is not returned for fewer engagements during the timeframe.
MIN_ENGAGEMENTS = 100
#: follower_count and online_followers can be queried for the last this many days only.
RECENT_DAYS = 30
#: Story insights live this long after posting (seconds).
STORY_LIFETIME_SECONDS = 24 * 3600
#: Stories with fewer viewers answer error 10.
STORY_MIN_VIEWERS = 5
PRODUCT_TYPES: tuple[ProductType, ...] = ("FEED", "REELS", "STORY")


def _interaction(name: str, breakdowns: tuple[str, ...] = (), *, title: str, description: str,
                 metric_types: tuple[str, ...] = ("total_value",), min_followers: int = 0) -> Metric:
    return Metric(name, "account", "interaction", "day", metric_types, breakdowns,
                  min_followers=min_followers, title=title, description=description)


def _media(name: str, product_types: tuple[ProductType, ...], breakdowns: tuple[str, ...] = (),
           *, title: str, description: str, condition: Condition | None = None) -> Metric:
    return Metric(name, "media", "media", "lifetime", (), breakdowns, product_types,
                  title=title, description=description, condition=condition)


ACCOUNT_METRICS: tuple[Metric, ...] = (
    _interaction("accounts_engaged", title="Accounts engaged",
                 description="The number of accounts that have interacted with your content, including in ads."),
    _interaction("comments", ("media_product_type",), title="Comments",
                 description="The number of comments on your posts, reels, videos and live videos."),
    _interaction("follows_and_unfollows", ("follow_type",), min_followers=MIN_FOLLOWERS, title="Follows and unfollows",
                 description="The number of accounts that followed you and the number of accounts that unfollowed you "
                             "or left Instagram in the selected time period."),
    _interaction("likes", ("media_product_type",), title="Likes",
                 description="The number of likes on your posts, reels, and videos."),
    _interaction("profile_links_taps", ("contact_button_type",), title="Profile links taps",
                 description="The number of taps on your business address, call button, email button and text button."),
    _interaction("reach", ("media_product_type", "follow_type"), metric_types=("total_value", "time_series"),
                 title="Accounts reached",
                 description="The number of unique accounts that have seen your content, at least once, including in "
                             "ads."),
    _interaction("replies", title="Replies",
                 description="The number of replies you received from your story, including text replies and quick "
                             "reaction replies."),
    _interaction("reposts", title="Reposts",
                 description="The number of reposts of your posts, stories, reels, and videos."),
    _interaction("saves", ("media_product_type",), title="Saves",
                 description="The number of saves of your posts, reels, and videos."),
    _interaction("shares", ("media_product_type",), title="Shares",
                 description="The number of shares of your posts, stories, reels, videos and live videos."),
    _interaction("total_interactions", ("media_product_type",), title="Total interactions",
                 description="The total number of post interactions, story interactions, reels interactions, video "
                             "interactions and live video interactions."),
    _interaction("views", ("follower_type", "media_product_type"), title="Views",
                 description="The number of times your content was played or displayed."),
    Metric("follower_count", "account", "series", "day", ("time_series",), min_followers=MIN_FOLLOWERS,
           last_days=RECENT_DAYS, title="Follower count",
           description="Total number of new followers each day within the specified range."),
    Metric("online_followers", "account", "series", "lifetime", ("time_series",), min_followers=MIN_FOLLOWERS,
           last_days=RECENT_DAYS, object_value=True, title="Online followers",
           description="Total number of the IG User's followers who were online during the specified range."),
    Metric("follower_demographics", "account", "demographic", "lifetime", ("total_value",),
           DEMOGRAPHIC_BREAKDOWNS, timeframes=TIMEFRAMES, min_followers=MIN_FOLLOWERS, title="Follower demographics",
           description="The demographic characteristics of followers, including countries, cities and gender "
                       "distribution."),
    Metric("engaged_audience_demographics", "account", "demographic", "lifetime", ("total_value",),
           DEMOGRAPHIC_BREAKDOWNS, timeframes=TIMEFRAMES, min_followers=MIN_FOLLOWERS,
           title="Engaged audience demographics",
           description="The demographic characteristics of the engaged audience, including countries, cities and "
                       "gender distribution."),
)

MEDIA_METRICS: tuple[Metric, ...] = (
    _media("comments", ("FEED", "REELS"), title="Comments", description="Number of comments on the media object."),
    _media("crossposted_views", ("REELS",), condition="shared_to_facebook", title="Crossposted views",
           description="The number of times the reel was played on Instagram and on Facebook, for a reel shared "
                       "to Facebook (added December 2025)."),
    _media("facebook_views", ("FEED", "REELS", "STORY"), condition="shared_to_facebook", title="Facebook views",
           description="The number of times the media was seen on Facebook, for a media shared to Facebook (added "
                       "December 2025)."),
    _media("follows", ("FEED", "STORY"), title="Follows",
           description="The number of Instagram users following your app user's Instagram professional account."),
    _media("ig_reels_avg_watch_time", ("REELS",), title="Average watch time",
           description="The average amount of time spent playing the reel."),
    _media("ig_reels_video_view_total_time", ("REELS",), title="Total view time",
           description="The total amount of time the reel was played, including any time spent replaying the reel."),
    _media("likes", ("FEED", "REELS"), title="Likes", description="Number of likes on the media object."),
    _media("link_clicks", ("STORY",), condition="facebook_login", title="Link clicks",
           description="The number of taps on the story's link sticker (added June 2026; Facebook Login only)."),
    _media("navigation", ("STORY",), ("story_navigation_action_type",), title="Navigation",
           description="This is the total number of actions taken from your story."),
    _media("profile_activity", ("FEED", "STORY"), ("action_type",), title="Profile activity",
           description="The number of actions people take when they visit your profile after engaging with your post."),
    _media("profile_visits", ("FEED", "STORY"), title="Profile visits",
           description="The number of times your profile was visited."),
    _media("reach", ("FEED", "REELS", "STORY"), title="Accounts reached",
           description="Number of unique Instagram users that have seen the media at least once."),
    _media("reels_skip_rate", ("REELS",), title="Skip rate",
           description="The percentage of times the reel was skipped within its first seconds (added December "
                       "2025)."),
    _media("replies", ("STORY",), title="Replies",
           description="Total number of replies (IG Comments) on the story IG Media object."),
    _media("reposts", ("FEED", "REELS", "STORY"), title="Reposts",
           description="Number of times the media was reposted (added December 2025)."),
    _media("saved", ("FEED", "REELS"), title="Saved",
           description="Number of times your app user's Instagram media was saved by an Instagram user."),
    _media("shares", ("FEED", "REELS", "STORY"), title="Shares", description="Number of shares of the media."),
    _media("total_comments", ("FEED", "REELS"), condition="facebook_login", title="Total comments",
           description="Number of comments on the media, including those on its boosted or ad versions "
                       "(Facebook Login only)."),
    _media("total_interactions", ("FEED", "REELS", "STORY"), title="Total interactions",
           description="Number of likes, saves, comments, and shares, minus unlikes, unsaves, and deleted comments."),
    _media("total_likes", ("FEED", "REELS"), condition="facebook_login", title="Total likes",
           description="Number of likes on the media, including those on its boosted or ad versions (Facebook "
                       "Login only)."),
    _media("total_views", ("FEED", "REELS", "STORY"), condition="facebook_login", title="Total views",
           description="Number of times the media was seen, including as a boosted post or an ad (Facebook Login "
                       "only)."),
    _media("views", ("FEED", "REELS", "STORY"), title="Views",
           description="Total number of times the media has been seen."),
)

DEPRECATED: tuple[Deprecated, ...] = (
    Deprecated("impressions", "account", "v22.0", "views"),
    Deprecated("profile_views", "account", "v21.0", "profile_links_taps"),
    Deprecated("website_clicks", "account", "v21.0", "profile_links_taps"),
    Deprecated("email_contacts", "account", "v21.0", "profile_links_taps"),
    Deprecated("phone_call_clicks", "account", "v21.0", "profile_links_taps"),
    Deprecated("text_message_clicks", "account", "v21.0", "profile_links_taps"),
    Deprecated("get_directions_clicks", "account", "v21.0", "profile_links_taps"),
    Deprecated("audience_gender_age", "account", "v18.0", "follower_demographics"),
    Deprecated("audience_locale", "account", "v18.0", "follower_demographics"),
    Deprecated("audience_country", "account", "v18.0", "follower_demographics"),
    Deprecated("audience_city", "account", "v18.0", "follower_demographics"),
    Deprecated("impressions", "media", "v22.0", "views"),
    Deprecated("plays", "media", "v22.0", "views"),
    Deprecated("clips_replays_count", "media", "v22.0", "views"),
    Deprecated("ig_reels_aggregated_all_plays_count", "media", "v22.0", "views"),
    Deprecated("video_views", "media", "v21.0", "views"),
    Deprecated("engagement", "media", "v18.0", "total_interactions"),
    Deprecated("exits", "media", "v18.0", "navigation"),
    Deprecated("taps_forward", "media", "v18.0", "navigation"),
    Deprecated("taps_back", "media", "v18.0", "navigation"),
    Deprecated("carousel_album_impressions", "media", "v18.0", "views"),
    Deprecated("carousel_album_reach", "media", "v18.0", "reach"),
    Deprecated("carousel_album_engagement", "media", "v18.0", "total_interactions"),
    Deprecated("carousel_album_saved", "media", "v18.0", "saved"),
    Deprecated("carousel_album_video_views", "media", "v18.0", "views"),
)

_ACCOUNT = {m.name: m for m in ACCOUNT_METRICS}
_MEDIA = {m.name: m for m in MEDIA_METRICS}
_DEPRECATED = {(d.level, d.name): d for d in DEPRECATED}


def account_metric(name: str) -> Metric | None:
    return _ACCOUNT.get(name)


def media_metric(name: str) -> Metric | None:
    return _MEDIA.get(name)


def metric(level: Level, name: str) -> Metric | None:
    return (_ACCOUNT if level == "account" else _MEDIA).get(name)


def deprecated(level: Level, name: str) -> Deprecated | None:
    return _DEPRECATED.get((level, name))


def metrics_for_product(product_type: ProductType) -> tuple[Metric, ...]:
    """Media metrics valid for one product type, in catalog order."""
    return tuple(m for m in MEDIA_METRICS if product_type in m.product_types)


def served_to(metric: Metric, login: str) -> bool:
    """Whether a token of ``login`` ("facebook" or "instagram") may be asked ``metric`` at all."""
    return metric.condition != "facebook_login" or login == "facebook"


def product_type_of(media_type: str, media_product_type: str | None) -> ProductType:
    """FEED, REELS or STORY: reels arrive as ``media_type=VIDEO``, so never classify by media_type alone."""
    if media_product_type in ("REELS", "STORY"):
        return media_product_type  # type: ignore[return-value]
    return "FEED"


def account_metrics(kind: Kind) -> tuple[Metric, ...]:
    return tuple(m for m in ACCOUNT_METRICS if m.kind == kind)


#: Account metrics queryable for the last :data:`RECENT_DAYS` only (follower_count, online_followers).
RECENT_ONLY: tuple[str, ...] = tuple(m.name for m in ACCOUNT_METRICS if m.last_days is not None)
#: Account metrics that need :data:`MIN_FOLLOWERS` followers.
FOLLOWERS_ONLY: frozenset[str] = frozenset(m.name for m in ACCOUNT_METRICS if m.min_followers)
