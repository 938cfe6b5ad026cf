"""The sink's one connection to PostgreSQL (asyncpg): opened with every failure told as a
:class:`ConfigError` before any call, and opened again after a loss.

**Connection loss** (a restart, a terminated backend) is retried: reconnect with backoff and run
the whole transaction again, for up to ``retry_seconds``; after that the commit fails for good
(:class:`SinkFailure`) and the next run resumes. A statement the server refuses (bad data, a
constraint, a missing right) is not asked again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ..base import SinkFailure
from .dsn import describe, reason

if TYPE_CHECKING:
    import asyncpg

INSTALL = "pip install 'harvester[postgres]'"
REFUSED = {"22", "23", "42", "0A", "2B", "44"}
"""SQLSTATE classes of a statement the server refuses: asked again, it would be refused again."""

Work = Callable[["asyncpg.Connection"], Awaitable[None]]
"""What runs on the connection: one transaction, run again whole after a loss."""


def driver() -> Any:
    """The asyncpg module, or a ConfigError naming the install."""
    try:
        import asyncpg
    except ImportError:
        raise ConfigError(f'[output] format = "postgres" needs the asyncpg package: {INSTALL}') from None
    return asyncpg


def retryable(exc: BaseException) -> bool:
    """Worth a new connection and the transaction again: anything but the server refusing the
    statement itself (bad data, a constraint, a missing right or object: SQLSTATE classes 22, 23,
    42, 0A, 2B, 44), which would only be refused again. A lost connection, a server starting or
    shutting down, a deadlock or serialization failure, a timeout: asked again."""
    asyncpg = driver()
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", "") or "")[:2] not in REFUSED
    return isinstance(exc, OSError | asyncio.TimeoutError | asyncpg.InterfaceError | asyncpg.InternalClientError)


class Connection:
    """One asyncpg connection; ``setup(conn)`` runs on every connection opened (the loading tables)."""

    def __init__(self, dsn: str, setup: Work, *, origin: str, connect_timeout: float, retry_seconds: float):
        self._dsn = dsn
        self._setup = setup
        self.origin = origin
        """How messages name the DSN's source (``[output] dsn_env = "HARVESTER_PG_DSN"``)."""
        self.where = describe(dsn)
        self.connect_timeout, self.retry_seconds = connect_timeout, retry_seconds
        self._conn: asyncpg.Connection | None = None
        self.reconnects = 0
        """Connections opened again after a loss (for tests and the curious)."""

    def reason(self, exc: BaseException) -> str:
        """A driver's error as one line, the DSN's secrets masked."""
        return reason(exc, self._dsn)

    async def open(self, install: Work) -> None:
        """Connect and ``install`` (the schema and the loading tables); a failure to connect is a
        :class:`ConfigError` naming the server (not the DSN) and what to do, and any failure leaves
        no connection open."""
        asyncpg = driver()
        try:
            self._conn = await self._connect()
        except ConfigError:
            raise
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            raise ConfigError(f"{self.origin}: PostgreSQL at {self.where} refused the login: "
                              f"{self.reason(exc)}") from None
        except Exception as exc:
            raise ConfigError(f"{self.origin}: cannot connect to PostgreSQL at {self.where}: "
                              f"{self.reason(exc)} (is the server running, and the DSN right?)") from None
        try:
            await install(self._conn)
        except BaseException:
            self.terminate()
            raise

    async def _connect(self) -> asyncpg.Connection:
        asyncpg = driver()
        try:
            return await asyncpg.connect(self._dsn, timeout=self.connect_timeout, command_timeout=None,
                                         server_settings={"application_name": "harvester"})
        except (ValueError, asyncpg.ClientConfigurationError) as exc:   # a DSN asyncpg cannot read
            raise ConfigError(f"{self.origin}: not a PostgreSQL DSN asyncpg can read: {self.reason(exc)}; "
                              "expected postgresql://USER@HOST:5432/DBNAME (a password after USER, as "
                              "USER:PASSWORD)") from None

    async def run(self, work: Work) -> None:
        """``work(conn)`` until it succeeds; a lost connection is opened again with backoff (0.1 s
        doubling to 5 s, jittered) for up to ``retry_seconds``. A failure for good is a
        :class:`SinkFailure` saying why."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self.terminate()
                    self._conn = await self._connect()
                    await self._setup(self._conn)
                    self.reconnects += 1
                await work(self._conn)
                return
            except ConfigError as exc:
                raise SinkFailure(str(exc)) from None
            except Exception as exc:
                if not retryable(exc):
                    raise SinkFailure(f"PostgreSQL at {self.where} refused a commit: {self.reason(exc)}") from None
                self.terminate()
                if time.monotonic() + delay > deadline:
                    raise SinkFailure(f"lost the connection to PostgreSQL at {self.where} and could not get it "
                                      f"back in {self.retry_seconds:g} s: {self.reason(exc)}; the next run resumes "
                                      "from the last commit") from None
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)

    async def backend_pid(self) -> int:
        """The server process serving this connection (a benchmark reads its CPU time)."""
        assert self._conn is not None, "open() first"
        return int(await self._conn.fetchval("SELECT pg_backend_pid()"))

    def terminate(self) -> None:
        """Drop the connection at once, as a killed process would (what is not committed is lost)."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        """Close it politely (5 s), else terminate it."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                conn.terminate()
