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
import math
import time
from collections.abc import Callable, Iterator
from functools import lru_cache, partial

from .. import catalog
from ..days import DAY, days_back
from . import posts, rates
from .account_values import AccountValues
from .details import CDN, MediaDetails, media_details
from .draws import noise, uniforms
from .spec import ACCOUNT_BASE, Account, Media, WorldSpec, account_id
from .tokenbook import TokenBook, TokenInfo

PAGE_BASE = 100000000000000
MEDIA_PREFIX, STORY_PREFIX, CHILD_PREFIX = "1790", "1791", "1792"
MEDIA_EDGE_MAX = 10_000
"""``/media`` lists at most the 10,000 most recent media (Meta's IG User Media reference: "a maximum of
10K of the most recently created media")."""
APP_BASE = 900000000000000
HISTORY_DAYS = 730
EXPIRED_STORIES = 2
"""Expired stories per account: not listed by ``/stories``, but readable by id."""
NO_BIOGRAPHY, NO_WEBSITE = 0.2, 0.4
"""Shares of accounts without a biography, without a website (the API omits the field)."""
BIOGRAPHIES = ("A simulated Instagram professional account.", "Recipes, travel and the odd cat \U0001f408",
               "Line one\nline two: \"quoted\", tab\there")
COMMENTS_OFF = 0.1
"""Share of media with comments turned off."""
REFUSES_CHILDREN = 0.05
"""Share of albums that refuse the ``children`` field (hostile kind ``refuse_children``)."""


MEDIA_KINDS = ((0.45, "IMAGE", "FEED"), (0.65, "CAROUSEL_ALBUM", "FEED"), (0.75, "VIDEO", "FEED"),
               (1.0, "VIDEO", "REELS"))
"""(cumulative share, media_type, media_product_type): reels are media_type VIDEO."""


def current_hour() -> float:
    """The present of a world whose spec names none: the current time floored to the hour (the demo's
    and ``harvester simulate``'s). A test suite may replace it to refuse worlds that follow the clock."""
    return float(int(time.time()) // 3600 * 3600)


class World:
    """The world of ``spec``: its tokens (:class:`.tokenbook.TokenBook`), its objects derived from
    their ids, and every value a pure function of its key."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.now = spec.now if spec.now is not None else current_hour()
        self.last30 = days_back(self.now, catalog.RECENT_DAYS)
        self.token_book = TokenBook(spec, self.now, self.bits)
        self.tokens = self.token_book.tokens
        self.app_id = str(APP_BASE + spec.seed)
        self.app_secret = f"{self.bits('app secret'):016x}"
        self.account = lru_cache(maxsize=65536)(self._account)
        self.details: Callable[[Media], MediaDetails] = lru_cache(maxsize=4096)(partial(media_details, self))
        """A media's descriptive fields (:func:`.details.media_details`), cached: a page asks each several times."""
        self.insights = lru_cache(maxsize=2048)(self._insights)
        """A media's lifetime insights (:meth:`_insights`), cached: asked once per metric."""
        self.values = AccountValues(self)
        """An account's insights: interaction totals, series, online followers, demographics."""

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

    def token(self, secret: str) -> TokenInfo | None:
        return self.token_book.token(secret)

    def owner(self, index: int) -> TokenInfo:
        return self.token_book.owner(index)

    def renew(self, token: TokenInfo, now: float) -> TokenInfo:
        """A refreshed Instagram Login token (:meth:`.tokenbook.TokenBook.renew`)."""
        return self.token_book.renew(token, now)

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


def _index(object_id: str, base: int, count: int) -> int | None:
    if not object_id.isdigit():
        return None
    index = int(object_id) - base
    return index if 0 <= index < count else None
