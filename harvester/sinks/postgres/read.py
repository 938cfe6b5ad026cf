"""Reading the current records back: an async reader (asyncpg) for callers on a running loop, a
sync one (psycopg's synchronous connection) for sync callers; neither runs an event loop of its own.

Both give each current record of a stream as the dict its JSONL line holds (``stream`` included,
lists for arrays, ``None`` for nulls, whole numbers as ints), in key order; a failure is a
:class:`SinkError` naming the table and the server, never the password.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, SinkError
from ...records import Stream
from .columns import FLOATS, field_names, ident, table
from .connection import INSTALL, driver
from .dsn import describe, reason

if TYPE_CHECKING:
    from ...config.model import Output

TIMEOUT = 10
"""Seconds a reader waits for its connection."""


async def fetch_records(dsn: str, stream: Stream, schema: str = "harvester") -> list[dict[str, Any]]:
    """Every current record of a stream (asyncpg, on the caller's loop)."""
    try:
        conn = await driver().connect(dsn, timeout=TIMEOUT)
        try:
            found = await conn.fetch(select(schema, stream))
        finally:
            await conn.close()
    except ConfigError:
        raise
    except Exception as exc:
        raise failure(exc, f"{schema}.{stream}", dsn) from None
    return as_dicts(stream, [tuple(record.values()) for record in found])


def read_records(dsn: str, stream: Stream, schema: str = "harvester") -> list[dict[str, Any]]:
    """Every current record of a stream (psycopg's sync connection: the caller waits, no loop)."""
    psycopg = sync_driver()
    try:
        with psycopg.connect(dsn, connect_timeout=TIMEOUT, autocommit=True) as conn:
            found = conn.execute(select(schema, stream)).fetchall()
    except Exception as exc:
        raise failure(exc, f"{schema}.{stream}", dsn) from None
    return as_dicts(stream, found)


def current_records(output: Output, stream: Stream = "insights", *,
                    env: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The current records of a stream of an ``[output] format = "postgres"``, as
    :func:`harvester.sinks.manifest.current_records` gives them for JSONL."""
    yield from read_records(dsn_of(output, env), stream, output.schema)


async def fetch_current_records(output: Output, stream: Stream = "insights", *,
                                env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """:func:`current_records` for a caller on a running loop."""
    return await fetch_records(dsn_of(output, env), stream, output.schema)


def select(schema: str, stream: Stream) -> str:
    """Every field of every row of a stream's table, in key order."""
    return f"SELECT {', '.join(map(ident, field_names(stream)))} FROM {table(schema, stream)} ORDER BY key"


def as_dicts(stream: Stream, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`select` as the dicts a JSONL line holds (a whole float an int, as JSON writes it)."""
    names = field_names(stream)
    floats = [i - 1 for i in FLOATS[stream]]
    result = []
    for row in rows:
        values = list(row)
        for i in floats:
            v = values[i]
            if v is not None and v.is_integer():
                values[i] = int(v)
        result.append({"stream": stream, **dict(zip(names, values, strict=True))})
    return result


def dsn_of(output: Output, env: Mapping[str, str] | None = None) -> str:
    """The DSN of ``[output] dsn_env``, or a ConfigError saying it is not set."""
    env = os.environ if env is None else env
    dsn = env.get(output.dsn_env, "")
    if not dsn:
        raise ConfigError(f'[output] dsn_env = "{output.dsn_env}": the environment variable is not set')
    return dsn


def sync_driver() -> Any:
    """The psycopg module (a synchronous driver, for sync readers), or a ConfigError naming the install."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError(f"reading PostgreSQL back in sync code needs the psycopg package: {INSTALL}") from None
    return psycopg


def failure(exc: BaseException, where: str, dsn: str) -> SinkError:
    """A failed read as a SinkError naming the table and the server, never the password."""
    return SinkError(f"cannot read {where} from PostgreSQL at {describe(dsn)}: {reason(exc, dsn)}")
