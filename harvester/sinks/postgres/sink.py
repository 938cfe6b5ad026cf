"""The sink: records buffered as COPY rows, each commit one transaction.

**A commit** sends what is buffered (each key once, sorted by key: :mod:`.buffer` encodes every
record into its binary ``COPY`` row as it arrives) in one transaction, every stream in a fixed
order: first as a binary ``COPY`` straight into the stream's table, in a savepoint, which is all
a batch of new keys needs (half the server's work of a merge, measured); a key already there
fails it (a unique violation, rolled back to the savepoint), and the batch is then copied into a
temporary table and merged with ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE``
(:meth:`.schema.Schema.merge_sql`). A stream whose direct copy failed is merged for its next few
commits before the direct copy is tried again (a nightly that fetches known keys again does not
pay for a failed copy each commit). The transaction is the commit (:class:`Commit` has no parts),
and only then does the state mark the units done. A crash before that loses the uncommitted
batch, which the next run fetches again; a crash after the database commit and before the state
commit fetches those units again, and the upsert makes that harmless.

**Several runs at once** (shards of one nightly) may write the same tables: each copy and each
merge goes in key order (streams in a fixed order too), so two transactions on overlapping keys
wait for each other instead of deadlocking (a direct copy waiting on a key the other inserted
fails once that commits, and merges), and a row is replaced only by a record harvested no
earlier (``harvested_at``): the later run's value wins, whichever commits last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ...records import STREAMS, Record, Stream
from ..base import Commit, CommitPolicy, SinkFailure
from .buffer import RowBuffer
from .columns import COLUMNS
from .connection import Connection, driver
from .rows import chunks
from .schema import Schema, loading

if TYPE_CHECKING:
    import asyncpg

    from ...config.model import Output

MERGE_AFTER_CONFLICT = 8
"""Commits a stream merges after its direct copy failed, before it tries that again: a failed
copy costs at most its batch's copy (one key already there among many new ones), so this bounds
that to an eighth of the copies while the keys are mostly known, and a run that moves on to new
keys gets back to the direct copy."""


class PostgresSink:
    """A :class:`harvester.sinks.base.Sink` into PostgreSQL; :meth:`open` it before the harvest."""

    def __init__(self, dsn: str, *, schema: str = "harvester", commit_seconds: float = 1.0,
                 commit_units: int = 100, commit_records: int = 50_000, retry_seconds: float = 60.0,
                 connect_timeout: float = 10.0, origin: str = "[output]", clock: Callable[[], float] = time.monotonic):
        self.schema = schema
        self.policy = CommitPolicy(commit_seconds, units=commit_units, records=commit_records, clock=clock)
        """Every ``commit_seconds``, ``commit_units`` units or ``commit_records`` records: one transaction."""
        self.connection = Connection(dsn, self._prepare, origin=origin, connect_timeout=connect_timeout,
                                     retry_seconds=retry_seconds)
        self._schema = Schema(schema, origin=origin, where=self.connection.where, reason=self.connection.reason)
        self._buffer = RowBuffer()
        self._buffered = 0
        self._units: list[str] = []
        self._merge_only = dict.fromkeys(STREAMS, 0)
        """Commits each stream still merges without trying the direct copy first (after one failed)."""
        self.loaded: dict[str, int] = {"copied": 0, "merged": 0}
        """Rows committed by the direct copy and by the merge (for tests, the benchmark and the curious)."""
        self._broken = ""
        """Why a commit failed for good: later ones fail at once (their units are fetched again)."""

    @classmethod
    def from_config(cls, output: Output, *, env: Mapping[str, str] | None = None, path: str = "<config>",
                    **kwargs: Any) -> PostgresSink:
        """The sink of an ``[output]`` table; its DSN from the environment (``ConfigError`` if unset)."""
        from ...config.dsn import dsn_problem
        env = os.environ if env is None else env
        origin = f'{path}: [output] dsn_env = "{output.dsn_env}"'
        if why := dsn_problem(output, env):
            raise ConfigError(f"{origin}: {why}")
        return cls(env[output.dsn_env], schema=output.schema, commit_seconds=output.commit_seconds,
                   commit_units=output.commit_units, origin=origin, **kwargs)

    @property
    def where(self) -> str:
        """Where the DSN points (host, port, database, user), for messages."""
        return self.connection.where

    @property
    def reconnects(self) -> int:
        """Connections opened again after a loss (for tests and the curious)."""
        return self.connection.reconnects

    def __repr__(self) -> str:
        return f"PostgresSink({self.where}, schema={self.schema!r})"

    async def open(self) -> None:
        """Connect, create or migrate the schema; any failure is a :class:`ConfigError` naming
        the server (not the DSN) and what to do, and leaves nothing half-created."""
        await self.connection.open(self._schema.install)

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        await self._schema.prepare(conn)

    # -- the Sink protocol ---------------------------------------------------------------------

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        """Encode the records into their COPY rows now (:class:`.buffer.RowBuffer`)."""
        self._buffer.add(records)
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units), self._buffered)

    async def commit(self) -> Commit | None:
        """Everything written so far, in one transaction (again on a new connection if the
        connection is lost on the way)."""
        if not self._units:
            return None
        if why := self._broken or self._buffer.broken:
            raise SinkFailure(f"an earlier commit failed: {why}")
        batches = self._buffer.take()
        units = tuple(self._units)
        self._units, self._buffered = [], 0
        direct = set()
        for stream in batches:
            if self._merge_only[stream]:
                self._merge_only[stream] -= 1
            else:
                direct.add(stream)
        try:
            await self.connection.run(lambda conn: self._load(conn, batches, direct))
        except SinkFailure as exc:
            self._broken = str(exc)
            raise
        for stream, batch in batches.items():
            self.loaded["copied" if stream in direct else "merged"] += len(batch)
        self.policy.committed()
        return Commit(units)

    async def close(self) -> Commit | None:
        try:
            return await self.commit()
        finally:
            await self.connection.close()

    def terminate(self) -> None:
        """Drop the connection at once, as a killed process would: what is not committed is lost."""
        self.connection.terminate()

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        """Nothing to remove: what a dead run did not commit its transaction never wrote."""
        return []

    def publish(self) -> None:
        """Nothing to publish: a committed record is current at once."""

    # -- loading -------------------------------------------------------------------------------

    async def _load(self, conn: asyncpg.Connection, batches: Mapping[Stream, list[bytes]], direct: set[Stream]) -> None:
        """One transaction: each stream (in the fixed order of ``batches``: two runs lock tables
        alike) copied straight into its table if it is in ``direct`` and none of its keys is there
        yet, else merged. A stream whose direct copy fails leaves ``direct`` (a retry merges it)."""
        asyncpg = driver()
        async with conn.transaction():
            for stream, batch in batches.items():
                names = [name for name, _ in COLUMNS[stream]]
                if stream in direct:
                    try:
                        async with conn.transaction():       # a savepoint: a failed copy leaves nothing
                            await conn.copy_to_table(stream, schema_name=self.schema, source=chunks(batch),
                                                     columns=names, format="binary")
                        continue
                    except asyncpg.UniqueViolationError:     # a key already there (or just inserted)
                        direct.discard(stream)
                        self._merge_only[stream] = MERGE_AFTER_CONFLICT
                await conn.copy_to_table(loading(stream), source=chunks(batch), columns=names, format="binary")
                await conn.execute(self._schema.merge_sql(stream))  # in the order copied: the key order
