"""The webhook receiver's tables in the state file: written through :class:`WebhookTables` (the
receiver's segments, the parts it committed, the stories it stored and its counters), and read:
which stories it delivered (a harvest does not ask them again), its counters, and what
``harvester status`` says of it. The tables are the store's (:data:`harvester.state.schema.SCHEMA`,
version 3); the receiver that fills them is :class:`harvester.webhook.store.WebhookStore`."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..sinks.base import PartCommit
from ..summary import plural
from .store import StateStore

StoryRow = tuple[str, str, int, float]
"""A story stored: ``(account_id, digest of its values, metrics, received_at)``, by media id."""


class WebhookTables:
    """The receiver's own connection to the state file (``PRAGMA synchronous=FULL``: a row survives
    a power loss too), usable from the committer's thread: transactions never block the loop."""

    def __init__(self, path: Path):
        StateStore(path).close()                    # creates or upgrades every table, the receiver's too
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def unpublished(self) -> list[str]:
        """Segments started and never published (a killed receiver's), oldest first."""
        return [run_id for (run_id,) in self.db.execute(
            "SELECT run_id FROM webhook_segments WHERE published_at IS NULL ORDER BY started_at").fetchall()]

    def committed_parts(self, run_id: str) -> dict[str, int | None]:
        """``part -> committed length`` of a segment (``Sink.recover`` cuts the parts back to it)."""
        return dict(self.db.execute("SELECT part, bytes FROM webhook_parts WHERE run_id = ?", (run_id,)))

    def start_segment(self, run_id: str, started_at: float) -> None:
        self.db.execute("INSERT INTO webhook_segments (run_id, started_at) VALUES (?, ?)", (run_id, started_at))

    def mark_published(self, run_id: str, at: float) -> None:
        self.db.execute("UPDATE webhook_segments SET published_at = ? WHERE run_id = ?", (at, run_id))

    def known(self, media_ids: Iterable[str]) -> dict[str, str]:
        """``media_id -> digest`` of the values stored for these stories (a WAL read: never waits for
        the writer)."""
        ids = list(media_ids)
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found.update(self.db.execute(
                f"SELECT media_id, digest FROM webhook_stories WHERE media_id IN ({','.join('?' * len(chunk))})",
                chunk))
        return found

    def record(self, run_id: str, rows: Mapping[str, StoryRow], parts: Iterable[PartCommit],
               counts: Counter[str]) -> None:
        """A group's committed parts and the stories they hold, and the counters, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO webhook_parts VALUES (?, ?, ?, ?)",
                                [(run_id, p.part, p.records, p.length) for p in parts])
            self.db.executemany("INSERT OR REPLACE INTO webhook_stories VALUES (?, ?, ?, ?, ?, ?)",
                                [(m, acc, d, run_id, n, at) for m, (acc, d, n, at) in rows.items()])
            self._add_counters(counts)

    def add_counters(self, counts: Counter[str]) -> None:
        """Counters added to the saved ones, in a transaction of their own."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._add_counters(counts)

    def _add_counters(self, counts: Counter[str]) -> None:
        self.db.executemany("INSERT INTO webhook_counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                            "value = value + excluded.value", list(counts.items()))


def delivered_stories(db: sqlite3.Connection, media_ids: Sequence[str]) -> set[str]:
    """Which of these stories the webhook stored final values for (a harvest does not ask them again)."""
    if not media_ids:
        return set()
    try:
        marks = ",".join("?" * len(media_ids))
        return {r[0] for r in db.execute(f"SELECT media_id FROM webhook_stories WHERE media_id IN ({marks})",
                                         tuple(media_ids))}
    except sqlite3.OperationalError:        # no receiver ever used this state file
        return set()


def counters(db: sqlite3.Connection) -> dict[str, int]:
    """The receiver's counters as last committed (``deliveries/received``, ``stories/stored`` ...)."""
    try:
        return dict(db.execute("SELECT name, value FROM webhook_counters"))
    except sqlite3.OperationalError:
        return {}


def status_lines(db: sqlite3.Connection) -> list[str]:
    """``harvester status``: what the receiver received and stored, and the stories each path captured."""
    counts = counters(db)
    if not counts:
        return []
    refused = ", ".join(f"{name.split('/', 1)[1]} {n:,}" for name, n in sorted(counts.items())
                        if name.startswith("refused/")) or "none"
    ignored = sum(n for name, n in counts.items() if name.startswith("ignored/"))
    (webhook,) = db.execute("SELECT COUNT(*) FROM webhook_stories").fetchone()
    (polled,) = db.execute("SELECT COUNT(*) FROM media WHERE product_type = 'STORY'").fetchone()
    (both,) = db.execute("SELECT COUNT(*) FROM media JOIN webhook_stories USING (media_id) "
                         "WHERE product_type = 'STORY'").fetchone()
    last = db.execute("SELECT MAX(received_at) FROM webhook_stories").fetchone()[0]
    at = datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if last else "-"
    return [f"webhook: {plural(counts.get('deliveries/received', 0), 'delivery')} received, "
            f"{counts.get('deliveries/accepted', 0):,} accepted (refused: {refused}; "
            f"{plural(ignored, 'change')} of other fields ignored); "
            f"{plural(counts.get('stories/stored', 0), 'story delivery', 'story deliveries')} stored, "
            f"{plural(counts.get('stories/duplicate', 0), 'duplicate')}; last {at}",
            f"stories captured: {webhook:,} by the webhook, {polled:,} by harvests, {both:,} by both"]
