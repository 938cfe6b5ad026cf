"""harvester's schema in a database: its tables made or migrated at the start of a run, each
connection's loading tables, and the merge that upserts a loaded batch.

The tables (:mod:`.columns`) are created and migrated in one transaction under an advisory lock
(two runs starting at once do not race), versioned in ``<schema>.harvester_schema`` like the
state file; a database written by a newer harvester is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...records import STREAMS, Stream
from .columns import COLUMNS, field_names, ident, table
from .connection import driver

if TYPE_CHECKING:
    import asyncpg

SCHEMA_VERSION = 1
"""Version 1: a table per stream, ``key`` primary key, a column per field (fields added since are
added as columns at start, nullable: records before them have none)."""


class Schema:
    """The schema ``name`` at ``where`` (messages start with ``origin``; ``reason`` tells a driver's
    error without the DSN's secrets)."""

    def __init__(self, name: str, *, origin: str, where: str, reason: Callable[[BaseException], str]):
        self.name, self.origin, self.where, self._reason = name, origin, where, reason

    async def install(self, conn: asyncpg.Connection) -> None:
        """Create or migrate the tables and prepare the loading tables; any failure is a
        :class:`ConfigError` saying what to do (a missing right: which to grant)."""
        asyncpg = driver()
        try:
            await self.migrate(conn)
            await self.prepare(conn)
        except ConfigError:
            raise
        except asyncpg.InsufficientPrivilegeError as exc:
            raise ConfigError(f"{self.origin}: the user at {self.where} may not create harvester's tables in "
                              f"schema {self.name!r}: {self._reason(exc)}; grant it CREATE on the "
                              "database (or create the schema for it)") from None
        except Exception as exc:
            raise ConfigError(f"{self.origin}: cannot prepare schema {self.name!r} at {self.where}: "
                              f"{self._reason(exc)}") from None

    async def migrate(self, conn: asyncpg.Connection) -> None:
        """The tables of every stream as this harvester writes them, in one transaction."""
        schema = ident(self.name)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"harvester schema {self.name}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {schema}.harvester_schema (version integer NOT NULL)")
            version = await conn.fetchval(f"SELECT max(version) FROM {schema}.harvester_schema")
            if version is not None and version > SCHEMA_VERSION:
                raise ConfigError(f"{self.origin}: schema {self.name!r} at {self.where} was written by a newer "
                                  f"harvester (schema version {version}, this one knows up to {SCHEMA_VERSION}): "
                                  "upgrade harvester, or use another schema")
            for stream, cols in COLUMNS.items():
                body = ", ".join(f"{ident(name)} {kind}" for name, kind in cols)
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {table(self.name, stream)} ({body}, PRIMARY KEY (key))")
                for name, kind in cols[1:]:          # fields added to a record since the table was made
                    await conn.execute(f"ALTER TABLE {table(self.name, stream)} "
                                       f"ADD COLUMN IF NOT EXISTS {ident(name)} {kind}")
            if version is None:
                await conn.execute(f"INSERT INTO {schema}.harvester_schema VALUES ($1)", SCHEMA_VERSION)
            elif version < SCHEMA_VERSION:
                await conn.execute(f"UPDATE {schema}.harvester_schema SET version = $1", SCHEMA_VERSION)

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """This connection's loading tables (emptied by every commit)."""
        for stream in STREAMS:
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {ident(loading(stream))} "
                               f"(LIKE {table(self.name, stream)}) ON COMMIT DELETE ROWS")

    def merge_sql(self, stream: Stream) -> str:
        """The loading table upserted into the stream's table: a row is replaced only by a record
        harvested no earlier (``harvested_at``), so the later run's value wins, whichever commits last."""
        update = ", ".join(f"{ident(n)} = excluded.{ident(n)}" for n in field_names(stream))
        return (f"INSERT INTO {table(self.name, stream)} AS t SELECT * FROM {ident(loading(stream))} "
                f"ON CONFLICT (key) DO UPDATE SET {update} "
                "WHERE t.harvested_at IS NULL OR excluded.harvested_at IS NULL "
                "OR excluded.harvested_at >= t.harvested_at")


def loading(stream: Stream) -> str:
    """The name of a stream's loading table (a temporary table of each connection)."""
    return "load_" + stream
