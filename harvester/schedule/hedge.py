"""When a call gets a copy (``[scheduler] hedge``; the race itself is :mod:`harvester.graph.hedge`).

When nothing queued may start and capacity sits idle (the end of a harvest), a call out longer
than ``HEDGE_AFTER`` times its token's long-run latency gets one copy, if its token has no work
waiting, answered before (``HEDGE_ANSWERS``), is not held back, and its window and usage are below
``LOW_MARK``; the copy passes its limiter like any call, so the window is never exceeded. The first
answer is the call's; the other request is cancelled (``calls/hedged``, ``calls/hedged_first``).

The scheduler hands each job the :class:`~harvester.graph.hedge.Flight` of its call as an
argument, the job hands it to the client, which sends its GET through it; :class:`Hedger` keeps
the flights in the order their calls started and says which get a copy, and when to look again.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import summary as stat
from ..graph.hedge import Flight
from ..summary import Stats
from .slot import LOW_MARK, Slot

HEDGE_AFTER = 2.0
"""A call is hedged once it has been out this many times its token's long-run latency (about the
slowest eighth of exponential latencies: a copy of each costs few calls, see ``bench/scale.py``)."""

HEDGE_FLOOR = 0.1
"""Nor before it has been out this many seconds: the tail hedging cuts is seconds long, and a
token whose answers take milliseconds (a local server) has none worth a second request."""

HEDGE_ANSWERS = 4
"""Answers a token must have given before its typical latency is trusted for hedging."""

COMPACT_AFTER = 1024
"""Flights done at the head of the list before it is cut (when they are also half of it)."""


class Hedger:
    """The calls started, oldest first, from the oldest not done (``_head``); those before
    ``_cursor`` were looked at for a copy already (each call is, once)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self._flights: list[tuple[Flight, Slot]] = []
        self._head = 0
        self._cursor = 0

    def __repr__(self) -> str:
        return f"Hedger(out={len(self._flights) - self._head})"

    def flight(self, slot: Slot, started: float) -> Flight:
        """The flight of a call of ``slot`` starting now, for its job to send its GET through."""
        flight = Flight(started)
        self._flights.append((flight, slot))
        return flight

    def copies(self, now: float, room: Callable[[], bool], send: Callable[[Slot, Flight], None]) -> float | None:
        """Nothing queued may start now: ``send`` a copy of each call, oldest first, out longer than
        ``HEDGE_AFTER`` times its token's long-run latency (and ``HEDGE_FLOOR``), while there is
        ``room`` for a call and its token may (:func:`may_copy`); at most one copy per call. Returns
        when the next call will be old enough (None: no call is waiting to be)."""
        flights = self._flights
        i = max(self._cursor, self._head)
        try:
            while i < len(flights) and room():
                flight, slot = flights[i]
                if not flight.done:
                    due = flight.started + max(HEDGE_AFTER * slot.latency_long, HEDGE_FLOOR)
                    if due > now:
                        return due
                    if flight.may_copy() and may_copy(slot, now):
                        self.stats.inc(stat.CALLS_HEDGED)
                        send(slot, flight)
                i += 1
            return None
        finally:
            self._cursor = i

    def landed(self, flight: Flight) -> None:
        """A job ended: forget the calls at the head that are done (compacted now and then)."""
        flight.done = True
        if flight.copy_first:
            self.stats.inc(stat.CALLS_HEDGED_FIRST)
        flights, head = self._flights, self._head
        while head < len(flights) and flights[head][0].done:
            head += 1
        if head > COMPACT_AFTER and head * 2 > len(flights):
            del flights[:head]
            self._cursor, head = max(0, self._cursor - head), 0
        self._head = head


def may_copy(slot: Slot, now: float) -> bool:
    """A copy would cost the token nothing it needs: no work of its own waits, it has answered
    (its typical latency is known), nothing holds it back, its window and its usage are below
    ``LOW_MARK`` (latency, not the budget, is what holds it) and its limiter lets one more call
    start now."""
    limiter = slot.limiter
    return (not slot.pending() and slot.proven and not slot.dead and slot.answers >= HEDGE_ANSWERS
            and slot.paused_until <= now and slot.in_flight < slot.in_flight_limit()
            and (slot.usage_percent is None or slot.usage_percent < LOW_MARK)
            and limiter.in_window() * 100 < limiter.limit * LOW_MARK and limiter.try_acquire() == 0)
