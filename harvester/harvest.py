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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import msgspec

from . import counter_names as stat
from . import summary as summary_mod
from .config import Config, Window, paths
from .days import iso
from .errors import ConfigError, SinkError, StateError
from .graph.client import GraphClient
from .graph.policy import Action, Decision
from .graph.transport import Transport
from .jobs import AccountJob, InsightsJob, Job, JobContext
from .ledger import Ledger
from .lock import RunLock
from .plan import Unit
from .records import Record
from .refresh import RefreshCheck
from .schedule.scheduler import Scheduler
from .schedule.slot import Job as ScheduledJob
from .sinks.base import Sink, SinkFailure
from .sinks.jsonl import JsonlSink
from .state import Owed, StateStore
from .summary import Outcome, Stats

TokenSource = Mapping[str, str] | Callable[[str], Awaitable[str]] | None


def token_key(token: str) -> str:
    """The slot of a token: a short digest, the same for every variable that holds it."""
    return "token-" + hashlib.blake2b(token.encode(), digest_size=8).hexdigest()


class Harvester:
    def __init__(self, config: Config, *, tokens: TokenSource = None, transport: Transport | None = None,
                 sink: Sink | None = None, state: StateStore | None = None, now: float | None = None,
                 run_id: str | None = None, kind: str = "run", clock: Callable[[], float] | None = None):
        self.config = config
        self.now = time.time() if now is None else now
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
        self.started: float | None = None
        self.finished: float | None = None
        self._stopping = False
        self._producers: set[asyncio.Future] = set()
        self._scheduler: Scheduler | None = None
        self._scheduler_task: asyncio.Future | None = None
        self.token_names: dict[str, str] = {}
        """Slot key -> the token variables that name it (for people: the key is a digest)."""

    def __repr__(self) -> str:
        return f"Harvester(config={self.config.path!r}, run_id={self.run_id!r})"

    async def __aenter__(self) -> Harvester:
        if self._transport is None:
            from .graph.aiohttp_transport import AiohttpTransport
            self._transport = AiohttpTransport(limit=self.config.scheduler.max_in_flight,
                                               max_response_bytes=self.config.graph.max_response_bytes)
        self._client = GraphClient(self._transport, self.config.graph.base_url, self.config.graph.api_version,
                                   max_response_bytes=self.config.graph.max_response_bytes)
        return self

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
        for env in self.config.token_keys():
            source = self._token_source
            try:
                token = (os.environ.get(env) if source is None else
                         await source(env) if callable(source) else source.get(env))
            except ConfigError as exc:
                missing.append((env, str(exc)))
                continue
            if not token:
                missing.append((env, f"{self.config.path}: no access token for token_env {env!r}"))
                continue
            key = keys[env] = token_key(token)
            tokens[key] = token
            names[key].append(env)
        self.token_names = {key: ", ".join(envs) for key, envs in names.items()}
        return tokens, keys, missing

    # -- running ----------------------------------------------------------------------------

    def sink(self) -> Sink:
        if self._sink is None:
            output = self.config.output
            if output.format == "postgres":
                from .sinks.postgres import PostgresSink
                self._sink = PostgresSink.from_config(output, path=self.config.path)
                return self._sink
            self._sink = JsonlSink(Path(output.path) / self.run_id, part_records=output.part_records,
                                   commit_seconds=output.commit_seconds, commit_units=output.commit_units)
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
                state.forget_run(self.run_id)
            raise
        except OSError as exc:
            if not self.resumed:
                state.forget_run(self.run_id)     # nothing ran: leave no run marked running
            raise ConfigError(f"{self.config.path}: [output] path = {self.config.output.path!r}: cannot be used: "
                              f"{exc.strerror or exc} ({exc.filename})") from None
        self.stats.inc(stat.SINK_UNCOMMITTED_REMOVED, len(removed))
        ledger = self._ledger = Ledger(self.stats, run_id=self.run_id, now=self.now, sink=sink, state=state,
                                       finished=self._skip_units)
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
        info = state.open_run(self.run_id, kind=self.kind, fingerprint=fingerprint(self.config),
                                    config_path=self.config.path, since=str(window.since), until=str(window.until))
        self.run_id, self.resumed = info.run_id, info.resumed
        self._skip_units = state.finished_units(self.run_id)

    async def records(self) -> AsyncIterator[Record]:
        """Yield records as they arrive; the harvest pauses while the consumer does not read.
        Nothing is checkpointed: only the consumer knows when a record is safe."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        done = object()

        async def emit(records: Sequence[Record]) -> None:
            for record in records:
                await queue.put(record)

        async def produce() -> None:
            ledger = self._ledger = Ledger(self.stats, run_id=self.run_id, now=self.now)
            ledger.emit = emit
            try:
                await self._harvest(ledger)
            finally:
                await queue.put(done)

        task = asyncio.ensure_future(produce())
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)
        try:
            while (item := await queue.get()) is not done:
                yield item
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
            margin=self.config.rate_limit.margin_seconds, per_token_in_flight=settings.per_token_in_flight,
            max_in_flight=settings.max_in_flight, max_attempts=settings.max_attempts,
            stats=self.stats, on_give_up=_give_up, on_token_dead=self._token_dead,
            clock=self._clock)
        self._scheduler = scheduler
        tokens, keys, missing = await self._resolve_tokens()
        owed = self._owed_work()
        owed_units = [o for o in owed if o.kind == "unit"]
        config = self.config
        ctx = JobContext(
            client=self._client, tokens=tokens, submit=scheduler.submit, ledger=ledger, stats=self.stats,
            selection=config.selection, now=self.now, run_id=self.run_id, harvested_at=iso(self.now),
            skip_units=self._skip_units, owed_units={o.owed_id for o in owed_units},
            observed_on=iso(self.now)[:10] if config.output.lifetime_history else None,
            refresh=RefreshCheck(self._last_harvested, self.now, config.refresh.tiers)
            if self._state is not None and config.refresh.enabled else None)
        self._token_missing(missing)
        windows = _owed_windows(owed)
        for account in config.accounts:
            key = keys.get(account.token_env)
            if key is None:
                continue
            extra = windows.get(account.id, {})
            scheduler.submit(AccountJob(ctx, account.id, key, (config.window, *extra.values()),
                                        owed=tuple(extra)))
        token_env_of = {a.id: a.token_env for a in config.accounts}
        for o in owed_units:       # on their own: their plan may not hold them any more
            account_key = keys.get(token_env_of.get(o.account_id, ""))
            if account_key is not None and o.owed_id not in self._skip_units:
                self.stats.inc(stat.UNITS_PLANNED)
                scheduler.submit(InsightsJob(ctx, account_key, o.account_id,
                                             msgspec.json.decode(o.body, type=Unit), expires_at=o.expires_at))
        self._scheduler_task = asyncio.ensure_future(scheduler.run())
        try:
            await self._scheduler_task
        except asyncio.CancelledError:
            if not self._stopping or not self._scheduler_task.cancelled():
                raise                   # the caller cancelled us: let it through
        finally:
            self.finished = time.time()

    def _last_harvested(self, media_ids: Sequence[str]) -> Mapping[str, float]:
        assert self._state is not None
        return self._state.last_harvested(media_ids, run_id=self.run_id)

    def _owed_work(self) -> list[Owed]:
        """What earlier runs owe for the config's accounts and the API still keeps; what it no
        longer keeps is reported failed, once, and forgotten."""
        if self._state is None:
            return []
        owed = self._state.owed(a.id for a in self.config.accounts)
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
        for account in self.config.accounts_of(env):
            self.stats.fail(Outcome.of(account.id, f"account {account.id}", decision, reason))
            if self._state is not None:
                self._state.set_account(self.run_id, account.id, env, "failed", decision.reason)

    def summary(self) -> summary_mod.RunSummary:
        return summary_mod.build(self)


def _give_up(job: ScheduledJob, decision: Decision) -> None:
    """The scheduler gave ``job`` up: the job's kind knows what that means (the scheduler runs
    only jobs of :mod:`harvester.jobs`)."""
    cast(Job, job).gave_up(decision)


def _owed_windows(owed: Sequence[Owed]) -> dict[str, dict[str, Window]]:
    """Account id -> {owed id: window} of the account windows earlier runs owe."""
    windows: defaultdict[str, dict[str, Window]] = defaultdict(dict)
    for o in owed:
        if o.kind == "window":
            windows[o.account_id][o.owed_id] = msgspec.json.decode(o.body, type=Window)
    return windows


def fingerprint(config: Config) -> str:
    """What makes two runs the same work: resuming is allowed only between equal fingerprints."""
    work = ((config.graph.base_url, config.graph.api_version), config.window, config.selection, config.accounts,
            config.output.format, config.output.path, config.output.lifetime_history)
    return hashlib.blake2b(msgspec.json.encode(work), digest_size=16).hexdigest()
