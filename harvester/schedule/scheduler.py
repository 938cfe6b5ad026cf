"""Who calls when: per-token slots, one dispatcher, a global cap on calls in flight.

The dispatcher takes slots round-robin from rings of slots with work they may start now, starts
one job of each (if its limiter allows), and puts the slot back at the end of its ring. One ring
holds the slots with leaf jobs (priority 0: they make no more work), and one per priority above
0 the slots whose first such job (a media's first insights call, a page, an account node) has
that priority. Critical path first: while fewer than :attr:`Scheduler.leaf_target` leaves are
queued, work that makes more work starts, the deepest (lowest priority) first, so that the
chains of dependent calls have ended when the last leaves drain; else leaves start. A slot
that cannot start is in no ring: it comes back when what blocks it ends (a timer for its
limiter, pause or a retry's backoff; a job of it finishing; a job submitted to it), so a
throttled or dead token never delays the others, and the dispatcher sleeps until the earliest
such event instead of polling. It is the one place in harvester that creates tasks, all inside
an ``asyncio.TaskGroup``.

Hedging (``hedge``, ``[scheduler] hedge``; :mod:`harvester.graph.hedge`): when nothing queued
may start and capacity sits idle (the end of a harvest), a call out longer than ``HEDGE_AFTER``
times its token's long-run latency gets one copy, if its token has no work waiting, answered
before (``HEDGE_ANSWERS``), is not held back, and its window and usage are below ``LOW_MARK``;
the copy passes its limiter like any call, so the window is never exceeded. The first answer is
the call's; the other request is cancelled (``calls/hedged``, ``calls/hedged_first``).

A job's outcome: a return value is its usage report (or None); a ``HarvesterError`` goes to the
error policy (``decide``) and its ``Decision`` is handled by the table :data:`HANDLERS`; any
other exception cancels what is in flight and is raised by :meth:`Scheduler.run`. A ``RETRY``
is bounded by ``max_attempts``, or by the decision's own ``attempts`` when it gives fewer.

Each slot's depth (its calls in flight) adapts to its answers (see :mod:`.slot`): it grows
while its work waits on the depth alone with room under the global cap and its usage is low,
and a transient error, a throttle, slow answers or a rising usage cut it.

Throttles are weighed by their evidence (:class:`ThrottleEvidence`, read by :func:`waited_out`
through the table :data:`WAIT_OUT`): the server's estimate, the latest usage its answers reported
within the window (the token's own, or for code 4 the highest of any token), how many came in a
row and what share of the token's recent answers they make. With an estimate, with the budget
reported spent (at or above ``HIGH_MARK``), with nothing reported, from the third in a row, or
once throttles make ``THROTTLE_SHARE`` of its recent answers, a throttle is waited out: the
token (code 4: every token) pauses for the estimate or 60 s doubling, its depth is halved, and
then one call probes it. Otherwise it is a lone one, a throttle the budget does not explain: it
costs that call a short retry (full jitter under ``LONE_RETRY``, doubling if the next is lone
too), and nothing else: the token keeps its pace, its depth and its other calls. A real
throttle is never answered by a burst: the token's next throttle before an answer makes a row,
and its calls throttled meanwhile wait the pause behind one probe. A throttle of a call sent
before (or with) the last waited-out one adds nothing: that episode is handled. Every wait the
server asks for (in a throttle or a usage header) is capped at the window (``waits/capped``,
:attr:`Scheduler.capped_wait`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable

import msgspec

from .. import summary as stat
from ..errors import GraphError, HarvesterError, TransportError
from ..graph.hedge import FLIGHT, Flight
from ..graph.policy import Action, Decision
from ..summary import Stats, plural
from .limiter import RollingWindowLimiter
from .slot import HIGH_MARK, LOW_MARK, Entry, Job, Slot

__all__ = ["HANDLERS", "Job", "Scheduler", "ThrottleEvidence", "backoff", "waited_out"]


THROTTLE_FIRST_PAUSE = 60.0
"""The pause after a throttle that is waited out when the server gave no wait; it doubles, up to
the window."""

LONE_RETRY = 1.0
"""The ceiling of a lone throttle's retry (seconds, full jitter: that call only, even for code 4);
it doubles for a second lone one in a row."""

LONE_THROTTLES = 2
"""Throttles in a row that may still be lone ones: one more is waited out."""

THROTTLE_SHARE = 0.2
"""Throttles are no blips once they make this share of a token's recent answers (a moving
average of weight ``slot.FAST_WEIGHT / 2``, about the last 16): a server that throttles every
other call reaches it at its fourth throttle, never in a row; 1 % of blips stays far below."""

LEAF_BUFFER = 16
"""Leaf jobs queued, per call the global cap lets in flight, below which work that makes more
work starts first: when that work runs out, the leaves left take about this many round trips,
time for the chains started last to end."""

HEDGE_AFTER = 2.0
"""A call is hedged once it has been out this many times its token's long-run latency (about the
slowest eighth of exponential latencies: a copy of each costs few calls, see ``bench/scale.py``)."""

HEDGE_FLOOR = 0.1
"""Nor before it has been out this many seconds: the tail hedging cuts is seconds long, and a
token whose answers take milliseconds (a local server) has none worth a second request."""

HEDGE_ANSWERS = 4
"""Answers a token must have given before its typical latency is trusted for hedging."""

BACKOFF_BASE = 1.0
"""The ceiling of the first retry's wait (seconds); it doubles with each attempt (full jitter)."""

BACKOFF_CAP = 300.0
"""The highest ceiling of a retry's wait."""

MIN_SLEEP = 1e-5
"""A timer due in less than this sleeps this long: a clock that moves in whole ticks (looptime's
microseconds) would otherwise wake with the time unmoved and the timer still ahead, forever."""


class ThrottleEvidence(msgspec.Struct, frozen=True):
    """What is known when a throttle answer comes."""

    estimate: float | None
    """The server's wait (``estimated_time_to_regain_access``), if it gave one."""
    percent: int | None
    """The latest usage reported within the window: the token's own (its throttle answer's
    included), or for an app throttle the highest any token reported (each answer's figure is at
    least the app's ``X-App-Usage``). None: nothing reported."""
    in_row: int
    """Throttles in a row of this token, this one included."""
    share: float = 0.0
    """The share of throttles among the token's recent answers, this one included."""


WAIT_OUT: tuple[tuple[Callable[[ThrottleEvidence], bool], str], ...] = (
    (lambda e: e.estimate is not None, "the server gave a wait"),
    (lambda e: e.percent is None, "no usage reported"),
    (lambda e: e.percent is not None and e.percent >= HIGH_MARK, "usage at the high mark"),
    (lambda e: e.in_row > LONE_THROTTLES, "several in a row"),
    (lambda e: e.share >= THROTTLE_SHARE, "many among its recent answers"),
)
"""When a throttle is waited out (as the scope says, probing with one call); else it is lone."""


def waited_out(evidence: ThrottleEvidence) -> str | None:
    """Why a throttle is waited out, or None: a lone one, a short retry of that call."""
    return next((why for holds, why in WAIT_OUT if holds(evidence)), None)


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
        self.max_attempts = max_attempts
        self.stats = stats
        self.on_give_up, self.on_token_dead, self.decide = on_give_up, on_token_dead, decide
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.rng = rng or random.Random()
        self._clock = clock
        self.slots: dict[str, Slot] = {}
        self._rings: dict[int, deque[Slot]] = {0: deque()}
        """Slots with work they may start, by priority: [0] leaf jobs, [p] a job of priority p
        (above 0: it makes more work) first in the slot's work that does. A slot may be in two."""
        self._in_rings: dict[int, set[str]] = {0: set()}
        self._opening: list[int] = []   # the priorities above 0 that have a ring, lowest first
        self._leaves = 0           # leaf jobs queued in live slots
        self.leaf_target = LEAF_BUFFER * max_in_flight
        """Queued leaves below which work that makes more work starts first (see :meth:`_dispatch`)."""
        self._timers: list[tuple[float, int, Slot]] = []
        self._seq = itertools.count()
        self._pending = 0          # queued or delayed in live slots
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._held = False
        self._failure: BaseException | None = None
        self._app_paused_until = 0.0
        self.hedge = hedge
        """Send a copy of a call out long while the queue is empty (see :meth:`_hedge`)."""
        self._flights: list[tuple[Flight, Slot]] = []
        """With ``hedge``: the calls started, in order, from ``_flights_head`` (the oldest not done) on."""
        self._flights_head = 0
        self._hedge_cursor = 0          # flights before it were looked at for a copy already
        self.capped_wait: float | None = None
        """The longest wait the server asked for above the window (each was capped at it)."""

    def __repr__(self) -> str:
        return (f"Scheduler(slots={len(self.slots)}, pending={self._pending}, "
                f"in_flight={self._in_flight}/{self.max_in_flight})")

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # -- the public surface -------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` on its token's slot (a job of a dead token is given up at once)."""
        slot = self._slot(job.key)
        if slot.death is not None:
            self.on_give_up(job, slot.death)
            return
        self._push(slot, Entry(job.priority, next(self._seq), job))
        self._enqueue(slot)
        self._wakeup()

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
        while self._failure is None:
            now = self.now()
            self._fire_timers(now)
            due = None
            if not self._stopping and not self._held:
                self._dispatch(group, now)
                if self.hedge and self._in_flight < self.max_in_flight:
                    due = self._hedge(group, now)      # nothing else may start now
            if self._in_flight == 0 and (self._stopping or self._pending == 0):
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
        rings, leaves = self._rings, self._rings[0]
        while self._in_flight < self.max_in_flight:
            ring = 0 if leaves and self._leaves >= self.leaf_target else \
                next((p for p in self._opening if rings[p]), 0)
            if not rings[ring]:
                return
            slot = rings[ring].popleft()
            self._in_rings[ring].discard(slot.key)
            if ring and slot.opening and slot.opening[0].priority != ring:
                self._enqueue(slot)             # deeper work came first in it: it is in that ring too
            elif slot.can_start(ring):          # else it comes back when its job finishes
                self._try_start(group, slot, ring, now)

    def _try_start(self, group: asyncio.TaskGroup, slot: Slot, ring: int, now: float) -> None:
        """Start ``slot``'s next job unless a pause or its limiter holds it (then a timer brings it back)."""
        if slot.paused_until > now:
            self._timer(slot.paused_until, slot)
            return
        slot.age(now)                                   # usage a window old holds nothing back
        wait = slot.limiter.try_acquire()
        if wait > 0:
            slot.limited(now)
            stale = slot.stale_at() if slot.limiter.limit < slot.limiter.calls else None
            self._timer(now + wait if stale is None else min(now + wait, stale), slot)
            return
        waited = slot.unlimited(now)
        if waited is not None:
            self._waited(slot, stat.WAIT_LIMIT_SECONDS, waited)
        self._start(group, slot, slot.pop(ring), slot.limiter.in_window())
        self._enqueue(slot)

    def _start(self, group: asyncio.TaskGroup, slot: Slot, entry: Entry, in_window: int) -> None:
        self._pending -= 1
        self._leaves -= entry.priority <= 0
        self._in_flight += 1
        slot.started(room=self._in_flight < self.max_in_flight)
        task = group.create_task(self._call(slot, entry, in_window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _push(self, slot: Slot, entry: Entry) -> None:
        slot.push(entry)
        self._pending += 1
        self._leaves += entry.priority <= 0

    def _enqueue(self, slot: Slot) -> None:
        """Put ``slot`` in the ring of each kind of work it may start (pause and limiter are
        checked when its turn comes)."""
        if slot.key not in self._in_rings[0] and slot.can_start(0):
            self._rings[0].append(slot)
            self._in_rings[0].add(slot.key)
        if slot.opening and slot.can_start(1):
            ring = slot.opening[0].priority
            members = self._in_rings.get(ring)
            if members is None:
                members = self._in_rings[ring] = set()
                self._rings[ring] = deque()
                self._opening = sorted((*self._opening, ring))
            if slot.key not in members:
                self._rings[ring].append(slot)
                members.add(slot.key)

    def _timer(self, when: float, slot: Slot) -> None:
        """Look at ``slot`` again at ``when``, unless it will be looked at before then."""
        if slot.look_at(when):
            heapq.heappush(self._timers, (when, next(self._seq), slot))

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            when, _, slot = heapq.heappop(self._timers)
            slot.looked(when)
            self._leaves += slot.release(now)
            if slot.delayed:
                self._timer(slot.delayed[0][0], slot)
            self._enqueue(slot)

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
        flight = None
        if self.hedge:
            flight = Flight(started)
            FLIGHT.set(flight)                  # this task's: the client sends the job's GET through it
            self._flights.append((flight, slot))
        try:
            try:
                usage = await entry.job()
            except HarvesterError as error:
                self._failed(slot, entry, error, started)
            else:
                self.stats.inc(stat.CALLS_OK)
                slot.answered(started)
                now = self.now()
                asked = slot.observe(usage, now, in_window=in_window)
                if asked is not None:
                    self._capped(asked)
                slot.timed(started, now, may_grow=slot.held_by_depth())
        except Exception as exc:  # not an API outcome: a bug or a broken sink, so stop everything
            self._failure = self._failure or exc
        finally:
            if flight is not None:
                self._landed(flight)
            slot.finished()
            self._in_flight -= 1
            self._enqueue(slot)
            self._wakeup()

    # -- hedging ------------------------------------------------------------------------------

    def _hedge(self, group: asyncio.TaskGroup, now: float) -> float | None:
        """Nothing queued may start now: send a copy of each call, oldest first, out longer than
        ``HEDGE_AFTER`` times its token's long-run latency (and ``HEDGE_FLOOR``), while capacity is idle and its token
        may (:meth:`_may_copy`); at most one copy per call, each looked at once. Returns when the
        next call will be old enough (None: no call is waiting to be)."""
        flights = self._flights
        i = max(self._hedge_cursor, self._flights_head)
        try:
            while i < len(flights) and self._in_flight < self.max_in_flight:
                flight, slot = flights[i]
                if not flight.done:
                    due = flight.started + max(HEDGE_AFTER * slot.latency_long, HEDGE_FLOOR)
                    if due > now:
                        return due
                    if flight.may_copy() and self._may_copy(slot, now):
                        self._copy(group, slot, flight)
                i += 1
            return None
        finally:
            self._hedge_cursor = i

    def _may_copy(self, slot: Slot, now: float) -> bool:
        """A copy would cost the token nothing it needs: no work of its own waits, it has answered
        (its typical latency is known), nothing holds it back, its window and its usage are below
        ``LOW_MARK`` (latency, not the budget, is what holds it) and its limiter lets one more call
        start now."""
        limiter = slot.limiter
        return (not slot.pending() and slot.proven and not slot.dead and slot.answers >= HEDGE_ANSWERS
                and slot.paused_until <= now and slot.in_flight < slot.in_flight_limit()
                and (slot.usage_percent is None or slot.usage_percent < LOW_MARK)
                and limiter.in_window() * 100 < limiter.limit * LOW_MARK and limiter.try_acquire() == 0)

    def _copy(self, group: asyncio.TaskGroup, slot: Slot, flight: Flight) -> None:
        self.stats.inc(stat.CALLS_HEDGED)
        self._in_flight += 1
        slot.copy_started()
        task = group.create_task(self._send_copy(slot, flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_copy(self, slot: Slot, flight: Flight) -> None:
        try:
            await flight.copy()
        finally:
            slot.finished()
            self._in_flight -= 1
            self._enqueue(slot)
            self._wakeup()

    def _landed(self, flight: Flight) -> None:
        """A job ended: forget the calls at the head that are done (compacted now and then)."""
        flight.done = True
        if flight.copy_first:
            self.stats.inc(stat.CALLS_HEDGED_FIRST)
        flights, head = self._flights, self._flights_head
        while head < len(flights) and flights[head][0].done:
            head += 1
        if head > 1024 and head * 2 > len(flights):
            del flights[:head]
            self._hedge_cursor, head = max(0, self._hedge_cursor - head), 0
        self._flights_head = head

    def _failed(self, slot: Slot, entry: Entry, error: HarvesterError, started: float) -> None:
        self.stats.inc(stat.CALLS_ERROR)
        self.stats.inc(_error_counter(error))
        slot.failed()
        asked = slot.observe(error.usage if isinstance(error, GraphError) else None, self.now(), may_speed_up=False)
        decision = self.decide(error)
        if decision.wait is not None and decision.wait > self.window_seconds:
            asked = max(asked or 0.0, decision.wait)
            decision = msgspec.structs.replace(decision, wait=self.window_seconds)
        if asked is not None:
            self._capped(asked)
        if isinstance(error, GraphError) and decision.action in ANSWERS:
            slot.answered(started)              # the API answered this unit: the token works
        if slot.death is not None and decision.action in (Action.RETRY, Action.THROTTLE):
            self.on_give_up(entry.job, slot.death)
            return
        HANDLERS[decision.action](self, slot, entry, decision)

    def _retry(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        slot.erred(entry.started, self.now())   # a transient error: maybe fewer calls in flight
        entry.attempts += 1
        if entry.attempts >= min(self.max_attempts, decision.attempts or self.max_attempts):
            reason = f"{decision.reason} after {plural(entry.attempts, 'attempt')}"
            self.on_give_up(entry.job, msgspec.structs.replace(decision, action=Action.FAIL, reason=reason, wait=None,
                                                             transient=True))
            return
        wait = backoff(entry.attempts, decision, self.rng, self.backoff_base, self.backoff_cap)
        self.stats.inc(stat.RETRIES)
        self._waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        slot.delay(entry, self.now() + wait)
        self._pending += 1
        self._timer(self.now() + wait, slot)

    def _throttle(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        """Wait a throttle out if the evidence says the budget may be spent, then probe with one
        call; else retry that call alone shortly (see :data:`WAIT_OUT`). A call sent before the
        last waited-out throttle adds nothing: it is queued again behind that pause."""
        self.stats.inc(stat.THROTTLES)
        now = self.now()
        in_row = slot.count_throttle(entry.started)
        if in_row is None:
            self._requeue(slot, entry)
            return
        evidence = ThrottleEvidence(decision.wait, self._reported_usage(slot, decision.scope, now), in_row,
                                    slot.throttle_share)
        if waited_out(evidence) is None:
            self._lone(slot, entry, in_row, now)
            return
        self.stats.inc(stat.THROTTLES_WAITED_OUT)
        slot.cut(entry.started, now)
        scope = decision.scope
        wait = decision.wait or _doubling(THROTTLE_FIRST_PAUSE, in_row, self.window_seconds)
        until = now + wait
        if scope == "app":
            self._app_paused_until = max(self._app_paused_until, until)
        for paused in self.slots.values() if scope == "app" else (slot,):
            paused.pause(until)
            paused.throttled(now)                 # after the pause, one call finds out
        self._waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        self._requeue(slot, entry)

    def _lone(self, slot: Slot, entry: Entry, in_row: int, now: float) -> None:
        """A lone throttle: that call again after a short jittered wait, and nothing else (no
        pause, no cut, no probe: one blip costs about one call)."""
        self.stats.inc(stat.THROTTLES_LONE)
        wait = self.rng.random() * _doubling(LONE_RETRY, in_row, self.window_seconds)
        self._waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        slot.delay(entry, now + wait)
        self._pending += 1
        self._timer(now + wait, slot)

    def _requeue(self, slot: Slot, entry: Entry) -> None:
        """Back in the queue: a throttled attempt does not count."""
        self._push(slot, entry)
        self._enqueue(slot)

    def _give_up(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        self.on_give_up(entry.job, decision)

    def _fail_token(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        if slot.kill(decision):
            self.on_token_dead(slot.key, decision)
        self.on_give_up(entry.job, decision)
        self._leaves -= len(slot.queue)          # the delayed ones were not counted yet
        for queued in slot.drain():
            self._pending -= 1
            self.on_give_up(queued.job, decision)

    # -- bookkeeping --------------------------------------------------------------------------

    def _slot(self, key: str) -> Slot:
        slot = self.slots.get(key)
        if slot is None:
            limiter = RollingWindowLimiter(self.calls_per_window, self.window_seconds,
                                           margin=self.margin, clock=self._clock)
            slot = self.slots[key] = Slot(key, limiter, max_in_flight=self.per_token_in_flight)
            slot.pause(self._app_paused_until)
        return slot

    def _reported_usage(self, slot: Slot, scope: str, now: float) -> int | None:
        """The usage evidence of a throttle of ``scope`` (see :class:`ThrottleEvidence`)."""
        if scope != "app":
            return slot.reported_usage(now, self.window_seconds)
        reports = [r for s in self.slots.values() if (r := s.reported_usage(now, self.window_seconds)) is not None]
        return max(reports) if reports else None

    def _capped(self, asked: float) -> None:
        """The server asked for a wait above the window: it was cut to the window."""
        self.stats.inc(stat.WAITS_CAPPED)
        self.capped_wait = max(self.capped_wait or 0.0, asked)

    def _waited(self, slot: Slot, counter: str, seconds: float) -> None:
        slot.wait(seconds)
        self.stats.inc(counter, seconds)


HANDLERS: dict[Action, Callable[[Scheduler, Slot, Entry, Decision], None]] = {
    Action.RETRY: Scheduler._retry,
    Action.THROTTLE: Scheduler._throttle,
    Action.SKIP: Scheduler._give_up,
    Action.REFUSE: Scheduler._give_up,
    Action.FAIL: Scheduler._give_up,
    Action.FAIL_TOKEN: Scheduler._fail_token,
}
"""What each policy action does to the job, its slot and the others."""

ANSWERS = frozenset({Action.SKIP, Action.REFUSE, Action.FAIL})
"""Actions for an API error that is about the unit, not the token: like data, it proves the token
works (after a throttle, the probe may well meet a media without insights)."""


def backoff(attempts: int, decision: Decision, rng: random.Random, base: float = BACKOFF_BASE,
            cap: float = BACKOFF_CAP) -> float:
    """The wait before the next attempt of a call that failed ``attempts`` times: full jitter under
    a ceiling doubling from ``base`` up to ``cap``, and at least what the server asked for."""
    ceiling = min(cap, base * 2 ** (attempts - 1))
    return max(rng.random() * ceiling, decision.wait or 0.0)


def _doubling(first: float, n: int, cap: float) -> float:
    """``first`` for the first in a row, doubling with each after, at most ``cap``."""
    return min(cap, first * 2 ** (n - 1))


def _error_counter(error: HarvesterError) -> str:
    if isinstance(error, GraphError) and error.code is not None:
        return f"errors/code/{error.code}"
    if isinstance(error, TransportError):
        return stat.ERRORS_TRANSPORT
    return f"errors/{type(error).__name__}"

