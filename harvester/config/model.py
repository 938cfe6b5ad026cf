"""The configuration as typed, frozen Structs: every default of harvester is set here."""

from __future__ import annotations

from datetime import date
from typing import Literal

import msgspec

from .. import catalog
from ..refresh import DEFAULT_TIERS, Tier

OUTPUT_FORMATS = ("jsonl",)
TOTALS = ("day", "window")


class GraphSettings(msgspec.Struct, frozen=True):
    base_url: str = "https://graph.facebook.com"
    """Also ``https://graph.instagram.com``, the simulator or a proxy."""
    api_version: str = "v25.0"
    max_response_bytes: int = 64 * 1024 * 1024
    """A body past this fails its unit (read in chunks, never held whole): far above any real answer."""


class RateLimit(msgspec.Struct, frozen=True):
    """Per token, over a rolling window."""

    calls_per_window: int = 200
    window_seconds: float = 3600
    margin_seconds: float = 1.0
    """Extra spacing kept between a window's oldest call and a new one, for clock and network
    skew between us and the API's counter (0 in simulated time)."""


class Window(msgspec.Struct, frozen=True):
    """Account insights over ``[since, until)``, UTC midnights."""

    since: date
    until: date
    totals: Literal["day", "window"] = "day"
    """``day``: one total per UTC day; ``window``: one per chunk of at most 30 days."""


class Output(msgspec.Struct, frozen=True):
    format: str = "jsonl"
    path: str = "out"
    commit_seconds: float = 1.0
    """Checkpoint at least this often: the most work a crash can make a resumed run repeat."""
    commit_units: int = 100
    """... and at least every this many units (calls): the same bound, counted in calls."""
    part_records: int = 100_000
    """Records per part file at most."""


class StateSettings(msgspec.Struct, frozen=True):
    path: str = "harvest-state.sqlite"


AUTO: Literal["auto"] = "auto"

TOKEN_DEPTH_CAP = 64
"""``per_token_in_flight = "auto"``: the most calls in flight one token's depth may grow to. At
100 ms latency 64 calls in flight make about 640 calls/s, room above the depth one token with a
large budget needs for 340 calls/s (``bench scale``: one token of four accounts)."""

IN_FLIGHT_CEILING = 512
"""``max_in_flight = "auto"``: the per-token cap times the tokens, at most this. One core serves
about 2,000 calls/s of a whole harvest (``bench e2e``), which at a real latency of 300 ms keeps
about 600 calls in flight: past that, calls wait for the CPU, not the network. 512 stays below
it, and below the 1,024 open files a process commonly may hold (a socket each)."""


class SchedulerSettings(msgspec.Struct, frozen=True):
    max_in_flight: int | Literal["auto"] = AUTO
    """Calls open at once, over every token (and the connection pool): "auto" is the per-token cap
    times the tokens, at most ``IN_FLIGHT_CEILING``; a number is kept as given."""
    max_attempts: int = 5
    """Tries of one call before it is given up."""
    per_token_in_flight: int | Literal["auto"] = AUTO
    """The cap on one token's calls in flight, under which its depth adapts to latency, usage and
    errors (``harvester.schedule.slot``): "auto" is ``TOKEN_DEPTH_CAP``."""

    def token_cap(self) -> int:
        """The cap on one token's calls in flight."""
        return TOKEN_DEPTH_CAP if self.per_token_in_flight == AUTO else int(self.per_token_in_flight)

    def in_flight_cap(self, tokens: int) -> int:
        """The cap on calls in flight over ``tokens`` tokens: a user's number wins."""
        if self.max_in_flight != AUTO:
            return int(self.max_in_flight)
        return max(1, min(IN_FLIGHT_CEILING, self.token_cap() * tokens))


class Account(msgspec.Struct, frozen=True):
    id: str
    token_env: str
    """The environment variable holding the token (the token itself is never stored here)."""


class MetricChoice(msgspec.Struct, frozen=True):
    """One catalog metric and the metric types and breakdowns asked of it (media: no metric type)."""

    metric: catalog.Metric
    metric_types: tuple[str, ...]
    breakdowns: tuple[str, ...]


def _everything(metrics: tuple[catalog.Metric, ...]) -> tuple[MetricChoice, ...]:
    return tuple(MetricChoice(m, m.metric_types, m.breakdowns) for m in metrics)


class Selection(msgspec.Struct, frozen=True):
    """What to harvest; ``Selection()`` is the default: everything current, every breakdown."""

    account: tuple[MetricChoice, ...] = _everything(
        catalog.account_metrics("interaction") + catalog.account_metrics("series"))
    demographics: tuple[MetricChoice, ...] = _everything(catalog.account_metrics("demographic"))
    media: tuple[MetricChoice, ...] = _everything(catalog.MEDIA_METRICS)
    timeframes: tuple[str, ...] = catalog.DEFAULT_TIMEFRAMES
    demographic_breakdowns: tuple[tuple[str, ...], ...] = catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS


class RefreshSettings(msgspec.Struct, frozen=True):
    """Media refresh by age (:mod:`harvester.refresh`)."""

    enabled: bool = True
    tiers: tuple[Tier, ...] = DEFAULT_TIERS


class Config(msgspec.Struct, frozen=True):
    """A validated configuration; ``path`` is the file it came from, as given (messages start with it)."""

    path: str
    graph: GraphSettings
    rate_limit: RateLimit
    window: Window
    output: Output
    state: StateSettings
    scheduler: SchedulerSettings
    accounts: tuple[Account, ...]
    selection: Selection
    refresh: RefreshSettings = RefreshSettings()

    def token_keys(self) -> tuple[str, ...]:
        """Distinct token variable names, in order of first use (two may hold one token: the
        scheduler keys its slots by the token itself)."""
        return tuple(dict.fromkeys(a.token_env for a in self.accounts))

    def accounts_of(self, token_env: str) -> tuple[Account, ...]:
        """The accounts whose token this variable holds."""
        return tuple(a for a in self.accounts if a.token_env == token_env)
