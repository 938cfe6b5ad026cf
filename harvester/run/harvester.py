"""The Harvester: config in, flat records out, through discovery, planning and the scheduler.

    async with Harvester(config) as harvester:
        async for record in harvester.records():
            ...

or ``summary = await harvester.run()`` to write every record to the configured sink. Everything
runs inside the caller's event loop: no ``asyncio.run``, no threads of its own (but fsync), no
signal handlers, no global state. Tokens come from the environment variables the config names,
from a mapping, or from an async callable ``token_env -> token`` that a service supplies.

The Harvester does the lifecycle and the wiring only: the jobs (``jobs``) do the calls, the
ledger (``ledger``) the checkpoints, the scheduler the pacing. A token is one budget whatever
names it: slots are keyed by a digest of the token itself, so two variables holding the same
token share one slot (never the token: a digest cannot be turned back into it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import msgspec

from .. import summary as stat
from .. import summary as summary_mod
from ..config import Config, Window
from ..config.model import Login
from ..config.shards import Shard, assign
from ..config.tokens import read_token_file
from ..days import iso
from ..errors import ConfigError, HarvesterError, SinkError, StateError
from ..graph.client import GraphClient
from ..graph.policy import Action, Decision
from ..graph.transport import Transport
from ..plan.refresh import RefreshCheck
from ..plan.refusals import REPROBE_SECONDS, Refusals
from ..plan.units import Unit
from ..records import Record
from ..schedule.retry import Retry
from ..schedule.scheduler import Scheduler
from ..schedule.slot import Job as ScheduledJob
from ..sinks import paths
from ..sinks.base import Sink, SinkFailure
from ..sinks.factory import open_sink
from ..state.lock import RunLock
from ..state.store import Owed, Spent, StateStore
from ..summary import Outcome, Stats
from ..tokens import health as token_health
from ..tokens.discovery import DiscoverJob, Found
from .buffer import RECORDS_BUFFER, Buffer
from .jobs import AccountJob, InsightsJob, Job, JobContext
from .ledger import Ledger

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from ..telemetry.metrics import RunMetrics

TokenSource = Mapping[str, str] | Callable[[str], Awaitable[str]] | None


def token_key(token: str) -> str:
    """The slot of a token: a short digest, the same for every variable that holds it."""
    return "token-" + hashlib.blake2b(token.encode(), digest_size=8).hexdigest()


class Harvester:
    def __init__(self, config: Config, *, tokens: TokenSource = None, transport: Transport | None = None,
                 sink: Sink | None = None, state: StateStore | None = None, now: float | None = None,
                 run_id: str | None = None, kind: str = "run", clock: Callable[[], float] | None = None,
                 shard: Shard | None = None, refresh: bool = False):
        self.config = config
        self.shard = shard
        self.refresh_all = refresh
        """``harvester run --refresh``: ask settled account days again too."""
        self._shard_names: set[str] | None = None
        """With a shard: the token names (variables) whose accounts it harvests, once tokens are read."""
        self.now = time.time() if now is None else now
        self._created = time.time()
        self.run_id = run_id or datetime.fromtimestamp(self.now, UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self.stats = Stats()
        self._token_source = tokens
        self._transport = transport
        self._own_transport = transport is None
        self._client: GraphClient | None = None
        self._sink = sink
        self._state = state
        self._own_state = state is None     # then run() opens the config's [state] path itself
        self._lock: RunLock | None = None
        self.earlier_attempts: list[summary_mod.Attempt] = []   # of a resumed run, from the state
        self.kind = kind
        self.resumed = False
        self._clock = clock
        self._skip_units: set[str] = set()
        self._ledger: Ledger | None = None
        self._ctx: JobContext | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self._stopping = False
        self._producers: set[asyncio.Future] = set()
        self._buffer: Buffer | None = None
        self._scheduler: Scheduler | None = None
        self._scheduler_task: asyncio.Future | None = None
        self.token_names: dict[str, str] = {}
        """Slot key -> the token variables that name it (for people: the key is a digest)."""
        self._clients: dict[str, GraphClient] = {}
        """Login kind -> the client of its host."""
        self._login_of_key: dict[str, Login] = {}
        self._claimed: dict[str, str] = {}
        """Account id -> the token name it is harvested with (listed accounts first)."""
        self._discovered: defaultdict[str, list[str]] = defaultdict(list)
        """Token name -> the accounts discovered with it (and harvested with it)."""
        self._discoveries: dict[int, tuple[list[Found], Decision | None]] = {}
        self._released = 0
        self._submit_found: Callable[[list[tuple[str, str]]], None] | None = None
        self.token_warnings: list[str] = []
        self.token_expiry_at: dict[str, float] = {}
        """Token name -> when ``/debug_token`` said it expires (with ``[app]``)."""
        self._metrics: RunMetrics | None = None
        """Said once at the start (log and summary): tokens that expire soon (asked only with [app])."""

    def __repr__(self) -> str:
        return f"Harvester(config={self.config.path!r}, run_id={self.run_id!r})"

    async def __aenter__(self) -> Harvester:
        if self._transport is None:
            from ..graph.aiohttp_transport import AiohttpTransport
            self._transport = AiohttpTransport(limit=self._in_flight_cap(),
                                               max_response_bytes=self.config.graph.max_response_bytes)
        graph = self.config.graph
        self._clients = {login: GraphClient(self._transport, url, graph.api_version,
                                            max_response_bytes=graph.max_response_bytes)
                         for login, url in (("facebook", graph.base_url), ("instagram", graph.instagram_base_url))}
        self._client = self._clients["facebook"]
        return self

    def _in_flight_cap(self) -> int:
        """Calls in flight over every token (and connections): ``[scheduler]``'s, by the token variables."""
        return self.config.scheduler.in_flight_cap(len(self.config.token_keys()))

    async def __aexit__(self, *exc) -> None:
        # A consumer that broke out of ``records()`` leaves its generator suspended: stop its harvest now.
        for task in self._producers:
            task.cancel()
        await asyncio.gather(*self._producers, return_exceptions=True)
        if self._own_transport and self._transport is not None:
            await self._transport.close()
        if self._own_state and self._state is not None:
            self._state.close()
            self._state = None
        if self._lock is not None:
            self._lock.release()

    # -- tokens -----------------------------------------------------------------------------

    async def _resolve_tokens(self) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
        """``(key -> token, token_env -> key, [(token_env, problem)])`` for every token variable
        of the config, asked once each."""
        tokens: dict[str, str] = {}
        keys: dict[str, str] = {}
        missing: list[tuple[str, str]] = []
        names: defaultdict[str, list[str]] = defaultdict(list)
        tables = self.config.token_tables()
        for env in self.config.token_keys():
            token_file = tables[env].token_file
            try:
                token = read_token_file(token_file) if token_file is not None else await self._lookup(env)
            except ConfigError as exc:
                missing.append((env, str(exc)))
                continue
            if not token:
                what = f"token_file {token_file!r} (unreadable or empty)" if token_file else f"token_env {env!r}"
                missing.append((env, f"{self.config.path}: no access token for {what}"))
                continue
            key = keys[env] = token_key(token)
            self._login_of_key.setdefault(key, tables[env].login)
            tokens[key] = token
            names[key].append(env)
        self.token_names = {key: ", ".join(envs) for key, envs in names.items()}
        return tokens, keys, missing

    async def _lookup(self, env: str) -> str | None:
        """A variable's value from the token source: the environment, a mapping, or a callable."""
        source = self._token_source
        return (os.environ.get(env) if source is None else
                await source(env) if callable(source) else source.get(env))

    async def _check_tokens(self, tokens: Mapping[str, str]) -> None:
        """With [app]: one /debug_token call per token (the app's budget, not the token's), and a
        warning, once, for a token that expires within token_health.WARN_DAYS days or is invalid."""
        app = self.config.app
        if not app.configured or self._client is None:
            return
        try:
            app_id, secret = await self._lookup(app.id_env or ""), await self._lookup(app.secret_env or "")
        except ConfigError:
            app_id = secret = None
        if not app_id or not secret:
            self.token_warnings.append("token expiry not checked: the [app] id_env / secret_env variables are not set")
            token_health.log.warning(self.token_warnings[-1])
            return
        health = []
        retry = Retry.of(self.config)           # as the harvest's calls: a transient fault is asked again
        keys = list(tokens)
        for i, key in enumerate(keys):
            name = self.token_names.get(key, key)
            login = self._login_of_key.get(key, "facebook")     # its first name's, found when it was read
            self.stats.inc("calls/debug_token")
            try:
                debug = await token_health.debug_token(self._client, f"{app_id}|{secret}", tokens[key], retry)
            except HarvesterError as exc:         # the app token refused, or retries used up: the rest alike
                unchecked = ", ".join(self.token_names.get(k, k) for k in keys[i:])
                self.token_warnings.append(f"token expiry not checked for {unchecked}: /debug_token refused: {exc}")
                token_health.log.warning(self.token_warnings[-1])
                break
            health.append(token_health.Health(name, login, debug))
            if debug.expires_at:
                self.token_expiry_at[name] = float(debug.expires_at)
        self.token_warnings += token_health.warnings(health, self.now)

    # -- what telemetry reads (harvester.telemetry.metrics.Observed) -----------------------------

    def counters(self) -> Mapping[str, float]:
        return self.stats.counters

    def token_usage(self) -> dict[str, float]:
        """Token name -> the share of its rate limit in use now (0 to 1)."""
        scheduler = self._scheduler
        if scheduler is None:
            return {}
        now = scheduler.now()
        return {self.token_names.get(key, key): slot.usage(now, scheduler.window_seconds)
                for key, slot in scheduler.slots.items()}

    def token_expiry(self) -> Mapping[str, float]:
        return self.token_expiry_at

    def metrics(self, registry: CollectorRegistry | None = None) -> RunMetrics:
        """This run's Prometheus metrics (``harvester[prometheus]``), registered in ``registry`` (a
        new one by default): a service passes its own to show them on its ``/metrics``."""
        if self._metrics is None:
            from ..telemetry.metrics import RunMetrics
            self._metrics = RunMetrics(self, registry=registry)
        return self._metrics

    # -- running ----------------------------------------------------------------------------

    def sink(self) -> Sink:
        if self._sink is None:
            self._sink = open_sink(self.config.output, self.run_id, config_path=self.config.path)
        return self._sink

    async def run(self) -> summary_mod.RunSummary:
        """Harvest everything the config asks for into the sink; return the summary.

        With a state store, an unfinished run of the same work is resumed: its committed units
        are not called again and whatever it wrote without committing is removed first; what
        earlier runs owe is asked again.
        """
        state = self._start_state()
        try:
            self._open_state(state)
        except sqlite3.Error as exc:
            raise StateError(f"{state.path}: cannot open the run in the state file: {exc}") from None
        self.earlier_attempts = [summary_mod.Attempt(*a) for a in state.attempts(self.run_id)]
        state.begin_attempt(self.run_id, lambda: self.stats.counters)
        try:
            sink = self.sink()
            if (open_sink := getattr(sink, "open", None)) is not None:
                await open_sink()                 # a database: reachable and usable, or exit 2 before any call
            removed = sink.recover(state.committed_parts(self.run_id))
        except ConfigError:
            if not self.resumed:
                state.forget_run(self.run_id)     # a DuckDB file in use, say: nothing ran
            raise
        except OSError as exc:
            if not self.resumed:
                state.forget_run(self.run_id)     # nothing ran: leave no run marked running
            raise ConfigError(f"{self.config.path}: [output] path = {self.config.output.path!r}: cannot be used: "
                              f"{exc.strerror or exc} ({exc.filename})") from None
        self.stats.inc(stat.SINK_UNCOMMITTED_REMOVED, len(removed))
        ledger = self._ledger = Ledger(self.stats, run_id=self.run_id, now=self.now, sink=sink, state=state,
                                       finished=self._skip_units,
                                       settle_seconds=self.config.window.settle_days * 86400)
        try:
            try:
                await self._harvest(ledger)
            finally:
                await ledger.commit(final=True)
        except SinkFailure as exc:                 # not an API outcome: the run stops, the next resumes
            raise SinkError(str(exc)) from None
        if not self._stopping:
            await asyncio.to_thread(sink.publish)   # before the run is marked finished: a crash re-publishes
        summary = self.summary()
        status = "stopped" if self._stopping else summary.status
        state.finish_run(self.run_id, status=status, exit_code=summary.exit_code,
                         summary=msgspec.json.encode(summary))
        return summary

    def _start_state(self) -> StateStore:
        """Lock the state file (one run at a time per state file), then open it: the config's
        [state] path unless a store was given. Any OS or SQLite error here is a ConfigError
        naming the path, raised before anything is marked running."""
        state_path = self._state.path if self._state is not None else Path(self.config.state.path)
        paths.prepare(self.config, state_path, output=False)
        if self._lock is None:
            self._lock = RunLock(state_path)
        self._lock.acquire()
        if self._state is None:
            self._state = StateStore(state_path)
        paths.prepare(self.config, None, output=self._sink is None)
        return self._state

    def _open_state(self, state: StateStore) -> None:
        window = self.config.window
        info = state.open_run(self.run_id, kind=self.kind, fingerprint=fingerprint(self.config, self.shard),
                                    config_path=self.config.path, since=str(window.since), until=str(window.until))
        self.run_id, self.resumed = info.run_id, info.resumed
        self._skip_units = state.finished_units(self.run_id)

    def records(self, *, buffer: int = RECORDS_BUFFER) -> AsyncGenerator[Record, None]:
        """Yield records as they arrive; the harvest pauses while the consumer does not read.

        ``buffer``: records held for the consumer at most (docs/library.md): while it is full,
        no new call starts. Nothing is written to ``[output]`` and nothing is checkpointed in
        ``[state]``: only the consumer knows when a record is safe. Leaving the loop (once Python
        closes the iterator the loop dropped; one kept in a variable, when it is closed),
        leaving the ``async with``, cancelling and timeouts stop the harvest and its calls,
        whatever the buffer holds.
        """
        return self._records(Buffer(buffer, hold=self._hold))

    @property
    def buffered(self) -> int:
        """Records harvested that the consumer of :meth:`records` has not read yet."""
        return len(self._buffer) if self._buffer is not None else 0

    def _hold(self, held: bool) -> None:
        """The buffer is full (``held``) or half read again: no call starts meanwhile."""
        if self._scheduler is not None:
            self._scheduler.hold(held)

    async def _records(self, buffer: Buffer) -> AsyncGenerator[Record, None]:
        self._buffer = buffer

        async def produce() -> None:
            ledger = self._ledger = Ledger(self.stats, run_id=self.run_id, now=self.now)
            ledger.emit = buffer.put
            try:
                await self._harvest(ledger)
            finally:
                buffer.end()            # never waits: a full buffer cannot hold a cancelled harvest up

        task = asyncio.ensure_future(produce())
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)
        try:
            while (record := await buffer.get()) is not None:
                yield record
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _harvest(self, ledger: Ledger) -> None:
        if self._client is None:
            raise RuntimeError("use 'async with Harvester(config) as harvester:'")
        self.started = time.time()
        settings = self.config.scheduler
        scheduler = Scheduler(
            calls_per_window=self.config.rate_limit.calls_per_window,
            window_seconds=self.config.rate_limit.window_seconds,
            margin=self.config.rate_limit.margin_seconds, per_token_in_flight=settings.token_cap(),
            max_in_flight=self._in_flight_cap(), max_attempts=settings.max_attempts,
            stats=self.stats, on_give_up=_give_up, on_token_dead=self._token_dead,
            clock=self._clock, hedge=settings.hedge)
        self._scheduler = scheduler
        tokens, keys, missing = await self._resolve_tokens()
        wall = self._restore_spent(scheduler, tokens)
        missing = self._select_shard(keys, missing)
        await self._check_tokens({key: token for key, token in tokens.items() if self._key_in_shard(key)})
        config = self.config
        owed = self._owed_work([a.id for a in config.accounts if self.in_shard(a.token_name)])
        ctx = JobContext(
            client=self._client, tokens=tokens, submit=scheduler.submit, ledger=ledger, stats=self.stats,
            selection=config.selection, now=self.now, run_id=self.run_id, harvested_at=iso(self.now),
            skip_units=self._skip_units, owed_units={o.owed_id for o in owed if o.kind == "unit"},
            observed_on=iso(self.now)[:10] if config.output.lifetime_history else None,
            delivered=self._delivered if self._state is not None else None,
            refresh=RefreshCheck(self._last_harvested, self.now, config.refresh.tiers)
            if self._state is not None and config.refresh.enabled else None,
            refusals=self._refusals(), api_version=config.graph.api_version,
            settled_units=self._state.settled_units if self._state is not None and not self.refresh_all else None,
            clients={key: self._clients[login] for key, login in self._login_of_key.items() if login != "facebook"})
        self._ctx = ctx
        self._token_missing(missing)
        self._claimed = {a.id: a.token_name for a in config.accounts}
        listed = [(a.id, keys[a.token_name]) for a in config.accounts
                  if a.token_name in keys and self.in_shard(a.token_name)]
        self._submit_accounts(ctx, scheduler, listed, owed)
        self._submit_found = lambda found: self._submit_accounts(ctx, scheduler, found,
                                                                 self._owed_work([i for i, _ in found]))
        self._discover(ctx, scheduler, keys, dict(missing))
        self._scheduler_task = asyncio.ensure_future(scheduler.run())
        try:
            await self._scheduler_task
        except asyncio.CancelledError:
            if not self._stopping or not self._scheduler_task.cancelled():
                raise                   # the caller cancelled us: let it through
        finally:
            self.finished = time.time()
            self._save_spent(scheduler, wall)

    # -- what each token spent, across processes ----------------------------------------------

    def _restore_spent(self, scheduler: Scheduler, keys: Iterable[str]) -> float:
        """Start each token's window with the calls earlier processes made with it (kept in the
        state), so that a resumed or repeated run is not throttled at start. Returns the offset
        from the scheduler's clock to the wall clock (``self.now`` as the harvest starts)."""
        wall = self.now + (time.time() - self._created) - scheduler.now()
        if self._state is not None:
            for key, spent in self._state.spent(keys, now=scheduler.now() + wall).items():
                scheduler.restore(key, [t - wall for t in spent.starts], spent.paused_until - wall)
        return wall

    def _save_spent(self, scheduler: Scheduler, wall: float) -> None:
        """Keep what this process spent of each token's window in the state, for the next one."""
        if self._state is None:
            return
        spent = {key: Spent(tuple(t + wall for t in starts), paused + wall)
                 for key, (starts, paused) in scheduler.spent().items()}
        self._state.save_spent(spent, window_seconds=self.config.rate_limit.window_seconds,
                               now=scheduler.now() + wall)

    # -- shards -----------------------------------------------------------------------------

    def _select_shard(self, keys: Mapping[str, str], missing: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Settle which token names are the shard's (all of them without a shard) and keep only
        its missing ones: another shard reports the others."""
        if self.shard is None:
            return missing
        names: dict[str, str | None] = {env: keys.get(env) for env in self.config.token_keys()}
        shards = assign(names, self.shard.count)
        self._shard_names = {name for name, index in shards.items() if index == self.shard.index}
        return [(env, problem) for env, problem in missing if env in self._shard_names]

    def in_shard(self, token_name: str) -> bool:
        """Whether the accounts of this token name (a variable or ``file:<path>``, a listed
        account's or a [[discover]] table's) are this run's: always without a shard."""
        return self._shard_names is None or token_name in self._shard_names

    def _key_in_shard(self, key: str) -> bool:
        return any(self.in_shard(name) for name in self.token_names.get(key, key).split(", "))

    def _submit_accounts(self, ctx: JobContext, scheduler: Scheduler, accounts: Sequence[tuple[str, str]],
                         owed: Sequence[Owed]) -> None:
        """Each account's job (its window and the windows earlier runs owe), and the insights
        units earlier runs owe for it on their own (their plan may not hold them any more)."""
        windows = _owed_windows(owed)
        for account_id, key in accounts:
            extra = windows.get(account_id, {})
            scheduler.submit(AccountJob(ctx, account_id, key, (self.config.window, *extra.values()),
                                        owed=tuple(extra)))
        key_of = dict(accounts)
        for o in owed:
            account_key = key_of.get(o.account_id)
            if o.kind == "unit" and account_key is not None and o.owed_id not in self._skip_units:
                if isinstance(ctx.owed_units, set):
                    ctx.owed_units.add(o.owed_id)
                self.stats.inc(stat.UNITS_PLANNED)
                scheduler.submit(InsightsJob(ctx, account_key, o.account_id,
                                             msgspec.json.decode(o.body, type=Unit), expires_at=o.expires_at))

    # -- discovery --------------------------------------------------------------------------

    def _discover(self, ctx: JobContext, scheduler: Scheduler, keys: Mapping[str, str],
                  missing: Mapping[str, str]) -> None:
        """A discovery job per [[discover]] table whose token is there (the others fail at once)."""
        for i, table in enumerate(self.config.discover):
            key = keys.get(table.token_name)
            if not self.in_shard(table.token_name):
                self._discovery_done(i, [], None)       # another shard's: settled empty, in its turn
            elif key is None:
                reason = missing.get(table.token_name, "no access token")
                self._discovery_done(i, [], Decision(Action.FAIL_TOKEN, "no access token", message=reason))
            else:
                scheduler.submit(DiscoverJob(ctx, key, i, table, self._discovery_done))

    def _discovery_done(self, index: int, found: list[Found], decision: Decision | None) -> None:
        """Tables are settled in config order, so that an account two tokens reach is harvested
        with the first table's token whatever discovery answers first (a listed account keeps
        its own token); a table waits for the ones before it (a few calls each)."""
        self._discoveries[index] = (found, decision)
        while self._released in self._discoveries:
            i = self._released
            self._settle(i, *self._discoveries.pop(i))
            self._released += 1

    def _settle(self, index: int, found: list[Found], decision: Decision | None) -> None:
        table = self.config.discover[index]
        name = table.token_name
        if decision is not None:
            label = f"discover[{index}] ({name})"
            self.stats.fail(Outcome.of(label, label, decision, f"discovery failed: {decision.reason}"))
            if self._state is not None:
                self._state.set_account(self.run_id, f"discover[{index}]", name, "failed", decision.reason)
        chosen: list[tuple[str, str]] = []
        key = next((k for k, names in self.token_names.items() if name in names.split(", ")), None)
        for f in found:
            if not table.wants(f.account_id, f.username):
                self.stats.inc(stat.DISCOVERED_EXCLUDED)
            elif f.account_id in self._claimed:
                self.stats.inc(stat.DISCOVERED_ELSEWHERE)
            elif key is not None:
                self._claimed[f.account_id] = name
                self._discovered[name].append(f.account_id)
                chosen.append((f.account_id, key))
                if self._state is not None:
                    self._state.set_account(self.run_id, f.account_id, name, "discovered")
        self.stats.inc(stat.DISCOVERED_ACCOUNTS, len(chosen))
        if chosen and self._submit_found is not None:
            self._submit_found(chosen)

    @property
    def metrics_asked(self) -> dict[str, list[str]]:
        """Kind of object -> the metrics this attempt asked of it (summary.json's ``metrics_asked``)."""
        return self._ctx.metrics_asked() if self._ctx is not None else {}

    @property
    def discovered(self) -> dict[str, list[str]]:
        """Token name -> the accounts discovered with it and harvested with it in this run."""
        return dict(self._discovered)

    def _delivered(self, media_ids: Sequence[str]) -> set[str]:
        """The stories among these that the webhook receiver stored final values for."""
        from ..state.webhook import delivered_stories
        assert self._state is not None
        return delivered_stories(self._state.db, media_ids)

    def webhook_app(self, *, env: Mapping[str, str] | None = None) -> web.Application:
        """The ``story_insights`` webhook receiver of this config (``[webhook]``, ``[app] secret_env``)
        as an aiohttp application to mount in a service's own (docs/webhook.md); it opens the
        config's output and state on startup and publishes what it received on cleanup."""
        from ..webhook.app import app_for
        return app_for(self.config, env=env)

    def _last_harvested(self, media_ids: Sequence[str]) -> Mapping[str, float]:
        assert self._state is not None
        return self._state.last_harvested(media_ids, run_id=self.run_id)

    def _refusals(self) -> Refusals:
        """What earlier runs on this state learned of refused metrics, under this API version and
        within the re-probe period (older ones are asked again: the metric may be back)."""
        rows = self._state.learned_refusals(api_version=self.config.graph.api_version,
                                            since=self.now - REPROBE_SECONDS) if self._state is not None else []
        return Refusals.of_rows(rows, drop=self.config.selection.on_refused == "drop")

    def _owed_work(self, account_ids: Sequence[str]) -> list[Owed]:
        """What earlier runs owe for these accounts and the API still keeps; what it no longer
        keeps is reported failed, once, and forgotten."""
        if self._state is None or not account_ids:
            return []
        owed = self._state.owed(account_ids)
        lost = [o for o in owed if o.expires_at <= self.now]
        for o in lost:
            self.stats.fail(Outcome(o.account_id, o.owed_id, f"owed by run {o.run_id} ({o.reason}), but the API "
                                                             "no longer keeps it"))
        self._state.forget(o.owed_id for o in lost)
        kept = [o for o in owed if o.expires_at > self.now]
        for run_id, n in Counter(o.run_id for o in kept if o.run_id != self.run_id).items():
            self.stats.carried_over(run_id, n)
        return kept

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: the run ends unfinished, and the next one resumes it."""
        return self._stopping

    def stop(self) -> None:
        """Stop dispatching; calls in flight finish, then run() returns (for SIGINT/SIGTERM)."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.stop()

    def cancel_in_flight(self) -> None:
        """After :meth:`stop`, give up on calls still in flight (their units are fetched next run)."""
        task = self._scheduler_task
        if self._stopping and task is not None and not task.done():
            task.cancel()

    # -- outcomes ---------------------------------------------------------------------------

    def _token_missing(self, missing: Sequence[tuple[str, str]]) -> None:
        for env, problem in missing:
            self._account_failed(env, Decision(Action.FAIL_TOKEN, "no access token"), problem)

    def _token_dead(self, key: str, decision: Decision) -> None:
        name = self.token_names.get(key, key)
        if self._state is not None:
            self._state.set_token(self.run_id, name, "dead", decision.reason)
        for env in name.split(", "):
            self._account_failed(env, decision, f"token {name} unusable: {decision.reason}")

    def _account_failed(self, env: str, decision: Decision, reason: str) -> None:
        for account_id in [a.id for a in self.config.accounts_of(env)] + self._discovered.get(env, []):
            self.stats.fail(Outcome.of(account_id, f"account {account_id}", decision, reason))
            if self._state is not None:
                self._state.set_account(self.run_id, account_id, env, "failed", decision.reason)

    def summary(self) -> summary_mod.RunSummary:
        return summary_mod.build(self)


def _give_up(job: ScheduledJob, decision: Decision) -> None:
    """The scheduler gave ``job`` up: the job's kind knows what that means (the scheduler runs
    only jobs of :mod:`harvester.run.jobs`)."""
    cast(Job, job).gave_up(decision)


def _owed_windows(owed: Sequence[Owed]) -> dict[str, dict[str, Window]]:
    """Account id -> {owed id: window} of the account windows earlier runs owe."""
    windows: defaultdict[str, dict[str, Window]] = defaultdict(dict)
    for o in owed:
        if o.kind == "window":
            windows[o.account_id][o.owed_id] = msgspec.json.decode(o.body, type=Window)
    return windows


def fingerprint(config: Config, shard: Shard | None = None) -> str:
    """What makes two runs the same work: resuming is allowed only between equal fingerprints."""
    work: tuple = ((config.graph.base_url, config.graph.api_version), config.window, config.selection,
                   config.accounts, config.output.format, config.output.path, config.output.lifetime_history)
    if config.discover:
        work += (config.graph.instagram_base_url, config.discover)
    if shard is not None:       # a shard is other work than the whole (and unsharded fingerprints stay as they were)
        work += (shard,)
    return hashlib.blake2b(msgspec.json.encode(work), digest_size=16).hexdigest()
