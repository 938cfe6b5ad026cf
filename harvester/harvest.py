"""The Harvester: config in, flat records out, through discovery, planning and the scheduler.

    async with Harvester(config) as harvester:
        async for record in harvester.records():
            ...

or ``summary = await harvester.run()`` to write every record to the configured sink. Everything
runs inside the caller's event loop: no ``asyncio.run``, no threads of its own (but fsync), no
signal handlers, no global state. Tokens come from the environment variables the config names,
from a mapping, or from an async callable ``token_env -> token`` that a service supplies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Mapping, Sequence, Union

import msgspec

from . import refresh
from . import summary as summary_mod
from .config import Config
from .days import iso
from .discover import PRIORITY_INSIGHTS, AccountJob
from .errors import ConfigError
from .graph.client import GraphClient, Params, Reply
from .graph.flatten import flatten
from .graph.policy import Action, Decision
from .graph.transport import Transport
from .plan import Unit
from .records import Record
from .schedule.scheduler import Scheduler
from .sinks.base import Sink
from .sinks.jsonl import JsonlSink
from .state import StateStore
from .summary import Outcome, Stats

TokenSource = Union[Mapping[str, str], Callable[[str], Awaitable[str]], None]


class InsightsJob:
    """One insights call. ``follow_ups`` are the calls that only make sense if this one answers
    (a media's breakdown calls after its plain one): asked after it, never when it is skipped."""

    priority = PRIORITY_INSIGHTS

    def __init__(self, run: Run, key: str, account_id: str, unit: Unit, follow_ups: tuple[Unit, ...] = ()):
        self.run, self.key, self.account_id, self.unit = run, key, account_id, unit
        self.follow_ups = follow_ups
        self.label = unit.label

    async def __call__(self):
        reply = await self.run.get(self.key, self.unit.path, self.unit.params)
        records = flatten(reply.body, self.unit.ctx, run_id=self.run.run_id,
                          harvested_at=self.run.harvested_at)
        await self.run.emit(self, records)
        self.run.stats.inc("units/done")
        self.run.submit_units(self.key, self.account_id, self.follow_ups, planned=True)
        return reply.usage


class Run:
    """What the jobs of one harvest share: the client, tokens, plan inputs, and where records go."""

    def __init__(self, harvester: Harvester, scheduler: Scheduler, emit: Callable[[InsightsJob, Sequence[Record]], Awaitable[None]]):
        config = harvester.config
        self.client = harvester._client
        self.scheduler = scheduler
        self.stats = harvester.stats
        self.window = config.window
        self.selection = config.selection
        self.now = harvester.now
        self.run_id = harvester.run_id
        self.harvested_at = iso(harvester.now)
        self.emit = emit
        self.skip_units = harvester._skip_units
        self._tokens = harvester._token_for
        self._state = harvester._state if config.refresh.enabled else None
        self.tiers = config.refresh.tiers

    async def get(self, key: str, path: str, params: Params) -> Reply:
        return await self.client.get(path, params, await self._tokens(key))

    async def follow(self, key: str, url: str) -> Reply:
        return await self.client.follow(url, await self._tokens(key))

    def submit(self, job) -> None:
        self.scheduler.submit(job)

    def submit_units(self, key: str, account_id: str, units: Sequence[Unit], *, planned: bool = False) -> None:
        """Submit ``units[0]``, the others following it (a resumed run skips what it finished).
        ``planned``: the units were counted when first submitted (follow-ups)."""
        if not units:
            return
        if not planned:
            self.stats.inc("units/planned", len(units))
        unit, follow_ups = units[0], tuple(units[1:])
        if unit.id in self.skip_units:
            self.stats.inc("units/resumed")
            for follow_up in follow_ups:
                self.submit_units(key, account_id, (follow_up,), planned=True)
            return
        self.scheduler.submit(InsightsJob(self, key, account_id, unit, follow_ups))

    def last_harvested(self, media_ids: Sequence[str]) -> Mapping[str, float]:
        """When other runs last harvested these media (refresh tiers need it; none without a state store)."""
        return self._state.last_harvested(media_ids, run_id=self.run_id) if self._state is not None else {}

    def media_due(self, last_harvested: float | None, posted: float | None, product: str | None) -> bool:
        """Whether a media is harvested this run: by the refresh tiers of its age; stories always."""
        if self._state is None or product == "STORY":
            return True
        return refresh.due(posted, last_harvested, self.now, self.tiers)


class Harvester:
    def __init__(self, config: Config, *, tokens: TokenSource = None, transport: Transport | None = None,
                 sink: Sink | None = None, state: StateStore | None = None, now: float | None = None,
                 run_id: str | None = None, kind: str = "run", clock: Callable[[], float] | None = None):
        self.config = config
        self.now = time.time() if now is None else now
        self.run_id = run_id or datetime.fromtimestamp(self.now, timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self.stats = Stats()
        self._token_source = tokens
        self._tokens: dict[str, str] = {}
        self._transport = transport
        self._own_transport = transport is None
        self._client: GraphClient | None = None
        self._sink = sink
        self._state = state
        self.kind = kind
        self.resumed = False
        self._pending: dict[str, tuple[str, str, str]] = {}  # unit id -> (status, account, label) until committed
        self._media_units: dict[str, tuple[str, str, str | None]] = {}  # unit id -> (media, account, product)
        self._clock = clock
        self._skip_units: set[str] = set()
        self._commit_lock = asyncio.Lock()
        self.started = self.finished = None
        self._stopping = False
        self._producers: set[asyncio.Future] = set()
        self._scheduler: Scheduler | None = None
        self._scheduler_task: asyncio.Future | None = None

    def __repr__(self) -> str:
        return f"Harvester(config={self.config.path!r}, run_id={self.run_id!r})"

    async def __aenter__(self) -> Harvester:
        if self._transport is None:
            from .graph.aiohttp_transport import AiohttpTransport
            self._transport = AiohttpTransport(limit=self.config.scheduler.max_in_flight)
        self._client = GraphClient(self._transport, self.config.graph.base_url, self.config.graph.api_version)
        return self

    async def __aexit__(self, *exc) -> None:
        # A consumer that broke out of ``records()`` leaves its generator suspended: stop its harvest now.
        for task in self._producers:
            task.cancel()
        await asyncio.gather(*self._producers, return_exceptions=True)
        if self._own_transport and self._transport is not None:
            await self._transport.close()

    # -- tokens -----------------------------------------------------------------------------

    async def _token_for(self, key: str) -> str:
        token = self._tokens.get(key)
        if token is None:
            source = self._token_source
            if source is None:
                token = os.environ.get(key)
            elif callable(source):
                token = await source(key)
            else:
                token = source.get(key)
            if not token:
                raise ConfigError(f"{self.config.path}: no access token for token_env {key!r}")
            self._tokens[key] = token
        return token

    # -- running ----------------------------------------------------------------------------

    def sink(self) -> Sink:
        if self._sink is None:
            output = self.config.output
            self._sink = JsonlSink(Path(output.path) / self.run_id, part_records=output.part_records,
                                   commit_seconds=output.commit_seconds, commit_units=output.commit_units)
        return self._sink

    async def run(self) -> summary_mod.RunSummary:
        """Harvest everything the config asks for into the sink; return the summary.

        With a state store, an unfinished run of the same work is resumed: its committed units
        are not called again and whatever it wrote without committing is removed first.
        """
        if self._state is not None:
            self._open_state()
        sink = self.sink()
        if self._state is not None:
            removed = sink.recover(self._state.committed_parts(self.run_id))
            self.stats.inc("sink/uncommitted_removed", len(removed))

        async def emit(job: InsightsJob, records: Sequence[Record]) -> None:
            sink.write(job.unit.id, records)
            self._written(job.unit, "done", job.account_id, job.label)
            self.stats.inc("records/written", len(records))
            if sink.should_commit() and not self._commit_lock.locked():
                await self._commit(sink)

        try:
            await self._harvest(emit)
        finally:
            await self._commit(sink, final=True)
        if not self._stopping:
            await asyncio.to_thread(sink.publish)   # before the run is marked finished: a crash re-publishes
        summary = self.summary()
        if self._state is not None:
            status = "stopped" if self._stopping else summary.status
            self._state.finish_run(self.run_id, status=status, exit_code=summary.exit_code,
                                   summary=msgspec.json.encode(summary))
        return summary

    def _open_state(self) -> None:
        window = self.config.window
        info = self._state.open_run(self.run_id, kind=self.kind, fingerprint=fingerprint(self.config),
                                    config_path=self.config.path, since=str(window.since), until=str(window.until))
        self.run_id, self.resumed = info.run_id, info.resumed
        self._skip_units = self._state.finished_units(self.run_id)

    async def records(self) -> AsyncIterator[Record]:
        """Yield records as they arrive; the harvest pauses while the consumer does not read."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        done = object()

        async def emit(job: InsightsJob, records: Sequence[Record]) -> None:
            self.stats.inc("records/written", len(records))
            for record in records:
                await queue.put(record)

        async def produce() -> None:
            try:
                await self._harvest(emit)
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

    async def _harvest(self, emit) -> None:
        if self._client is None:
            raise RuntimeError("use 'async with Harvester(config) as harvester:'")
        self.started = time.time()
        settings = self.config.scheduler
        scheduler = Scheduler(
            calls_per_window=self.config.rate_limit.calls_per_window,
            window_seconds=self.config.rate_limit.window_seconds,
            margin=self.config.rate_limit.margin_seconds, per_token_in_flight=settings.per_token_in_flight,
            max_in_flight=settings.max_in_flight, max_attempts=settings.max_attempts,
            stats=self.stats, on_give_up=self._gave_up, on_token_dead=self._token_dead,
            clock=self._clock)
        self._scheduler = scheduler
        run = Run(self, scheduler, emit)
        for account in self.config.accounts:
            scheduler.submit(AccountJob(run, account.id, account.token_env))
        self._scheduler_task = asyncio.ensure_future(scheduler.run())
        try:
            await self._scheduler_task
        except asyncio.CancelledError:
            if not self._stopping or not self._scheduler_task.cancelled():
                raise                   # the caller cancelled us: let it through
        finally:
            self.finished = time.time()

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

    async def _commit(self, sink: Sink, final: bool = False) -> None:
        async with self._commit_lock:
            commit = await (sink.close() if final else sink.commit())
            if commit is None:
                return
            self.stats.inc("sink/commits")
            units = {uid: self._pending.pop(uid) for uid in commit.unit_ids}
            media = [self._media_units.pop(uid) for uid in commit.unit_ids if uid in self._media_units]
            if self._state is not None:
                self._state.commit(self.run_id, commit.part, commit.records, units, media, self.now,
                                   part_bytes=commit.length)

    def _written(self, unit: Unit, status: str, account_id: str, label: str) -> None:
        """A unit's records went to the sink: checkpoint it (and its media's refresh time) at the next commit."""
        self._pending[unit.id] = (status, account_id, label)
        ctx = unit.ctx
        if ctx.object_type == "media" and not ctx.breakdown_only:
            self._media_units[unit.id] = (ctx.object_id, account_id, ctx.media_product_type)

    # -- outcomes ---------------------------------------------------------------------------

    def _gave_up(self, job, decision: Decision) -> None:
        follow_ups = getattr(job, "follow_ups", ())
        if decision.action is Action.FAIL_TOKEN:
            self.stats.inc("units/failed_token", 1 + len(follow_ups))
            return
        unit = getattr(job, "unit", None)
        if decision.action is Action.SKIP and unit is None:       # a discovery call: nothing to checkpoint
            self.stats.skip(Outcome(job.account_id, job.label, decision.reason))
            return
        if decision.action is Action.SKIP:
            for skipped in (unit, *follow_ups):
                self._skipped(skipped, job.account_id, decision.reason)
            return
        self.stats.fail(Outcome(job.account_id, job.label, decision.reason))
        if self._state is not None:
            self._state.unit_failed(self.run_id, unit.id if unit else job.label, account_id=job.account_id,
                                    label=job.label, reason=decision.reason)
        if follow_ups:          # they may still answer: each has its own attempts
            job.run.submit_units(job.key, job.account_id, follow_ups, planned=True)

    def _skipped(self, unit: Unit, account_id: str, reason: str) -> None:
        """Nothing to harvest, legitimately: checkpointed like data, so not asked again."""
        self.stats.skip(Outcome(account_id, unit.label, reason))
        if self._sink is not None:
            self._sink.write(unit.id, ())
            self._written(unit, "skipped", account_id, unit.label)

    def _token_dead(self, key: str, decision: Decision) -> None:
        if self._state is not None:
            self._state.set_token(self.run_id, key, "dead", decision.reason)
        for account in self.config.accounts:
            if account.token_env == key:
                self.stats.fail(Outcome(account.id, f"account {account.id}",
                                        f"token {key} unusable: {decision.reason}"))
                if self._state is not None:
                    self._state.set_account(self.run_id, account.id, key, "failed", decision.reason)

    def summary(self) -> summary_mod.RunSummary:
        return summary_mod.build(self)


def fingerprint(config: Config) -> str:
    """What makes two runs the same work: resuming is allowed only between equal fingerprints."""
    work = (config.graph, config.window, config.selection, config.accounts, config.output.format, config.output.path)
    return hashlib.blake2b(msgspec.json.encode(work), digest_size=16).hexdigest()
