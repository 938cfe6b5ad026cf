"""One DuckDB database file, a table per stream (``insights``, ``media``, ``accounts``), upserted.

Each table has the stream's typed columns (arrow.py) and a primary key: ``media_id`` for media,
``(account_id, day)`` for accounts, and for insights ``key_text``, the natural key as one string
(its fields may be null or lists, which a primary key cannot hold) computed in SQL from the
columns. A commit loads each stream's buffered records as one Arrow table and merges it with
``INSERT OR REPLACE`` (the latest value of a key wins), every stream in one transaction: the
file holds each key once, with the value of the last commit that wrote it, and a crash loses only
the uncommitted batch (DuckDB's write-ahead log), whose units the state has not checkpointed and
the next attempt fetches again. Upserts make the overlap harmless: a batch committed to the
database whose checkpoint was lost is written again over itself. So there is nothing to recover
and nothing to publish: a record is current as soon as its commit returns.

The file carries its schema version (table ``harvester_schema``): a file of a newer harvester is
refused, an older one migrated. A file another process holds (DuckDB allows one writer) is a
ConfigError before any call, as is one that is not a DuckDB database.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import ConfigError
from ..records import STREAM_OF, STREAMS, Record, Stream
from . import arrow
from .base import INSIGHTS_PREFIX, Commit, PartCommit

SCHEMA_VERSION = 1

_SQL_TYPES = {pa.string(): "VARCHAR", arrow.TIMESTAMP: "TIMESTAMPTZ", pa.date32(): "DATE",
              pa.list_(pa.string()): "VARCHAR[]", pa.float64(): "DOUBLE", pa.int64(): "BIGINT",
              pa.bool_(): "BOOLEAN"}

_INSIGHT_KEY = ("CASE WHEN end_time IS NOT NULL "
                "THEN to_json([object_id, metric, period, timeframe, to_json(dimension_keys)::VARCHAR, "
                "to_json(dimension_values)::VARCHAR, epoch(end_time)::VARCHAR, observed_on::VARCHAR]) "
                "ELSE to_json([object_id, metric, period, timeframe, to_json(dimension_keys)::VARCHAR, "
                "to_json(dimension_values)::VARCHAR, epoch(since)::VARCHAR, epoch(until)::VARCHAR, "
                "observed_on::VARCHAR]) END::VARCHAR")
"""The natural key (records.make_key) as a string: end_time, or since and until when it is null."""

PRIMARY_KEYS: dict[Stream, tuple[str, ...]] = {"insights": ("key_text",), "media": ("media_id",),
                                               "accounts": ("account_id", "day")}


def open_database(path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A connection to the file, or a ConfigError saying why not (locked, not a database)."""
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


def _create(db: duckdb.DuckDBPyConnection, path: Path) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS harvester_schema (version INTEGER NOT NULL)")
    row = db.execute("SELECT max(version) FROM harvester_schema").fetchone()
    version = row[0] if row else None
    if version is not None and version > SCHEMA_VERSION:
        raise ConfigError(f"{path}: written by a newer harvester (schema version {version}; this one knows "
                          f"{SCHEMA_VERSION}): upgrade harvester or choose another [output] path")
    db.execute("BEGIN")
    for stream in STREAMS:
        columns = [f"{name} {_SQL_TYPES[arrow.SCHEMAS[stream].field(name).type]}"
                   for name in arrow.SCHEMAS[stream].names]
        if stream == "insights":
            columns.insert(0, "key_text VARCHAR")
        db.execute(f"CREATE TABLE IF NOT EXISTS {stream} ({', '.join(columns)}, "
                   f"PRIMARY KEY ({', '.join(PRIMARY_KEYS[stream])}))")
    if version is None:
        db.execute("INSERT INTO harvester_schema VALUES (?)", [SCHEMA_VERSION])
    db.execute("COMMIT")


class DuckdbSink:
    def __init__(self, path: str | os.PathLike, run_id: str, *, commit_seconds: float = 1.0,
                 batch_records: int = 100_000):
        self.path = Path(path)
        self.run_id = run_id
        self.commit_seconds, self.batch_records = commit_seconds, batch_records
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
        self._committed_at = time.monotonic()
        self._attempt = uuid.uuid4().hex[:12]
        self._insights = 0                      # records this attempt committed to insights

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        for record in records:
            self._buffers[STREAM_OF[type(record)]].append(record)
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        """Every ``commit_seconds`` or ``batch_records`` records; not every ``commit_units`` units:
        a DuckDB commit costs a log sync and an index merge (tens of ms), which a commit per 100
        calls would pay thousands of times a harvest. A crash still repeats at most
        ``commit_seconds`` of calls."""
        return bool(self._units) and (self._buffered >= self.batch_records
                                      or time.monotonic() - self._committed_at >= self.commit_seconds)

    async def commit(self) -> Commit | None:
        if not self._units:
            return None
        units, self._units, self._committed_at, self._buffered = tuple(self._units), [], time.monotonic(), 0
        batches, self._buffers = self._buffers, {stream: [] for stream in STREAMS}
        await asyncio.to_thread(self._upsert, batches)
        self._insights += len(batches["insights"])
        # The state counts records by parts: one per attempt, its running total of insights.
        return Commit(units, (PartCommit(f"{INSIGHTS_PREFIX}{self.path.name}#{self._attempt}", self._insights),))

    def _upsert(self, batches: Mapping[Stream, Sequence[Record]]) -> None:
        db = self._db.cursor()
        try:
            db.execute("BEGIN")
            for stream, records in batches.items():
                if records:
                    staged = arrow.to_table(stream, records)  # noqa: F841 (read by name in the SQL)
                    key = f"{_INSIGHT_KEY} AS key_text, " if stream == "insights" else ""
                    db.execute(f"INSERT OR REPLACE INTO {stream} SELECT {key}* FROM staged")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    async def close(self) -> Commit | None:
        commit = await self.commit()
        self._db.close()
        return commit

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
