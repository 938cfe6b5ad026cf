"""The webhook receiver's tables in the state file, read: which stories it delivered (a harvest
does not ask them again), its counters, and what ``harvester status`` says of it. The tables are
the store's (:data:`harvester.state.store.SCHEMA`, version 3); the receiver that fills them is
:class:`harvester.webhook.store.WebhookStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from ..summary import plural


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
