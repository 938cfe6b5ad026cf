"""An account's insights, each a pure function of its key and the world's seed: the interaction
totals of a window (drawn together, :mod:`.totals`) and their breakdowns, the daily series,
followers online by hour, and the demographics of its followers and engaged audience
(:mod:`.audience`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from .. import catalog
from ..days import DAY, pacific_days_ending_in, pacific_end_time
from . import audience, totals
from .spec import Account


class Drawn(Protocol):
    """What the values are drawn from (a :class:`harvester.simulator.world.World`)."""

    now: float

    def draws(self, key: tuple[object, ...], n: int) -> list[float]: ...


class AccountValues:
    """The account insights of one world (see the module's docstring), cached by their keys."""

    def __init__(self, world: Drawn):
        self.world = world
        self._totals = lru_cache(maxsize=2048)(self._window_totals)
        self._table = lru_cache(maxsize=2048)(self._breakdown_table)
        self._audience = lru_cache(maxsize=1024)(self._draw_audience)

    def __repr__(self) -> str:
        return f"AccountValues(now={self.world.now})"

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
        u = self.world.draws(("window", index, since, until), totals.WINDOW_DRAWS)
        return totals.window(u, followers, appeal, (until - since) / DAY)

    def _breakdown_table(self, account: Account, metric: str, since: int, until: int,
                         names: tuple[str, ...]) -> dict[tuple[str, ...], int]:
        u = self.world.draws(("breakdown", account.index, metric, since, until, names), totals.draws_for(names))
        profile = self.world.draws(("profile", account.index), totals.PROFILE_DRAWS)
        return totals.table(u, self.totals(account, since, until), metric, names, profile)

    def series_days(self, since: int, until: int) -> list[int]:
        """End times of the Pacific days in ``[since, until)`` that have ended by now."""
        ends = (pacific_end_time(d) for d in pacific_days_ending_in(since, until))
        return [e for e in ends if e <= self.world.now]

    def daily(self, account: Account, metric: str, end_time: int) -> int:
        """A time series' value for the US-Pacific day ending at ``end_time``: the day's window
        total (``follower_count``: the day's new followers, the FOLLOWER part of
        ``follows_and_unfollows``)."""
        day = self.totals(account, end_time - DAY, end_time)
        return day["follows" if metric == "follower_count" else metric]

    def online_followers(self, account: Account, end_time: int) -> dict[str, int]:
        """Followers online per hour "0".."23" of the day ending at ``end_time`` (rates.ACTIVITY)."""
        return totals.online(self.world.draws(("online", account.index, end_time), 24), account.followers)

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
        now = int(self.world.now)
        return self.totals(account, now - (7 if timeframe == "this_week" else 30) * DAY, now)["accounts_engaged"]

    def _draw_audience(self, account: Account, metric: str, timeframe: str) -> audience.Audience:
        """The same people as its followers, in the metric's number (an engaged audience
        looks like the followers it mostly comes from)."""
        key = ("audience", account.index)
        return audience.draw(self.audience_size(account, metric, timeframe),
                             self.world.draws((*key, "people"), audience.AGE_GENDER_DRAWS),
                             self.world.draws((*key, "places"), audience.COUNTRY_DRAWS),
                             self.world.draws((*key, "cities"), audience.CITY_DRAWS))

    def has_demographic(self, account: Account, metric: str, timeframe: str = "this_month") -> bool:
        """Not under 100 followers; engaged audience: not under 100 engagements in the timeframe."""
        if account.followers < catalog.MIN_FOLLOWERS:
            return False
        return metric != "engaged_audience_demographics" or \
            self.audience_size(account, metric, timeframe) >= catalog.MIN_ENGAGEMENTS
