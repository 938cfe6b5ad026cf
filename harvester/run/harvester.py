"""The Harvester: config in, flat records out, through discovery, planning and the scheduler.

    async with Harvester(config) as harvester:
        async for record in harvester.records():
            ...

or ``summary = await harvester.run()`` to write every record to the configured sink, with the
run's ``summary.json`` and ``outcomes.jsonl`` beside its output. Everything runs inside the
caller's event loop: no ``asyncio.run``, no threads of its own (but fsync), no signal handlers,
no global state.

The Harvester does the lifecycle and the wiring only: the tokens (:mod:`.keys`) and the accounts
(:mod:`.accounts`) say who is harvested with what, the jobs (:mod:`.jobs`) do the calls, the
ledger (:mod:`.ledger`) the checkpoints, the session (:mod:`.session`) the state file and the
output, the scheduler the pacing, the clients (:mod:`.clients`) the transport, the stopping
(:mod:`.stopping`) a stop and its grace, the streams (:mod:`.stream`) the harvests behind
``records()``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, cast

from .. import summary as stat
from ..config import Config
from ..config.shards import Shard
from ..days import iso
from ..graph.policy import Decision
from ..graph.transport import Transport
from ..plan import unshared
from ..plan.refresh import RefreshCheck
from ..records import Record
from ..schedule.scheduler import Pacing, Scheduler
from ..schedule.slot import Job as ScheduledJob
from ..sinks.base import Sink
from ..sinks.manifest import RunInfo
from ..state.store import StateStore
from ..summary import Attempt, Attempted, RunSummary, Stats
from .accounts import Accounts
from .buffer import RECORDS_BUFFER, Buffer
from .clients import Clients
from .expansion import expansion_of
from .jobs import Job, JobContext
from .keys import TokenKeys, TokenSource, token_key
from .ledger import Ledger
from .session import Session
from .stopping import Stopping
from .stream import Streams
from .view import RunView

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from ..telemetry.metrics import RunMetrics

__all__ = ["Harvester", "TokenSource", "token_key"]


class Harvester:
    """One run of a config (see the module's docstring). ``tokens``: where token variables are
    read (the environment by default); ``transport``, ``sink``, ``state``: given instead of the
    config's; ``shard``: the part of the tokens this process harvests; ``kind``: what the state
    calls the run (``run``, ``backfill``). It harvests as of now; :meth:`pinned` gives it another
    time (a simulated world's), a clock or a run id."""

    def __init__(self, config: Config, *, tokens: TokenSource = None, transport: Transport | None = None,
                 sink: Sink | None = None, state: StateStore | None = None, shard: Shard | None = None,
                 kind: str = "run", refresh: bool = False):
        self.config, self.shard, self.kind = config, shard, kind
        self.refresh_all = refresh
        """``harvester run --refresh``: ask settled account days again too."""
        self.now = self._created = time.time()
        """The time the run harvests as of (the windows and tiers are counted from it)."""
        self.run_id = _new_run_id(self.now)
        self.stats = Stats()
        self.keys = TokenKeys(config, tokens, shard)
        self._clients = Clients(config, transport)
        self._session = Session(config, state=state, sink=sink, kind=kind, shard=shard)
        self._clock: Callable[[], float] | None = None
        self.earlier_attempts: list[Attempt] = []   # of a resumed run, from the state
        self.resumed = False
        self._skip_units: set[str] = set()
        """What earlier attempts of this run committed: not called again."""
        self.started: float | None = None
        self.finished: float | None = None
        self._stop = Stopping()
        self._streams = Streams()
        """The harvests behind :meth:`records`."""
        self._scheduler: Scheduler | None = None
        self._accounts: Accounts | None = None
        self._ctx: JobContext | None = None
        self._metrics: RunMetrics | None = None
        self.token_warnings: list[str] = []
        """Said once at the start (log and summary): tokens that expire soon (asked only with [app])."""

    @classmethod
    def pinned(cls, config: Config, *, now: float | None = None, run_id: str | None = None,
               clock: Callable[[], float] | None = None, **options) -> Harvester:
        """A harvester whose time or name is given, not drawn: a simulated world's ``now`` (the
        demo, the benchmarks, tests), a ``clock`` its scheduler paces by instead of the loop's, a
        fixed ``run_id``; ``options`` are the constructor's."""
        self = cls(config, **options)
        if now is not None:
            self.now = now
        self._clock = clock
        self.run_id = run_id or _new_run_id(self.now)
        return self

    def __repr__(self) -> str:
        return f"Harvester(config={self.config.path!r}, run_id={self.run_id!r})"

    async def __aenter__(self) -> Harvester:
        self._clients.open(limit=self._in_flight_cap())
        return self

    def _in_flight_cap(self) -> int:
        """Calls in flight over every token (and connections): ``[scheduler]``'s, by the token variables."""
        return self.config.scheduler.in_flight_cap(len(self.config.token_keys()))

    async def __aexit__(self, *exc) -> None:
        await self._streams.close()       # a consumer that broke out of ``records()``: stop its harvest now
        await self._clients.close()
        self._session.close()

    # -- what it hands out ------------------------------------------------------------------

    @property
    def transport(self) -> Transport | None:
        """What its calls go through: the one it was given, or its own once entered."""
        return self._clients.transport

    @property
    def token_names(self) -> dict[str, str]:
        """Slot key -> the token variables that name it (for people: the key is a digest)."""
        return self.keys.names

    @property
    def discovered(self) -> dict[str, list[str]]:
        """Token name -> the accounts discovered with it and harvested with it in this run."""
        return self._accounts.discovered if self._accounts is not None else {}

    def in_shard(self, token_name: str) -> bool:
        """Whether the accounts of this token name are this run's (always without a shard)."""
        return self.keys.in_shard(token_name)

    def pacing(self, every: int) -> Pacing | None:
        """The scheduler's figures now, for progress (None before the harvest starts)."""
        return self._scheduler.pacing(every) if self._scheduler is not None else None

    def attempted(self) -> Attempted:
        """What the summary reads of this run besides its counters."""
        return Attempted(self.run_id, self.started, self.finished, self._stop.requested, self._stop.exit_code,
                         tuple(self.earlier_attempts), tuple(self.token_warnings), self.config.graph.api_version,
                         self.metrics_asked)

    @property
    def metrics_asked(self) -> dict[str, list[str]]:
        """Kind of object -> the metrics this attempt asked of it (summary.json's ``metrics_asked``)."""
        return self._ctx.metrics_asked() if self._ctx is not None else {}

    def metrics(self, registry: CollectorRegistry | None = None) -> RunMetrics:
        """This run's Prometheus metrics (``harvester[prometheus]``), registered in ``registry`` (a
        new one by default): a service passes its own to show them on its ``/metrics``."""
        if self._metrics is None:
            from ..telemetry.metrics import RunMetrics
            self._metrics = RunMetrics(RunView(self.stats, self.keys, lambda: self._scheduler), registry=registry)
        return self._metrics

    def summary(self) -> RunSummary:
        return stat.build(self.stats, self.attempted())

    def sink(self) -> Sink:
        """The sink run() writes to: the one given, or the config's ``[output]``."""
        return self._session.sink(self.run_id)

    def webhook_app(self, *, env: Mapping[str, str] | None = None) -> web.Application:
        """The ``story_insights`` webhook receiver of this config (``[webhook]``, ``[app] secret_env``)
        as an aiohttp application to mount in a service's own (docs/webhook.md); it opens the
        config's output and state on startup and publishes what it received on cleanup."""
        from ..webhook.app import app_for
        return app_for(self.config, env=env)

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Harvest everything the config asks for into the sink; write the run's ``summary.json``
        (and ``outcomes.jsonl``: every skipped and failed unit) in its output directory; return
        the summary.

        With a state store, an unfinished run of the same work is resumed: its committed units
        are not called again and whatever it wrote without committing is removed first; what
        earlier runs owe is asked again.
        """
        session = self._session
        run = session.open(self.run_id, self.stats)
        self.run_id, self.resumed, self._skip_units = run.run_id, run.resumed, run.finished_units
        self.earlier_attempts = list(run.earlier)
        sink = await session.open_sink(run, self.stats)
        ledger = Ledger(self.stats, run_id=self.run_id, now=self.now, sink=sink, state=session.state,
                        finished=self._skip_units, settle_seconds=self.config.window.settle_days * 86400)
        async with ledger.final():
            await self._harvest(ledger)
        if not self._stop.requested:
            await session.publish(sink, RunInfo(self.config.graph.api_version, self.metrics_asked))
        return session.finish(self.summary(), self.stats, stopped=self._stop.requested)

    def records(self, *, buffer: int = RECORDS_BUFFER) -> AsyncGenerator[Record, None]:
        """Yield records as they arrive; the harvest pauses while the consumer does not read.

        ``buffer``: records held for the consumer at most (docs/library.md): while it is full,
        no new call starts. Nothing is written to ``[output]`` and nothing is checkpointed in
        ``[state]``: only the consumer knows when a record is safe. Leaving the loop (once Python
        closes the iterator the loop dropped; one kept in a variable, when it is closed),
        leaving the ``async with``, cancelling and timeouts stop the harvest and its calls,
        whatever the buffer holds.
        """
        return self._streams.open(Buffer(buffer, hold=self._hold), lambda emit: self._harvest(
            Ledger(self.stats, run_id=self.run_id, now=self.now, emit=emit)))

    @property
    def buffered(self) -> int:
        """Records harvested that the consumer of :meth:`records` has not read yet."""
        return self._streams.buffered

    def _hold(self, held: bool) -> None:
        """The buffer is full (``held``) or half read again: no call starts meanwhile."""
        if self._scheduler is not None:
            self._scheduler.hold(held)

    async def _harvest(self, ledger: Ledger) -> None:
        if not self._clients.opened:
            raise RuntimeError("use 'async with Harvester(config) as harvester:'")
        self.started = time.time()
        config, state = self.config, self._session.state
        accounts = self._accounts = Accounts(config, self.keys, self.stats, run_id=self.run_id, now=self.now,
                                             state=state)
        scheduler = self._scheduler = self._new_scheduler(accounts)
        self._stop.attach(scheduler)
        await self.keys.read()
        wall = self.now + (time.time() - self._created) - scheduler.now()   # the scheduler's clock -> wall clock
        self._session.restore_spent(scheduler, self.keys.tokens, wall)
        self.token_warnings += await self.keys.check(self._clients.facebook, self.stats, self.now)
        owed = accounts.owed(accounts.listed())
        refusals = self._session.refusals(self.now)
        if state is not None:
            state.forget_not_shared(before=self.now - unshared.REPROBE_SECONDS)
        ctx = JobContext(
            client=self._clients.facebook, tokens=self.keys.tokens, submit=scheduler.submit, ledger=ledger,
            stats=self.stats, selection=config.selection, now=self.now, run_id=self.run_id,
            harvested_at=iso(self.now), skip_units=self._skip_units,
            owed_units={o.owed_id for o in owed if o.kind == "unit"},
            observed_on=iso(self.now)[:10] if config.output.lifetime_history else None,
            delivered=self._session.delivered if state is not None else None,
            refresh=RefreshCheck(partial(self._session.last_harvested, run_id=self.run_id), self.now,
                                 config.refresh.tiers)
            if state is not None and config.refresh.enabled else None,
            refusals=refusals, api_version=config.graph.api_version,
            settled_units=state.settled_units if state is not None and not self.refresh_all else None,
            not_shared=partial(state.not_shared_since, since=self.now - unshared.REPROBE_SECONDS, run_id=self.run_id)
            if state is not None and not self.refresh_all else None,
            **expansion_of(config, scheduler.now, refusals),
            clients=self._clients.by_key(self.keys.logins))
        self._ctx = ctx
        accounts.start(ctx, owed)
        try:
            await self._stop.run(scheduler)
        finally:
            self.finished = time.time()
            self._session.save_spent(scheduler, wall)
        if not self._stop.requested:
            accounts.collabs_not_harvested(ctx, ledger)

    def _new_scheduler(self, accounts: Accounts) -> Scheduler:
        limits, settings = self.config.rate_limit, self.config.scheduler
        return Scheduler(
            calls_per_window=limits.calls_per_window, window_seconds=limits.window_seconds,
            margin=limits.margin_seconds, per_token_in_flight=settings.token_cap(),
            max_in_flight=self._in_flight_cap(), max_attempts=settings.max_attempts,
            stats=self.stats, on_give_up=_give_up, on_token_dead=accounts.token_dead,
            clock=self._clock, hedge=settings.hedge, held=self._held)

    def _held(self) -> int:
        """Calls the run planned that wait outside the scheduler for a probe of their kind."""
        return self._ctx.probes.waiting() if self._ctx is not None else 0

    # -- stopping ---------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: the run ends unfinished, and the next one resumes it."""
        return self._stop.requested

    def stop(self, exit_code: int | None = None) -> None:
        """Stop dispatching; calls in flight finish, then run() returns (for SIGINT/SIGTERM).
        ``exit_code``: what the stopped run's summary and state say (the CLI: its signal's)."""
        self._stop.stop(exit_code)

    def cancel_in_flight(self) -> None:
        """After :meth:`stop`, give up on calls still in flight (their units are fetched next run)."""
        self._stop.cancel_in_flight()


def _new_run_id(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def _give_up(job: ScheduledJob, decision: Decision) -> None:
    """The scheduler gave ``job`` up: the job's kind knows what that means (the scheduler runs
    only jobs of :mod:`harvester.run.jobs`)."""
    cast(Job, job).gave_up(decision)
