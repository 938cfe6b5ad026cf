"""Checkpoints in SQLite (WAL): runs, units, committed parts, accounts and tokens.

A unit becomes ``done`` (or ``skipped``) in the same transaction that records the part its
records went to, and that transaction runs only after the sink made the part durable: the state
never runs ahead of the data. A run that dies leaves ``status='running'``; the next ``harvester
run`` of the same work (same fingerprint) resumes it: committed units are not called again and
what was written after the last checkpoint is removed (parts are cut back to their committed
``bytes``). Tokens are never stored, only the names of their variables, and in ``spent`` the
calls each token made lately, keyed by a digest of it (the scheduler's slot key).

The file carries its layout's version (``PRAGMA user_version``): a file from an older harvester
is brought up to date when opened, and a file from a newer one is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import msgspec

from .. import summary as stat
from ..errors import StateError
from ..sinks.base import INSIGHTS_PREFIX, PartCommit
from ..summary import clean_message

SCHEMA_VERSION = 4
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
    updated_at REAL NOT NULL, last_subcode INTEGER, last_type TEXT, last_message TEXT,
    PRIMARY KEY (run_id, unit_id));
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
"""


RefusalRow = tuple[tuple[str, "str | None", "str | None", str, str], str, int, "str | None", float]
"""A learned refusal as the state keeps it: (kind, metric, refusals, message, learned_at)."""
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


MIGRATIONS = {1: _to_version_1, 2: _to_version_2, 3: _to_version_3, 4: _to_version_4}
"""Version -> what brings a file from the version before it to this one."""


class Owed(msgspec.Struct, frozen=True):
    """Work a run gave up for a transient reason, kept until a later run does it (or the API
    no longer keeps its data, ``expires_at``)."""

    owed_id: str
    """A unit's id, or the account's window (``account/<id>/<since>/<until>/<totals>``)."""
    run_id: str
    account_id: str
    kind: Literal["unit", "window"]
    body: bytes
    """What it takes to ask again: the Unit, or the Window, as JSON."""
    reason: str
    owed_at: float
    expires_at: float


class Spent(msgspec.Struct, frozen=True):
    """What a process spent of one token's budget, in wall-clock seconds: a new process starts the
    token's rolling window with it, so a resumed or repeated run is not throttled at start."""

    starts: tuple[float, ...]
    """Its calls still in the window when saved, oldest first."""
    paused_until: float
    """Until when a throttle paused it (every call before then would extend the penalty)."""


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


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._attempt: tuple[str, int, float, Callable[[], Mapping[str, float]]] | None = None
        self._checkpointed: dict[str, int] = {}
        """This attempt's records and units as committed: what a killed attempt wrote after its
        last commit is removed and written again by the next one, so it is not counted."""
        if self.path.is_dir():
            raise StateError(f"{self.path}: is a directory; expected a state file (it is created if missing)")
        if why := file_problem(self.path):
            raise StateError(f"{self.path}: {why}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise StateError(f"{self.path}: cannot open the state file: {why}; expected a writable file path "
                             "for [state] path") from None
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

    def forget_run(self, run_id: str) -> None:
        """Remove a run that never started its work (a start-up failure right after open_run)."""
        with self.db:
            self.db.execute("BEGIN")
            for table in ("runs", "units", "parts", "accounts", "tokens", "attempts"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

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
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, summary = ? WHERE run_id = ?",
                            (status, exit_code, time.time(), summary, run_id))
            self._save_attempt()

    # -- attempts: a run resumed after a crash or a stop is one run over several attempts ------

    def begin_attempt(self, run_id: str, counters: Callable[[], Mapping[str, float]]) -> int:
        """Start the next attempt of ``run_id``; ``counters()`` (the attempt's running counters) is
        saved with every commit and at finish, in the same transaction, so a killed attempt's
        counters are known up to its last checkpoint."""
        now = time.time()
        (last,) = self.db.execute("SELECT COALESCE(MAX(attempt), 0) FROM attempts WHERE run_id = ?",
                                  (run_id,)).fetchone()
        self.db.execute("INSERT INTO attempts VALUES (?, ?, ?, ?, '{}')", (run_id, last + 1, now, now))
        self._attempt = (run_id, last + 1, now, counters)
        self._checkpointed = {stat.RECORDS_WRITTEN: 0, stat.UNITS_DONE: 0, stat.UNITS_SKIPPED: 0}
        return last + 1

    def attempts(self, run_id: str, *, before: int | None = None) -> list[tuple[int, float, dict[str, float]]]:
        """``(attempt, seconds, counters)`` of the attempts of ``run_id`` (those before ``before``)."""
        rows = self.db.execute(
            "SELECT attempt, updated_at - started_at, counters FROM attempts WHERE run_id = ? AND attempt < ? "
            "ORDER BY attempt", (run_id, before if before is not None else 1 << 62)).fetchall()
        return [(n, seconds, msgspec.json.decode(counters)) for n, seconds, counters in rows]

    def _save_attempt(self) -> None:
        if self._attempt is None:
            return
        run_id, attempt, _, counters = self._attempt
        saved = dict(counters())
        saved.update(self._checkpointed)    # records and units as checkpointed, not as written (see commit)
        self.db.execute("UPDATE attempts SET updated_at = ?, counters = ? WHERE run_id = ? AND attempt = ?",
                        (time.time(), msgspec.json.encode(saved).decode(), run_id, attempt))

    # -- checkpoints ------------------------------------------------------------------------

    def committed_parts(self, run_id: str) -> dict[str, int | None]:
        """``part -> committed length in bytes`` (``None``: the whole file) of the run's parts."""
        return dict(self.db.execute("SELECT part, bytes FROM parts WHERE run_id = ?", (run_id,)))

    def finished_units(self, run_id: str) -> set[str]:
        """Units that need no call on resume: done or skipped (failed ones are tried again)."""
        return {r[0] for r in self.db.execute(
            "SELECT unit_id FROM units WHERE run_id = ? AND status IN ('done', 'skipped', 'object', 'replaced')",
            (run_id,))}

    def commit(self, run_id: str, parts: Sequence[PartCommit], units: Mapping[str, tuple[str, str, str]],
               media: Iterable[MediaRow] = (), media_harvested_at: float | None = None,
               settled: Iterable[str] = ()) -> None:
        """Record durable parts and the units they hold, ``unit_id -> (status, account_id, label)``,
        and when the media among them were harvested (for refresh tiers), in one transaction.
        A part's ``records`` and ``length`` are its totals so far (a part grows over commits;
        ``None`` length: the whole file). Units of status ``object`` are object records (a
        media's, an account's) checkpointed like units, so a resumed run writes them once."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            added = 0
            for p in parts:
                before = self.db.execute("SELECT records FROM parts WHERE run_id = ? AND part = ?",
                                         (run_id, p.part)).fetchone()
                if p.part.startswith(INSIGHTS_PREFIX):
                    added += p.records - (before[0] if before else 0)
                self.db.execute("INSERT OR REPLACE INTO parts (run_id, part, records, committed_at, bytes) "
                                "VALUES (?, ?, ?, ?, ?)", (run_id, p.part, p.records, now, p.length))
            self.db.executemany(
                "INSERT INTO units (run_id, unit_id, account_id, label, status, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, unit_id) DO UPDATE SET "
                "status = excluded.status, updated_at = excluded.updated_at",
                [(run_id, uid, acc, label, status, now) for uid, (status, acc, label) in units.items()])
            self.db.executemany("DELETE FROM owed WHERE owed_id = ?", [(uid,) for uid in units])
            self.db.executemany("INSERT OR REPLACE INTO settled VALUES (?, ?, ?)",
                                [(uid, run_id, now) for uid in settled])
            self.db.executemany("INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?)",
                                [(m, acc, product, now if media_harvested_at is None else media_harvested_at, run_id)
                                 for m, acc, product in media])
            if self._attempt is not None and self._attempt[0] == run_id:
                self._checkpointed[stat.RECORDS_WRITTEN] += added     # ``records`` is the part's total
                for status, _, _ in units.values():
                    if status in ("done", "skipped"):
                        self._checkpointed[f"units/{status}"] += 1
            self._save_attempt()

    def unit_failed(self, run_id: str, unit_id: str, *, account_id: str, label: str, reason: str,
                    code: int | None = None, attempts: int = 0, subcode: int | None = None,
                    type: str | None = None, message: str | None = None) -> None:
        """A unit given up, with the API's words (code, subcode, type, message) when it answered."""
        self.db.execute(
            "INSERT INTO units (run_id, unit_id, account_id, label, status, attempts, last_code, last_error, "
            "updated_at, last_subcode, last_type, last_message) "
            "VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, unit_id) DO UPDATE SET "
            "status = 'failed', attempts = excluded.attempts, last_code = excluded.last_code, "
            "last_error = excluded.last_error, updated_at = excluded.updated_at, last_subcode = excluded.last_subcode, "
            "last_type = excluded.last_type, last_message = excluded.last_message",
            (run_id, unit_id, account_id, label, attempts, code, reason, time.time(), subcode, type,
             clean_message(message)))

    def set_token(self, run_id: str, token_key: str, status: str, reason: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)", (run_id, token_key, status, reason))

    def set_account(self, run_id: str, account_id: str, token_key: str, status: str, reason: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)",
                        (run_id, account_id, token_key, status, reason))

    # -- owed work ----------------------------------------------------------------------------

    def owe(self, owed: Owed) -> None:
        """Keep ``owed`` for a later run (the latest reason wins; the first run that owed it stays)."""
        self.db.execute(
            "INSERT INTO owed VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owed_id) DO UPDATE SET "
            "reason = excluded.reason, expires_at = excluded.expires_at", msgspec.structs.astuple(owed))

    def owed(self, account_ids: Iterable[str]) -> list[Owed]:
        """What earlier runs owe for these accounts, oldest first."""
        wanted = set(account_ids)
        rows = self.db.execute("SELECT * FROM owed ORDER BY owed_at").fetchall()
        return [Owed(*row) for row in rows if row[2] in wanted]

    def forget(self, owed_ids: Iterable[str]) -> None:
        """Drop owed work that can no longer be done (the API no longer keeps it)."""
        self.db.executemany("DELETE FROM owed WHERE owed_id = ?", [(i,) for i in owed_ids])

    # -- settled account calls: answered once their days could no longer change -------------

    def settled_units(self, unit_ids: Sequence[str]) -> set[str]:
        """Which of these account calls some run answered after their days had settled."""
        found: set[str] = set()
        for i in range(0, len(unit_ids), 500):
            chunk = unit_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(f"SELECT unit_id FROM settled WHERE unit_id IN ({marks})",
                                                       chunk))
        return found

    # -- metrics the API refused, per kind of object (harvester.plan.refusals) -----------------

    def learn_refusal(self, kind: Sequence[str | None], metric: str, refusals: int, message: str | None,
                      learned_at: float) -> None:
        """Keep that ``metric`` is refused for ``kind`` (level, product type, media type, login, API
        version; a later learning replaces it)."""
        level, product, media_type, login, version = kind
        self.db.execute("INSERT OR REPLACE INTO refused_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (level, product or "", media_type or "", login, version, metric, refusals,
                         clean_message(message), learned_at))

    def learned_refusals(self, *, api_version: str | None = None, since: float = 0.0) -> list[RefusalRow]:
        """The refusals learned at or after ``since`` (of ``api_version``; None: every version),
        ``((level, product, media_type, login, version), metric, refusals, message, learned_at)``."""
        rows = self.db.execute(
            "SELECT level, product_type, media_type, login, api_version, metric, refusals, message, learned_at "
            "FROM refused_metrics WHERE learned_at >= ? AND (? IS NULL OR api_version = ?) ORDER BY learned_at",
            (since, api_version, api_version)).fetchall()
        return [((level, product or None, media or None, login, version), metric, n, message, at)
                for level, product, media, login, version, metric, n, message, at in rows]

    # -- what each token spent (its rolling window), for the next process ----------------------

    def save_spent(self, spent: Mapping[str, Spent], *, window_seconds: float, now: float) -> None:
        """Keep each token's ``spent`` (keyed by its digest, never the token) and drop the rows that
        no longer count at ``now``: a row lasts until its last start has left the window and its
        pause has ended."""
        rows = [(key, _floats(s.starts), s.paused_until,
                 max(s.starts[-1] + window_seconds if s.starts else s.paused_until, s.paused_until))
                for key, s in spent.items()]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO spent VALUES (?, ?, ?, ?)", rows)
            self.db.execute("DELETE FROM spent WHERE expires_at <= ?", (now,))

    def spent(self, keys: Iterable[str], *, now: float) -> dict[str, Spent]:
        """What earlier processes spent of these tokens that still counts at ``now``."""
        wanted = set(keys)
        return {key: Spent(_unfloats(starts), paused) for key, starts, paused in self.db.execute(
            "SELECT token_key, starts, paused_until FROM spent WHERE expires_at > ?", (now,)) if key in wanted}

    # -- media refresh ----------------------------------------------------------------------

    def last_harvested(self, media_ids: Sequence[str], *, run_id: str) -> dict[str, float]:
        """When each of these media was last harvested by a run other than ``run_id`` (media that
        ``run_id`` itself harvested before it was interrupted are left to its unit checkpoints)."""
        if not media_ids:
            return {}
        marks = ",".join("?" * len(media_ids))
        return dict(self.db.execute(f"SELECT media_id, harvested_at FROM media WHERE media_id IN ({marks}) "
                                    "AND run_id IS NOT ?", (*media_ids, run_id)))

    def media_counts(self) -> dict[str, dict[str, int]]:
        """account id -> product type -> media the state has seen (for the backfill estimate)."""
        counts: dict[str, dict[str, int]] = {}
        for account, product, n in self.db.execute(
                "SELECT account_id, COALESCE(product_type, 'FEED'), COUNT(*) FROM media GROUP BY 1, 2"):
            counts.setdefault(account, {})[product] = n
        return counts

    # -- reports ----------------------------------------------------------------------------

    def unit_counts(self, run_id: str) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM units WHERE run_id = ? GROUP BY status", (run_id,)))

    def failures(self, run_id: str, limit: int = 50) -> list[tuple[str, str, str]]:
        return self.db.execute(
            "SELECT account_id, label, last_error FROM units WHERE run_id = ? AND status = 'failed' "
            "ORDER BY updated_at LIMIT ?", (run_id, limit)).fetchall()

    def failed_outcomes(self, run_id: str, limit: int = 50) -> list[tuple[str, str, str, int | None, int | None,
                                                                        str | None, str | None]]:
        """``(account_id, label, reason, code, subcode, type, message)`` of the failed units."""
        return self.db.execute(
            "SELECT account_id, label, last_error, last_code, last_subcode, last_type, last_message FROM units "
            "WHERE run_id = ? AND status = 'failed' ORDER BY updated_at LIMIT ?", (run_id, limit)).fetchall()

    def account_rows(self, run_id: str) -> list[tuple[str, str, str, str | None]]:
        """(account id, token name, status, reason) of a run's accounts rows: failed accounts, and
        accounts found from a [[discover]] token ("discovered"; a failed discovery is ``discover[i]``)."""
        return self.db.execute("SELECT account_id, token_key, status, reason FROM accounts WHERE run_id = ? "
                               "ORDER BY account_id", (run_id,)).fetchall()

    def dead_tokens(self, run_id: str) -> list[tuple[str, str]]:
        return self.db.execute("SELECT token_key, reason FROM tokens WHERE run_id = ? AND status = 'dead'",
                               (run_id,)).fetchall()


def _floats(values: Sequence[float]) -> bytes:
    """Doubles, little-endian, whatever the machine (a state file may move)."""
    packed = array("d", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def _unfloats(blob: bytes) -> tuple[float, ...]:
    packed = array("d")
    packed.frombytes(blob)
    if sys.byteorder != "little":
        packed.byteswap()
    return tuple(packed)
