"""What telemetry reads of a run (:class:`harvester.telemetry.metrics.Observed`): its counters, the
share of each token's rate limit in use, and when each token expires; read when scraped or pushed."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..schedule.scheduler import Scheduler
from ..summary import Stats
from .keys import TokenKeys


class RunView:
    """A run as its metrics see it, by token name (never the token, never its digest)."""

    def __init__(self, stats: Stats, keys: TokenKeys, scheduler: Callable[[], Scheduler | None]):
        self.stats, self.keys, self.scheduler = stats, keys, scheduler

    def __repr__(self) -> str:
        return f"RunView(tokens={len(self.keys.names)})"

    def counters(self) -> Mapping[str, float]:
        return self.stats.counters

    def token_usage(self) -> dict[str, float]:
        """Token name -> the share of its rate limit in use now (0 to 1)."""
        scheduler = self.scheduler()
        if scheduler is None:
            return {}
        now = scheduler.now()
        return {self.keys.names.get(key, key): slot.pace.usage(now, scheduler.window_seconds)
                for key, slot in scheduler.slots.items()}

    def token_expiry(self) -> Mapping[str, float]:
        """Token name -> when ``/debug_token`` said it expires (Unix seconds; with ``[app]``)."""
        return self.keys.expiry_at
