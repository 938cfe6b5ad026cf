"""Who calls when: per-token slots, one dispatcher, a global cap on calls in flight.

The dispatcher (:mod:`.dispatch`) takes slots round-robin from rings of slots with work they may
start now (:mod:`.rings`) and starts one job of each (if its limiter allows). Critical path
first: while fewer than ``leaf_target`` leaves are queued, work that makes more work starts, the
deepest (lowest priority) first, so that the chains of dependent calls have ended when the last
leaves drain; else leaves start. A throttled or dead token never delays the others, and the
dispatcher sleeps until the earliest event that may let a slot start instead of polling.

Hedging (``hedge``, ``[scheduler] hedge``; :mod:`.hedge`): when nothing queued may start and
capacity sits idle (the end of a harvest), a call out long gets one copy; each job is called
with its call's flight (or None), which it hands to the client.

A job's outcome: a return value is its usage report (or None); a ``HarvesterError`` (but a
``SinkError``, the sink's) goes to the error policy (``decide``) and its ``Decision`` is handled
by :class:`~.outcomes.Outcomes` (retries, throttles weighed by their evidence, dead tokens); any
other exception cancels what is in flight and is raised by :meth:`Scheduler.run`.

Each slot's depth (its calls in flight) adapts to its answers (see :mod:`.pace`): it grows
while its work waits on the depth alone with room under the global cap and its usage is low,
and a transient error, a throttle, slow answers or a rising usage cut it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

import msgspec

from ..errors import HarvesterError
from ..graph.policy import Decision
from ..summary import Stats
from .dispatch import MIN_SLEEP, Dispatcher, Timers, loop_clock
from .hedge import Hedger
from .limiter import RollingWindowLimiter
from .outcomes import BACKOFF_BASE, BACKOFF_CAP, Outcomes
from .rings import Rings
from .slot import Entry, Job, Slot, SlotView

__all__ = ["MIN_SLEEP", "Job", "Pacing", "Scheduler"]


LEAF_BUFFER = 16
"""Leaf jobs queued, per call the global cap lets in flight, below which work that makes more
work starts first: when that work runs out, the leaves left take about this many round trips,
time for the chains started last to end (up to :data:`LEAF_CEILING`)."""

LEAF_CEILING = 2048
"""The most leaf jobs queued below which work that makes more work starts first, whatever
``max_in_flight``: at 512 calls in flight, four round trips. The target is also the bound on the
calls held outside for a probe of their kind (:class:`~.rings.Rings`), and queued or held work
is the harvest's memory (a planned unit and its job about 1 KB): at 16 x 512 = 8,192 the memory
benchmark's 1 M-record harvest held it full (peak RSS 88 MB), at 2,048 77 MB, while the
scale benchmark's makespans barely move (1,000 accounts 19.8 -> 19.7 s, 10,000 189.1 -> 189.8 s)."""


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
                 backoff_cap: float = BACKOFF_CAP, rng: random.Random | None = None, hedge: bool = False,
                 held: Callable[[], int] | None = None):
        if decide is None:
            from ..graph.policy import decide as policy_decide
            decide = policy_decide
        self.calls_per_window, self.window_seconds, self.margin = calls_per_window, window_seconds, margin
        self.max_in_flight, self.per_token_in_flight = max_in_flight, per_token_in_flight
        self.stats, self.on_give_up = stats, on_give_up
        self._clock = clock
        self.now: Callable[[], float] = clock or loop_clock()
        """The scheduler's clock: ``clock``, else the event loop's (the running one's, bound when
        the scheduler is made in it)."""
        self.slots: dict[str, Slot] = {}
        self.rings = Rings(min(LEAF_BUFFER * max_in_flight, LEAF_CEILING), held)
        """Which slot's work to look at next, and the counts of the work queued."""
        self.timers = Timers()
        """When to look at which slot again."""
        self.outcomes = Outcomes(stats, slots=self.slots, rings=self.rings, timer=self.timers.add, clock=self.now,
                                 decide=decide, window_seconds=window_seconds, max_attempts=max_attempts,
                                 on_give_up=on_give_up, on_token_dead=on_token_dead, backoff_base=backoff_base,
                                 backoff_cap=backoff_cap, rng=rng)
        """What an error answer does to its job, its slot and the others."""
        self._seq = itertools.count()
        self.hedger = Hedger(stats) if hedge else None
        """With ``hedge``: which calls out long get a copy while the queue is empty (:mod:`.hedge`)."""
        self.dispatcher = Dispatcher(rings=self.rings, timers=self.timers, outcomes=self.outcomes, stats=stats,
                                     max_in_flight=max_in_flight, clock=clock, hedger=self.hedger)
        """The loop that starts the calls and runs them (:mod:`.dispatch`)."""

    def __repr__(self) -> str:
        return (f"Scheduler(slots={len(self.slots)}, pending={self.rings.pending}, "
                f"in_flight={self.dispatcher.in_flight}/{self.max_in_flight})")

    @property
    def leaf_target(self) -> int:
        """Queued leaves below which work that makes more work starts first (see :mod:`.dispatch`)."""
        return self.rings.leaf_target

    @property
    def capped_wait(self) -> float | None:
        """The longest wait the server asked for above the window (each was capped at it)."""
        return self.outcomes.capped_wait

    # -- the public surface -------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` on its token's slot (a job of a dead token is given up at once)."""
        slot = self._slot(job.key)
        if slot.death is not None:
            self.on_give_up(job, slot.death)
            return
        self.rings.push(slot, Entry(job.priority, next(self._seq), job))
        self.rings.add(slot)
        self.dispatcher.wakeup()

    def pacing(self, every: int) -> Pacing:
        """Its figures now, with a view of every slot up to ``every`` slots, else of the busy ones
        (an idle token adds nothing to an ETA: 100,000 of them cost what their busy ones cost)."""
        now, slots = self.now(), self.slots.values()
        views = [slot.view(now) for slot in slots if len(slots) <= every or slot.in_flight or slot.pending()]
        return Pacing(now, len(slots), views, self.capped_wait, self.window_seconds, self.max_in_flight,
                      self.per_token_in_flight)

    def stop(self) -> None:
        """Start nothing more; run() returns once the jobs in flight have finished."""
        self.dispatcher.stop()

    def hold(self, held: bool) -> None:
        """Start nothing more while ``held`` (calls in flight go on); then go on where it was.
        The backpressure of a reader that does not keep up (``Harvester.records()``)."""
        self.dispatcher.hold(held)

    async def run(self) -> None:
        """Dispatch until nothing is queued, waiting or in flight (or stop() was called)."""
        await self.dispatcher.run()

    def spent(self) -> Iterator[tuple[str, list[float], float]]:
        """Each token's starts still in its window and its pause (this scheduler's clock), for
        the tokens that have either: what a next process on the same budget must count. One
        token at a time: every token's starts as lists of floats at once would be 32 bytes a
        call of the window (the limiters keep 8)."""
        now = self.now()
        for key, slot in self.slots.items():
            starts = slot.limiter.starts()
            if starts or slot.paused_until > now:
                yield key, starts, slot.paused_until

    def restore(self, key: str, starts: list[float], paused_until: float) -> None:
        """Count what an earlier process spent with a token (see :meth:`spent`), before its first call."""
        slot = self._slot(key)
        slot.limiter.restore(starts)
        slot.pause(paused_until)

    # -- bookkeeping --------------------------------------------------------------------------

    def _slot(self, key: str) -> Slot:
        slot = self.slots.get(key)
        if slot is None:
            limiter = RollingWindowLimiter(self.calls_per_window, self.window_seconds,
                                           margin=self.margin, clock=self._clock)
            slot = self.slots[key] = Slot(key, limiter, max_in_flight=self.per_token_in_flight)
            slot.pause(self.outcomes.app_paused_until)
        return slot
