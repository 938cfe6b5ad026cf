"""Checkpoints in SQLite (WAL): runs, units, committed parts, accounts and tokens.

A unit becomes ``done`` (or ``skipped``) in the same transaction that records the part its
records went to, and that transaction runs only after the sink made the part durable: the state
never runs ahead of the data. A run that dies leaves ``status='running'``; the next ``harvester
run`` of the same work (same fingerprint) resumes it: committed units are not called again and
what was written after the last checkpoint is removed (parts are cut back to their committed
``bytes``). Tokens are never stored, only the names of their variables.

The file carries its layout's version (``PRAGMA user_version``): a file from an older harvester
is brought up to date when opened, and a file from a newer one is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import msgspec

from .errors import StateError

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, config_path TEXT,
    since TEXT, until TEXT, started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    exit_code INTEGER, summary TEXT);
CREATE INDEX IF NOT EXISTS runs_by_fingerprint ON runs (fingerprint, started_at);
CREATE TABLE IF NOT EXISTS parts (
    run_id TEXT NOT NULL, part TEXT NOT NULL, records INTEGER NOT NULL, committed_at REAL NOT NULL,
    bytes INTEGER, PRIMARY KEY (run_id, part));
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL, unit_id TEXT NOT NULL, account_id TEXT, label TEXT, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_code INTEGER, last_error TEXT, part TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (run_id, unit_id));
CREATE TABLE IF NOT EXISTS accounts (
    run_id TEXT NOT NULL, account_id TEXT NOT NULL, token_key TEXT, status TEXT NOT NULL,
    reason TEXT, PRIMARY KEY (run_id, account_id));
CREATE TABLE IF NOT EXISTS tokens (
    run_id TEXT NOT NULL, token_key TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (run_id, token_key));
CREATE TABLE IF NOT EXISTS media (
    media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, product_type TEXT,
    harvested_at REAL NOT NULL, run_id TEXT);
"""


MediaRow = tuple[str, str, "str | None"]
"""``(media_id, account_id, product_type)`` of a media whose plain unit committed."""


def _to_version_1(db: sqlite3.Connection) -> None:
    """Files from before the layout was versioned: their media table may lack ``run_id`` (added
    so that a resumed run does not skip its own media) and has a ``posted`` column never filled."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(media)")}
    if not columns:
        return                                                 # no media table yet: SCHEMA makes it
    run_id = "run_id" if "run_id" in columns else "NULL"
    db.execute("CREATE TABLE media_v1 (media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, product_type TEXT, "
               "harvested_at REAL NOT NULL, run_id TEXT)")
    db.execute(f"INSERT INTO media_v1 SELECT media_id, account_id, product_type, harvested_at, {run_id} FROM media")
    db.execute("DROP TABLE media")
    db.execute("ALTER TABLE media_v1 RENAME TO media")


def _to_version_2(db: sqlite3.Connection) -> None:
    """Parts are appended to across commits: each row gains the committed length, ``bytes``
    (NULL in older rows: their part was written whole, so the whole file is committed)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(parts)")}
    if columns and "bytes" not in columns:                    # no parts table yet: SCHEMA makes it
        db.execute("ALTER TABLE parts ADD COLUMN bytes INTEGER")


MIGRATIONS = {1: _to_version_1, 2: _to_version_2}
"""Version -> what brings a file from the version before it to this one."""


class RunInfo(msgspec.Struct, frozen=True):
    run_id: str
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    since: str | None
    until: str | None
    exit_code: int | None
    resumed: bool = False


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            if "locked" in str(exc):
                raise StateError(f"{self.path}: in use by another harvester process ({exc}); wait for it to "
                                 "finish, or give this run its own [state] path") from exc
            raise StateError(f"{self.path}: not a harvester state file ({exc}); point [state] path at "
                             "another file, or remove this one to start afresh") from exc
        except StateError:
            self.db.close()
            raise

    def _upgrade(self) -> None:
        """Create the tables of a new file, or migrate an older one, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(f"{self.path}: written by a newer harvester (state version {version}; this one "
                                 f"reads up to {SCHEMA_VERSION}); upgrade harvester or use another [state] path")
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "runs" not in tables:                            # a new file
                version = SCHEMA_VERSION
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            for statement in filter(str.strip, SCHEMA.split(";")):
                self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    # -- runs -------------------------------------------------------------------------------

    def open_run(self, run_id: str, *, kind: str, fingerprint: str, config_path: str | None,
                 since: str | None, until: str | None) -> RunInfo:
        """Resume the unfinished run with this fingerprint, or start ``run_id``."""
        row = self.db.execute(
            "SELECT run_id FROM runs WHERE fingerprint = ? AND status IN ('running', 'stopped') "
            "ORDER BY started_at DESC LIMIT 1", (fingerprint,)).fetchone()
        if row:
            return msgspec.structs.replace(self.run(row[0]), resumed=True)
        self.db.execute(
            "INSERT INTO runs (run_id, kind, fingerprint, config_path, since, until, started_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            (run_id, kind, fingerprint, config_path, since, until, time.time()))
        return self.run(run_id)

    def run(self, run_id: str) -> RunInfo:
        row = self.db.execute(
            "SELECT run_id, kind, status, started_at, finished_at, since, until, exit_code "
            "FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunInfo(*row)

    def runs(self, limit: int = 10) -> list[RunInfo]:
        rows = self.db.execute(
            "SELECT run_id, kind, status, started_at, finished_at, since, until, exit_code "
            "FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        return [RunInfo(*row) for row in rows]

    def finish_run(self, run_id: str, *, status: str, exit_code: int, summary: bytes | None = None) -> None:
        self.db.execute("UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, summary = ? WHERE run_id = ?",
                        (status, exit_code, time.time(), summary, run_id))

    # -- checkpoints ------------------------------------------------------------------------

    def committed_parts(self, run_id: str) -> dict[str, int | None]:
        """``part -> committed length in bytes`` (``None``: the whole file) of the run's parts."""
        return dict(self.db.execute("SELECT part, bytes FROM parts WHERE run_id = ?", (run_id,)))

    def finished_units(self, run_id: str) -> set[str]:
        """Units that need no call on resume: done or skipped (failed ones are tried again)."""
        return {r[0] for r in self.db.execute(
            "SELECT unit_id FROM units WHERE run_id = ? AND status IN ('done', 'skipped')", (run_id,))}

    def commit(self, run_id: str, part: str, records: int, units: Mapping[str, tuple[str, str, str]],
               media: Iterable[MediaRow] = (), media_harvested_at: float | None = None,
               part_bytes: int | None = None) -> None:
        """Record a durable part and the units it holds, ``unit_id -> (status, account_id, label)``,
        and when the media among them were harvested (for refresh tiers), in one transaction.
        ``records`` and ``part_bytes`` are the part's totals so far (a part grows over commits;
        ``None`` bytes: the whole file)."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            if part:
                self.db.execute("INSERT OR REPLACE INTO parts (run_id, part, records, committed_at, bytes) "
                                "VALUES (?, ?, ?, ?, ?)", (run_id, part, records, now, part_bytes))
            self.db.executemany(
                "INSERT INTO units (run_id, unit_id, account_id, label, status, part, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, unit_id) DO UPDATE SET "
                "status = excluded.status, part = excluded.part, updated_at = excluded.updated_at",
                [(run_id, uid, acc, label, status, part or None, now) for uid, (status, acc, label) in units.items()])
            self.db.executemany("INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?)",
                                [(m, acc, product, now if media_harvested_at is None else media_harvested_at, run_id)
                                 for m, acc, product in media])

    def unit_failed(self, run_id: str, unit_id: str, *, account_id: str, label: str, reason: str,
                    code: int | None = None, attempts: int = 0) -> None:
        self.db.execute(
            "INSERT INTO units (run_id, unit_id, account_id, label, status, attempts, last_code, last_error, updated_at) "
            "VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?) ON CONFLICT (run_id, unit_id) DO UPDATE SET "
            "status = 'failed', attempts = excluded.attempts, last_code = excluded.last_code, "
            "last_error = excluded.last_error, updated_at = excluded.updated_at",
            (run_id, unit_id, account_id, label, attempts, code, reason, time.time()))

    def set_token(self, run_id: str, token_key: str, status: str, reason: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)", (run_id, token_key, status, reason))

    def set_account(self, run_id: str, account_id: str, token_key: str, status: str, reason: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)",
                        (run_id, account_id, token_key, status, reason))

    # -- media refresh ----------------------------------------------------------------------

    def last_harvested(self, media_ids: Sequence[str], *, run_id: str) -> dict[str, float]:
        """When each of these media was last harvested by a run other than ``run_id`` (media that
        ``run_id`` itself harvested before it was interrupted are left to its unit checkpoints)."""
        if not media_ids:
            return {}
        marks = ",".join("?" * len(media_ids))
        return dict(self.db.execute(f"SELECT media_id, harvested_at FROM media WHERE media_id IN ({marks}) "
                                    "AND run_id IS NOT ?", (*media_ids, run_id)))

    # -- reports ----------------------------------------------------------------------------

    def unit_counts(self, run_id: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM units WHERE run_id = ? GROUP BY status", (run_id,)))

    def failures(self, run_id: str, limit: int = 50) -> list[tuple[str, str, str]]:
        return self.db.execute(
            "SELECT account_id, label, last_error FROM units WHERE run_id = ? AND status = 'failed' "
            "ORDER BY updated_at LIMIT ?", (run_id, limit)).fetchall()

    def dead_tokens(self, run_id: str) -> list[tuple[str, str]]:
        return self.db.execute("SELECT token_key, reason FROM tokens WHERE run_id = ? AND status = 'dead'",
                               (run_id,)).fetchall()
