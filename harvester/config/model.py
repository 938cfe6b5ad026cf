"""The configuration as typed, frozen Structs: every default of harvester is set here."""

from __future__ import annotations

from datetime import date
from typing import Literal

import msgspec

from .. import catalog
from ..refresh import DEFAULT_TIERS, Tier

OUTPUT_FORMATS = ("jsonl", "postgres")
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
    lifetime_history: bool = False
    """Key media lifetime values by the UTC day observed (``observed_on``), so that each day a
    harvest sees a media adds a record (a reach curve) instead of replacing the last one."""
    dsn_env: str = "HARVESTER_PG_DSN"
    """``postgres``: the environment variable holding the DSN (the DSN itself is never in the config)."""
    schema: str = "harvester"
    """``postgres``: the schema of harvester's tables, created and migrated by harvester."""


class StateSettings(msgspec.Struct, frozen=True):
    path: str = "harvest-state.sqlite"


class SchedulerSettings(msgspec.Struct, frozen=True):
    max_in_flight: int = 32
    """Calls open at once, over every token."""
    max_attempts: int = 5
    """Tries of one call before it is given up."""
    per_token_in_flight: int = 8


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
