"""Ground truth: every record a correct harvest of the default selection yields, with its value.

Follows docs/harvest-rules.md to the letter, reading the same pure value functions of the world
that the API serves, so a harvest can be compared whole: missing, extra, wrong and duplicated
records. Keys are built by :func:`harvester.records.make_key`, the rule the harvest's records are keyed by.

The object streams too: :func:`expected_media` (one record per media a harvest lists) and
:func:`expected_accounts` (one per account and UTC day of harvest), as the fields of
:class:`~harvester.records.MediaRecord` and :class:`~harvester.records.AccountRecord` less
``run_id``, ``harvested_at`` and ``stream``, keyed by :func:`harvester.records.natural_key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from .. import catalog
from ..days import DAY, chunks, days_ceil, iso, to_unix
from ..records import NaturalKey, make_key
from .world import Account, Media, World

Fact = tuple[NaturalKey, int | float]

INTERACTIONS = tuple(m for m in catalog.account_metrics("interaction") if "total_value" in m.metric_types)
DEMOGRAPHICS = catalog.account_metrics("demographic")
INTERACTION_BREAKDOWNS = tuple(sorted({b for m in INTERACTIONS for b in m.breakdowns}))


def expected_records(world: World, since: date, until: date, *, totals: str = "day",
                     timeframes: tuple[str, ...] = catalog.DEFAULT_TIMEFRAMES,
                     demographic_breakdowns: tuple[tuple[str, ...], ...] = catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS,
                     accounts: Iterable[str] | None = None) -> dict[NaturalKey, int | float]:
    """Natural key -> value of every record of a correct harvest of ``[since, until)``."""
    return dict(iter_expected(world, since, until, totals=totals, timeframes=timeframes,
                              demographic_breakdowns=demographic_breakdowns, accounts=accounts))


def iter_expected(world: World, since: date, until: date, *, totals: str = "day",
                  timeframes: tuple[str, ...] = catalog.DEFAULT_TIMEFRAMES,
                  demographic_breakdowns: tuple[tuple[str, ...], ...] = catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS,
                  accounts: Iterable[str] | None = None) -> Iterator[Fact]:
    """The same facts one at a time, account by account (for worlds too big for one dict)."""
    wanted = None if accounts is None else set(accounts)
    s, u = to_unix(since), to_unix(until)
    for account in world.accounts_of_live_tokens():
        if wanted is not None and account.id not in wanted:
            continue
        yield from interaction_facts(world, account, s, u, totals)
        yield from series_facts(world, account, s, u)
        for timeframe in timeframes:
            for breakdowns in demographic_breakdowns:
                yield from demographic_facts(world, account, timeframe, breakdowns)
        yield from media_facts(world, account)


def earliest_kept(world: World) -> int:
    """Rule 0: the first UTC midnight the account retention still keeps; older days have no records."""
    return days_ceil(world.now - catalog.RETENTION_DAYS["account"] * DAY)


def interaction_facts(world: World, account: Account, since: int, until: int, totals: str) -> Iterator[Fact]:
    """Rule 1: a total per chunk and metric, then the non-zero results of each breakdown."""
    metrics = [m for m in INTERACTIONS if account.followers >= m.min_followers]
    size = DAY if totals == "day" else catalog.MAX_RANGE_SECONDS
    for s, u in chunks(since, until, size, not_before=earliest_kept(world)):
        when = {"since": iso(s), "until": iso(u)}
        for m in metrics:
            yield make_key(account.id, m.name, "day", **when), world.values.interaction(account, m.name, s, u)
        for b in INTERACTION_BREAKDOWNS:
            for m in metrics:
                if b not in m.breakdowns:
                    continue
                for value in catalog.BREAKDOWN_VALUES[b]:
                    v = world.values.interaction(account, m.name, s, u, ((b, value),))
                    if v:
                        yield make_key(account.id, m.name, "day", None, (b,), (value,), **when), v


def series_facts(world: World, account: Account, since: int, until: int) -> Iterator[Fact]:
    """Rule 2: daily reach; follower_count and online_followers for the last 30 days (catalog.RECENT_DAYS)
    of accounts with catalog.MIN_FOLLOWERS followers."""
    for end in world.values.series_days(max(since, earliest_kept(world)), until):
        yield make_key(account.id, "reach", "day", end_time=iso(end)), world.values.daily(account, "reach", end)
    if account.followers < catalog.MIN_FOLLOWERS:
        return
    for end in world.values.series_days(max(since, world.last30), until):
        stamp = iso(end)
        yield (make_key(account.id, "follower_count", "day", end_time=stamp),
               world.values.daily(account, "follower_count", end))
        for hour, v in world.values.online_followers(account, end).items():
            yield make_key(account.id, "online_followers", "lifetime", None, ("hour",), (hour,), stamp), v


def demographic_facts(world: World, account: Account, timeframe: str, breakdowns: tuple[str, ...]) -> Iterator[Fact]:
    """Rule 3: the top results, keyed by ``["timeframe", *breakdowns]``."""
    keys = ("timeframe", *breakdowns)
    for m in DEMOGRAPHICS:
        if world.values.has_demographic(account, m.name, timeframe):
            for combo, v in world.values.demographics(account, m.name, timeframe, breakdowns):
                yield make_key(account.id, m.name, "lifetime", timeframe, keys, (timeframe.upper(), *combo)), v


def media_facts(world: World, account: Account) -> Iterator[Fact]:
    """Rule 4: every listed media and live story that has insights."""
    for n in range(world.listed_media(account)):
        yield from one_media(world, world.media(account, n))
    for story in world.live_stories(account):
        yield from one_media(world, story)


def one_media(world: World, media: Media) -> Iterator[Fact]:
    """Rule 4 for one media: its product type's metrics, those on a condition where it holds
    (shared to Facebook; a token of Facebook Login)."""
    if world.before_conversion(media):
        return
    if media.viewers is not None and media.viewers < catalog.STORY_MIN_VIEWERS:
        return
    for m in catalog.metrics_for_product(media.product_type):
        if m.condition is not None and not world.serves(media, m):
            continue
        yield make_key(media.id, m.name, "lifetime"), world.media_value(media, m.name)
        for b in m.breakdowns:
            for value, v in world.media_breakdown(media, m.name, b):
                yield make_key(media.id, m.name, "lifetime", None, (b,), (value,)), v


# --- the object streams --------------------------------------------------------------------------

MEDIA_PAGE_LIMIT = 100
"""The ``limit`` of the harvest's ``/media`` and ``/stories`` pages (what a refusal spoils)."""
ObjectRecord = dict[str, Any]


def expected_media(world: World, *, accounts: Iterable[str] | None = None, hostile: Iterable[str] = (),
                   page_limit: int = MEDIA_PAGE_LIMIT) -> dict[NaturalKey, ObjectRecord]:
    """``(media_id,)`` -> the media record of every media a harvest lists: the ``/media`` of each
    account of a live token (``accounts``: only these, in this order, the configuration's), then its
    live stories, each media once, owned by the first account whose page lists it. Fields the API
    omits are None; an album's children as tuples, ``()`` for any other media.

    ``hostile`` kinds that change what is listed: ``duplicate_across_accounts`` (an account's first
    page also lists the next account's newest media: the lister owns it when it comes first) and
    ``refuse_children`` (every album of a page holding an album that refuses ``children`` has
    ``children_*`` None: the harvest asks that page again without the field; other media, ``()``)."""
    kinds = set(hostile)
    out: dict[NaturalKey, ObjectRecord] = {}
    for account in _live_accounts(world, accounts):
        for page in _media_pages(world, account, kinds, page_limit):
            refused = "refuse_children" in kinds and any(world.refuses_children(m) for m in page)
            for media in page:
                out.setdefault((media.id,), media_record(world, account, media, children=not refused))
        for story in world.live_stories(account):
            out.setdefault((story.id,), media_record(world, account, story, children=True))
    return out


def media_record(world: World, account: Account, media: Media, *, children: bool) -> ObjectRecord:
    """The record of ``media`` as ``account``'s page lists it (``children``: False when refused)."""
    d = world.details(media)
    kids = world.children_of(media)
    children = children or media.media_type != "CAROUSEL_ALBUM"     # a refusal hides only an album's
    return {"media_id": media.id, "account_id": account.id, "media_type": media.media_type,
            "media_product_type": media.media_product_type, "timestamp": iso(media.timestamp),
            "permalink": d.permalink, "shortcode": d.shortcode, "caption": d.caption,
            "like_count": None if d.likes_hidden else d.like_count, "comments_count": d.comments_count,
            "is_comment_enabled": d.is_comment_enabled, "media_url": d.media_url, "thumbnail_url": d.thumbnail_url,
            "children_ids": tuple(c.id for c in kids) if children else None,
            "children_types": tuple(c.media_type for c in kids) if children else None}


def expected_accounts(world: World, day: date, *, accounts: Iterable[str] | None = None
                      ) -> dict[NaturalKey, ObjectRecord]:
    """``(account_id, day)`` -> the account record of every account of a live token harvested on
    the UTC day ``day`` (``accounts``: only these)."""
    stamp = day.isoformat()
    return {(a.id, stamp): {"account_id": a.id, "day": stamp, "username": a.username, "name": a.name,
                            "followers_count": a.followers, "follows_count": a.follows,
                            "media_count": a.media_count, "biography": a.biography, "website": a.website,
                            "profile_picture_url": a.profile_picture_url}
            for a in _live_accounts(world, accounts)}


def _live_accounts(world: World, accounts: Iterable[str] | None) -> list[Account]:
    live = list(world.accounts_of_live_tokens())
    if accounts is None:
        return live
    by_id = {a.id: a for a in live}
    return [by_id[a] for a in dict.fromkeys(accounts) if a in by_id]


def _media_pages(world: World, account: Account, kinds: set[str], limit: int) -> Iterator[list[Media]]:
    """``account``'s ``/media`` as the pages of ``limit`` items the API answers."""
    total = world.listed_media(account)
    for start in range(0, total, limit):
        page = [world.media(account, n) for n in range(start, min(total, start + limit))]
        if start == 0 and "duplicate_across_accounts" in kinds:
            other = world.account((account.index + 1) % world.spec.accounts)
            if world.listed_media(other):
                page.append(world.media(other, 0))
        yield page
