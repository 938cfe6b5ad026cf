"""PostgreSQL: one table per stream in a schema of harvester's own, each key once, the latest value.

``[output] format = "postgres"`` (extra ``harvester[postgres]``: asyncpg, measured faster than
psycopg 3's async API for this load). The DSN comes from the environment variable ``dsn_env``
(``HARVESTER_PG_DSN``) and is never logged, shown or stored: messages name its host, port,
database and user only.

- **Tables** ``<schema>.insights``, ``<schema>.media``, ``<schema>.accounts``: a column per record
  field (ids and times as text exactly as the API wrote them, counts ``bigint``, ``value``
  ``double precision``, dimensions and children ``text[]``) and ``key``, the natural key as text
  (:func:`harvester.records.key_text`), the primary key. Created and migrated by harvester at the
  start of a run, in one transaction under an advisory lock (two runs starting at once do not
  race), versioned in ``<schema>.harvester_schema`` like the state file; a database written by a
  newer harvester is refused.
- **A commit** sends what is buffered (each key once, sorted by key: :func:`write` encodes every
  record into its binary ``COPY`` row as it arrives) in one transaction, every stream in a fixed
  order: first as a binary ``COPY`` straight into the stream's table, in a savepoint, which is
  all a batch of new keys needs (half the server's work of a merge, measured); a key already
  there fails it (a unique violation, rolled back to the savepoint), and the batch is then
  copied into a temporary table and merged with ``INSERT ... SELECT ... ON CONFLICT (key) DO
  UPDATE``. A stream whose direct copy failed is merged for its next few commits before the
  direct copy is tried again (a nightly that fetches known keys again does not pay for a failed
  copy each commit). The transaction is the commit (:class:`Commit` has no parts), and only then
  does the state mark the units done. A crash before that loses the uncommitted batch, which the
  next run fetches again; a crash after the database commit and before the state commit fetches
  those units again, and the upsert makes that harmless.
- **Several runs at once** (shards of one nightly) may write the same tables: each copy and each
  merge goes in key order (streams in a fixed order too), so two transactions on overlapping
  keys wait for each other instead of deadlocking (a direct copy waiting on a key the other
  inserted fails once that commits, and merges), and a row is replaced only by a record
  harvested no earlier (``harvested_at``): the later run's value wins, whichever commits last.
- **Connection loss** (a restart, a terminated backend) is retried: reconnect with backoff and
  run the whole transaction again, for up to ``retry_seconds``; after that the run aborts and
  the next run resumes. At the start, a database that cannot be reached or used (down, wrong
  password, no right to create the schema) is a :class:`ConfigError` (exit 2) before any call.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import msgspec
import msgspec.inspect as mi

from ..errors import ConfigError, SinkError
from ..records import RECORD_TYPES, STREAM_OF, STREAMS, Record, Stream, key_text, natural_key
from .base import Commit, CommitPolicy, SinkFailure

if TYPE_CHECKING:
    import asyncpg

    from ..config.model import Output

SCHEMA_VERSION = 1
"""Version 1: a table per stream, ``key`` primary key, a column per field (fields added since are
added as columns at start, nullable: records before them have none)."""

INSTALL = "pip install 'harvester[postgres]'"


# -- columns ------------------------------------------------------------------------------------


def _sql_type(t: mi.Type) -> str:
    """The column type of a record field's type (its ``None`` dropped: every column is nullable)."""
    if isinstance(t, mi.UnionType):
        kinds = [k for k in t.types if not isinstance(k, mi.NoneType)]
        if len(kinds) == 1:
            return _sql_type(kinds[0])
        if all(isinstance(k, mi.IntType | mi.FloatType) for k in kinds):
            return "double precision"
        raise TypeError(f"no column type for {t}")
    if isinstance(t, mi.StrType | mi.LiteralType):
        return "text"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.IntType):
        return "bigint"
    if isinstance(t, mi.FloatType):
        return "double precision"
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return f"{_sql_type(t.item_type)}[]"
    raise TypeError(f"no column type for {t}")


def columns(stream: Stream) -> tuple[tuple[str, str], ...]:
    """``(name, SQL type)`` of a stream's table, ``key`` first, then the record's fields in order
    (the order of ``msgspec.structs.astuple``, which builds the rows)."""
    info = mi.type_info(RECORD_TYPES[stream])
    assert isinstance(info, mi.StructType)
    return (("key", 'text COLLATE "C"'), *((f.name, _sql_type(f.type)) for f in info.fields))


COLUMNS: dict[Stream, tuple[tuple[str, str], ...]] = {stream: columns(stream) for stream in STREAMS}
_FLOATS = {stream: tuple(i for i, (_, kind) in enumerate(cols) if kind == "double precision")
           for stream, cols in COLUMNS.items()}


# -- binary COPY rows ---------------------------------------------------------------------------
#
# asyncpg's copy_records_to_table spent 7-8 us a record encoding these rows (a codec call per
# field, arrays the slowest); most field values repeat from record to record (the account, the
# media, the metric, the run), so each column keeps the encoding of the values it has seen and a
# row is mostly dictionary look-ups joined into bytes: 3-4 us a record, key included, measured.

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""A binary COPY stream's signature, flags (none) and header extension (none)."""
COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_int32 = struct.Struct(">i").pack
_int8_field = struct.Struct(">iq").pack
_float8_field = struct.Struct(">id").pack
_array_head = struct.Struct(">iiiiii").pack
_ELEMENT_OID = {"text": 25, "bigint": 20, "double precision": 701, "boolean": 16}
_CACHED = 4096
"""Distinct values a column remembers the encoding of (then it forgets them and starts again)."""


def _text(value: str) -> bytes:
    # surrogatepass: a lone surrogate reaches the server as invalid UTF-8, which refuses the commit
    # with its own message, as asyncpg's encoding error did; it does not break write()
    data = value.encode("utf-8", "surrogatepass")
    return _int32(len(data)) + data


def _bigint(value: int) -> bytes:
    return _int8_field(8, value)


def _double(value: float) -> bytes:
    return _float8_field(8, value)


def _boolean(value: bool) -> bytes:
    return b"\x00\x00\x00\x01\x01" if value else b"\x00\x00\x00\x01\x00"


_SCALAR: dict[str, Callable[[Any], bytes]] = {"text": _text, "bigint": _bigint, "double precision": _double,
                                               "boolean": _boolean}


def _array(kind: str) -> Callable[[Sequence[Any]], bytes]:
    """The encoder of a one-dimensional array of ``kind`` (PostgreSQL's array_send layout)."""
    item, oid = _SCALAR[kind], _ELEMENT_OID[kind]
    empty = struct.pack(">iiii", 12, 0, 0, oid)

    def encode(values: Sequence[Any]) -> bytes:
        if not values:
            return empty
        body = b"".join([_NULL if v is None else item(v) for v in values])
        return _array_head(20 + len(body), 1, None in values, oid, len(values), 1) + body
    return encode


class _Seen(dict):
    """A column's encodings by value, encoding (and remembering, up to a bound) what it has not seen."""

    def __init__(self, encode: Callable[[Any], bytes]):
        super().__init__()
        self.encode = encode

    def __missing__(self, value: Any) -> bytes:
        data = _NULL if value is None else self.encode(value)
        if len(self) >= _CACHED:                # values of an earlier stretch of the run: forget them
            self.clear()
        self[value] = data
        return data


def _column_encoder(kind: str) -> Callable[[Any], bytes]:
    """``value -> field bytes`` (length and data, or the null marker) for a column type."""
    kind = kind.removesuffix(' COLLATE "C"')
    if kind == "double precision":              # not remembered: -0.0 == 0.0 but they differ
        return lambda value: _NULL if value is None else _double(value)
    if not kind.endswith("[]"):
        return _Seen(_SCALAR[kind]).__getitem__
    array = _array(kind[:-2])
    seen = _Seen(array).__getitem__

    def encode(values: Sequence[Any] | None) -> bytes:
        try:
            return seen(values)
        except TypeError:                       # a list, not a tuple: not hashable, so not remembered
            return array(values) if values is not None else _NULL
    return encode


_json = msgspec.json.Encoder().encode
_astuple = msgspec.structs.astuple


class RowEncoder:
    """A stream's records as binary COPY rows (its table's columns: the key, then the fields)."""

    def __init__(self, stream: Stream):
        cols = COLUMNS[stream]
        self.stream = stream
        self._names = [name for name, _ in cols[1:]]
        self._head = struct.pack(">h", len(cols))
        self._kinds = [kind for _, kind in cols[1:]]
        self._encoders = [_column_encoder(kind) for kind in self._kinds]
        self._folds = [kind != "double precision" for kind in self._kinds]
        """Columns whose equal values encode alike (not floats: ``-0.0 == 0.0``)."""

    def __call__(self, records: Sequence[Record]) -> tuple[list[bytes], list[bytes]]:
        """The records' keys (the UTF-8 of :func:`key_text`) and their rows, built column by
        column. The records of a unit (one call's) mostly share a value in most columns (the
        account, the media, the period, the run): such a column is encoded once and joined with
        its neighbours of the same kind, so a row is a join of a few parts, not one per field."""
        if not records:
            return [], []
        keys = [_json(natural_key(r)) for r in records]
        n = len(keys)
        parts: list[Sequence[bytes]] = [[self._head + _int32(len(k)) + k for k in keys]]
        same: list[bytes] = []
        columns = zip(*map(_astuple, records), strict=True)       # a tuple of values per field
        try:
            for encode, folds, values in zip(self._encoders, self._folds, columns, strict=True):
                if folds and values.count(values[0]) == n:
                    same.append(encode(values[0]))
                    continue
                if same:
                    parts.append([b"".join(same)] * n)
                    same = []
                parts.append(list(map(encode, values)))
        except (struct.error, OverflowError, TypeError, ValueError) as exc:
            raise SinkFailure(self._refusal(records, exc)) from None
        if same:
            parts.append([b"".join(same)] * n)
        return keys, list(map(b"".join, zip(*parts, strict=True)))

    def _refusal(self, records: Sequence[Record], exc: BaseException) -> str:
        """Which field of which record PostgreSQL cannot hold, and why (a count past bigint, say)."""
        for record in records:
            for name, kind, encode in zip(self._names, self._kinds, self._encoders, strict=True):
                try:
                    encode(getattr(record, name))
                except (struct.error, OverflowError, TypeError, ValueError) as error:
                    return (f"cannot write {self.stream} record {key_text(record)} to PostgreSQL: {name} = "
                            f"{getattr(record, name)!r} does not fit its column ({kind}): {error}")
        return f"cannot write {self.stream} records to PostgreSQL: {exc}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- the DSN, told without its secrets ----------------------------------------------------------


def describe(dsn: str) -> str:
    """Where a DSN points, for messages: host, port, database and user, never the password
    (URI ``postgresql://u:p@h:5432/db`` or ``key=value`` form)."""
    parts: dict[str, str] = {}
    if "://" in dsn:
        try:
            url = urlsplit(dsn)
            parts = {"host": url.hostname or "", "port": str(url.port or ""),
                     "database": unquote(url.path.lstrip("/")), "user": unquote(url.username or "")}
        except ValueError:
            return "an unreadable PostgreSQL URI"
    else:
        found = dict(re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn))
        parts = {"host": found.get("host", ""), "port": found.get("port", ""),
                 "database": found.get("dbname", ""), "user": found.get("user", "")}
        parts = {k: v.strip("'") for k, v in parts.items()}
    shown = [f"{k} {v}" for k, v in parts.items() if v]
    return ", ".join(shown) if shown else "the default server"


def _secrets(dsn: str) -> list[str]:
    """What must never be shown of a DSN: the whole string and its password."""
    found = [dsn]
    if "://" in dsn:
        try:
            url = urlsplit(dsn)
            if url.password:
                found += [url.password, unquote(url.password)]
        except ValueError:
            pass
    found += [m.strip("'") for m in re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _reason(exc: BaseException, dsn: str) -> str:
    """A driver's error as one line, with anything of the DSN's secrets masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in _secrets(dsn):
        text = text.replace(secret, "***")
    return text


# -- retries ------------------------------------------------------------------------------------


def _driver() -> Any:
    try:
        import asyncpg
    except ImportError:
        raise ConfigError(f'[output] format = "postgres" needs the asyncpg package: {INSTALL}') from None
    return asyncpg


def _retryable(exc: BaseException) -> bool:
    """Worth a new connection and the transaction again: anything but the server refusing the
    statement itself (bad data, a constraint, a missing right or object: SQLSTATE classes 22, 23,
    42, 0A, 2B, 44), which would only be refused again. A lost connection, a server starting or
    shutting down, a deadlock or serialization failure, a timeout: asked again."""
    asyncpg = _driver()
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", "") or "")[:2] not in _REFUSED
    return isinstance(exc, OSError | asyncio.TimeoutError | asyncpg.InterfaceError | asyncpg.InternalClientError)


_REFUSED = {"22", "23", "42", "0A", "2B", "44"}


class PostgresSink:
    """A :class:`harvester.sinks.base.Sink` into PostgreSQL; :meth:`open` it before the harvest."""

    def __init__(self, dsn: str, *, schema: str = "harvester", commit_seconds: float = 1.0,
                 commit_units: int = 100, commit_records: int = 50_000, retry_seconds: float = 60.0,
                 connect_timeout: float = 10.0, origin: str = "[output]", clock: Callable[[], float] = time.monotonic):
        self._dsn = dsn
        self.schema = schema
        self.policy = CommitPolicy(commit_seconds, units=commit_units, records=commit_records, clock=clock)
        """Every ``commit_seconds``, ``commit_units`` units or ``commit_records`` records: one transaction."""
        self.retry_seconds, self.connect_timeout = retry_seconds, connect_timeout
        self.origin = origin
        """How messages name the DSN's source (``[output] dsn_env = "HARVESTER_PG_DSN"``)."""
        self.where = describe(dsn)
        self._conn: asyncpg.Connection | None = None
        self._encode = {stream: RowEncoder(stream) for stream in STREAMS}
        self._rows: dict[Stream, dict[bytes, bytes]] = {stream: {} for stream in STREAMS}
        self._singles: dict[Stream, list[Record]] = {stream: [] for stream in STREAMS}
        """Records of one-record units (a media, an account) not encoded yet (see :data:`_SINGLES`)."""
        """Each stream's rows by key (the UTF-8 of its key text): a key written again replaces its row."""
        self._buffered = 0
        self._merge_only = dict.fromkeys(STREAMS, 0)
        """Commits each stream still merges without trying the direct copy first (after one failed)."""
        self.loaded: dict[str, int] = {"copied": 0, "merged": 0}
        """Rows committed by the direct copy and by the merge (for tests, the benchmark and the curious)."""
        self._units: list[str] = []
        self._broken = ""
        """Why a commit failed for good: later ones fail at once (their units are fetched again)."""
        self.reconnects = 0
        """Connections opened again after a loss (for tests and the curious)."""

    @classmethod
    def from_config(cls, output: Output, *, env: Mapping[str, str] | None = None, path: str = "<config>",
                    **kwargs: Any) -> PostgresSink:
        """The sink of an ``[output]`` table; its DSN from the environment (``ConfigError`` if unset)."""
        from ..config.dsn import dsn_problem
        env = os.environ if env is None else env
        origin = f'{path}: [output] dsn_env = "{output.dsn_env}"'
        if why := dsn_problem(output, env):
            raise ConfigError(f"{origin}: {why}")
        return cls(env[output.dsn_env], schema=output.schema, commit_seconds=output.commit_seconds,
                   commit_units=output.commit_units, origin=origin, **kwargs)

    def __repr__(self) -> str:
        return f"PostgresSink({self.where}, schema={self.schema!r})"

    # -- start: connect and migrate, or a ConfigError before any call ------------------------

    async def open(self) -> None:
        """Connect, create or migrate the schema; any failure is a :class:`ConfigError` naming
        the server (not the DSN) and what to do, and leaves nothing half-created."""
        asyncpg = _driver()
        try:
            self._conn = await self._connect()
        except ConfigError:
            raise
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            raise ConfigError(f"{self.origin}: PostgreSQL at {self.where} refused the login: "
                              f"{_reason(exc, self._dsn)}") from None
        except Exception as exc:
            raise ConfigError(f"{self.origin}: cannot connect to PostgreSQL at {self.where}: "
                              f"{_reason(exc, self._dsn)} (is the server running, and the DSN right?)") from None
        try:
            await self._migrate(self._conn)
            await self._prepare(self._conn)
        except ConfigError:
            await self._drop()
            raise
        except asyncpg.InsufficientPrivilegeError as exc:
            await self._drop()
            raise ConfigError(f"{self.origin}: the user at {self.where} may not create harvester's tables in "
                              f"schema {self.schema!r}: {_reason(exc, self._dsn)}; grant it CREATE on the "
                              "database (or create the schema for it)") from None
        except Exception as exc:
            await self._drop()
            raise ConfigError(f"{self.origin}: cannot prepare schema {self.schema!r} at {self.where}: "
                              f"{_reason(exc, self._dsn)}") from None

    async def _connect(self) -> asyncpg.Connection:
        asyncpg = _driver()
        try:
            return await asyncpg.connect(self._dsn, timeout=self.connect_timeout, command_timeout=None,
                                         server_settings={"application_name": "harvester"})
        except (ValueError, asyncpg.ClientConfigurationError) as exc:   # a DSN asyncpg cannot read
            raise ConfigError(f"{self.origin}: not a PostgreSQL DSN asyncpg can read: {_reason(exc, self._dsn)}; "
                              "expected postgresql://USER@HOST:5432/DBNAME (a password after USER, as "
                              "USER:PASSWORD)") from None

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        schema = _ident(self.schema)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"harvester schema {self.schema}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {schema}.harvester_schema (version integer NOT NULL)")
            version = await conn.fetchval(f"SELECT max(version) FROM {schema}.harvester_schema")
            if version is not None and version > SCHEMA_VERSION:
                raise ConfigError(f"{self.origin}: schema {self.schema!r} at {self.where} was written by a newer "
                                  f"harvester (schema version {version}, this one knows up to {SCHEMA_VERSION}): "
                                  "upgrade harvester, or use another schema")
            for stream, cols in COLUMNS.items():
                table = f"{schema}.{_ident(stream)}"
                body = ", ".join(f"{_ident(name)} {kind}" for name, kind in cols)
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY (key))")
                for name, kind in cols[1:]:          # fields added to a record since the table was made
                    await conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_ident(name)} {kind}")
            if version is None:
                await conn.execute(f"INSERT INTO {schema}.harvester_schema VALUES ($1)", SCHEMA_VERSION)
            elif version < SCHEMA_VERSION:
                await conn.execute(f"UPDATE {schema}.harvester_schema SET version = $1", SCHEMA_VERSION)

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        """This connection's loading tables (emptied by every commit)."""
        for stream in STREAMS:
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_ident('load_' + stream)} "
                               f"(LIKE {_ident(self.schema)}.{_ident(stream)}) ON COMMIT DELETE ROWS")

    async def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    # -- the Sink protocol ---------------------------------------------------------------------

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        """Encode the records into their COPY rows now: a harvest writes while the previous commit
        runs on the server, so this work overlaps it instead of delaying the next commit."""
        kind = type(records[0]) if records else None
        encoded = []
        if kind is not None and all(type(r) is kind for r in records):
            stream = STREAM_OF[kind]
            if len(records) == 1:                   # an object record: encoded with the next ones
                self._singles[stream].append(records[0])
                if len(self._singles[stream]) >= _SINGLES:
                    self._flush(stream)
            else:
                self._flush(stream)
                encoded.append((stream, self._encode[stream](records)))
        elif records:
            for stream in STREAMS:
                self._flush(stream)
            encoded = [(stream, self._encode[stream](chosen)) for stream in STREAMS
                       if (chosen := [r for r in records if STREAM_OF[type(r)] == stream])]
        for stream, (keys, rows) in encoded:   # all encoded first: a record refused adds nothing of its unit
            self._rows[stream].update(zip(keys, rows, strict=True))
        self._buffered += len(records)
        self._units.append(unit_id)

    def _flush(self, stream: Stream) -> None:
        """Encode the one-record units of a stream held so far, before anything written after them
        (the last written of a key wins). Their units are buffered already: a record refused here
        fails this sink for good, so no commit marks them done without their records."""
        singles = self._singles[stream]
        if not singles:
            return
        self._singles[stream] = []
        try:
            keys, rows = self._encode[stream](singles)
        except SinkFailure as exc:
            self._broken = str(exc)
            raise
        self._rows[stream].update(zip(keys, rows, strict=True))

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units), self._buffered)

    async def commit(self) -> Commit | None:
        """Everything written so far, in one transaction (again on a new connection if the
        connection is lost on the way)."""
        if not self._units:
            return None
        if self._broken:
            raise SinkFailure(f"an earlier commit failed: {self._broken}")
        for stream in STREAMS:
            self._flush(stream)
        units, rows = tuple(self._units), self._rows
        self._units, self._rows, self._buffered = [], {stream: {} for stream in STREAMS}, 0
        batches = {stream: _in_key_order(found) for stream in STREAMS if (found := rows[stream])}
        direct = set()
        for stream in batches:
            if self._merge_only[stream]:
                self._merge_only[stream] -= 1
            else:
                direct.add(stream)
        await self._with_retries(lambda conn: self._load(conn, batches, direct))
        for stream, batch in batches.items():
            self.loaded["copied" if stream in direct else "merged"] += len(batch)
        self.policy.committed()
        return Commit(units)

    async def close(self) -> Commit | None:
        try:
            return await self.commit()
        finally:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except Exception:
                    conn.terminate()

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
        asyncpg = _driver()
        async with conn.transaction():
            for stream, batch in batches.items():
                names = [name for name, _ in COLUMNS[stream]]
                if stream in direct:
                    try:
                        async with conn.transaction():       # a savepoint: a failed copy leaves nothing
                            await conn.copy_to_table(stream, schema_name=self.schema, source=_chunks(batch),
                                                     columns=names, format="binary")
                        continue
                    except asyncpg.UniqueViolationError:     # a key already there (or just inserted)
                        direct.discard(stream)
                        self._merge_only[stream] = MERGE_AFTER_CONFLICT
                await conn.copy_to_table("load_" + stream, source=_chunks(batch), columns=names,
                                         format="binary")
                await conn.execute(self._merge_sql(stream))  # in the order copied: the key order

    def _merge_sql(self, stream: Stream) -> str:
        names = [name for name, _ in COLUMNS[stream]]
        update = ", ".join(f"{_ident(n)} = excluded.{_ident(n)}" for n in names[1:])
        return (f"INSERT INTO {_ident(self.schema)}.{_ident(stream)} AS t SELECT * FROM {_ident('load_' + stream)} "
                f"ON CONFLICT (key) DO UPDATE SET {update} "
                "WHERE t.harvested_at IS NULL OR excluded.harvested_at IS NULL "
                "OR excluded.harvested_at >= t.harvested_at")

    async def _with_retries(self, work) -> None:
        """``work(conn)`` until it succeeds; a lost connection is opened again with backoff (0.1 s
        doubling to 5 s, jittered) for up to ``retry_seconds``."""
        if self._broken:
            raise SinkFailure(f"an earlier commit failed: {self._broken}")
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._drop()
                    self._conn = await self._connect()
                    await self._prepare(self._conn)
                    self.reconnects += 1
                await work(self._conn)
                return
            except ConfigError as exc:
                self._broken = str(exc)
                raise SinkFailure(self._broken) from None
            except Exception as exc:
                if not _retryable(exc):
                    self._broken = f"PostgreSQL at {self.where} refused a commit: {_reason(exc, self._dsn)}"
                    raise SinkFailure(self._broken) from None
                await self._drop()
                if time.monotonic() + delay > deadline:
                    self._broken = (f"lost the connection to PostgreSQL at {self.where} and could not get it back "
                                    f"in {self.retry_seconds:g} s: {_reason(exc, self._dsn)}; the next run resumes "
                                    "from the last commit")
                    raise SinkFailure(self._broken) from None
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)


_SINGLES = 64
"""One-record units a stream holds before encoding them together: a media or an account is
mostly values of its own, and one written alone cost 31 us against 12 us in a batch of them (the
account, the types, the run shared by the column), measured."""

MERGE_AFTER_CONFLICT = 8
"""Commits a stream merges after its direct copy failed, before it tries that again: a failed
copy costs at most its batch's copy (one key already there among many new ones), so this bounds
that to an eighth of the copies while the keys are mostly known, and a run that moves on to new
keys gets back to the direct copy."""

_CHUNK = 2048
"""Rows a COPY message holds (about 700 KiB of insights)."""


def _in_key_order(rows: Mapping[bytes, bytes]) -> list[bytes]:
    """A stream's rows (each key once, the last written) sorted by key: the bytes order of the
    keys' UTF-8 is the "C" collation's order, so the server inserts or merges in key order and
    takes its row locks in that order (two runs on overlapping keys wait instead of
    deadlocking; were one ever reached, it is retried like a lost connection). Sorting here
    saves the server a sort and a DISTINCT ON (10-15 % of its merge, measured)."""
    return list(map(rows.__getitem__, sorted(rows)))


async def _chunks(rows: list[bytes]) -> AsyncIterator[bytes]:
    """The binary COPY stream of sorted rows, joined a message at a time: the server starts on
    the first while the next is joined (asyncpg waits for the socket between them)."""
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        if start == 0:
            chunk.insert(0, COPY_HEADER)
        if start + _CHUNK >= len(rows):
            chunk.append(COPY_TRAILER)
        yield b"".join(chunk)


# -- reading back -------------------------------------------------------------------------------


def read_records(dsn: str, stream: Stream, schema: str = "harvester") -> list[dict[str, Any]]:
    """Every current record of a stream as the dict its JSONL line holds (``stream`` included,
    lists for arrays, ``None`` for nulls, whole numbers as ints). Runs its own event loop in a
    thread, so it may be called from sync code inside a running loop (the demo's check)."""
    result: list[dict[str, Any]] = []

    async def fetch() -> None:
        asyncpg = _driver()
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            names = [name for name, _ in COLUMNS[stream]]
            found = await conn.fetch(f"SELECT {', '.join(map(_ident, names[1:]))} FROM "
                                     f"{_ident(schema)}.{_ident(stream)} ORDER BY key")
        finally:
            await conn.close()
        floats = [i - 1 for i in _FLOATS[stream]]
        for record in found:
            values = list(record.values())
            for i in floats:
                v = values[i]
                if v is not None and v.is_integer():
                    values[i] = int(v)
            result.append({"stream": stream, **dict(zip(names[1:], values, strict=True))})

    _in_a_loop_of_its_own(fetch, f"{schema}.{stream}", dsn)
    return result


def export_csv(output: Output, stream: Stream, path: str | os.PathLike, names: Sequence[str], *,
               env: Mapping[str, str] | None = None) -> None:
    """A stream's current records written to ``path`` by the server's ``COPY ... TO STDOUT`` as
    CSV (the columns ``names``, arrays as JSON text, null unquoted): the bulk read of the report.
    Runs its own event loop in a thread, as :func:`read_records` does."""
    env = os.environ if env is None else env
    dsn = env.get(output.dsn_env, "")
    if not dsn:
        raise ConfigError(f'[output] dsn_env = "{output.dsn_env}": the environment variable is not set')
    kinds = dict(COLUMNS[stream])
    select = ", ".join(f"array_to_json({_ident(n)})" if kinds[n].endswith("[]") else _ident(n) for n in names)
    query = f"SELECT {select} FROM {_ident(output.schema)}.{_ident(stream)}"

    async def copy() -> None:
        conn = await _driver().connect(dsn, timeout=10)
        try:
            await conn.copy_from_query(query, output=str(path), format="csv")
        finally:
            await conn.close()

    _in_a_loop_of_its_own(copy, f"{output.schema}.{stream}", dsn)


def _in_a_loop_of_its_own(read: Callable[[], Coroutine[Any, Any, None]], table: str, dsn: str) -> None:
    """``read()`` on an event loop of its own in a thread, so that sync code may call it from inside
    a running loop (the demo's check); its failure a SinkError naming the table, never the password."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(read())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="harvester-pg-read")
    thread.start()
    thread.join()
    if failure:
        raise SinkError(f"cannot read {table} from PostgreSQL at {describe(dsn)}: {_reason(failure[0], dsn)}") from None


def current_records(output: Output, stream: Stream = "insights", *,
                    env: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The current records of a stream of an ``[output] format = "postgres"``, as
    :func:`harvester.sinks.manifest.current_records` gives them for JSONL."""
    env = os.environ if env is None else env
    dsn = env.get(output.dsn_env, "")
    if not dsn:
        raise ConfigError(f'[output] dsn_env = "{output.dsn_env}": the environment variable is not set')
    yield from read_records(dsn, stream, output.schema)
