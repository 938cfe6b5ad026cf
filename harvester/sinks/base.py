"""What a sink promises: records of a unit become durable together, and the sink says when.

The harvest writes each unit's records (possibly none) with :meth:`Sink.write`; a
:meth:`Sink.commit` makes everything written so far durable and returns the units it covered, and
only then does the state store mark those units done (state never runs ahead of durable data).
Whatever was written but not committed when a run dies is discarded by :meth:`Sink.recover` on the
next run, and those units are fetched again: nothing lost, nothing twice.

How often to commit is the sink's call (:meth:`Sink.should_commit`): often enough that a crash
repeats little work (the JSONL sink: every ``commit_seconds`` or ``commit_units`` units), and
cheaply enough that the harvest does not slow down (it appends to a part and fsyncs it; a commit
costs no new file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
