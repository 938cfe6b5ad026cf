"""One DuckDB database file, a table per stream (``insights``, ``media``, ``accounts``), upserted.

Each table has the stream's typed columns (arrow.py) and a primary key: ``media_id`` for media,
``(account_id, day)`` for accounts, and for insights ``key_text``, the natural key as one string
(its fields may be null or lists, which a primary key cannot hold) computed by pyarrow from the
columns (:func:`key_text`). A commit loads each stream's buffered records as one Arrow table and
merges it (:func:`_merge`: the rows of its keys deleted, then the rows inserted; the last row of
a key within the batch and the latest batch win), every stream in one transaction: the
file holds each key once, with the value of the last commit that wrote it, and a crash loses only
the uncommitted batch (DuckDB's write-ahead log), whose units the state has not checkpointed and
the next attempt fetches again. Upserts make the overlap harmless: a batch committed to the
database whose checkpoint was lost is written again over itself. So there is nothing to recover
and nothing to publish: a record is current as soon as its commit returns.

The file carries its schema version (table ``harvester_schema``): a file of a newer harvester is
refused, an older one migrated. A file another process holds (DuckDB allows one writer) is a
ConfigError before any call, as is one that is not a DuckDB database.

Where a commit's time goes (1M insights records, 100k a commit, bench.sinks): building the Arrow
tables ~2 s, the key ~1.2 s, and DuckDB ~7 s of CPU, of which the primary key index (kept for
the transaction, then merged into the file's at COMMIT) is about half: the same rows into a
table without a key take ~3 s. The DELETE scans the key column (about 0.1 s a commit per
million rows in the table), still about half of what ``INSERT OR REPLACE`` costs at 5M rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError
from ..records import STREAM_OF, STREAMS, Record, Stream
from . import arrow
from .base import INSIGHTS_PREFIX, Commit, CommitPolicy, PartCommit

SCHEMA_VERSION = 2
"""1: ``key_text`` was the JSON of a list of the key fields, computed in SQL (``to_json``: most of
a commit's time); 2: :func:`key_text`, computed by pyarrow. A version 1 file is migrated in place."""

_SQL_TYPES = {pa.string(): "VARCHAR", arrow.TIMESTAMP: "TIMESTAMPTZ", pa.date32(): "DATE",
              pa.list_(pa.string()): "VARCHAR[]", pa.float64(): "DOUBLE", pa.int64(): "BIGINT",
              pa.bool_(): "BOOLEAN"}

_KEY_CHUNK = 1 << 20
"""Rows a key column is computed for at a time when a file is migrated."""


def _length(text: pa.Array) -> pa.Array:
    """A value's length in bytes as digits, ``-`` for null."""
    return pc.fill_null(pc.cast(pc.binary_length(text), pa.string()), "-")


def _text(column: pa.Array) -> pa.Array:
    """A stored column as text: timestamps as epoch seconds (as Arrow's or DuckDB's, in
    microseconds), days as ISO dates."""
    if isinstance(column.type, pa.TimestampType):
        column = pc.cast(pc.cast(column, arrow.TIMESTAMP), pa.int64())
    return pc.cast(column, pa.string())


def _items(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A list of strings as its lengths, ``(3,5)`` (``-`` for null), and its items run together."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = pc.subtract(column.offsets, column.offsets[0])
    lengths = pa.ListArray.from_arrays(offsets, _length(column.flatten()), mask=column.is_null())
    header = pc.fill_null(pc.binary_join_element_wise("(", pc.binary_join(lengths, ","), ")", ""), "-")
    return header, pc.fill_null(pc.binary_join(column, ""), "")


def key_text(table: pa.Table) -> pa.Array:
    """The natural key of each insights row (records.make_key) as one exact string, computed by
    pyarrow at C speed: a header of the key fields' lengths in bytes (``-`` for null, ``(3,5)``
    for a list, ``e`` before end_time or ``s`` before since and until when it is null), ``|``,
    then the fields run together. The header has no ``|`` and says where each field ends, so no
    value of any field can be read as another. Built from the stored columns (a timestamp as
    epoch seconds), so a row's key is what the row shows."""
    column = table.column
    ended = pc.is_valid(column("end_time"))
    first = pc.if_else(ended, _text(column("end_time")), _text(column("since")))
    second = pc.if_else(ended, pa.scalar(None, pa.string()), _text(column("until")))
    scalars = [column(name) for name in ("object_id", "metric", "period", "timeframe")]
    keys, values = _items(column("dimension_keys")), _items(column("dimension_values"))
    tail = [first, second, _text(column("observed_on"))]
    header = pc.binary_join_element_wise(*map(_length, scalars), keys[0], values[0], pc.if_else(ended, "e", "s"),
                                         *map(_length, tail), ",")
    body = pc.binary_join_element_wise(*(pc.fill_null(v, "") for v in scalars), keys[1], values[1],
                                       *(pc.fill_null(v, "") for v in tail), "")
    return pc.binary_join_element_wise(header, body, "|")


PRIMARY_KEYS: dict[Stream, tuple[str, ...]] = {"insights": ("key_text",), "media": ("media_id",),
                                               "accounts": ("account_id", "day")}


def file_problem(path: str | os.PathLike) -> str | None:
    """Why an existing file cannot be this harvester's DuckDB output (not a DuckDB database, or
    written by a newer harvester), found reading it only; None if it can, does not exist yet, or
    is in use (the run says so when it starts). ``harvester validate`` and :func:`open_database`
    both ask it, so validate refuses what a run would."""
    if not Path(path).is_file():
        return None
    try:
        db = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower() or "different configuration" in text:
            return None                     # in use: by another process, or open in this one already
        return f"cannot be opened as a DuckDB database: {text.splitlines()[0]}"
    try:
        row = db.execute("SELECT max(version) FROM harvester_schema").fetchone()
    except duckdb.CatalogException:
        row = None                          # a DuckDB file harvester has not written yet
    finally:
        db.close()
    version = row[0] if row else None
    if version is not None and version > SCHEMA_VERSION:
        return (f"written by a newer harvester (schema version {version}; this one knows {SCHEMA_VERSION}): "
                "upgrade harvester or choose another [output] path")
    return None


def open_database(path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A connection to the file, or a ConfigError saying why not (locked, not a database)."""
    if why := file_problem(path):
        raise ConfigError(f"{path}: {why}")
    try:
        db = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise ConfigError(f"{path}: the DuckDB file is in use by another process (DuckDB allows one writer); "
                              "stop it or choose another [output] path") from None
        raise ConfigError(f"{path}: cannot be opened as a DuckDB database: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise ConfigError(f"{path}: cannot be opened as a DuckDB database: {str(exc).splitlines()[0]}") from None
    db.execute("SET TimeZone = 'UTC'")
    return db


def _columns(stream: Stream) -> str:
    """A stream's table definition: its columns (``key_text`` first for insights), its key."""
    columns = [f"{name} {_SQL_TYPES[arrow.SCHEMAS[stream].field(name).type]}" for name in arrow.SCHEMAS[stream].names]
    if stream == "insights":
        columns.insert(0, "key_text VARCHAR")
    return f"{', '.join(columns)}, PRIMARY KEY ({', '.join(PRIMARY_KEYS[stream])})"


def _create(db: duckdb.DuckDBPyConnection, path: Path) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS harvester_schema (version INTEGER NOT NULL)")
    row = db.execute("SELECT max(version) FROM harvester_schema").fetchone()
    version = row[0] if row else None
    if version is not None and version > SCHEMA_VERSION:
        raise ConfigError(f"{path}: written by a newer harvester (schema version {version}; this one knows "
                          f"{SCHEMA_VERSION}): upgrade harvester or choose another [output] path")
    db.execute("BEGIN")
    for stream in STREAMS:
        db.execute(f"CREATE TABLE IF NOT EXISTS {stream} ({_columns(stream)})")
    if version is None:
        db.execute("INSERT INTO harvester_schema VALUES (?)", [SCHEMA_VERSION])
    db.execute("COMMIT")
    if version is not None and version < 2:
        _rekey(db)


def _rekey(db: duckdb.DuckDBPyConnection) -> None:
    """Version 1 to 2: a new insights table whose ``key_text`` is :func:`key_text` of each row,
    in place of the old one and the version raised in one transaction (a crash leaves version 1)."""
    names = ", ".join(arrow.SCHEMAS["insights"].names)
    reader, writer = db.cursor(), db.cursor()
    try:
        writer.execute("BEGIN")
        writer.execute(f"CREATE TABLE insights_v2 ({_columns('insights')})")
        for batch in reader.sql(f"SELECT {names} FROM insights").to_arrow_reader(_KEY_CHUNK):
            rows = pa.Table.from_batches([batch])
            keyed = rows.add_column(0, "key_text", key_text(rows))  # noqa: F841 (read by name in the SQL)
            writer.execute("INSERT INTO insights_v2 SELECT * FROM keyed")
        reader.close()
        writer.execute("DROP TABLE insights")
        writer.execute("ALTER TABLE insights_v2 RENAME TO insights")
        writer.execute("UPDATE harvester_schema SET version = ?", [SCHEMA_VERSION])
        writer.execute("COMMIT")
    except BaseException:
        writer.execute("ROLLBACK")
        raise
    finally:
        reader.close()
        writer.close()


def _staged(stream: Stream, records: Sequence[Record]) -> pa.Table:
    """The rows of one stream's batch as its table holds them (``key_text`` first for insights)."""
    table = arrow.to_table(stream, records)
    return table.add_column(0, "key_text", key_text(table)) if stream == "insights" else table


def _latest(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """The table with each key once, its last row: records of a batch in the order written, so
    the latest value wins within a batch as it does between commits."""
    rows = pa.array(range(table.num_rows), pa.int64())
    last = table.select(list(key)).append_column("row", rows).group_by(list(key), use_threads=False)
    kept = last.aggregate([("row", "max")]).column("row_max")
    return table.take(pc.take(kept, pc.sort_indices(kept)))


def _merge(db: duckdb.DuckDBPyConnection, stream: Stream, staged: pa.Table) -> None:
    """Upsert one stream's rows: the rows of the file with one of their keys deleted, then the
    rows inserted. A plain INSERT after a DELETE joined on the key costs about half of an
    ``INSERT OR REPLACE``, which probes the primary key index for every row and then again as
    it inserts (and keeps the first of two rows of a key, not the last); the DELETE finds
    nothing to remove in a first harvest."""
    same = " AND ".join(f"{stream}.{name} = staged.{name}" for name in PRIMARY_KEYS[stream])
    db.execute(f"DELETE FROM {stream} USING staged WHERE {same}")
    db.execute(f"INSERT INTO {stream} SELECT * FROM staged")


def _transaction(db: duckdb.DuckDBPyConnection, tables: Mapping[Stream, pa.Table]) -> None:
    """Every stream's rows merged in one transaction, rolled back on any error."""
    db.execute("BEGIN")
    try:
        for stream, table in tables.items():
            _merge(db, stream, table)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.TransactionException):     # a failed COMMIT has rolled back
            db.execute("ROLLBACK")
        raise


class DuckdbSink:
    def __init__(self, path: str | os.PathLike, run_id: str, *, commit_seconds: float = 1.0,
                 batch_records: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.run_id = run_id
        self.policy = CommitPolicy(commit_seconds, records=batch_records, clock=clock)
        """Every ``commit_seconds`` or ``batch_records`` records; not every ``commit_units`` units:
        a DuckDB commit costs a log sync and an index merge (tens of ms), which a commit per 100
        calls would pay thousands of times a harvest."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_database(self.path)
        try:
            _create(self._db, self.path)
        except BaseException:
            self._db.close()
            raise
        self._buffers: dict[Stream, list[Record]] = {stream: [] for stream in STREAMS}
        self._buffered = 0
        self._units: list[str] = []
        self._attempt = uuid.uuid4().hex[:12]
        self._insights = 0                      # records this attempt committed to insights

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        for record in records:
            self._buffers[STREAM_OF[type(record)]].append(record)
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units), self._buffered)

    async def commit(self) -> Commit | None:
        if not self._units:
            return None
        units, self._units, self._buffered = tuple(self._units), [], 0
        self.policy.committed()
        batches, self._buffers = self._buffers, {stream: [] for stream in STREAMS}
        await asyncio.to_thread(self._upsert, batches)
        self._insights += len(batches["insights"])
        # The state counts records by parts: one per attempt, its running total of insights.
        return Commit(units, (PartCommit(f"{INSIGHTS_PREFIX}{self.path.name}#{self._attempt}", self._insights),))

    def _upsert(self, batches: Mapping[Stream, Sequence[Record]]) -> None:
        """One transaction. A key twice in the batch (rare: a fact polled and then posted by the
        webhook, say) fails the primary key: then the batch again, each key's last row only;
        looking for such keys first would cost every commit as much as the DELETE."""
        tables = {stream: _staged(stream, records) for stream, records in batches.items() if records}
        db = self._db.cursor()
        try:
            try:
                _transaction(db, tables)
            except duckdb.ConstraintException:
                _transaction(db, {stream: _latest(table, PRIMARY_KEYS[stream]) for stream, table in tables.items()})
        finally:
            db.close()

    async def close(self) -> Commit | None:
        commit = await self.commit()
        self._db.close()
        return commit

    def terminate(self) -> None:
        """Let go of the file at once, as a killed process would: what is not committed is lost."""
        self._db.close()

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        """Nothing to remove: what was not committed was rolled back by DuckDB."""
        return []

    def publish(self) -> None:
        """Nothing to publish: each commit's records are current when it returns."""


def current_records(path: str | os.PathLike, stream: Stream) -> Iterator[dict]:
    """Every record of a stream's table (read-only; no file: nothing)."""
    if not Path(path).exists():
        return
    try:
        db = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise ConfigError(f"{path}: cannot be read as a DuckDB database: {str(exc).splitlines()[0]}") from None
    try:
        db.execute("SET TimeZone = 'UTC'")
        names = ", ".join(arrow.SCHEMAS[stream].names)
        reader = db.sql(f"SELECT {names} FROM {stream}").to_arrow_reader(50_000)
        for batch in reader:
            yield from arrow.to_dicts(batch, stream)
    finally:
        db.close()
