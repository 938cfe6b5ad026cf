"""Times: a log of times (send or start times), oldest first, that leave from the front.

What the rolling-window limiter (its starts), the simulator's rolling windows (their calls) and
the call-cost log (its sends) each keep: times appended as they happen, forgotten once a cutoff
passes them. The log is a flat ``array("d")`` read from a head index: 8 bytes a time where a
deque of floats costs four times as much, and a time leaves by moving the head, not the memory.

Invariants: :meth:`expire` drops the times **at or before** its cutoff, from the front, up to
the first one after it (the times are appended in order in practice; one out of order stops the
expiry, as a log read from its head would). The array is compacted once more than half of it has
left and freed when all of it has, so it holds at most about twice the live times (plus the
array's own spare room: a sixteenth, and up to 16 times a compaction does not give back); a
compaction moves fewer times than have left since the one before, so appending and expiring cost
amortised O(1) each.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator

_EMPTY_BYTES = array("d").__sizeof__()
"""An array with no room allocated."""


class Times:
    """The live times, oldest first: ``len``, index (``times[0]`` the oldest), iterate."""

    __slots__ = ("_head", "_times")

    def __init__(self, times: Iterable[float] = ()) -> None:
        self._times = array("d", times)
        """Every time held, oldest first, from ``_head`` on (before it: times that left)."""
        self._head = 0

    def append(self, t: float) -> None:
        self._times.append(t)

    def append_many(self, t: float, n: int) -> None:
        """Append ``t`` ``n`` times."""
        if n > 0:
            self._times.extend(array("d", (t,)) * n)

    def expire(self, edge: float) -> int:
        """Drop the times at or before ``edge`` from the front; the count of times left."""
        times, head = self._times, self._head
        end = len(times)
        while head < end and times[head] <= edge:
            head += 1
        if head + head <= end:
            self._head = head
        else:                                   # more than half has left:
            if head == end:
                self._times = array("d")        # all of it: free the array (del keeps a small one's)
            else:
                del times[:head]                # compact
            self._head = 0
        return end - head

    def __len__(self) -> int:
        return len(self._times) - self._head

    def __getitem__(self, i: int) -> float:
        """The ``i``-th time from the oldest (negative: from the newest)."""
        n = len(self._times) - self._head
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("Times index out of range")
        return self._times[self._head + i]

    def __iter__(self) -> Iterator[float]:
        """The live times, oldest first (a copy: appending or expiring meanwhile changes nothing)."""
        return iter(self._times[self._head:])

    def tolist(self) -> list[float]:
        return self._times[self._head:].tolist()

    def capacity(self) -> int:
        """How many times the array has room for (the live ones, those that left and are not
        compacted yet, and its spare room): what it costs in memory, 8 bytes each."""
        return (self._times.__sizeof__() - _EMPTY_BYTES) // self._times.itemsize

    def __sizeof__(self) -> int:
        """Its own bytes and its array's, all of them (``sys.getsizeof`` counts the whole log)."""
        return object.__sizeof__(self) + sys.getsizeof(self._times)

    def __repr__(self) -> str:
        return f"Times({self.tolist()!r})"
