"""An exact rolling-window rate limiter: a sliding log of start times.

Invariant: at most ``limit`` calls start in any half-open window ``(t - seconds, t]``, and a
caller that waits starts at ``oldest + seconds + margin`` at the latest, where ``oldest`` is the
start that must leave the window to make room (the earliest one when the window is full). So a
full window of calls can start at once, and the next call starts the moment the first one
leaves: no budget is ever idle while someone waits.

This differs from a leaky bucket such as ``aiolimiter.AsyncLimiter(200, 3600)``, which lets a
second burst drip in while the first is still in the window (399 calls in the first rolling
hour), and from ``AsyncLimiter(1, 18)``, which keeps the window but spreads calls out (5 h for
1,000 calls where 4 h suffice). ``margin`` widens the window for starts that reach the server
a little later than they were counted here (network, clock skew).

The start that leaves is judged the way the server judges it (``start <= t - seconds``), so
the two agree even in floating point. ``limit`` starts equal to ``calls`` and may be lowered by
usage feedback (:meth:`set_limit`), never raised above ``calls``.

A harvest holds one limiter per token, 100,000 of them at scale, and most sit idle: the log is a
:class:`~harvester.schedule.times.Times`, a flat array of doubles read from a head index (8 bytes
a start, compacted as starts leave, freed when the window empties), and the queue of waiters
exists only while someone waits in :meth:`acquire` (the scheduler only ever calls
:meth:`try_acquire`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from .times import Times

MIN_WAIT = 1e-6
"""The wait reported when floating point puts the expiry a hair after ``now``: one tick of a
clock that moves in microseconds (looptime), above any event loop's clock resolution, so a
sleep of it always moves the clock."""


class RollingWindowLimiter:
    __slots__ = ("_clock", "_starts", "_waiters", "calls", "limit", "margin", "seconds")

    def __init__(self, calls: int, seconds: float, *, margin: float = 0.0,
                 clock: Callable[[], float] | None = None):
        if calls < 1 or seconds <= 0 or margin < 0:
            raise ValueError("calls must be >= 1, seconds > 0 and margin >= 0")
        self.calls = calls
        self.limit = calls
        self.seconds = seconds
        self.margin = margin
        self._clock = clock
        self._starts = Times()
        """Start times, oldest first."""
        self._waiters: deque[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return f"RollingWindowLimiter(limit={self.limit}/{self.calls}, seconds={self.seconds}, margin={self.margin})"

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def in_window(self) -> int:
        """Starts still counted against the window now."""
        return self._starts.expire(self.now() - self.seconds - self.margin)      # _expire, inline

    def counted(self) -> int:
        """The starts counted against the window as of its latest start or expiry, without reading
        the clock: right after :meth:`try_acquire` started a call, the calls in its window then."""
        return len(self._starts)

    def starts(self) -> list[float]:
        """The starts still counted against the window now, oldest first."""
        self._expire(self.now())
        return self._starts.tolist()

    def restore(self, starts: list[float]) -> None:
        """Count ``starts`` (calls another process made with this token, on this clock) against
        the window as if they were made here; none later than now."""
        now = self.now()
        self._starts = Times(sorted([*self._starts, *(min(t, now) for t in starts)]))
        self._expire(now)

    def set_limit(self, limit: int) -> None:
        """Lower (or restore) the effective limit, clamped to ``[1, calls]``."""
        self.limit = max(1, min(self.calls, int(limit)))

    def try_acquire(self) -> float:
        """Start a call now and return 0, or return the seconds until one may start.

        Callers blocked in :meth:`acquire` go first (FIFO): while any wait, this does not start.
        """
        if self._waiters:
            return max(self._next_free(self.now()), MIN_WAIT)
        return self._take()

    async def acquire(self) -> None:
        """Wait for a start, first come first served."""
        if not self._waiters and self._take() == 0.0:
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters = self._waiters if self._waiters is not None else deque()
        waiters.append(turn)
        try:
            if waiters[0] is not turn:
                await turn                      # the caller ahead hands over when it leaves
            while (wait := self._take()) > 0:
                await asyncio.sleep(wait)
        finally:
            waiters.remove(turn)
            if waiters and not waiters[0].done():
                waiters[0].set_result(None)
            elif not waiters:
                self._waiters = None

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _take(self) -> float:
        """Start a call now and return 0, or return the seconds until one may start (FIFO aside)."""
        now = self.now()
        if self._starts.expire(now - self.seconds - self.margin) < self.limit:  # _expire, inline
            self._starts.append(now)
            return 0.0
        return self._next_free(now)

    def _next_free(self, now: float) -> float:
        """0 when a call may start at ``now``, else how long until the blocking start leaves."""
        excess = self._expire(now) - self.limit
        if excess < 0:
            return 0.0
        return max(self._starts[excess] + self.seconds + self.margin - now, MIN_WAIT)

    def _expire(self, now: float) -> int:
        """Forget the starts that left the window at ``now`` (at or before its edge, ``seconds +
        margin`` before it); the starts left. Inline in :meth:`in_window` and :meth:`_take`, the
        calls on every start."""
        return self._starts.expire(now - self.seconds - self.margin)
