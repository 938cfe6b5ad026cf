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
- **A commit** loads what is buffered with binary ``COPY`` into a temporary table per stream and
  merges it with ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` in key order (each key
  once, sorted by the client), every stream in one transaction: the transaction is the commit
  (:class:`Commit` has no parts), and only then does the state mark the units done. A crash
  before that loses the uncommitted batch, which the next run fetches again; a crash after the
  database commit and before the state commit fetches those units again, and the upsert makes
  that harmless.
- **Several runs at once** (shards of one nightly) may write the same tables: each merge takes
  its row locks in key order (streams in a fixed order too), so two merges on overlapping keys
  wait for each other instead of deadlocking, and a row is replaced only by a record harvested
  no earlier (``harvested_at``): the later run's value wins, whichever commits last.
- **Connection loss** (a restart, a terminated backend) is retried: reconnect with backoff and
  run the whole transaction again, for up to ``retry_seconds``; after that the run aborts and
  the next run resumes. At the start, a database that cannot be reached or used (down, wrong
  password, no right to create the schema) is a :class:`ConfigError` (exit 2) before any call.
"""

from __future__ import annotations

import asyncio
import operator
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import msgspec
import msgspec.inspect as mi

from ..errors import ConfigError, SinkError
from ..records import RECORD_TYPES, STREAM_OF, STREAMS, Record, Stream, key_text
from .base import Commit, SinkFailure

if TYPE_CHECKING:
    import asyncpg

    from ..config.model import Output

SCHEMA_VERSION = 1
"""Version 1: a table per stream, ``key`` primary key, a column per field (fields added since are
added as columns at start, nullable: records before them have none)."""

DEFAULT_DSN_ENV = "HARVESTER_PG_DSN"
INSTALL = "pip install 'harvester[postgres]'"

_astuple = msgspec.structs.astuple


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


def row(record: Record) -> tuple[Any, ...]:
    """A record as the row COPY sends: its key text, then its fields."""
    return (key_text(record), *_astuple(record))


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
                 connect_timeout: float = 10.0, origin: str = "[output]"):
        self._dsn = dsn
        self.schema = schema
        self.commit_seconds, self.commit_units, self.commit_records = commit_seconds, commit_units, commit_records
        self.retry_seconds, self.connect_timeout = retry_seconds, connect_timeout
        self.origin = origin
        """How messages name the DSN's source (``[output] dsn_env = "HARVESTER_PG_DSN"``)."""
        self.where = describe(dsn)
        self._conn: asyncpg.Connection | None = None
        self._rows: dict[Stream, list[tuple[Any, ...]]] = {stream: [] for stream in STREAMS}
        self._buffered = 0
        self._units: list[str] = []
        self._committed_at = time.monotonic()
        self._broken = ""
        """Why a commit failed for good: later ones fail at once (their units are fetched again)."""
        self.reconnects = 0
        """Connections opened again after a loss (for tests and the curious)."""

    @classmethod
    def from_config(cls, output: Output, *, env: Mapping[str, str] | None = None, path: str = "<config>",
                    **kwargs: Any) -> PostgresSink:
        """The sink of an ``[output]`` table; its DSN from the environment (``ConfigError`` if unset)."""
        env = os.environ if env is None else env
        origin = f'{path}: [output] dsn_env = "{output.dsn_env}"'
        dsn = env.get(output.dsn_env, "")
        if not dsn.strip():
            raise ConfigError(f"{origin}: the environment variable is not set; it must hold the DSN of the "
                              "PostgreSQL database, such as postgresql://user:password@host:5432/dbname")
        return cls(dsn, schema=output.schema, commit_seconds=output.commit_seconds,
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
                              "expected postgresql://user:password@host:5432/dbname") from None

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
        for record in records:
            self._rows[STREAM_OF[type(record)]].append(row(record))
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return bool(self._units) and (len(self._units) >= self.commit_units or self._buffered >= self.commit_records
                                      or time.monotonic() - self._committed_at >= self.commit_seconds)

    async def commit(self) -> Commit | None:
        """Everything written so far, in one transaction (again on a new connection if the
        connection is lost on the way)."""
        if not self._units:
            return None
        units, rows = tuple(self._units), self._rows
        self._units, self._rows, self._buffered = [], {stream: [] for stream in STREAMS}, 0
        await self._with_retries(lambda conn: self._load(conn, rows))
        self._committed_at = time.monotonic()
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

    async def _load(self, conn: asyncpg.Connection, rows: Mapping[Stream, list[tuple[Any, ...]]]) -> None:
        schema = _ident(self.schema)
        async with conn.transaction():
            for stream in STREAMS:                   # a fixed order: two runs lock tables alike
                if not rows[stream]:
                    continue
                cols = COLUMNS[stream]
                names = [name for name, _ in cols]
                load = _ident("load_" + stream)
                await conn.copy_records_to_table("load_" + stream, records=_in_key_order(rows[stream]),
                                                 columns=names)
                update = ", ".join(f"{_ident(n)} = excluded.{_ident(n)}" for n in names[1:])
                target = f"{schema}.{_ident(stream)}"
                await conn.execute(               # in the order copied: the key order (see _in_key_order)
                    f"INSERT INTO {target} AS t SELECT * FROM {load} "
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


def _in_key_order(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each key once (the last written), sorted by key. Sorting here costs the client ~0.5 µs a
    row and saves the server a sort and a DISTINCT ON (10-15 % of its merge, measured); a fresh
    temporary table is read back in the order it was copied, so the merge takes its row locks in
    key order (Python's str order is the "C" collation's byte order: UTF-8 keeps code point
    order). Were it ever read otherwise, a deadlock is retried like a lost connection."""
    return sorted({r[0]: r for r in rows}.values(), key=_first)


_first = operator.itemgetter(0)


# -- reading back -------------------------------------------------------------------------------


def read_records(dsn: str, stream: Stream, schema: str = "harvester") -> list[dict[str, Any]]:
    """Every current record of a stream as the dict its JSONL line holds (``stream`` included,
    lists for arrays, ``None`` for nulls, whole numbers as ints). Runs its own event loop in a
    thread, so it may be called from sync code inside a running loop (the demo's check)."""
    result: list[dict[str, Any]] = []
    failure: list[BaseException] = []

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

    def run() -> None:
        try:
            asyncio.run(fetch())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="harvester-pg-read")
    thread.start()
    thread.join()
    if failure:
        raise SinkError(f"cannot read {schema}.{stream} from PostgreSQL at {describe(dsn)}: "
                        f"{_reason(failure[0], dsn)}") from None
    return result


def current_records(output: Output, stream: Stream = "insights", *,
                    env: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The current records of a stream of an ``[output] format = "postgres"``, as
    :func:`harvester.sinks.manifest.current_records` gives them for JSONL."""
    env = os.environ if env is None else env
    dsn = env.get(output.dsn_env, "")
    if not dsn:
        raise ConfigError(f'[output] dsn_env = "{output.dsn_env}": the environment variable is not set')
    yield from read_records(dsn, stream, output.schema)
