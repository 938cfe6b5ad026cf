"""What a sink promises: records of a unit become durable together, and the sink says when.

The harvest writes each unit's records (possibly none) with :meth:`Sink.write`; a
:meth:`Sink.commit` makes everything written so far durable and returns the units it covered, and
only then does the state store mark those units done (state never runs ahead of durable data).
Whatever was written but not committed when a run dies is discarded by :meth:`Sink.recover` on the
next run, and those units are fetched again: nothing lost, nothing twice.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import msgspec

from ..records import Record


class Commit(msgspec.Struct, frozen=True):
    part: str
    """Name of what was made durable (a file name for JSONL)."""
    unit_ids: tuple[str, ...]
    records: int


class Sink(Protocol):
    def write(self, unit_id: str, records: Sequence[Record]) -> None: ...

    def should_commit(self) -> bool:
        """Enough is buffered (records or seconds) that committing now bounds the work a crash loses."""
        ...

    async def commit(self) -> Commit | None: ...

    def recover(self, committed_parts: set[str]) -> list[str]:
        """Remove what earlier attempts of this run wrote but never committed; return what was removed."""
        ...

    async def close(self) -> Commit | None: ...

    def publish(self) -> None:
        """The run finished: make its records the current ones (JSONL: the manifest). Called
        after the last commit, before the run is marked finished; a no-op where nothing is
        published."""
        ...
