"""One token's slot (Scrapy's downloader slot, keyed by token): what waits to be called with it,
how fast it may go, and what the server said about it.

The slot owns its queue (lowest priority first, FIFO within a priority), the jobs waiting out a
retry backoff, its rolling-window limiter, a pause (``paused_until``, loop time) with the count
of throttles in a row behind it, whether it is dead, its in-flight count and cap, and counters.
It decides nothing about errors and never sleeps: the scheduler reads it and dispatches.

How fast it may go (its usage evidence, its limiter's limit, its depth) is its :class:`~.pace.Pace`
(:mod:`.pace`): the slot tells it what its calls met and reads its depth.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable
from dataclasses import InitVar, dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from ..graph.hedge import Flight
from ..graph.policy import Decision
from .limiter import RollingWindowLimiter
from .pace import HIGH_MARK, LOW_MARK, START_DEPTH, Pace, UsageLike

__all__ = ["HIGH_MARK", "LOW_MARK", "START_DEPTH", "Entry", "Job", "Pace", "Slot", "SlotView", "UsageLike"]

class Job(Protocol):
    """What the scheduler runs: a call with its token's key, a priority (lower first) and a label.
    The job kinds elsewhere satisfy it structurally. Its result is the answer's usage (or None)."""

    key: str
    priority: int
    label: str
    account_id: str

    def __call__(self, flight: Flight | None = None) -> Awaitable[Any]:
        """Make the call; ``flight``: hand it to the client (the scheduler may hedge the call)."""
        ...


class Entry(msgspec.Struct, order=True):
    """A queued job: ordered by (priority, sequence); ``attempts`` made so far (throttled
    calls not counted)."""

    priority: int
    seq: int
    job: Job
    attempts: int = 0
    started: float = float("-inf")
    """When its latest call started."""


class SlotView(msgspec.Struct, frozen=True):
    """A slot as progress shows it: figures read at one moment, none of the slot's internals."""

    key: str
    state: Literal["ok", "paused", "dead"]
    waiting_on: Literal["throttle", "limit"] | None
    """What alone holds its queued work back (see :meth:`Slot.waiting_on`)."""
    resumes_at: float | None
    """When its waiting work may call again (None: it is not waiting, or nothing is scheduled)."""
    busy: bool
    """Work queued, delayed or in flight."""
    queued: int
    windows_left: int
    """Full windows its pending calls need after the first (at its current limit)."""
    window_seconds: float
    calls: int
    errors: int
    throttles: int
    waited: float


@dataclass(slots=True, eq=False)
class Slot:
    """One token's state. The scheduler reads its fields and changes them only through its methods."""

    key: str
    limiter: RollingWindowLimiter
    max_in_flight: InitVar[int] = 8
    """The cap on its calls in flight (kept by its pace): the depth adapts under it."""
    queue: list[Entry] = field(default_factory=list)
    """Leaf jobs (priority 0), FIFO: they make no more work."""
    opening: list[Entry] = field(default_factory=list)
    """Jobs that make more work (priority above 0), lowest priority first: the deepest (a
    media's first insights, a page) before the widest (an account node)."""
    delayed: list[tuple[float, Entry]] = field(default_factory=list)
    paused_until: float = 0.0
    throttled_in_row: int = 0
    dead: bool = False
    death: Decision | None = None
    """The decision that killed the token (every job of it after is given up with it)."""
    in_flight: int = 0
    proven: bool = False
    """Whether the token has answered since it started or was last throttled: until then one
    call at a time probes it, so a dead or still-throttled token costs one call, not eight."""
    throttled_at: float = float("-inf")
    """When the token was last throttled."""
    calls: int = 0
    copies: int = 0
    """Copies of its calls sent (hedging)."""
    errors: int = 0
    throttles: int = 0
    waited: float = 0.0
    limited_since: float | None = None
    """Since when work has waited on the limiter (for ``wait/limit_seconds``)."""
    timer_at: float | None = None
    """The scheduler's earliest pending look at this slot."""
    full: bool = False
    """Its latest start filled its depth while the global cap had room: its depth held it back
    (answers that come together, before the dispatcher refills, still count as held)."""

    pace: Pace = field(init=False)
    """How fast its work may go: its usage evidence, its limiter's limit, its depth."""

    def __post_init__(self, max_in_flight: int) -> None:
        self.pace = Pace(self.limiter, max_in_flight)

    def __repr__(self) -> str:
        state = "dead" if self.dead else f"limit {self.limiter.limit}/{self.limiter.calls}"
        return (f"Slot({self.key!r}, {state}, queued={self.queued()}, in_flight={self.in_flight}/"
                f"{self.in_flight_limit()})")

    # -- the queue ----------------------------------------------------------------------------

    def push(self, entry: Entry) -> None:
        heapq.heappush(self.queue if entry.priority <= 0 else self.opening, entry)

    def pop(self, ring: int) -> Entry:
        """The next leaf job (``ring`` 0) or the next job that makes more work (1)."""
        return heapq.heappop(self.opening if ring else self.queue)

    def queued(self) -> int:
        return len(self.queue) + len(self.opening)

    def delay(self, entry: Entry, until: float) -> None:
        """Hold ``entry`` out of the queue until ``until`` (a retry backoff)."""
        heapq.heappush(self.delayed, (until, entry))

    def release(self, now: float) -> int:
        """Move the retries whose backoff is over back into the queue; how many were leaves."""
        leaves = 0
        while self.delayed and self.delayed[0][0] <= now:
            entry = heapq.heappop(self.delayed)[1]
            leaves += entry.priority <= 0
            self.push(entry)
        return leaves

    def drain(self) -> list[Entry]:
        """Everything queued or delayed, removed (the token died)."""
        entries = sorted(self.queue + self.opening) + sorted(e for _, e in self.delayed)
        self.queue, self.opening, self.delayed = [], [], []
        return entries

    def pending(self) -> int:
        return len(self.queue) + len(self.opening) + len(self.delayed)

    # -- readiness ----------------------------------------------------------------------------

    def in_flight_limit(self) -> int:
        """Calls in flight it may have now: its depth once proven, else one (a probe)."""
        return int(self.pace.depth) if self.proven else 1

    def can_start(self, ring: int | None = None) -> bool:
        """Work is queued (leaves: ``ring`` 0; work that makes more: 1; either: None) and the
        slot may take it, pause and limiter aside."""
        work = self.queue if ring == 0 else self.opening if ring == 1 else self.queue or self.opening
        return not self.dead and bool(work) and self.in_flight < self.in_flight_limit()

    def held_by_depth(self) -> bool:
        """Work is queued that only its depth keeps waiting: it filled its depth at its latest
        start (with room under the global cap), and no pause, limiter or death holds it now."""
        return (not self.dead and bool(self.queue or self.opening) and self.full and self.proven
                and self.limited_since is None)

    def waiting_on(self, now: float) -> Literal["throttle", "limit"] | None:
        """What alone holds back this slot's queued work: ``"throttle"`` (a pause the server
        imposed), ``"limit"`` (its rolling window), or None (it is working, idle or dead)."""
        if self.dead or self.in_flight or not self.pending():
            return None
        if self.paused_until > now:
            return "throttle"
        return "limit" if self.limited_since is not None else None

    def view(self, now: float) -> SlotView:
        on = self.waiting_on(now)
        resumes = self.paused_until if on == "throttle" else self.timer_at if on == "limit" else None
        state: Literal["ok", "paused", "dead"] = "dead" if self.dead else "paused" if self.paused_until > now else "ok"
        return SlotView(
            self.key, state, on, resumes, bool(self.pending() or self.in_flight), self.queued(),
            max(0, math.ceil(self.pending() / self.limiter.limit) - 1), self.limiter.seconds,
            self.calls, self.errors, self.throttles, self.waited)

    def pause(self, until: float) -> None:
        """Pause until ``until`` at least; a longer pause already in force stays."""
        self.paused_until = max(self.paused_until, until)

    def count_throttle(self, started: float) -> int | None:
        """A throttle of a call started at ``started``: how many in a row now (an answer since
        resets it), or None for a call sent before the last throttle, or with it (that episode is
        handled)."""
        self.throttles += 1
        self.pace.throttled()
        if started <= self.throttled_at:
            return None
        self.throttled_in_row += 1
        return self.throttled_in_row

    # -- what happened to it (the only ways its state changes) ---------------------------------

    def started(self, *, room: bool = True) -> None:
        """One of its jobs was started (``room``: the global cap has room for more)."""
        self.in_flight += 1
        self.calls += 1
        self.full = room and self.proven and self.in_flight >= self.in_flight_limit()   # int: depth may be 4.5

    def finished(self) -> None:
        """One of its jobs (or a copy of its call) ended, however."""
        self.in_flight -= 1

    def copy_started(self) -> None:
        """A copy of one of its calls was sent (hedging): in flight like a call, not a job."""
        self.in_flight += 1
        self.copies += 1

    def answered(self, started: float) -> None:
        """A call started at ``started`` was answered: the token works again, unless the call
        was sent before the last throttle, or with it (its answer proves nothing)."""
        if started > self.throttled_at:
            self.throttled_in_row, self.proven = 0, True

    def failed(self) -> None:
        self.errors += 1

    def throttled(self, now: float) -> None:
        """Throttled (or paused with the app): after the pause, one call finds out."""
        self.proven, self.throttled_at = False, now

    def kill(self, decision: Decision) -> bool:
        """The token is unusable for ``decision``; True the first time (report it once)."""
        if self.dead:
            return False
        self.dead, self.death = True, decision
        return True

    def limited(self, now: float) -> None:
        """Its next job waits on the limiter (since ``now``, unless already waiting)."""
        if self.limited_since is None:
            self.limited_since = now

    def unlimited(self, now: float) -> float | None:
        """The limiter let it go: how long its work waited on the limiter (None: it did not)."""
        since, self.limited_since = self.limited_since, None
        return None if since is None else now - since

    def wait(self, seconds: float) -> None:
        """Its work waited ``seconds`` (a backoff or pause), for its counter."""
        self.waited += seconds

    def look_at(self, when: float) -> bool:
        """The scheduler wants to look at it at ``when``: True unless it looks earlier already."""
        if self.timer_at is None or when < self.timer_at:
            self.timer_at = when
            return True
        return False

    def looked(self, when: float) -> None:
        """The scheduler's look due at ``when`` happened."""
        if when == self.timer_at:
            self.timer_at = None

    # -- feedback -----------------------------------------------------------------------------

    def observe(self, usage: UsageLike | None, now: float, *, in_window: int | None = None,
                may_speed_up: bool = True) -> float | None:
        """Read the server's usage report: its pace slows down near the limit, and the slot pauses
        when told to (at most the window). Returns the wait the server asked for when it was
        capped, else None."""
        if usage is None:
            return None
        if usage.regain_seconds > 0:
            self.pause(now + min(usage.regain_seconds, self.limiter.seconds))
        return self.pace.observe(usage, now, in_window=in_window, may_speed_up=may_speed_up)
