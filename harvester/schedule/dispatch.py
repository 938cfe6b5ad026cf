"""The dispatch loop: which slot starts a call now, when to look at a slot again, and the tasks
of the calls in flight (the scheduler's public surface is :mod:`.scheduler`).

The dispatcher takes slots round-robin from rings of slots with work they may start now
(:mod:`.rings`), starts one job of each (if its limiter allows), and puts the slot back at the end
of its ring. A slot that cannot start is in no ring: it comes back when what blocks it ends (a
timer for its limiter, pause or a retry's backoff; a job of it finishing; a job submitted to
it), so a throttled or dead token never delays the others, and the dispatcher sleeps until the
earliest such event instead of polling. It is the one place in harvester that creates tasks, all
inside an ``asyncio.TaskGroup``: long-lived workers, each running one call after another (as many
as calls were ever in flight at once, at most ``max_in_flight``), and a task per hedged copy.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from .. import summary as stat
from ..errors import HarvesterError, SinkError
from ..graph.hedge import Flight
from ..summary import Stats
from .hedge import Hedger
from .outcomes import Outcomes
from .rings import Rings
from .slot import Entry, Slot, UsageLike

MIN_SLEEP = 1e-5
"""A timer due in less than this sleeps this long: a clock that moves in whole ticks (looptime's
microseconds) would otherwise wake with the time unmoved and the timer still ahead, forever."""


Call = tuple[Slot, Entry, int]
"""A call to run: the slot, its job's entry, the calls in its window when it started."""


class Timers:
    """When to look at which slot again (its limiter, its pause, a retry's backoff): the
    earliest look per slot, in a heap."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Slot]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, slot: Slot) -> None:
        """Look at ``slot`` again at ``when``, unless it will be looked at before then."""
        if slot.look_at(when):
            heapq.heappush(self._heap, (when, next(self._seq), slot))

    def next_at(self) -> float | None:
        """When the earliest look is due (None: none is)."""
        return self._heap[0][0] if self._heap else None

    def fire(self, now: float, rings: Rings) -> None:
        """The looks due by ``now``: their slots' retries whose backoff is over go back into their
        queues, and the slots into the rings of the work they may start."""
        while self._heap and self._heap[0][0] <= now:
            when, _, slot = heapq.heappop(self._heap)
            slot.looked(when)
            rings.release(slot, now)
            if slot.delayed:
                self.add(slot.delayed[0][0], slot)
            rings.add(slot)


def loop_time() -> float:
    """The running loop's time, whichever loop runs."""
    return asyncio.get_running_loop().time()


def loop_clock() -> Callable[[], float]:
    """The running loop's ``time``, bound once (a clock read a few times a call); outside a
    running loop, :func:`loop_time`."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:
        return loop_time


class Dispatcher:
    """Starts what may start under the global cap ``max_in_flight``, runs each call in a worker
    task and hands its outcome to ``outcomes``; sleeps until the next timer or a wakeup."""

    def __init__(self, *, rings: Rings, timers: Timers, outcomes: Outcomes, stats: Stats, max_in_flight: int,
                 clock: Callable[[], float] | None, hedger: Hedger | None):
        self.rings, self.timers, self.outcomes, self.stats = rings, timers, outcomes, stats
        self.max_in_flight, self.hedger = max_in_flight, hedger
        self._clock = clock
        self.now: Callable[[], float] = clock or loop_time
        """``clock``, else the running loop's (:meth:`run` binds the loop's once: it is read
        twice a call)."""
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        """The workers and the copies' tasks."""
        self._idle: list[asyncio.Future[Call | None]] = []
        """The workers waiting for a call, each on its future (None: the dispatcher is done)."""
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._held = False
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"Dispatcher(in_flight={self._in_flight}/{self.max_in_flight}, timers={len(self.timers)})"

    @property
    def in_flight(self) -> int:
        """Calls in flight now (copies included)."""
        return self._in_flight

    def stop(self) -> None:
        """Start nothing more; run() returns once the jobs in flight have finished."""
        self._stopping = True
        self.wakeup()

    def hold(self, held: bool) -> None:
        """Start nothing more while ``held`` (calls in flight go on); then go on where it was."""
        self._held = held
        if not held:
            self.wakeup()

    def wakeup(self) -> None:
        """Look again now: work came, or a slot may start again."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Dispatch until nothing is queued, waiting or in flight (or stop() was called)."""
        self.now = self._clock or loop_clock()
        try:
            async with asyncio.TaskGroup() as group:
                await self._loop(group)
        except BaseExceptionGroup as errors:  # only from a bug here: jobs' errors are caught
            raise (errors.exceptions[0] if len(errors.exceptions) == 1 else errors) from None
        if self._failure is not None:
            raise self._failure

    # -- dispatching --------------------------------------------------------------------------

    async def _loop(self, group: asyncio.TaskGroup) -> None:
        def room() -> bool:
            return self._in_flight < self.max_in_flight

        def copy(slot: Slot, flight: Flight) -> None:
            self._copy(group, slot, flight)

        while self._failure is None:
            now = self.now()
            self.timers.fire(now, self.rings)
            due = None
            if not self._stopping and not self._held:
                self._dispatch(group, now)
                if self.hedger is not None and room():
                    due = self.hedger.copies(now, room, copy)      # nothing else may start now
            if self._in_flight == 0 and (self._stopping or self.rings.pending == 0):
                for idle in self._idle:     # every worker is idle now: let them end
                    idle.set_result(None)
                self._idle.clear()
                return
            when = self.timers.next_at() if not self._stopping else None
            when = due if when is None else when if due is None else min(when, due)
            await self._sleep(None if when is None else when - now)
        for task in self._tasks:
            task.cancel()
        self._idle.clear()

    def _dispatch(self, group: asyncio.TaskGroup, now: float) -> None:
        """Start what may start, round-robin over the slots. Work that makes more work (an
        account node, a page, a media's first insights call) starts first while fewer than
        ``rings.leaf_target`` leaf jobs are queued, else leaves do: the chains of dependent calls
        start early (critical path first: when the last leaves drain, no long chain is still
        to come), and the work queued stays about what ``max_in_flight`` drains in a few round
        trips, not a page of media for every token. A slot whose leaf work is rate-limited
        never holds back the others'."""
        rings = self.rings
        while self._in_flight < self.max_in_flight:
            if (taken := rings.next()) is None:
                return
            ring, slot = taken
            if ring and slot.opening and slot.opening[0].priority != ring:
                rings.add(slot)                 # deeper work came first in it: it is in that ring too
            elif slot.can_start(ring):          # else it comes back when its job finishes
                self._try_start(group, slot, ring, now)

    def _try_start(self, group: asyncio.TaskGroup, slot: Slot, ring: int, now: float) -> None:
        """Start ``slot``'s next job unless a pause or its limiter holds it (then a timer brings it back)."""
        if slot.paused_until > now:
            self.timers.add(slot.paused_until, slot)
            return
        slot.pace.age(now)                              # usage a window old holds nothing back
        wait = slot.limiter.try_acquire()
        if wait > 0:
            slot.limited(now)
            stale = slot.pace.stale_at() if slot.limiter.limit < slot.limiter.calls else None
            self.timers.add(now + wait if stale is None else min(now + wait, stale), slot)
            return
        waited = slot.unlimited(now)
        if waited is not None:
            self.outcomes.waited(slot, stat.WAIT_LIMIT_SECONDS, waited)
        self._start(group, slot, slot.pop(ring), slot.limiter.counted())  # counted as it started
        self.rings.add(slot)

    def _start(self, group: asyncio.TaskGroup, slot: Slot, entry: Entry, in_window: int) -> None:
        self.rings.started(entry)
        self._in_flight += 1
        slot.started(room=self._in_flight < self.max_in_flight)
        if self._idle:
            self._idle.pop().set_result((slot, entry, in_window))
        else:
            task = group.create_task(self._work((slot, entry, in_window)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sleep(self, delay: float | None) -> None:
        """Until the next timer (``delay`` seconds) or a wakeup, whichever comes first."""
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        handle = None if delay is None else loop.call_later(max(delay, MIN_SLEEP), self.wakeup)
        try:
            await self._wake
        finally:
            self._wake = None
            if handle is not None:
                handle.cancel()

    # -- outcomes -----------------------------------------------------------------------------

    async def _work(self, call: Call | None) -> None:
        """A worker: runs ``call``, then each call handed to it while idle, until handed None, and
        hands each outcome on. Workers, not a task per call, as a bare client's loop does: a task
        costs the event loop its creation and its done callbacks, per call (and the call runs in
        the worker's own frame: another coroutine awaited would be one more frame at every resume)."""
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        while call is not None:
            slot, entry, in_window = call
            started = entry.started = self.now()
            flight = self.hedger.flight(slot, started, task) if self.hedger is not None else None
            try:
                try:
                    usage = await entry.job(flight)     # the client sends the job's GET through its flight
                except SinkError:
                    raise                           # the sink's, not the API's answer: it stops the run below
                except HarvesterError as error:
                    self.outcomes.failed(slot, entry, error, started)
                else:
                    self._answered(slot, usage, started, in_window)
            except Exception as exc:  # not an API outcome: a bug or a broken sink, so stop everything
                self._failure = self._failure or exc
            finally:
                if flight is not None and self.hedger is not None:
                    self.hedger.landed(flight)
                self._finished(slot)
            del call, entry, flight                 # an idle worker keeps nothing of its last call
            idle = loop.create_future()
            self._idle.append(idle)
            call = await idle

    def _answered(self, slot: Slot, usage: UsageLike | None, started: float, in_window: int) -> None:
        """A call of ``slot`` started at ``started`` (``in_window`` calls in its window) was answered."""
        self.stats.inc(stat.CALLS_OK)
        slot.answered(started)
        now = self.now()
        asked = slot.observe(usage, now, in_window=in_window)
        if asked is not None:
            self.outcomes.capped(asked)
        slot.pace.timed(started, now, may_grow=slot.held_by_depth())

    def _finished(self, slot: Slot) -> None:
        """A call of ``slot`` (or a copy) ended: room for another."""
        slot.finished()
        self._in_flight -= 1
        self.rings.add(slot)
        self.wakeup()

    # -- hedging ------------------------------------------------------------------------------

    def _copy(self, group: asyncio.TaskGroup, slot: Slot, flight: Flight) -> None:
        """Send a copy of ``flight``'s GET (the hedger chose it): a call in flight like any."""
        self._in_flight += 1
        slot.copy_started()
        task = group.create_task(self._send_copy(slot, flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_copy(self, slot: Slot, flight: Flight) -> None:
        try:
            await flight.copy()
        finally:
            self._finished(slot)
