"""One token's slot (Scrapy's downloader slot, keyed by token): what waits to be called with it,
how fast it may go, and what the server said about it.

The slot owns its queue (lowest priority first, FIFO within a priority), the jobs waiting out a
retry backoff, its rolling-window limiter, a pause (``paused_until``, loop time) with the count
of throttles in a row behind it, whether it is dead, its in-flight count and cap, and counters.
It decides nothing about errors and never sleeps: the scheduler reads it and dispatches.

Usage feedback (AutoThrottle, clamped): when the server reports a usage at or above
``HIGH_MARK`` percent, the effective limit drops to what that percentage implies for the calls
this slot made in the window (``in_window * 100 / percent``); below the mark it may climb back,
never above the configured limit. An error's usage can only slow the slot down.

The slot also keeps the latest usage its token's answers reported (``usage_percent``, at
``usage_at``): the evidence the scheduler weighs when a throttle comes without an estimate.
A wait the server asks for (``estimated_time_to_regain_access``) is capped at the rolling
window: no answer parks a token longer than the window the budget is counted over.

Evidence ages with the window it describes (:meth:`Slot.age`): a usage figure not repeated for a
whole window is stale, since every call it counted has left the window since. It is then
forgotten with what it did: the limit it lowered comes back to the configured one, and a depth
it eased ramps up again. So a capped wait is waited once: a token told "100 %, come back in
10^9 minutes" pauses one window, and is not held back again by that same figure afterwards
when the server's later answers carry no usage headers (which the API may omit).

Depth (AutoThrottle's idea, counted in calls in flight instead of a delay between them): a slot
starts with ``START_DEPTH`` calls in flight (at most its cap) and the depth adapts to what its
answers say. It grows while latency, not the budget, holds the token back: an answer with data
came while the slot had work queued that only its depth kept waiting (not its limiter, not the
global cap) and the usage it last reported is below ``LOW_MARK``: one more call per answer
(doubling each round trip) until the first cut, then one more per round trip. It shrinks at
once, like AutoThrottle's delay, which follows a slower server without averaging: a usage at
or above ``LOW_MARK`` caps it in proportion to what is left of the budget (the cap at
``LOW_MARK``, one call at 100 %); a throttle waited out (a lone one costs only its call),
transient errors (once they are ``ERROR_SHARE`` of the recent answers: a steady trickle of
faults is not the server giving way) or slow answers (the recent latency past ``SLOW_FACTOR``
times the slot's long-run latency) halve it, once per round trip (only a call started after the
last cut can cut it again). Never above the cap, never below one.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from ..graph.hedge import Flight
from ..graph.policy import Decision
from .limiter import RollingWindowLimiter

HIGH_MARK = 90
"""Usage percentage from which the server's figure sets the pace."""

LOW_MARK = 50
"""Usage percentage from which the depth stops growing and shrinks as usage rises."""

START_DEPTH = 8
"""Calls in flight a proven token starts with (at most its cap)."""

SLOW_FACTOR = 2.0
"""Answers are slow when the recent latency passes this many times the long-run latency."""

FAST_WEIGHT, SLOW_WEIGHT = 1 / 8, 1 / 64
"""Weights of a new answer in the recent and the long-run latency (moving averages)."""

ERROR_SHARE = 0.2
"""Transient errors cut the depth when they make this share of its recent answers (a moving
average of weight ``FAST_WEIGHT / 2``): a steady trickle of faults (5 %) does not, a server
failing every few calls does at once."""

WARM_ANSWERS = 32
"""Answers before the latencies are trusted to call answers slow."""


class UsageLike(Protocol):
    percent: int
    regain_seconds: float


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
    max_in_flight: int = 8
    """The cap on its calls in flight: the depth adapts under it."""
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
    usage_percent: int | None = None
    """The latest usage percentage the token's answers reported (None: none yet)."""
    usage_at: float = float("-inf")
    """When ``usage_percent`` was reported."""
    depth: float = START_DEPTH
    """Calls in flight it may have now, once proven (whole part; see the module's docstring)."""
    ramping: bool = True
    """Growing one call per answer (until the first cut), else one per round trip."""
    cut_at: float = float("-inf")
    """When the depth was last cut: only a call started after it cuts again."""
    latency: float = 0.0
    """Recent latency of its answers (a moving average, seconds)."""
    latency_long: float = 0.0
    """Long-run latency of its answers."""
    answers: int = 0
    """Answers timed."""
    error_share: float = 0.0
    """Share of transient errors among its recent answers (a moving average)."""
    throttle_share: float = 0.0
    """Share of throttles among its recent answers (a moving average of the same weight)."""
    full: bool = False
    """Its latest start filled its depth while the global cap had room: its depth held it back
    (answers that come together, before the dispatcher refills, still count as held)."""

    def __post_init__(self) -> None:
        self.depth = min(self.depth, self.max_in_flight)

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
        return int(self.depth) if self.proven else 1

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
        self.throttle_share += (1.0 - self.throttle_share) * FAST_WEIGHT / 2
        if started <= self.throttled_at:
            return None
        self.throttled_in_row += 1
        return self.throttled_in_row

    def usage(self, now: float, fresh: float) -> float:
        """The share of its rate limit in use (0 to 1): its rolling window's calls, or what its
        answers reported in the last ``fresh`` seconds, whichever is more."""
        reported = self.reported_usage(now, fresh)
        in_window = self.limiter.in_window() / self.limiter.limit if self.limiter.limit else 1.0
        return max(in_window, (reported or 0) / 100)

    def reported_usage(self, now: float, fresh: float) -> int | None:
        """The latest usage reported in the last ``fresh`` seconds (None: no such report)."""
        return self.usage_percent if now - self.usage_at <= fresh else None

    def stale_at(self) -> float | None:
        """When its usage evidence goes stale (None: it has none)."""
        return None if self.usage_percent is None else self.usage_at + self.limiter.seconds

    def age(self, now: float) -> bool:
        """Forget usage evidence a whole window old, and what it did (see the module's docstring):
        the limiter's limit back to the configured one, and a depth it eased ramps up again.
        True when something was forgotten."""
        if self.usage_percent is None or now - self.usage_at < self.limiter.seconds:
            return False
        if self.usage_percent >= LOW_MARK:
            self.ramping = True
        self.usage_percent = None
        self.limiter.set_limit(self.limiter.calls)
        return True

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

    # -- depth ---------------------------------------------------------------------------------

    def timed(self, started: float, now: float, *, may_grow: bool) -> None:
        """A call started at ``started`` answered with data at ``now``: time it, cut the depth if
        answers turned slow, else grow it when ``may_grow`` (its work waited on the depth alone,
        with room under the global cap) and the usage it reported last is below ``LOW_MARK``."""
        latency = now - started
        self.answers += 1
        self.error_share -= self.error_share * FAST_WEIGHT / 2
        self.throttle_share -= self.throttle_share * FAST_WEIGHT / 2
        # Plain means until there are enough answers for the moving averages' weights.
        self.latency += (latency - self.latency) * max(FAST_WEIGHT, 1 / self.answers)
        self.latency_long += (latency - self.latency_long) * max(SLOW_WEIGHT, 1 / self.answers)
        if self.answers >= WARM_ANSWERS and self.latency > SLOW_FACTOR * self.latency_long:
            self.cut(started, now)
        elif may_grow and (self.usage_percent is None or self.usage_percent < LOW_MARK):
            self.depth = min(float(self.max_in_flight), self.depth + (1.0 if self.ramping else 1.0 / self.depth))

    def erred(self, started: float, now: float) -> None:
        """A call started at ``started`` met a transient error: cut the depth once they make
        ``ERROR_SHARE`` of the recent answers."""
        self.error_share += (1.0 - self.error_share) * FAST_WEIGHT / 2
        self.throttle_share -= self.throttle_share * FAST_WEIGHT / 2
        if self.error_share >= ERROR_SHARE:
            self.cut(started, now)

    def cut(self, started: float, now: float) -> None:
        """Halve the depth for trouble met by a call started at ``started`` (a transient error, a
        throttle, slow answers): once per round trip, so a burst of errors of one depth cuts once."""
        if started <= self.cut_at:
            return
        self.depth, self.ramping, self.cut_at = max(1.0, self.depth / 2), False, now

    def _ease(self, percent: int) -> None:
        """Usage at or above ``LOW_MARK``: at most the cap in proportion to the budget left."""
        if percent >= LOW_MARK:
            allowed = self.max_in_flight * max(0, 100 - percent) / (100 - LOW_MARK)
            self.depth, self.ramping = max(1.0, min(self.depth, allowed)), False

    # -- feedback -----------------------------------------------------------------------------

    def observe(self, usage: UsageLike | None, now: float, *, in_window: int | None = None,
                may_speed_up: bool = True) -> float | None:
        """Read the server's usage report: slow down near the limit, pause when told to (at most
        the window). Returns the wait the server asked for when it was capped, else None."""
        if usage is None:
            return None
        self.usage_percent, self.usage_at = usage.percent, now
        capped = None
        if usage.regain_seconds > 0:
            if usage.regain_seconds > self.limiter.seconds:
                capped = usage.regain_seconds
            self.pause(now + min(usage.regain_seconds, self.limiter.seconds))
        if usage.percent > 0:
            self._pace(usage.percent, in_window, may_speed_up)
            self._ease(usage.percent)
        return capped

    def _pace(self, percent: int, in_window: int | None, may_speed_up: bool) -> None:
        """Set the limiter by the reported ``percent`` (see the module's docstring)."""
        calls = self.limiter.in_window() if in_window is None else in_window
        if percent >= HIGH_MARK:
            limit = calls * 100 // percent
        else:  # the low end of what the rounded-down percentage allows: never too fast
            limit = calls * 100 // (percent + 1)
            if not may_speed_up or limit <= self.limiter.limit:
                return
        if may_speed_up or limit < self.limiter.limit:
            self.limiter.set_limit(limit)
