"""Who calls when: per-token slots, one dispatcher, a global cap on calls in flight.

The dispatcher takes slots round-robin from rings of slots with work they may start now
(:mod:`.rings`), starts one job of each (if its limiter allows), and puts the slot back at the end
of its ring. Critical path first: while fewer than ``leaf_target`` leaves are queued, work that
makes more work starts, the deepest (lowest priority) first, so that the chains of dependent
calls have ended when the last leaves drain; else leaves start. A slot that cannot start is in
no ring: it comes back when what blocks it ends (a timer for its
limiter, pause or a retry's backoff; a job of it finishing; a job submitted to it), so a
throttled or dead token never delays the others, and the dispatcher sleeps until the earliest
such event instead of polling. It is the one place in harvester that creates tasks, all inside
an ``asyncio.TaskGroup``.

Hedging (``hedge``, ``[scheduler] hedge``; :mod:`.hedge`): when nothing queued may start and
capacity sits idle (the end of a harvest), a call out long gets one copy; each job is called
with its call's flight (or None), which it hands to the client.

A job's outcome: a return value is its usage report (or None); a ``HarvesterError`` (but a
``SinkError``, the sink's) goes to the error policy (``decide``) and its ``Decision`` is handled
by :class:`~.outcomes.Outcomes` (retries, throttles weighed by their evidence, dead tokens); any
other exception cancels what is in flight and is raised by :meth:`Scheduler.run`.

Each slot's depth (its calls in flight) adapts to its answers (see :mod:`.slot`): it grows
while its work waits on the depth alone with room under the global cap and its usage is low,
and a transient error, a throttle, slow answers or a rising usage cut it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable

import msgspec

from .. import summary as stat
from ..errors import HarvesterError, SinkError
from ..graph.hedge import Flight
from ..graph.policy import Decision
from ..summary import Stats
from .hedge import Hedger
from .limiter import RollingWindowLimiter
from .outcomes import BACKOFF_BASE, BACKOFF_CAP, Outcomes
from .rings import Rings
from .slot import Entry, Job, Slot, SlotView

__all__ = ["Job", "Pacing", "Scheduler"]


LEAF_BUFFER = 16
"""Leaf jobs queued, per call the global cap lets in flight, below which work that makes more
work starts first: when that work runs out, the leaves left take about this many round trips,
time for the chains started last to end."""

MIN_SLEEP = 1e-5
"""A timer due in less than this sleeps this long: a clock that moves in whole ticks (looptime's
microseconds) would otherwise wake with the time unmoved and the timer still ahead, forever."""


class Pacing(msgspec.Struct, frozen=True):
    """The scheduler as progress shows it, read at one moment (:meth:`Scheduler.pacing`)."""

    now: float
    tokens: int
    """Slots in all."""
    slots: list[SlotView]
    """Every slot's view, or only the busy ones' (work queued or in flight) past a number of slots."""
    capped_wait: float | None
    """The longest wait the server asked for above the window (each was capped at it)."""
    window_seconds: float
    max_in_flight: int
    per_token_in_flight: int


class Scheduler:
    def __init__(self, calls_per_window: int, window_seconds: float, max_in_flight: int,
                 max_attempts: int, stats: Stats, on_give_up: Callable[[Job, Decision], None],
                 on_token_dead: Callable[[str, Decision], None], clock: Callable[[], float] | None = None,
                 per_token_in_flight: int = 8, margin: float = 0.0,
                 decide: Callable[[HarvesterError], Decision] | None = None, backoff_base: float = BACKOFF_BASE,
                 backoff_cap: float = BACKOFF_CAP, rng: random.Random | None = None, hedge: bool = False):
        if decide is None:
            from ..graph.policy import decide as policy_decide
            decide = policy_decide
        self.calls_per_window, self.window_seconds, self.margin = calls_per_window, window_seconds, margin
        self.max_in_flight, self.per_token_in_flight = max_in_flight, per_token_in_flight
        self.stats, self.on_give_up = stats, on_give_up
        self._clock = clock
        self.slots: dict[str, Slot] = {}
        self.rings = Rings(LEAF_BUFFER * max_in_flight)
        """Which slot's work to look at next, and the counts of the work queued."""
        self.outcomes = Outcomes(stats, slots=self.slots, rings=self.rings, timer=self._timer, clock=self.now,
                                 decide=decide, window_seconds=window_seconds, max_attempts=max_attempts,
                                 on_give_up=on_give_up, on_token_dead=on_token_dead, backoff_base=backoff_base,
                                 backoff_cap=backoff_cap, rng=rng)
        """What an error answer does to its job, its slot and the others."""
        self._timers: list[tuple[float, int, Slot]] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._held = False
        self._failure: BaseException | None = None
        self.hedger = Hedger(stats) if hedge else None
        """With ``hedge``: which calls out long get a copy while the queue is empty (:mod:`.hedge`)."""

    def __repr__(self) -> str:
        return (f"Scheduler(slots={len(self.slots)}, pending={self.rings.pending}, "
                f"in_flight={self._in_flight}/{self.max_in_flight})")

    @property
    def leaf_target(self) -> int:
        """Queued leaves below which work that makes more work starts first (see :meth:`_dispatch`)."""
        return self.rings.leaf_target

    @property
    def capped_wait(self) -> float | None:
        """The longest wait the server asked for above the window (each was capped at it)."""
        return self.outcomes.capped_wait

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # -- the public surface -------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` on its token's slot (a job of a dead token is given up at once)."""
        slot = self._slot(job.key)
        if slot.death is not None:
            self.on_give_up(job, slot.death)
            return
        self.rings.push(slot, Entry(job.priority, next(self._seq), job))
        self.rings.add(slot)
        self._wakeup()

    def pacing(self, every: int) -> Pacing:
        """Its figures now, with a view of every slot up to ``every`` slots, else of the busy ones
        (an idle token adds nothing to an ETA: 100,000 of them cost what their busy ones cost)."""
        now, slots = self.now(), self.slots.values()
        views = [slot.view(now) for slot in slots if len(slots) <= every or slot.in_flight or slot.pending()]
        return Pacing(now, len(slots), views, self.capped_wait, self.window_seconds, self.max_in_flight,
                      self.per_token_in_flight)

    def stop(self) -> None:
        """Start nothing more; run() returns once the jobs in flight have finished."""
        self._stopping = True
        self._wakeup()

    def hold(self, held: bool) -> None:
        """Start nothing more while ``held`` (calls in flight go on); then go on where it was.
        The backpressure of a reader that does not keep up (``Harvester.records()``)."""
        self._held = held
        if not held:
            self._wakeup()

    async def run(self) -> None:
        """Dispatch until nothing is queued, waiting or in flight (or stop() was called)."""
        try:
            async with asyncio.TaskGroup() as group:
                await self._dispatch_loop(group)
        except BaseExceptionGroup as errors:  # only from a bug here: jobs' errors are caught
            raise (errors.exceptions[0] if len(errors.exceptions) == 1 else errors) from None
        if self._failure is not None:
            raise self._failure

    def spent(self) -> dict[str, tuple[list[float], float]]:
        """Each token's starts still in its window and its pause (this scheduler's clock), for
        the tokens that have either: what a next process on the same budget must count."""
        now = self.now()
        return {key: (starts, slot.paused_until) for key, slot in self.slots.items()
                if (starts := slot.limiter.starts()) or slot.paused_until > now}

    def restore(self, key: str, starts: list[float], paused_until: float) -> None:
        """Count what an earlier process spent with a token (see :meth:`spent`), before its first call."""
        slot = self._slot(key)
        slot.limiter.restore(starts)
        slot.pause(paused_until)

    # -- dispatching --------------------------------------------------------------------------

    async def _dispatch_loop(self, group: asyncio.TaskGroup) -> None:
        def room() -> bool:
            return self._in_flight < self.max_in_flight

        def copy(slot: Slot, flight: Flight) -> None:
            self._copy(group, slot, flight)

        while self._failure is None:
            now = self.now()
            self._fire_timers(now)
            due = None
            if not self._stopping and not self._held:
                self._dispatch(group, now)
                if self.hedger is not None and room():
                    due = self.hedger.copies(now, room, copy)      # nothing else may start now
            if self._in_flight == 0 and (self._stopping or self.rings.pending == 0):
                return
            when = self._timers[0][0] if self._timers and not self._stopping else None
            when = due if when is None else when if due is None else min(when, due)
            await self._sleep(None if when is None else when - now)
        for task in self._tasks:
            task.cancel()

    def _dispatch(self, group: asyncio.TaskGroup, now: float) -> None:
        """Start what may start, round-robin over the slots. Work that makes more work (an
        account node, a page, a media's first insights call) starts first while fewer than
        :attr:`leaf_target` leaf jobs are queued, else leaves do: the chains of dependent calls
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
            self._timer(slot.paused_until, slot)
            return
        slot.pace.age(now)                                   # usage a window old holds nothing back
        wait = slot.limiter.try_acquire()
        if wait > 0:
            slot.limited(now)
            stale = slot.pace.stale_at() if slot.limiter.limit < slot.limiter.calls else None
            self._timer(now + wait if stale is None else min(now + wait, stale), slot)
            return
        waited = slot.unlimited(now)
        if waited is not None:
            self._waited(slot, stat.WAIT_LIMIT_SECONDS, waited)
        self._start(group, slot, slot.pop(ring), slot.limiter.in_window())
        self.rings.add(slot)

    def _start(self, group: asyncio.TaskGroup, slot: Slot, entry: Entry, in_window: int) -> None:
        self.rings.started(entry)
        self._in_flight += 1
        slot.started(room=self._in_flight < self.max_in_flight)
        task = group.create_task(self._call(slot, entry, in_window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _timer(self, when: float, slot: Slot) -> None:
        """Look at ``slot`` again at ``when``, unless it will be looked at before then."""
        if slot.look_at(when):
            heapq.heappush(self._timers, (when, next(self._seq), slot))

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            when, _, slot = heapq.heappop(self._timers)
            slot.looked(when)
            self.rings.release(slot, now)
            if slot.delayed:
                self._timer(slot.delayed[0][0], slot)
            self.rings.add(slot)

    async def _sleep(self, delay: float | None) -> None:
        """Until the next timer (``delay`` seconds) or a wakeup, whichever comes first."""
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        handle = None if delay is None else loop.call_later(max(delay, MIN_SLEEP), self._wakeup)
        try:
            await self._wake
        finally:
            self._wake = None
            if handle is not None:
                handle.cancel()

    def _wakeup(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    # -- outcomes -----------------------------------------------------------------------------

    async def _call(self, slot: Slot, entry: Entry, in_window: int) -> None:
        started = entry.started = self.now()
        flight = self.hedger.flight(slot, started) if self.hedger is not None else None
        try:
            try:
                usage = await entry.job(flight)     # the client sends the job's GET through its flight
            except SinkError:
                raise                           # the sink's, not the API's answer: it stops the run below
            except HarvesterError as error:
                self.outcomes.failed(slot, entry, error, started)
            else:
                self.stats.inc(stat.CALLS_OK)
                slot.answered(started)
                now = self.now()
                asked = slot.observe(usage, now, in_window=in_window)
                if asked is not None:
                    self.outcomes.capped(asked)
                slot.pace.timed(started, now, may_grow=slot.held_by_depth())
        except Exception as exc:  # not an API outcome: a bug or a broken sink, so stop everything
            self._failure = self._failure or exc
        finally:
            if flight is not None and self.hedger is not None:
                self.hedger.landed(flight)
            self._finished(slot)

    def _finished(self, slot: Slot) -> None:
        """A call of ``slot`` (or a copy) ended: room for another."""
        slot.finished()
        self._in_flight -= 1
        self.rings.add(slot)
        self._wakeup()

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

    # -- bookkeeping --------------------------------------------------------------------------

    def _slot(self, key: str) -> Slot:
        slot = self.slots.get(key)
        if slot is None:
            limiter = RollingWindowLimiter(self.calls_per_window, self.window_seconds,
                                           margin=self.margin, clock=self._clock)
            slot = self.slots[key] = Slot(key, limiter, max_in_flight=self.per_token_in_flight)
            slot.pause(self.outcomes.app_paused_until)
        return slot

    def _waited(self, slot: Slot, counter: str, seconds: float) -> None:
        self.outcomes.waited(slot, counter, seconds)
