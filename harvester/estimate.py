"""How long a harvest needs under the rate limits, before any call is made.

Account insights are known exactly from the plan (the window, the selection and the accounts);
media insights are not (media are found as the harvest goes), so the estimate counts them per
media, from a number of media per account the caller may give. Each token spends its calls in
full-window bursts, the fastest the rolling window allows: ``c`` calls need
``(ceil(c / calls_per_window) - 1) * window_seconds`` seconds, plus the calls' own time.
"""

from __future__ import annotations

import math
import time

import msgspec

from . import catalog, plan
from .config import Config

DISCOVERY_CALLS = 3
"""Per account: the account node, the first page of /media and of /stories."""


class TokenEstimate(msgspec.Struct, frozen=True):
    token_env: str
    accounts: int
    account_calls: int
    seconds: float


class Estimate(msgspec.Struct, frozen=True):
    tokens: list[TokenEstimate]
    calls_per_window: int
    window_seconds: float
    calls_per_media: dict[str, int]
    """Product type -> calls each media of that type adds (its metrics, then one per breakdown)."""

    @property
    def seconds(self) -> float:
        """Tokens run side by side: the slowest one sets the pace."""
        return max((t.seconds for t in self.tokens), default=0.0)


def window_bound(calls: int, calls_per_window: int, window_seconds: float) -> float:
    """The least time ``calls`` calls need under a rolling window (calls in full-window bursts)."""
    return max(0, math.ceil(calls / calls_per_window) - 1) * window_seconds


def estimate(config: Config, *, now: float | None = None) -> Estimate:
    now = time.time() if now is None else now
    limit = config.rate_limit
    tokens = []
    for key in config.token_keys():
        accounts = [a for a in config.accounts if a.token_env == key]
        calls = sum(DISCOVERY_CALLS + len(plan.account_units(a.id, None, config.window, config.selection, now))
                    for a in accounts)
        tokens.append(TokenEstimate(key, len(accounts), calls,
                                    window_bound(calls, limit.calls_per_window, limit.window_seconds)))
    return Estimate(tokens, limit.calls_per_window, limit.window_seconds, calls_per_media(config))


def calls_per_media(config: Config) -> dict[str, int]:
    out = {}
    for product in catalog.PRODUCT_TYPES:
        chosen = [c for c in config.selection.media if product in c.metric.product_types]
        out[product] = (1 + sum(len(c.breakdowns) for c in chosen)) if chosen else 0
    return out


def render(e: Estimate) -> str:
    media = ", ".join(f"{product} {calls}" for product, calls in e.calls_per_media.items())
    lines = [f"estimate at {e.calls_per_window} calls per token per {e.window_seconds:g} s "
             f"(account insights exactly; each media found adds its calls: {media}):"]
    for t in e.tokens:
        lines.append(f"  {t.token_env:<24} {t.accounts:>5} accounts {t.account_calls:>9,} calls  "
                     f"at least {duration(t.seconds)}")
    lines.append(f"  all tokens in parallel: at least {duration(e.seconds)}")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return (f"{days}d " if days else "") + f"{hours}h{minutes:02d}m"
