"""What a sink promises: records of a unit become durable together, and the sink says when.

The harvest writes each unit's records (possibly none) with :meth:`Sink.write`; a
:meth:`Sink.commit` makes everything written so far durable and returns the units it covered, and
only then does the state store mark those units done (state never runs ahead of durable data).
Whatever was written but not committed when a run dies is discarded by :meth:`Sink.recover` on the
next run, and those units are fetched again: nothing lost, nothing twice.

How often to commit is the sink's call (:meth:`Sink.should_commit`), by one rule for every sink
(:class:`CommitPolicy`): often enough that a crash repeats little work (every ``commit_seconds``),
cheaply enough that the harvest does not slow down (each sink bounds units or records by what its
commit costs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import msgspec

from ..errors import SinkFailure as SinkFailure  # what a sink raises (harvester.errors draws the tree)
from ..records import Record


class PartCommit(msgspec.Struct, frozen=True):
    part: str
    """Name of what was made durable: ``<stream>/<file>`` for file sinks."""
    records: int
    """Records in the part up to ``length``."""
    length: int | None = None
    """Bytes of the part that are durable and belong to committed units (the part may be appended
    to by later commits); ``None``: the part is complete as it is."""


class CommitPolicy:
    """When a sink's buffered work is due a commit: ``seconds`` after the last one, or at ``units``
    units, or at ``records`` records, whichever comes first (None: not that bound); never with
    nothing written. The seconds bound what a crash repeats; the units or records what a commit
    costs, which differs by sink (an fsync of a part, an Arrow conversion, a transaction)."""

    def __init__(self, seconds: float, *, units: int | None = None, records: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.seconds, self.units, self.records = seconds, units, records
        self._clock = clock
        self._since = clock()

    def due(self, units: int, records: int = 0) -> bool:
        if not units:
            return False
        return ((self.units is not None and units >= self.units)
                or (self.records is not None and records >= self.records)
                or self._clock() - self._since >= self.seconds)

    def committed(self) -> None:
        """A commit has started: the seconds count from now."""
        self._since = self._clock()


INSIGHTS_PREFIX = "insights/"
"""Parts of the insights stream (what the ``records/written`` counter counts) start with this."""


class Commit(msgspec.Struct, frozen=True):
    unit_ids: tuple[str, ...]
    parts: tuple[PartCommit, ...] = ()
    """The parts the commit made durable (none for a database sink: its transaction is the commit)."""


class Sink(Protocol):
    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        """Buffer a unit's records (of any stream: the sink routes each to its own)."""
        ...

    def should_commit(self) -> bool:
        """Enough is buffered (records or seconds) that committing now bounds the work a crash loses."""
        ...

    async def commit(self) -> Commit | None: ...

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        """Remove what earlier attempts of this run wrote but never committed (``part -> committed
        length``, as :attr:`Commit.length`); return what was removed or cut back."""
        ...

    async def close(self) -> Commit | None: ...

    def publish(self) -> None:
        """The run finished: make its records the current ones (JSONL: the manifest). Called
        after the last commit, before the run is marked finished; a no-op where nothing is
        published."""
        ...
