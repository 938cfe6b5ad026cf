"""Which slot's work the scheduler looks at next: rings of slots, round-robin, by kind of work.

One ring holds the slots with leaf jobs (priority 0: they make no more work), and one per priority
above 0 the slots whose first such job (a media's first insights call, a page, an account node)
has that priority. Critical path first: while fewer than ``leaf_target`` leaves are queued, work
that makes more work comes out first, the deepest (lowest priority) first; else leaves do. A slot
is in a ring only while it may start that kind of work (pause and limiter aside: the scheduler
checks those when its turn comes), so a slot that cannot start is in none and costs nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .slot import Entry, Slot


class Rings:
    """The rings, and the counts of the work queued in live slots: ``pending`` (queued or
    delayed) and ``leaves`` (leaf jobs queued)."""

    def __init__(self, leaf_target: int, held: Callable[[], int] | None = None):
        self.leaf_target = leaf_target
        """Queued leaves below which work that makes more work comes out first."""
        self.held = held or (lambda: 0)
        """Calls planned but held outside the scheduler for a while (the probes of a kind of
        object, :mod:`harvester.plan.probes`): while they are ``leaf_target`` or more, only the
        deepest work that makes more work (priority 1: a media's first call, which makes leaves
        and nothing else) comes out, never a page or an account that would plan more."""
        self.pending = 0
        self.leaves = 0
        self._rings: dict[int, deque[Slot]] = {0: deque()}
        self._members: dict[int, set[str]] = {0: set()}
        self._opening: list[int] = []   # the priorities above 0 that have a ring, lowest first

    def __repr__(self) -> str:
        return f"Rings(pending={self.pending}, leaves={self.leaves}/{self.leaf_target})"

    def next(self) -> tuple[int, Slot] | None:
        """The next slot to look at and the ring (the kind of work) it came out of; None: no slot
        may start anything."""
        rings, leaves = self._rings, self._rings[0]
        ring = 0
        if not leaves or self.leaves < self.leaf_target:
            for p in self._opening:         # the deepest with a slot, unless held work bars it
                if rings[p]:
                    if p == 1 or self.held() < self.leaf_target:
                        ring = p
                    break
        if not rings[ring]:
            return None
        slot = rings[ring].popleft()
        self._members[ring].discard(slot.key)
        return ring, slot

    def add(self, slot: Slot) -> None:
        """Put ``slot`` in the ring of each kind of work it may start."""
        if slot.key not in self._members[0] and slot.can_start(0):
            self._rings[0].append(slot)
            self._members[0].add(slot.key)
        if slot.opening and slot.can_start(1):
            ring = slot.opening[0].priority
            members = self._members.get(ring)
            if members is None:
                members = self._members[ring] = set()
                self._rings[ring] = deque()
                self._opening = sorted((*self._opening, ring))
            if slot.key not in members:
                self._rings[ring].append(slot)
                members.add(slot.key)

    # -- the counts, as work comes and goes ---------------------------------------------------

    def push(self, slot: Slot, entry: Entry) -> None:
        """``entry`` is queued on ``slot``."""
        slot.push(entry)
        self.pending += 1
        self.leaves += entry.priority <= 0

    def started(self, entry: Entry) -> None:
        self.pending -= 1
        self.leaves -= entry.priority <= 0

    def delay(self, slot: Slot, entry: Entry, until: float) -> None:
        """``entry`` waits out a backoff on ``slot`` until ``until`` (a leaf counts once released)."""
        slot.delay(entry, until)
        self.pending += 1

    def release(self, slot: Slot, now: float) -> None:
        """The backoffs of ``slot`` that are over: back in its queue."""
        self.leaves += slot.release(now)

    def drain(self, slot: Slot) -> list[Entry]:
        """Everything queued or delayed on ``slot``, removed (its token died)."""
        self.leaves -= len(slot.queue)          # the delayed ones were not counted yet
        entries = slot.drain()
        self.pending -= len(entries)
        return entries
