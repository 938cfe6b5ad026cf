"""What a simulated world is made of: its spec, the ids of its accounts (``178414`` + 11 digits,
:data:`ACCOUNT_BASE` + the account's index), and its objects (:class:`Account`, :class:`Media`),
which :class:`harvester.simulator.world.World` derives from their ids."""

from __future__ import annotations

import msgspec

from .. import catalog

ACCOUNT_BASE = 17841400000000000


def account_id(index: int) -> str:
    return str(ACCOUNT_BASE + index)


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
