"""The state file's layout: every table (:data:`SCHEMA`), its version (``PRAGMA user_version``)
and the migrations that bring an older file up to it, and opening a file (created, migrated, or
refused with a message saying what to do).

A file from an older harvester is brought up to date when opened, in one transaction; a file
from a newer one is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import StateError

SCHEMA_VERSION = 6
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, config_path TEXT,
    since TEXT, until TEXT, started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    exit_code INTEGER, summary TEXT);
CREATE INDEX IF NOT EXISTS runs_by_fingerprint ON runs (fingerprint, started_at);
CREATE TABLE IF NOT EXISTS parts (
    run_id TEXT NOT NULL, part TEXT NOT NULL, records INTEGER NOT NULL, committed_at REAL NOT NULL,
    bytes INTEGER, PRIMARY KEY (run_id, part));
-- a unit's checkpoints, appended: its latest row (the highest rowid) is its status (LATEST_UNITS)
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL, unit_id TEXT NOT NULL, account_id TEXT, label TEXT, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_code INTEGER, last_error TEXT, part TEXT,
    updated_at REAL NOT NULL, last_subcode INTEGER, last_type TEXT, last_message TEXT);
CREATE INDEX IF NOT EXISTS units_by_run ON units (run_id);
CREATE TABLE IF NOT EXISTS accounts (
    run_id TEXT NOT NULL, account_id TEXT NOT NULL, token_key TEXT, status TEXT NOT NULL,
    reason TEXT, PRIMARY KEY (run_id, account_id));
CREATE TABLE IF NOT EXISTS tokens (
    run_id TEXT NOT NULL, token_key TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (run_id, token_key));
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, attempt INTEGER NOT NULL, started_at REAL NOT NULL, updated_at REAL NOT NULL,
    counters TEXT NOT NULL, PRIMARY KEY (run_id, attempt));
CREATE TABLE IF NOT EXISTS media (
    media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, product_type TEXT,
    harvested_at REAL NOT NULL, run_id TEXT);
CREATE TABLE IF NOT EXISTS spent (
    token_key TEXT PRIMARY KEY, starts BLOB NOT NULL, paused_until REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS owed (
    owed_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, account_id TEXT NOT NULL, kind TEXT NOT NULL,
    body BLOB NOT NULL, reason TEXT, owed_at REAL NOT NULL, expires_at REAL NOT NULL);
-- the story_insights receiver's (harvester.webhook.store)
CREATE TABLE IF NOT EXISTS webhook_segments (
    run_id TEXT PRIMARY KEY, started_at REAL NOT NULL, published_at REAL);
CREATE TABLE IF NOT EXISTS webhook_parts (
    run_id TEXT NOT NULL, part TEXT NOT NULL, records INTEGER NOT NULL, bytes INTEGER,
    PRIMARY KEY (run_id, part));
CREATE TABLE IF NOT EXISTS webhook_stories (
    media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, digest TEXT NOT NULL, run_id TEXT NOT NULL,
    metrics INTEGER NOT NULL, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- what was learned of the API (harvester.plan.refusals) and which account calls are final
CREATE TABLE IF NOT EXISTS settled (
    unit_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, settled_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refused_metrics (
    level TEXT NOT NULL, product_type TEXT NOT NULL, media_type TEXT NOT NULL, login TEXT NOT NULL,
    api_version TEXT NOT NULL, metric TEXT NOT NULL, refusals INTEGER NOT NULL, message TEXT,
    learned_at REAL NOT NULL, PRIMARY KEY (level, product_type, media_type, login, api_version, metric));
CREATE TABLE IF NOT EXISTS not_shared (
    media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, answered_at REAL NOT NULL, run_id TEXT NOT NULL);
"""


LATEST_UNITS = ("SELECT unit_id, account_id, label, status, last_error, last_code, last_subcode, last_type, "
                "last_message, updated_at, MAX(rowid) FROM units WHERE run_id = ? GROUP BY unit_id")
"""Each unit of a run (``?``) as its latest checkpoint says: SQLite takes a bare column from the
row that holds the MAX. Also right for files before version 6 (one row a unit)."""


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
    """The API's words for a failed unit (subcode, type, message) beside last_code; parts are
    appended to across commits, so each row gains the committed length, ``bytes`` (NULL in older
    rows: their part was written whole, so the whole file is committed). The attempts and owed
    tables are new (SCHEMA creates them)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(units)")}
    for name, kind in (("last_subcode", "INTEGER"), ("last_type", "TEXT"), ("last_message", "TEXT")):
        if columns and name not in columns:
            db.execute(f"ALTER TABLE units ADD COLUMN {name} {kind}")
    columns = {r[1] for r in db.execute("PRAGMA table_info(parts)")}
    if columns and "bytes" not in columns:                    # no parts table yet: SCHEMA makes it
        db.execute("ALTER TABLE parts ADD COLUMN bytes INTEGER")


def _to_version_3(db: sqlite3.Connection) -> None:
    """The store owns every table of the file: the webhook receiver's (which it created itself
    before) and each token's spent window are in SCHEMA, which creates what a file lacks; the
    tables a receiver made keep their rows (the same definitions)."""


def _to_version_4(db: sqlite3.Connection) -> None:
    """Metrics the API refused, learned per kind of object (``refused_metrics``), and account calls
    answered once their days had settled (``settled``): new tables, which SCHEMA creates; a unit
    may now be checkpointed ``replaced`` (another, without a refused metric, was asked in its place)."""


def _to_version_5(db: sqlite3.Connection) -> None:
    """Media that answered "not shared to Facebook" (-1/2207086) to their call of the metrics that
    need the share (``not_shared``, :mod:`harvester.plan.unshared`): a new table, which SCHEMA creates."""


def _to_version_6(db: sqlite3.Connection) -> None:
    """A unit's checkpoints are appended, not upserted: keyed by ``(run_id, unit_id)``, a digest,
    each commit of a hundred units rewrote a hundred pages of the key's index scattered over it
    (about 5 % of a harvest's time on loopback); appended, its rows and their run's index entries
    go at the end. The rows are kept, in their order; the key goes (SCHEMA adds the run's index)."""
    columns = [r[1] for r in db.execute("PRAGMA table_info(units)")]
    if not columns:
        return                                                 # no units table yet: SCHEMA makes it
    names = ", ".join(columns)
    db.execute("ALTER TABLE units RENAME TO units_v5")
    db.execute(next(part for part in SCHEMA.split(";") if "TABLE IF NOT EXISTS units (" in part))
    db.execute(f"INSERT INTO units ({names}) SELECT {names} FROM units_v5 ORDER BY rowid")
    db.execute("DROP TABLE units_v5")


MIGRATIONS = {1: _to_version_1, 2: _to_version_2, 3: _to_version_3, 4: _to_version_4, 5: _to_version_5,
              6: _to_version_6}
"""Version -> what brings a file from the version before it to this one."""


def file_problem(path: str | Path) -> str | None:
    """Why an existing file cannot be this harvester's state (not SQLite, or written by a newer
    harvester), found reading it only; None if it can, or does not exist yet. ``harvester
    validate`` and :class:`StateStore` both ask it, so validate refuses what a run would."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            return None                     # in use by a run: the lock says so when one starts
        return (f"not a harvester state file ({exc}); point [state] path at another file, or remove this one "
                "to start afresh")
    if version > SCHEMA_VERSION:
        return (f"written by a newer harvester (state version {version}; this one reads up to {SCHEMA_VERSION}); "
                "upgrade harvester or use another [state] path")
    return None




def open_file(path: Path) -> sqlite3.Connection:
    """The state file at ``path`` (WAL, autocommit), created or migrated to :data:`SCHEMA_VERSION`;
    a StateError saying what is wrong and what to do otherwise."""
    if path.is_dir():
        raise StateError(f"{path}: is a directory; expected a state file (it is created if missing)")
    if why := file_problem(path):
        raise StateError(f"{path}: {why}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise StateError(f"{path}: cannot open the state file: {why}; expected a writable file path "
                         "for [state] path") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        # A checkpoint every 4,000 WAL pages (SQLite's default: 1,000): checkpoints, which block the
        # event loop, come a quarter as often, and a page many commits rewrite is copied fewer times.
        db.execute("PRAGMA wal_autocheckpoint=4000")
        _upgrade(db, path)
    except sqlite3.DatabaseError as exc:
        db.close()
        if "locked" in str(exc):
            raise StateError(f"{path}: in use by another harvester process ({exc}); wait for it to "
                             "finish, or give this run its own [state] path") from exc
        raise StateError(f"{path}: not a harvester state file ({exc}); point [state] path at "
                         "another file, or remove this one to start afresh") from exc
    except StateError:
        db.close()
        raise
    return db


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new file, or migrate an older one, in one transaction."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(f"{path}: written by a newer harvester (state version {version}; this one "
                             f"reads up to {SCHEMA_VERSION}); upgrade harvester or use another [state] path")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" not in tables:                            # a new file
            version = SCHEMA_VERSION
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](db)
        for statement in filter(str.strip, SCHEMA.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
