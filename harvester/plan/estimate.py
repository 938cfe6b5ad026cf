"""How long a harvest needs under the rate limits, before any call is made.

Account insights are known exactly from the plan (the window, the selection and the accounts).
Media insights are not (media are found as the harvest goes, and the account node's
``media_count`` is itself a call), so the estimate counts them from what it can know without a
call: the media the state file saw for each account in earlier runs, by product type; for an
account the state has never seen, a stated assumption of ``media_per_account`` feed posts (default
DEFAULT_MEDIA_PER_ACCOUNT, ``--media-per-account``). Every media is counted as due (an upper bound:
refresh tiers may skip some), plus the extra ``/media`` pages. Each token spends its calls in
full-window bursts, the fastest the rolling window allows: ``c`` calls need
``(ceil(c / calls_per_window) - 1) * window_seconds`` seconds, plus the calls' own time.
Days of the window older than the API keeps are left out, as the plan leaves them out, and the
estimate says how many (:func:`left_out_line`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import msgspec

from .. import catalog
from ..config import Config
from ..days import from_unix
from ..summary import format_duration, plural
from . import units as plan
from .units import MEDIA_PAGE_LIMIT

DISCOVERY_CALLS = 3
"""Per account: the account node, the first page of /media and of /stories."""
DEFAULT_MEDIA_PER_ACCOUNT = 100
"""Media assumed for an account the state has never seen (feed posts)."""

MediaCounts = Mapping[str, Mapping[str, int]]
"""account id -> product type -> media known (from the state)."""


class TokenEstimate(msgspec.Struct, frozen=True):
    token_env: str
    accounts: int
    account_calls: int
    seconds: float
    media: int = 0
    media_calls: int = 0
    """Insights calls of the media, and the /media pages past the first."""
    media_assumed: int = 0
    """Accounts whose media were assumed (the state has not seen them)."""


class Estimate(msgspec.Struct, frozen=True):
    tokens: list[TokenEstimate]
    calls_per_window: int
    window_seconds: float
    calls_per_media: dict[str, int]
    """Product type -> calls each media of that type adds (its metrics, then one per breakdown,
    then those that need a share to Facebook)."""
    media_per_account: int = DEFAULT_MEDIA_PER_ACCOUNT
    left_out_days: int = 0
    """Days at the start of the window no call covers: older than the account retention."""
    earliest: str = ""
    """The first day (UTC) the account retention keeps, YYYY-MM-DD."""

    @property
    def seconds(self) -> float:
        """Tokens run side by side: the slowest one sets the pace."""
        return max((t.seconds for t in self.tokens), default=0.0)


def window_bound(calls: int, calls_per_window: int, window_seconds: float) -> float:
    """The least time ``calls`` calls need under a rolling window (calls in full-window bursts)."""
    return max(0, math.ceil(calls / calls_per_window) - 1) * window_seconds


def estimate(config: Config, *, now: float | None = None, media: MediaCounts | None = None,
             media_per_account: int | None = None) -> Estimate:
    now = time.time() if now is None else now
    limit = config.rate_limit
    per_media = calls_per_media(config)
    assumed = DEFAULT_MEDIA_PER_ACCOUNT if media_per_account is None else media_per_account
    known = media or {}
    tokens = []
    for key in config.token_keys():
        accounts = [a for a in config.accounts if a.token_name == key]
        calls = sum(DISCOVERY_CALLS + len(plan.account_units(a.id, None, config.window, config.selection, now))
                    for a in accounts)
        counts = [_media_of(known.get(a.id), assumed) for a in accounts] if config.selection.media else []
        found = sum(sum(c.values()) for c in counts)
        media_calls = sum(_media_calls(c, per_media) for c in counts)
        tokens.append(TokenEstimate(key, len(accounts), calls,
                                    window_bound(calls + media_calls, limit.calls_per_window, limit.window_seconds),
                                    found, media_calls, sum(1 for a in accounts if not known.get(a.id))))
    return Estimate(tokens, limit.calls_per_window, limit.window_seconds, per_media, assumed,
                    plan.left_out_days(config.window, now), str(from_unix(plan.earliest_since(now))))


def _media_of(known: Mapping[str, int] | None, assumed: int) -> Mapping[str, int]:
    return known if known else {"FEED": assumed}


def _media_calls(counts: Mapping[str, int], per_media: Mapping[str, int]) -> int:
    posts = sum(n for product, n in counts.items() if product != "STORY")
    pages = max(0, math.ceil(posts / MEDIA_PAGE_LIMIT) - 1)
    return pages + sum(n * per_media.get(product, 0) for product, n in counts.items())


def calls_per_media(config: Config) -> dict[str, int]:
    """Product type -> the calls the planner plans for one media of it (a story as if just posted;
    the metrics that need Facebook Login ride along, so the login changes no count)."""
    return {product: len(plan.media_units("0", "0", None, product, 0.0, config.selection, 0.0))
            for product in catalog.PRODUCT_TYPES}


def render(e: Estimate) -> str:
    media = ", ".join(f"{product} {calls}" for product, calls in e.calls_per_media.items())
    assumed = sum(t.media_assumed for t in e.tokens)
    lines = [f"estimate at {e.calls_per_window} calls per token per {e.window_seconds:g} s "
             f"(account insights exactly; media insights from the media the state saw before, each media "
             f"adding its calls: {media}"
             + (f"; {plural(assumed, 'account')} the state has not seen assumed at "
                f"{plural(e.media_per_account, 'feed post')} each "
                f"(--media-per-account)" if assumed else "") + "):"]
    for t in e.tokens:
        lines.append(f"  {t.token_env:<24} {t.accounts:>5} {'account ' if t.accounts == 1 else 'accounts'} "
                     f"{t.account_calls:>9,} account calls "
                     f"{t.media:>9,} media {t.media_calls:>9,} media calls  at least {format_duration(t.seconds)}")
    lines.append(f"  all tokens in parallel: at least {format_duration(e.seconds)}")
    left_out = left_out_line(e)
    return "\n".join(lines if left_out is None else [*lines, left_out])


def left_out_line(e: Estimate) -> str | None:
    """What the window asks for that no call will: the days the API no longer keeps, and why."""
    if not e.left_out_days:
        return None
    days = catalog.RETENTION_DAYS["account"]
    return (f"left out: {e.left_out_days:,} day{'s' if e.left_out_days > 1 else ''} of account insights before "
            f"{e.earliest} (the API keeps account insights {days} days: it refuses an older since)")
