"""Checkpoints in SQLite (WAL): runs, units, committed parts, accounts and tokens, and what later
runs use (owed work, settled calls, refused metrics, each token's spent window, media harvested).

A unit becomes ``done`` (or ``skipped``) in the same transaction that records the part its
records went to, and that transaction runs only after the sink made the part durable: the state
never runs ahead of the data. A run that dies leaves ``status='running'``; the next ``harvester
run`` of the same work (same fingerprint) resumes it: committed units are not called again and
what was written after the last checkpoint is removed (parts are cut back to their committed
``bytes``). Tokens are never stored, only the names of their variables, and in ``spent`` the
calls each token made lately, keyed by a digest of it (the scheduler's slot key).

The file's layout, its version and its migrations are :mod:`.schema`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import msgspec

from .. import summary as stat
from ..sinks.base import INSIGHTS_PREFIX, PartCommit
from ..summary import clean_message
from .schema import LATEST_UNITS, open_file
from .spent import SpentTable

RefusalRow = tuple[tuple[str, "str | None", "str | None", str, str], str, int, "str | None", float]
"""A learned refusal as the state keeps it: (kind, metric, refusals, message, learned_at)."""
MediaRow = tuple[str, str, "str | None"]
"""``(media_id, account_id, product_type)`` of a media whose plain unit committed."""


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
    """The state file at ``path``, created or migrated when opened (:func:`.schema.open_file`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._attempt: Attempt | None = None
        self.db = open_file(self.path)
        self.spent = SpentTable(self.db)
        """What each token spent of its window, for the next process."""

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
        self._attempt = Attempt(run_id, last + 1, counters)
        return last + 1

    def attempts(self, run_id: str, *, before: int | None = None) -> list[tuple[int, float, dict[str, float]]]:
        """``(attempt, seconds, counters)`` of the attempts of ``run_id`` (those before ``before``)."""
        rows = self.db.execute(
            "SELECT attempt, updated_at - started_at, counters FROM attempts WHERE run_id = ? AND attempt < ? "
            "ORDER BY attempt", (run_id, before if before is not None else 1 << 62)).fetchall()
        return [(n, seconds, msgspec.json.decode(counters)) for n, seconds, counters in rows]

    def _save_attempt(self) -> None:
        if self._attempt is not None:
            self.db.execute("UPDATE attempts SET updated_at = ?, counters = ? WHERE run_id = ? AND attempt = ?",
                            (time.time(), msgspec.json.encode(self._attempt.saved()).decode(),
                             self._attempt.run_id, self._attempt.number))

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
               settled: Iterable[str] = (), not_shared: Iterable[tuple[str, str, float]] = ()) -> None:
        """Record durable parts and the units they hold, ``unit_id -> (status, account_id, label)``,
        when the media among them were harvested (for refresh tiers) and which answered "not
        shared to Facebook" (``(media_id, account_id, answered_at)``), in one transaction.
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
            self.db.executemany(                # appended: the latest checkpoint of a unit is its status
                "INSERT INTO units (run_id, unit_id, account_id, label, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, uid, acc, label, status, now) for uid, (status, acc, label) in units.items()])
            if self.db.execute("SELECT EXISTS (SELECT 1 FROM owed)").fetchone()[0]:  # mostly empty: no DELETE a unit
                self.db.executemany("DELETE FROM owed WHERE owed_id = ?", [(uid,) for uid in units])
            self.db.executemany("INSERT OR REPLACE INTO settled VALUES (?, ?, ?)",
                                [(uid, run_id, now) for uid in settled])
            self.db.executemany("INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?)",
                                [(m, acc, product, now if media_harvested_at is None else media_harvested_at, run_id)
                                 for m, acc, product in media])
            self.db.executemany("INSERT OR REPLACE INTO not_shared VALUES (?, ?, ?, ?)",
                                [(m, acc, at, run_id) for m, acc, at in not_shared])
            if self._attempt is not None and self._attempt.run_id == run_id:
                self._attempt.checkpointed(added, [status for status, _, _ in units.values()])
            self._save_attempt()

    def unit_failed(self, run_id: str, unit_id: str, *, account_id: str, label: str, reason: str,
                    code: int | None = None, attempts: int = 0, subcode: int | None = None,
                    type: str | None = None, message: str | None = None) -> None:
        """A unit given up, with the API's words (code, subcode, type, message) when it answered
        (appended: a later checkpoint of the unit, done in a resumed attempt, supersedes it)."""
        self.db.execute(
            "INSERT INTO units (run_id, unit_id, account_id, label, status, attempts, last_code, last_error, "
            "updated_at, last_subcode, last_type, last_message) VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?)",
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

    # -- media not shared to Facebook (harvester.plan.unshared) ---------------------------------

    def not_shared(self, media_id: str, account_id: str, answered_at: float, run_id: str) -> None:
        """Keep that ``media_id`` answered "not shared to Facebook" at ``answered_at``."""
        self.db.execute("INSERT OR REPLACE INTO not_shared VALUES (?, ?, ?, ?)",
                        (media_id, account_id, answered_at, run_id))

    def forget_not_shared(self, before: float) -> int:
        """Drop the "not shared" answers older than ``before``, which no later run reads (the
        table would otherwise keep every media ever asked); how many went."""
        return self.db.execute("DELETE FROM not_shared WHERE answered_at < ?", (before,)).rowcount

    def not_shared_since(self, media_ids: Sequence[str], since: float, *, run_id: str | None = None) -> set[str]:
        """Which of these media answered "not shared to Facebook" at or after ``since``, to a run
        other than ``run_id`` (what a run's earlier attempt asked is left to its unit checkpoints)."""
        found: set[str] = set()
        for i in range(0, len(media_ids), 500):
            chunk = media_ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(
                f"SELECT media_id FROM not_shared WHERE media_id IN ({marks}) AND answered_at >= ? AND run_id IS NOT ?",
                (*chunk, since, run_id)))
        return found

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
        """Status -> how many of the run's units have it (as their latest checkpoint says)."""
        return dict(self.db.execute(f"SELECT status, COUNT(*) FROM ({LATEST_UNITS}) GROUP BY status", (run_id,)))

    def failed_outcomes(self, run_id: str, limit: int = 50) -> list[tuple[str, str, str, int | None, int | None,
                                                                        str | None, str | None]]:
        """``(account_id, label, reason, code, subcode, type, message)`` of the failed units."""
        return self.db.execute(
            "SELECT account_id, label, last_error, last_code, last_subcode, last_type, last_message "
            f"FROM ({LATEST_UNITS}) WHERE status = 'failed' ORDER BY updated_at LIMIT ?", (run_id, limit)).fetchall()

    def account_rows(self, run_id: str) -> list[tuple[str, str, str, str | None]]:
        """(account id, token name, status, reason) of a run's accounts rows: failed accounts, and
        accounts found from a [[discover]] token ("discovered"; a failed discovery is ``discover[i]``)."""
        return self.db.execute("SELECT account_id, token_key, status, reason FROM accounts WHERE run_id = ? "
                               "ORDER BY account_id", (run_id,)).fetchall()

    def dead_tokens(self, run_id: str) -> list[tuple[str, str]]:
        return self.db.execute("SELECT token_key, reason FROM tokens WHERE run_id = ? AND status = 'dead'",
                               (run_id,)).fetchall()


class Attempt:
    """The attempt of a run this process makes (a run resumed after a crash or a stop is one run
    over several attempts), and its records and units as checkpointed: what a killed attempt wrote
    after its last commit is removed and written again by the next one, so it is not counted."""

    def __init__(self, run_id: str, number: int, counters: Callable[[], Mapping[str, float]]):
        self.run_id, self.number, self.counters = run_id, number, counters
        self._checkpointed = {stat.RECORDS_WRITTEN: 0, stat.UNITS_DONE: 0, stat.UNITS_SKIPPED: 0}

    def checkpointed(self, records: int, statuses: Iterable[str]) -> None:
        """A commit of ``records`` more insights records and units of these statuses."""
        self._checkpointed[stat.RECORDS_WRITTEN] += records
        for status in statuses:
            if status in ("done", "skipped"):
                self._checkpointed[f"units/{status}"] += 1

    def saved(self) -> dict[str, float]:
        """The counters to save: the running ones, records and units as checkpointed (not as written)."""
        return {**self.counters(), **self._checkpointed}
