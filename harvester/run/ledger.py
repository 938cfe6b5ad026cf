"""The bookkeeping of a harvest between its jobs, the sink and the state store.

- A unit becomes ``done`` or ``skipped`` in the state in the transaction that records the part
  its records went to, after the sink made that part durable: the state never runs ahead of the
  data.
- A media counts as harvested (what the refresh tiers read) only when every unit of it that
  this run planned is done or skipped, in the transaction of the last of them. One failed unit
  and the media is due again next run, whatever its tier says.
- A job given up for a transient reason (retries used up on connection errors, 5xx, throttling
  or unreadable answers) is **owed**: the state keeps what it takes to ask again (an insights
  unit whole, an account's window), and the next run on this state file asks it again, whether
  it resumes this run or starts another, for as long as the API keeps that data. A lost page
  needs nothing kept: every run reads the edges afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from .. import summary as stat
from ..errors import SinkError
from ..graph.policy import Decision
from ..plan import units as plan
from ..plan.refusals import Learned
from ..plan.units import Unit
from ..plan.unshared import is_not_shared
from ..records import AccountRecord, InsightRecord, MediaRecord, Record
from ..sinks.base import SinkFailure
from ..state.store import MediaRow, Owed, StateStore
from ..summary import Outcome, Stats
from .jobs import AccountJob, InsightsJob, Job, Listed

if TYPE_CHECKING:
    from ..sinks.base import Sink


class _OpenMedia(msgspec.Struct):
    row: MediaRow
    outstanding: int
    failed: bool = False


class Ledger:
    """Implements :class:`harvester.run.jobs.Ledger` for one run; without a sink (``records()``)
    nothing is checkpointed and only the counters move."""

    def __init__(self, stats: Stats, *, run_id: str, now: float, sink: Sink | None = None,
                 state: StateStore | None = None, finished: set[str] | frozenset[str] = frozenset(),
                 emit: Callable[[Sequence[Record]], Awaitable[None]] | None = None, settle_seconds: float = 3 * 86400):
        self.stats, self.run_id, self.now, self.sink, self.state = stats, run_id, now, sink, state
        self.settle_seconds = settle_seconds
        """An account call whose window ended this long before ``now`` is settled once answered."""
        self._settled: set[str] = set()
        self.finished = finished
        """What earlier attempts of this run committed (units and object records)."""
        self._pending: dict[str, tuple[str, str, str]] = {}   # unit id -> (status, account, label)
        self._media: dict[str, _OpenMedia] = {}                 # unit id -> its media, while open
        self._complete: dict[str, MediaRow] = {}                # unit id -> the media it completed
        self._unshared: dict[str, tuple[str, str, float]] = {}  # unit id -> "not shared": media, account, when
        self._lock = asyncio.Lock()
        self.emit = emit
        """Records' destination when there is no sink (``records()``)."""

    # -- what jobs report ---------------------------------------------------------------------

    def media_planned(self, row: MediaRow, unit_ids: Sequence[str]) -> None:
        """A media's units went to the scheduler: it is harvested once all of them are written."""
        if not unit_ids:
            return
        media = _OpenMedia(row, len(unit_ids))
        for unit_id in unit_ids:
            self._media[unit_id] = media

    async def written(self, job: InsightsJob, records: Sequence[InsightRecord]) -> None:
        self.stats.inc(stat.RECORDS_WRITTEN, len(records))
        if self.sink is None:
            if self.emit is not None:
                await self.emit(records)
            return
        self.sink.write(job.unit.id, records)
        self._checkpoint(job.unit, "done", job.account_id)
        self.refused(job.account_id, job.replaces)
        until = job.unit.ctx.until
        if until is not None and until + self.settle_seconds <= self.now:
            self._settled.update(u.id for u in (job.unit, *job.replaces))
        if self.sink.should_commit():
            await self.commit(due=True)     # behind a commit in progress: the sink's backpressure

    async def objects(self, account_id: str, records: Sequence[tuple[str, Record]]) -> None:
        """Object records, each once per run: one an earlier attempt of the run committed is not
        written again (its id is among the finished units)."""
        fresh = [(oid, r) for oid, r in records if oid not in self.finished]
        for _, r in fresh:
            self.stats.inc(_OBJECT_COUNTERS[type(r)])
        if self.sink is None:
            if self.emit is not None and fresh:
                await self.emit([r for _, r in fresh])
            return
        for oid, r in fresh:
            self.sink.write(oid, (r,))
            self._pending[oid] = ("object", account_id, oid)
        if fresh and self.sink.should_commit():
            del fresh, records          # in the sink now: a job waiting on the commit holds none of them
            await self.commit(due=True)

    def skipped(self, account_id: str, label: str, decision: Decision, unit: Unit | None = None) -> None:
        self.stats.skip(Outcome.of(account_id, label, decision))
        if unit is not None and self.state is not None and is_not_shared(decision):
            if self.sink is None:
                self.state.not_shared(unit.ctx.object_id, account_id, self.now, self.run_id)
            else:                           # kept with the unit's checkpoint, in its transaction
                self._unshared[unit.id] = (unit.ctx.object_id, account_id, self.now)
        if unit is not None and self.sink is not None:
            self.sink.write(unit.id, ())
            self._checkpoint(unit, "skipped", account_id)

    def refused(self, account_id: str, units: Sequence[Unit]) -> None:
        """Units asked in the place of others less refused metrics, or with every metric refused:
        checkpointed like skipped ones, without records (a resumed run does not ask them)."""
        if self.sink is None:
            return
        for unit in units:
            self.sink.write(unit.id, ())
            self._checkpoint(unit, "replaced", account_id)

    def learned(self, row: Learned) -> None:
        if self.state is not None:
            self.state.learn_refusal(row.kind, row.metric, row.refusals, row.message, row.learned_at)

    def failed(self, job: Job | Listed, decision: Decision) -> None:
        outcome = Outcome.of(job.account_id, job.label, decision)
        self.stats.fail(outcome)
        unit = job.unit if isinstance(job, InsightsJob) else None
        for planned in (*job.replaces, unit) if isinstance(job, InsightsJob) else ():
            if planned is not None and (media := self._media.pop(planned.id, None)) is not None:
                media.failed = True
        if self.state is None:
            return
        self.state.unit_failed(self.run_id, unit.id if unit else job.label, account_id=job.account_id,
                               label=job.label, reason=decision.reason, code=decision.code,
                               subcode=decision.subcode, type=outcome.type, message=outcome.message)
        if decision.transient:
            self._owe(job, decision)

    def settled(self, owed_id: str, account_id: str) -> None:
        if self.sink is not None:
            self.sink.write(owed_id, ())
            self._pending[owed_id] = ("done", account_id, owed_id)

    # -- commits --------------------------------------------------------------------------------

    async def commit(self, final: bool = False, *, due: bool = False) -> None:
        """Make what the sink holds durable, then checkpoint its units (and completed media).
        ``due``: only if the sink still says a commit is due once the one in progress is done."""
        if self.sink is None:
            return
        async with self._lock:
            if due and not self.sink.should_commit():
                return
            commit = await (self.sink.close() if final else self.sink.commit())
            if commit is None:
                return
            self.stats.inc(stat.SINK_COMMITS)
            units = {uid: self._pending.pop(uid) for uid in commit.unit_ids}
            media = [self._complete.pop(uid) for uid in commit.unit_ids if uid in self._complete]
            settled = [uid for uid in commit.unit_ids if uid in self._settled]
            self._settled.difference_update(settled)
            unshared = [self._unshared.pop(uid) for uid in commit.unit_ids if uid in self._unshared]
            if self.state is not None:
                self.state.commit(self.run_id, commit.parts, units, media, self.now, settled=settled,
                                  not_shared=unshared)

    @contextlib.asynccontextmanager
    async def final(self) -> AsyncIterator[None]:
        """Around a harvest into the sink: the final commit once it ends, however it ends; a
        sink's failure (not an API outcome: the run stops, the next resumes) as a ``SinkError``."""
        try:
            try:
                yield
            finally:
                await self.commit(final=True)
        except SinkFailure as exc:
            raise SinkError(str(exc)) from None

    def _checkpoint(self, unit: Unit, status: str, account_id: str) -> None:
        self._pending[unit.id] = (status, account_id, unit.label)
        media = self._media.pop(unit.id, None)
        if media is not None and not media.failed:
            media.outstanding -= 1
            if media.outstanding == 0:
                self._complete[unit.id] = media.row

    def _owe(self, job: Job | Listed, decision: Decision) -> None:
        assert self.state is not None
        if isinstance(job, InsightsJob):
            unit = job.unit
            expires = job.expires_at if job.expires_at is not None else plan.account_expires_at(unit, self.now)
            self.state.owe(Owed(unit.id, self.run_id, job.account_id, "unit", msgspec.json.encode(unit),
                                decision.reason, self.now, expires))
        elif isinstance(job, AccountJob):
            for window in job.windows:
                owed_id = owed_window_id(job.account_id, window)
                self.state.owe(Owed(owed_id, self.run_id, job.account_id, "window", msgspec.json.encode(window),
                                    decision.reason, self.now, plan.window_expires_at(window)))


_OBJECT_COUNTERS = {MediaRecord: stat.RECORDS_MEDIA, AccountRecord: stat.RECORDS_ACCOUNTS}


def owed_window_id(account_id: str, window) -> str:
    return f"account/{account_id}/{window.since}/{window.until}/{window.totals}"

