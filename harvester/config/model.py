"""The configuration as typed, frozen Structs: every default of harvester is set here."""

from __future__ import annotations

from datetime import date
from typing import Literal

import msgspec

from .. import catalog

OUTPUT_FORMATS = ("jsonl", "parquet", "duckdb", "postgres")
TOTALS = ("day", "window")
EXPAND_INSIGHTS = ("auto", "always", "never")
LOGINS = ("facebook", "instagram")
Login = Literal["facebook", "instagram"]
"""How a token was obtained: Facebook Login (graph.facebook.com, /me/accounts lists its Pages) or
Instagram Login (graph.instagram.com, /me is the account itself)."""
ExpandInsights = Literal["auto", "always", "never"]
"""``[graph] expand_insights``: whether media insights ride in the ``/media`` pages."""


class GraphSettings(msgspec.Struct, frozen=True):
    base_url: str = "https://graph.facebook.com"
    """Where Facebook Login tokens are used: also the simulator or a proxy."""
    api_version: str = "v25.0"
    max_response_bytes: int = 64 * 1024 * 1024
    """A body past this fails its unit (read in chunks, never held whole): far above any real answer."""
    instagram_base_url: str = "https://graph.instagram.com"
    """Where Instagram Login tokens (``login = "instagram"``) are used."""
    expand_insights: ExpandInsights = "auto"
    """Media insights nested in the ``/media`` pages (field expansion): "auto" where the usage
    headers show it costs less per media than a call each (measured per token, docs/pacing.md),
    "always", or "never" (a call per media, as before)."""


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
    settle_days: int = 3
    """Insights may arrive up to 48 hours late: an account call whose days ended at least this
    many days before a run that answered it is settled, and later runs on the same state do not
    ask it again (``harvester run --refresh`` does)."""


class Output(msgspec.Struct, frozen=True):
    format: str = "jsonl"
    path: str = "out"
    commit_seconds: float = 1.0
    """Checkpoint at least this often: the most work a crash can make a resumed run repeat."""
    commit_units: int = 100
    """... and at least every this many units: the same bound, counted in calls (an insights call is
    a unit, and so is each media or account record a page or account call lists)."""
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
    hedge: bool = True
    """When the queue is empty and calls in flight leave room, send one copy of a call out much
    longer than its token's typical latency and take the first answer (``harvester.graph.hedge``)."""

    def token_cap(self) -> int:
        """The cap on one token's calls in flight."""
        return TOKEN_DEPTH_CAP if self.per_token_in_flight == AUTO else int(self.per_token_in_flight)

    def in_flight_cap(self, tokens: int) -> int:
        """The cap on calls in flight over ``tokens`` tokens: a user's number wins."""
        if self.max_in_flight != AUTO:
            return int(self.max_in_flight)
        return max(1, min(IN_FLIGHT_CEILING, self.token_cap() * tokens))


class Account(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    token_env: str = ""
    """The environment variable holding the token (the token itself is never stored here)..."""
    token_file: str | None = None
    """... or the file holding it (what ``harvester tokens refresh`` renews): exactly one of the two."""
    login: Login = "facebook"

    @property
    def token_name(self) -> str:
        """How the token is named to people and in the state: its variable, or ``file:<path>``."""
        return token_name(self.token_env, self.token_file)


def token_name(token_env: str, token_file: str | None) -> str:
    return token_env if token_file is None else f"file:{token_file}"


class Discover(msgspec.Struct, frozen=True):
    """A token whose accounts are found at run start (``[[discover]]``)."""

    token_env: str = ""
    token_file: str | None = None
    login: Login = "facebook"
    """The default: Facebook Login is what the Instagram Graph API started with and what
    ``[graph] base_url`` points to; an Instagram Login token must say ``login = "instagram"``."""
    include: tuple[str, ...] = ()
    """Only these account ids or usernames (empty: every account found)."""
    exclude: tuple[str, ...] = ()
    """Never these account ids or usernames."""

    @property
    def token_name(self) -> str:
        return token_name(self.token_env, self.token_file)

    def wants(self, account_id: str, username: str | None) -> bool:
        names = {account_id} | ({username} if username else set())
        return (not self.include or bool(names & set(self.include))) and not names & set(self.exclude)


class AppSettings(msgspec.Struct, frozen=True):
    """The app's id and secret (variables), for ``/debug_token``: token expiry and scopes."""

    id_env: str | None = None
    secret_env: str | None = None

    @property
    def configured(self) -> bool:
        return self.id_env is not None and self.secret_env is not None


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
    on_refused: Literal["drop", "fail"] = "drop"
    """A metric the API refuses for an object: "drop" it (the rest of the call asked again, the
    metric recorded as refused and, refused a few times for a kind, left out of its later calls)
    or "fail" the call, as before."""


class Tier(msgspec.Struct, frozen=True):
    every_days: float
    """Harvest again after this many days..."""
    max_age_days: float | None = None
    """...while the media is younger than this (None: any age)."""


DEFAULT_TIERS: tuple[Tier, ...] = (Tier(1, 7), Tier(7, 90), Tier(30, None))
"""Daily in a media's first week, weekly until 90 days, monthly after that (:mod:`harvester.plan.refresh`)."""

class RefreshSettings(msgspec.Struct, frozen=True):
    """Media refresh by age (:mod:`harvester.plan.refresh`)."""

    enabled: bool = True
    tiers: tuple[Tier, ...] = DEFAULT_TIERS


class WebhookSettings(msgspec.Struct, frozen=True):
    """``[webhook]``: where ``harvester webhook`` listens (behind the user's TLS proxy) and which
    variable holds the verify token; the app secret that signs deliveries is ``[app] secret_env``."""

    verify_token_env: str
    """The environment variable holding the Verify Token given to Meta's App Dashboard (required)."""
    host: str = "127.0.0.1"
    port: int = 8787
    """0: any free port (tests)."""
    path: str = "/webhook"
    max_body_bytes: int = 1 << 20
    """A body over this is refused (413) without being read whole."""
    publish_seconds: float = 300.0
    """File sinks: received records are published (made current) this often; databases: at once."""


class ReportSettings(msgspec.Struct, frozen=True):
    tz: str = "UTC"
    """The time zone of ``harvester report``'s days and hours (``--tz`` overrides it)."""


class TelemetrySettings(msgspec.Struct, frozen=True):
    """``[telemetry]``: where a run's Prometheus metrics go, and how its log lines look."""

    pushgateway: str | None = None
    """A Prometheus Pushgateway (``http://host:9091``): a run pushes its metrics there every
    ``push_seconds`` and at its end (extra ``harvester[prometheus]``). None: nothing is pushed."""
    push_seconds: float = 15.0
    job: str = "harvester"
    """The Pushgateway's ``job`` label; each shard pushes to a group of its own (``shard`` label)."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object a line on stderr, for a cluster's log shipper (``--log-format``)."""


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
    discover: tuple[Discover, ...] = ()
    app: AppSettings = AppSettings()
    report: ReportSettings = ReportSettings()
    webhook: WebhookSettings | None = None
    """``[webhook]``; None when the file has none (``harvester webhook`` then says it is missing)."""
    telemetry: TelemetrySettings = TelemetrySettings()

    def token_keys(self) -> tuple[str, ...]:
        """Distinct token names (variables, or ``file:<path>``), in order of first use, listed
        accounts first (two may hold one token: the scheduler keys its slots by the token itself)."""
        return tuple(dict.fromkeys([a.token_name for a in self.accounts] + [d.token_name for d in self.discover]))

    def accounts_of(self, token_env: str) -> tuple[Account, ...]:
        """The listed accounts whose token this name holds."""
        return tuple(a for a in self.accounts if a.token_name == token_env)

    def token_tables(self) -> dict[str, Account | Discover]:
        """Each token name's first table (listed accounts first), in one pass: what
        :meth:`login_of` and :meth:`token_file_of` read, for a caller that asks of every token
        (each of those scans the tables: over 100,000 tokens, asking both of each is quadratic)."""
        tables: dict[str, Account | Discover] = {}
        listed: list[Account | Discover] = [*self.accounts, *self.discover]
        for table in listed:
            tables.setdefault(table.token_name, table)
        return tables

    def login_of(self, token_env: str) -> Login:
        """The login kind of a token name (the loader refuses one name with two kinds)."""
        tables: list[Account | Discover] = [*self.accounts, *self.discover]
        return next((t.login for t in tables if t.token_name == token_env), "facebook")

    def token_file_of(self, token_env: str) -> str | None:
        tables: list[Account | Discover] = [*self.accounts, *self.discover]
        return next((t.token_file for t in tables if t.token_name == token_env), None)
