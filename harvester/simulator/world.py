"""A deterministic synthetic Instagram world, derived from a seed on demand.

Nothing but the tokens is built up front: an id encodes what is needed to derive its object
(account index; account index and ordinal for media and stories; plus a child number for album
children), and every attribute and every metric value is a hash of the seed and the object's
key. So tens of thousands of accounts and millions of media cost nothing until asked for, and
the ground truth (truth.py) can be computed without serving anything. The values that belong
together are drawn together, so that they add up as the API's do: a media's insights
(posts.py), an account's totals over a window (totals.py), its audience (audience.py), at the
rates of rates.py.

Ids: accounts ``178414`` + 11 digits; media ``1790``, live and expired stories ``1791``, album
children ``1792``, each + account (6 digits) + ordinal (7 digits) (+ child, 2 digits); Facebook
pages ``1000…``; Facebook users ``1020…``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Literal

import msgspec

from .. import catalog
from ..days import DAY, days_back, pacific_days_ending_in, pacific_end_time
from . import audience, posts, rates, totals
from .draws import noise, uniforms

ACCOUNT_BASE = 17841400000000000
PAGE_BASE = 100000000000000
USER_BASE = 102000000000000
MEDIA_PREFIX, STORY_PREFIX, CHILD_PREFIX = "1790", "1791", "1792"
MEDIA_EDGE_MAX = 10_000
"""``/media`` lists at most the 10,000 most recent media (Meta's IG User Media reference: "a maximum of
10K of the most recently created media")."""
APP_BASE = 900000000000000
TOKEN_LIFETIME = 60 * 86400
"""A long-lived token's life: 60 days, from its issue or its refresh."""
SCOPES = {"facebook": ("instagram_basic", "instagram_manage_insights", "pages_read_engagement", "pages_show_list"),
          "instagram": ("instagram_business_basic", "instagram_business_manage_insights")}
INSIGHTS_SCOPES = frozenset({"instagram_manage_insights", "instagram_business_manage_insights"})
HISTORY_DAYS = 730
EXPIRED_STORIES = 2
"""Expired stories per account: not listed by ``/stories``, but readable by id."""
CDN = "https://scontent.example"
NO_BIOGRAPHY, NO_WEBSITE = 0.2, 0.4
"""Shares of accounts without a biography, without a website (the API omits the field)."""
BIOGRAPHIES = ("A simulated Instagram professional account.", "Recipes, travel and the odd cat \U0001f408",
               "Line one\nline two: \"quoted\", tab\there")
NO_CAPTION, LIKES_HIDDEN, COMMENTS_OFF, COPYRIGHTED = 0.15, 0.1, 0.1, 0.1
"""Shares of media without a caption, with hidden like counts, with comments turned off, and of
videos without ``media_url`` (copyrighted material, e.g. the audio of a reel)."""
REFUSES_CHILDREN = 0.05
"""Share of albums that refuse the ``children`` field (hostile kind ``refuse_children``)."""
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class WorldSpec(msgspec.Struct, frozen=True):
    seed: int = 1
    accounts: int = 20
    media_per_account: int = 100
    """Mean media per account; counts have a long (exponential) tail around it."""
    now: float | None = None
    """The world's present (Unix seconds); None: the current time floored to the hour."""
    revoked_tokens: int = 0
    """The last K tokens are revoked (190/460)."""
    expiring_tokens: tuple[tuple[int, int], ...] = ()
    """(token index, N): that token expires after N calls (190/463)."""
    token_expiry: tuple[tuple[int, float], ...] = ()
    """(token index, seconds): that token expires so long after ``now`` (190/463 after it, on the
    simulator's clock; ``/debug_token`` tells it, ``/refresh_access_token`` renews it)."""
    token_health: bool = False
    """Expiries and scopes as real tokens have them: every token expires within 60 days (every third
    within 7), every fourth lacks its insights permission (``/debug_token`` tells; calls still answer).
    Off: tokens never expire (but by ``expiring_tokens`` / ``token_expiry``) and have every scope."""
    tokens: int | None = None
    """How many tokens; None: Facebook-Login tokens of 1-4 accounts and Instagram-Login tokens of
    one, drawn from the seed. Given: alternately Facebook (owning the rest) and Instagram (one)."""
    small_accounts: float = 0.15
    """Share of accounts under :data:`~harvester.catalog.MIN_FOLLOWERS` followers."""
    stories_per_account: float = 2.0
    """Mean live stories per account."""
    converted_share: float = 0.3
    """Share of accounts that became business accounts within the last two years."""
    few_viewers: float = 0.2
    """Share of stories with fewer than 5 viewers."""
    shared_to_facebook: float = 0.3
    """Share of media (posts, reels, stories) shared to Facebook: only those are served
    ``facebook_views`` (and a reel ``crossposted_views``); others refuse them with -1/2207086."""


TokenKind = Literal["facebook", "instagram"]


class TokenInfo(msgspec.Struct, frozen=True):
    token: str
    index: int
    kind: TokenKind
    account_ids: tuple[str, ...]
    user_id: str
    """The Facebook user of a Facebook-Login token; the account itself for Instagram Login."""
    revoked: bool = False
    expires_after_calls: int | None = None
    expires_at: float | None = None
    """Unix time after which the token answers 190/463; None: never."""
    scopes: tuple[str, ...] = ()
    issued_at: float = 0.0


class Account(msgspec.Struct, frozen=True):
    index: int
    id: str
    username: str
    followers: int
    follows: int
    media_count: int
    stories: int
    """Live stories (posted within the last 24 hours)."""
    converted_at: int
    """When it became a business account: media posted before answer 100/2108006."""
    page_id: str
    name: str = ""
    biography: str | None = None
    """None: the account has none, and the API omits the field (so too ``website``)."""
    website: str | None = None
    profile_picture_url: str = ""
    appeal: float = 1.0
    """How well its content does against accounts of its size (a factor of median 1)."""


class Media(msgspec.Struct, frozen=True):
    id: str
    account: int
    ordinal: int
    media_type: str
    media_product_type: str
    timestamp: int
    children: int = 0
    child: int | None = None
    """The child's number for album children (no insights)."""
    viewers: int | None = None
    """Stories only."""
    expired: bool = False

    @property
    def product_type(self) -> catalog.ProductType:
        return catalog.product_type_of(self.media_type, self.media_product_type)


class MediaDetails(msgspec.Struct, frozen=True):
    """A media's descriptive fields; None where the API omits the field for this media."""

    shortcode: str
    permalink: str | None
    """None for album children ("cannot be used on photos within albums")."""
    caption: str | None
    like_count: int | None
    """None for stories and children (the field is not theirs)."""
    likes_hidden: bool
    """The owner hid the like count: omitted from edges and expansions, answered on the node."""
    comments_count: int | None
    is_comment_enabled: bool | None
    media_url: str | None
    thumbnail_url: str | None
    """Videos only."""


MEDIA_KINDS = ((0.45, "IMAGE", "FEED"), (0.65, "CAROUSEL_ALBUM", "FEED"), (0.75, "VIDEO", "FEED"),
               (1.0, "VIDEO", "REELS"))
"""(cumulative share, media_type, media_product_type): reels are media_type VIDEO."""


def account_id(index: int) -> str:
    return str(ACCOUNT_BASE + index)


def current_hour() -> float:
    """The present of a world whose spec names none: the current time floored to the hour (the demo's
    and ``harvester simulate``'s). A test suite may replace it to refuse worlds that follow the clock."""
    return float(int(time.time()) // 3600 * 3600)


class World:
    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.now = spec.now if spec.now is not None else current_hour()
        self.last30 = days_back(self.now, catalog.RECENT_DAYS)
        self.tokens = self._build_tokens()
        self._by_secret = {t.token: t for t in self.tokens}
        self._renewals = 0
        self.app_id = str(APP_BASE + spec.seed)
        self.app_secret = f"{self.bits('app secret'):016x}"
        self._owner = [0] * spec.accounts
        for t in self.tokens:
            for a in t.account_ids:
                self._owner[int(a) - ACCOUNT_BASE] = t.index
        self.account = lru_cache(maxsize=65536)(self._account)
        self.details = lru_cache(maxsize=4096)(self._details)
        """A media's descriptive fields (:meth:`_details`), cached: a page asks each several times."""
        self.insights = lru_cache(maxsize=2048)(self._insights)
        """A media's lifetime insights (:meth:`_insights`), cached: asked once per metric."""
        self._totals = lru_cache(maxsize=2048)(self._window_totals)
        self._table = lru_cache(maxsize=2048)(self._breakdown_table)
        self._audience = lru_cache(maxsize=1024)(self._draw_audience)

    # --- hashing -----------------------------------------------------------------------------

    def unit(self, *key: object) -> float:
        """A float in [0, 1), a pure function of the seed and ``key``."""
        return self.bits(*key) / 2.0 ** 64

    def bits(self, *key: object) -> int:
        raw = repr((self.spec.seed, key)).encode()
        return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")

    def draws(self, key: tuple[object, ...], n: int) -> list[float]:
        """``n`` floats in [0, 1) from the seed and ``key``, one hash per 32 (:mod:`.draws`)."""
        return uniforms(self.spec.seed, key, n)

    # --- tokens ------------------------------------------------------------------------------

    def _build_tokens(self) -> list[TokenInfo]:
        spec = self.spec
        groups = self._groups()
        expiring = dict(spec.expiring_tokens)
        tokens = []
        for i, (kind, members) in enumerate(groups):
            ids = tuple(account_id(a) for a in members)
            secret = f"{'EAA' if kind == 'facebook' else 'IGAA'}sim{spec.seed}x{i}x{self.bits('token', i):016x}"
            user = str(USER_BASE + i) if kind == "facebook" else ids[0]
            tokens.append(TokenInfo(secret, i, kind, ids, user, revoked=i >= len(groups) - spec.revoked_tokens,
                                    expires_after_calls=expiring.get(i), **self._health(i, kind)))
        return tokens

    def _health(self, i: int, kind: TokenKind) -> dict:
        """A token's expiry, issue time and scopes (see WorldSpec.token_health)."""
        scopes = SCOPES[kind]
        expires_in = dict(self.spec.token_expiry).get(i)
        if self.spec.token_health:
            if expires_in is None:
                days = 0.5 + self.unit("expiry", i) * 6 if i % 3 == 1 else 7 + self.unit("expiry", i) * 53
                expires_in = days * DAY
            if i % 4 == 3:
                scopes = tuple(s for s in scopes if s not in INSIGHTS_SCOPES)
        expires_at = None if expires_in is None else self.now + expires_in
        issued_at = (expires_at if expires_at is not None else self.now) - TOKEN_LIFETIME
        return {"expires_at": expires_at, "scopes": scopes, "issued_at": issued_at}

    def renew(self, token: TokenInfo, now: float) -> TokenInfo:
        """A refreshed Instagram Login token: a new secret valid TOKEN_LIFETIME from ``now``; the
        old one keeps working until its own expiry."""
        self._renewals += 1
        n = self._renewals
        secret = f"IGAAsim{self.spec.seed}x{token.index}r{n}x{self.bits('renew', token.index, n):016x}"
        renewed = msgspec.structs.replace(token, token=secret, expires_at=now + TOKEN_LIFETIME, issued_at=now)
        self._by_secret[secret] = renewed
        return renewed

    def _groups(self) -> list[tuple[TokenKind, list[int]]]:
        n = self.spec.accounts
        if self.spec.tokens is not None:
            return _even_groups(n, max(1, min(self.spec.tokens, n)))
        groups: list[tuple[TokenKind, list[int]]] = []
        start, i = 0, 0
        while start < n:
            kind: TokenKind = "facebook" if i == 0 else "instagram" if i == 1 else \
                ("facebook" if self.unit("kind", i) < 0.5 else "instagram")
            size = 1 if kind == "instagram" else 1 + self.bits("owns", i) % 4
            if i == 0 and n > 1:
                size = min(size, n - 1)            # leave an account for an Instagram-Login token
            groups.append((kind, list(range(start, min(n, start + size)))))
            start += size
            i += 1
        return groups

    def token(self, secret: str) -> TokenInfo | None:
        return self._by_secret.get(secret)

    def owner(self, index: int) -> TokenInfo:
        return self.tokens[self._owner[index]]

    def to_json(self, base_url: str) -> dict:
        return {"base_url": base_url, "now": self.now, "app_id": self.app_id, "app_secret": self.app_secret,
                "tokens": [{"token": t.token, "accounts": list(t.account_ids), "kind": t.kind}
                           for t in self.tokens]}

    # --- objects -----------------------------------------------------------------------------

    def _account(self, index: int) -> Account:
        spec, u = self.spec, lambda *k: self.unit("account", index, *k)
        small = u("small") < spec.small_accounts
        low = catalog.MIN_FOLLOWERS
        followers = 5 + int(u("followers") * (low - 10)) if small else int(low * 10 ** (3 * u("followers")))
        media = int(-spec.media_per_account * math.log(1.0 - u("media"))) if spec.media_per_account else 0
        converted = (30 + u("converted_days") * 600) if u("converted") < spec.converted_share else 800
        username = f"sim_account_{index}"
        appeal = noise(0.25, *self.draws(("appeal", index), 3))
        return Account(index, account_id(index), username, followers, int(50 + 900 * u("follows")),
                       media, int(u("stories") * (2 * spec.stories_per_account + 1)),
                       int(self.now - converted * DAY), str(PAGE_BASE + index),
                       name=f"Simulated Account {index}",
                       biography=None if u("bio") < NO_BIOGRAPHY else BIOGRAPHIES[self.bits("account", index, "bio")
                                                                                 % len(BIOGRAPHIES)],
                       website=None if u("web") < NO_WEBSITE else f"https://example.com/{username}",
                       profile_picture_url=f"{CDN}/profile/{account_id(index)}.jpg", appeal=appeal)

    def account_by_id(self, object_id: str) -> Account | None:
        index = _index(object_id, ACCOUNT_BASE, self.spec.accounts)
        return None if index is None else self.account(index)

    def page_account(self, page_id: str) -> Account | None:
        index = _index(page_id, PAGE_BASE, self.spec.accounts)
        return None if index is None else self.account(index)

    def media(self, account: Account, ordinal: int) -> Media:
        """The ``ordinal``-th most recent media (0 is the newest), spread over two years."""
        u = lambda *k: self.unit("media", account.index, ordinal, *k)  # noqa: E731
        span = HISTORY_DAYS * DAY / max(1, account.media_count)
        timestamp = int(self.now - 3600 - span * (ordinal + u("when")))
        share = u("kind")
        _, media_type, product = next(k for k in MEDIA_KINDS if share < k[0])
        children = 2 + int(u("children") * 9) if media_type == "CAROUSEL_ALBUM" else 0
        return Media(f"{MEDIA_PREFIX}{account.index:06d}{ordinal:07d}", account.index, ordinal, media_type,
                     product, timestamp, children)

    def story(self, account: Account, ordinal: int) -> Media:
        """Live stories first (newest first, all within the last 23 hours), then expired ones."""
        u = lambda *k: self.unit("story", account.index, ordinal, *k)  # noqa: E731
        live = ordinal < account.stories
        if live:
            live_for = catalog.STORY_LIFETIME_SECONDS - 3600     # posted within its lifetime less an hour
            timestamp = int(self.now - live_for * (ordinal + u("when")) / account.stories)
        else:
            lifetimes = 1 + ordinal - account.stories + u("when")
            timestamp = int(self.now - catalog.STORY_LIFETIME_SECONDS * lifetimes)
        few = u("few") < self.spec.few_viewers
        reach = account.followers * rates.by_size(rates.STORY_REACH_RATE, account.followers) * (0.5 + u("viewers"))
        viewers = int(u("viewers") * 5) if few else max(catalog.STORY_MIN_VIEWERS, round(reach))
        return Media(f"{STORY_PREFIX}{account.index:06d}{ordinal:07d}", account.index, ordinal,
                     "VIDEO" if u("video") < 0.4 else "IMAGE", "STORY", timestamp, viewers=viewers, expired=not live)

    def child(self, parent: Media, number: int) -> Media:
        kind = "VIDEO" if self.unit("child", parent.id, number) < 0.2 else "IMAGE"
        return Media(f"{CHILD_PREFIX}{parent.account:06d}{parent.ordinal:07d}{number:02d}", parent.account,
                     parent.ordinal, kind, "FEED", parent.timestamp, child=number)

    def media_by_id(self, object_id: str) -> Media | None:
        """Any media, story or album child, or None if the id names nothing in this world."""
        prefix, digits = object_id[:4], object_id[4:]
        if prefix not in (MEDIA_PREFIX, STORY_PREFIX, CHILD_PREFIX) or not digits.isdigit() \
                or len(digits) != (15 if prefix == CHILD_PREFIX else 13):
            return None
        index, ordinal = int(digits[:6]), int(digits[6:13])
        if index >= self.spec.accounts:
            return None
        account = self.account(index)
        if prefix == STORY_PREFIX:
            return self.story(account, ordinal) if ordinal < account.stories + EXPIRED_STORIES else None
        if ordinal >= account.media_count:
            return None
        parent = self.media(account, ordinal)
        if prefix == MEDIA_PREFIX:
            return parent
        number = int(digits[13:])
        return self.child(parent, number) if number < parent.children else None

    def _details(self, media: Media) -> MediaDetails:
        """The descriptive fields of any media, story or album child: pure functions of its id."""
        u = lambda *k: self.unit("details", media.id, *k)  # noqa: E731
        code = shortcode(media.id)
        video = media.media_type == "VIDEO"
        ext = "mp4" if video else "jpg"
        url: str | None = f"{CDN}/{media.id}.{ext}"
        if media.media_type == "CAROUSEL_ALBUM":
            url = f"{CDN}/{self.child(media, 0).id}.{'mp4' if self.child(media, 0).media_type == 'VIDEO' else 'jpg'}"
        elif video and media.child is None and u("copyright") < COPYRIGHTED:
            url = None
        thumbnail = f"{CDN}/{media.id}_thumb.jpg" if video else None
        if media.child is not None:
            return MediaDetails(code, None, None, None, False, None, None, url, thumbnail)
        account = self.account(media.account)
        if media.viewers is not None:       # a story: no caption, likes or comments
            link = f"https://www.instagram.com/stories/{account.username}/{media.id}"
            return MediaDetails(code, link, None, None, False, None, None, url, thumbnail)
        kind = "reel" if media.media_product_type == "REELS" else "p"
        caption = None if u("caption") < NO_CAPTION else \
            f"{media.media_type.lower().replace('_', ' ')} {media.ordinal} by @{account.username} #simulated"
        insights = self.insights(media)          # like_count and comments_count: the insights' likes and comments
        return MediaDetails(code, f"https://www.instagram.com/{kind}/{code}/", caption, insights.values["likes"],
                            u("hidden") < LIKES_HIDDEN, insights.values["comments"], insights.comments_on, url,
                            thumbnail)

    def children_of(self, media: Media) -> list[Media]:
        """An album's children in order; ``[]`` for any other media."""
        return [self.child(media, n) for n in range(media.children)]

    def refuses_children(self, media: Media) -> bool:
        """Whether this album refuses the ``children`` field (under ``refuse_children``)."""
        return media.children > 0 and self.unit("refuses_children", media.id) < REFUSES_CHILDREN

    def listed_media(self, account: Account) -> int:
        """How many media ``/media`` lists."""
        return min(account.media_count, MEDIA_EDGE_MAX)

    def live_stories(self, account: Account) -> list[Media]:
        return [self.story(account, n) for n in range(account.stories)]

    def before_conversion(self, media: Media) -> bool:
        return media.viewers is None and media.timestamp < self.account(media.account).converted_at

    # --- values: each a pure function of its key ---------------------------------------------

    def interaction(self, account: Account, metric: str, since: int, until: int,
                    dims: tuple[tuple[str, str], ...] = ()) -> int:
        """An interaction total over ``[since, until)``, whole or for one breakdown combination
        (the results of a breakdown add up to the whole: :mod:`.totals`)."""
        if not dims:
            return self.totals(account, since, until)[metric]
        names = totals.canonical(tuple(b for b, _ in dims))
        chosen = dict(dims)
        return self._table(account, metric, since, until, names).get(tuple(chosen[b] for b in names), 0)

    def totals(self, account: Account, since: int, until: int) -> dict[str, int]:
        """Every interaction metric of the window ``[since, until)``, drawn together (:mod:`.totals`)."""
        return self._totals(account.index, account.followers, account.appeal, since, until)

    def _window_totals(self, index: int, followers: int, appeal: float, since: int, until: int) -> dict[str, int]:
        u = self.draws(("window", index, since, until), totals.WINDOW_DRAWS)
        return totals.window(u, followers, appeal, (until - since) / DAY)

    def _breakdown_table(self, account: Account, metric: str, since: int, until: int,
                         names: tuple[str, ...]) -> dict[tuple[str, ...], int]:
        u = self.draws(("breakdown", account.index, metric, since, until, names), totals.draws_for(names))
        profile = self.draws(("profile", account.index), totals.PROFILE_DRAWS)
        return totals.table(u, self.totals(account, since, until), metric, names, profile)

    def series_days(self, since: int, until: int) -> list[int]:
        """End times of the Pacific days in ``[since, until)`` that have ended by now."""
        ends = (pacific_end_time(d) for d in pacific_days_ending_in(since, until))
        return [e for e in ends if e <= self.now]

    def daily(self, account: Account, metric: str, end_time: int) -> int:
        """A time series' value for the US-Pacific day ending at ``end_time``: the day's window
        total (``follower_count``: the day's new followers, the FOLLOWER part of
        ``follows_and_unfollows``)."""
        day = self.totals(account, end_time - DAY, end_time)
        return day["follows" if metric == "follower_count" else metric]

    def online_followers(self, account: Account, end_time: int) -> dict[str, int]:
        """Followers online per hour "0".."23" of the day ending at ``end_time`` (rates.ACTIVITY)."""
        return totals.online(self.draws(("online", account.index, end_time), 24), account.followers)

    def demographics(self, account: Account, metric: str, timeframe: str,
                     breakdowns: tuple[str, ...]) -> list[tuple[tuple[str, ...], int]]:
        """The top 45 combinations of the breakdowns' values with their counts, largest first;
        they add up to at most the audience (:mod:`.audience`)."""
        return self._audience(account, metric, timeframe).top(breakdowns)

    def audience_size(self, account: Account, metric: str, timeframe: str) -> int:
        """How many accounts a demographic metric describes: the followers, or the accounts
        engaged in the timeframe (this_week: 7 days; this_month: 30)."""
        if metric == "follower_demographics":
            return account.followers
        now = int(self.now)
        return self.totals(account, now - (7 if timeframe == "this_week" else 30) * DAY, now)["accounts_engaged"]

    def _draw_audience(self, account: Account, metric: str, timeframe: str) -> audience.Audience:
        """The same people as its followers, in the metric's number (an engaged audience
        looks like the followers it mostly comes from)."""
        key = ("audience", account.index)
        return audience.draw(self.audience_size(account, metric, timeframe),
                             self.draws((*key, "people"), audience.AGE_GENDER_DRAWS),
                             self.draws((*key, "places"), audience.COUNTRY_DRAWS),
                             self.draws((*key, "cities"), audience.CITY_DRAWS))

    def has_demographic(self, account: Account, metric: str, timeframe: str = "this_month") -> bool:
        """Not under 100 followers; engaged audience: not under 100 engagements in the timeframe."""
        if account.followers < catalog.MIN_FOLLOWERS:
            return False
        return metric != "engaged_audience_demographics" or \
            self.audience_size(account, metric, timeframe) >= catalog.MIN_ENGAGEMENTS

    def _insights(self, media: Media) -> posts.MediaInsights:
        """Every lifetime metric of a post, reel or story, drawn together (:mod:`.posts`), with
        those served on a condition (:func:`posts.conditional`; who is served them is
        :meth:`shared_to_facebook` and the token's login)."""
        u = self.draws(("insights", media.id), posts.DRAWS)
        if media.viewers is not None:
            drawn = posts.story(u, media.viewers)
        else:
            account = self.account(media.account)
            kind = rates.KINDS[media.media_type, media.media_product_type]
            drawn = posts.post(u, kind, account.followers, account.appeal, rates.pacific_hour(media.timestamp),
                               u[posts.COMMENTS_DRAW] >= COMMENTS_OFF)
        drawn.values.update(posts.conditional(self.draws(("conditional", media.id), posts.CONDITIONAL_DRAWS),
                                               drawn.values))
        return drawn

    def shared_to_facebook(self, media: Media) -> bool:
        """Whether the media was shared to Facebook (seeded: :attr:`WorldSpec.shared_to_facebook`)."""
        return media.child is None and self.unit("shared to facebook", media.id) < self.spec.shared_to_facebook

    def serves(self, media: Media, metric: catalog.Metric) -> bool:
        """Whether the API serves ``metric`` (one of the media's product type) for ``media`` to
        the token that owns it: its condition holds (:data:`catalog.Condition`)."""
        if metric.condition == "shared_to_facebook":
            return self.shared_to_facebook(media)
        return catalog.served_to(metric, self.owner(media.account).kind)

    def media_value(self, media: Media, metric: str) -> int:
        """A media metric's lifetime value; a breakdown metric's is the sum of its results."""
        return self.insights(media).values[metric]

    def media_breakdown(self, media: Media, metric: str, breakdown: str) -> list[tuple[str, int]]:
        """Non-zero results of a media breakdown, in the catalog's (lower-case) value order."""
        return list(self.insights(media).breakdowns.get(metric, ()))

    def accounts_of_live_tokens(self) -> Iterator[Account]:
        for t in self.tokens:
            if not t.revoked:
                for a in t.account_ids:
                    yield self.account(int(a) - ACCOUNT_BASE)


def _even_groups(n: int, tokens: int) -> list[tuple[TokenKind, list[int]]]:
    """``tokens`` tokens over ``n`` accounts: odd ones Instagram (one account), even ones Facebook
    sharing the rest in contiguous blocks; a single token is a Facebook one owning everything."""
    kinds: list[TokenKind] = ["facebook" if i % 2 == 0 or tokens == 1 else "instagram" for i in range(tokens)]
    facebook = kinds.count("facebook")
    rest = n - (tokens - facebook)
    sizes = [1 if k == "instagram" else rest // facebook + (1 if j < rest % facebook else 0)
             for j, k in zip(_facebook_numbers(kinds), kinds, strict=True)]
    groups: list[tuple[TokenKind, list[int]]] = []
    start = 0
    for kind, size in zip(kinds, sizes, strict=True):
        groups.append((kind, list(range(start, start + size))))
        start += size
    return groups


def _facebook_numbers(kinds: list[TokenKind]) -> list[int]:
    counter = itertools.count()
    return [next(counter) if k == "facebook" else -1 for k in kinds]


def shortcode(media_id: str) -> str:
    """The media's shortcode: its id in Instagram's URL-safe base 64 alphabet."""
    n, out = int(media_id), ""
    while n:
        n, digit = divmod(n, 64)
        out = _B64[digit] + out
    return out or "A"


def _index(object_id: str, base: int, count: int) -> int | None:
    if not object_id.isdigit():
        return None
    index = int(object_id) - base
    return index if 0 <= index < count else None
