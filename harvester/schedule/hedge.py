"""When a call gets a copy (``[scheduler] hedge``; the race itself is :mod:`harvester.graph.hedge`).

When nothing queued may start and capacity sits idle (the end of a harvest), a call out longer
than ``HEDGE_AFTER`` times its token's long-run latency gets one copy, if its token has no work
waiting, answered before (``HEDGE_ANSWERS``), is not held back, and its window and usage are below
``LOW_MARK``; the copy passes its limiter like any call, so the window is never exceeded. The first
answer is the call's; the other request is cancelled (``calls/hedged``, ``calls/hedged_first``).

The scheduler hands each job the :class:`~harvester.graph.hedge.Flight` of its call as an
argument, the job hands it to the client, which sends its GET through it; :class:`Hedger` keeps
the flights of the calls out in the order they started and says which get a copy, and when to
look again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .. import summary as stat
from ..graph.hedge import Flight
from ..summary import Stats
from .pace import LOW_MARK
from .slot import Slot

HEDGE_AFTER = 2.0
"""A call is hedged once it has been out this many times its token's long-run latency (about the
slowest eighth of exponential latencies: a copy of each costs few calls, see ``bench/scale.py``)."""

HEDGE_FLOOR = 0.1
"""Nor before it has been out this many seconds: the tail hedging cuts is seconds long, and a
token whose answers take milliseconds (a local server) has none worth a second request."""

HEDGE_ANSWERS = 4
"""Answers a token must have given before its typical latency is trusted for hedging."""

class Hedger:
    """The calls started and not yet looked at for a copy nor done, oldest first: a dict a call
    leaves in O(1) when it ends or is looked at (each call is, once), so it holds at most the calls
    in flight, never a done call behind an older one that waits long (on a commit, say)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self._flights: dict[Flight, Slot] = {}

    def __repr__(self) -> str:
        return f"Hedger(out={len(self._flights)})"

    def flight(self, slot: Slot, started: float, task: asyncio.Task | None = None) -> Flight:
        """The flight of a call of ``slot`` starting now in ``task``, for its job to send its GET through."""
        flight = Flight(started, task)
        self._flights[flight] = slot
        return flight

    def copies(self, now: float, room: Callable[[], bool], send: Callable[[Slot, Flight], None]) -> float | None:
        """Nothing queued may start now: ``send`` a copy of each call, oldest first, out longer than
        ``HEDGE_AFTER`` times its token's long-run latency (and ``HEDGE_FLOOR``), while there is
        ``room`` for a call and its token may (:func:`may_copy`); at most one copy per call. Returns
        when the next call will be old enough (None: no call is waiting to be)."""
        flights = self._flights
        while flights and room():
            flight = next(iter(flights))
            slot = flights[flight]
            due = flight.started + max(HEDGE_AFTER * slot.pace.latency_long, HEDGE_FLOOR)
            if due > now:
                return due
            del flights[flight]                 # looked at: never again
            if flight.may_copy() and may_copy(slot, now):
                self.stats.inc(stat.CALLS_HEDGED)
                send(slot, flight)
        return None

    def landed(self, flight: Flight) -> None:
        """A job ended: it is no longer a candidate for a copy."""
        flight.done = True
        self._flights.pop(flight, None)
        if flight.copy_first:
            self.stats.inc(stat.CALLS_HEDGED_FIRST)


def may_copy(slot: Slot, now: float) -> bool:
    """A copy would cost the token nothing it needs: no work of its own waits, it has answered
    (its typical latency is known), nothing holds it back, its window and its usage are below
    ``LOW_MARK`` (latency, not the budget, is what holds it) and its limiter lets one more call
    start now."""
    limiter = slot.limiter
    return (not slot.pending() and slot.proven and not slot.dead and slot.pace.answers >= HEDGE_ANSWERS
            and slot.paused_until <= now and slot.in_flight < slot.in_flight_limit()
            and (slot.pace.usage_percent is None or slot.pace.usage_percent < LOW_MARK)
            and limiter.in_window() * 100 < limiter.limit * LOW_MARK and limiter.try_acquire() == 0)
