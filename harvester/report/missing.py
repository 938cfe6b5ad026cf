"""What is not on the page, why, and the command that fills it: the notes of "What is missing".

Each note is of one kind (``what``), with its reason and the accounts it is about (by id and
username); for the whole report they are grouped, so 24 accounts missing the same days is one note
naming them, not 24. A gap a command fills says which: days not harvested, the backfill of exactly
those days (``fix``); days the API may still deliver (its data can be 48 hours late), the next run.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..catalog import MIN_FOLLOWERS
from ..config.load import earliest_whole_day
from ..state.schema import LATEST_UNITS
from .figures import ALL, query

UNKNOWN_REASON = "no insights; the run recorded no reason (no outcomes.jsonl)"
LATE_DAYS = 2
"""The API's data may be this many days late ("delayed up to 48 hours"): a missing day this recent
may still come, and the next run fetches it; an older one takes a backfill."""
LIST_IDS = 20
"""Media ids or unit labels a note lists at most (its count says how many there are)."""


def missing(con: Any, p: dict[str, Any], outcomes: list[dict[str, Any]], *, today: date,
            config_path: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Scope -> what is not on the page and why: days without totals (with the command that
    fetches them), media without insights (by the reason the run recorded), follower change
    without snapshots, accounts without demographics, failed units of the latest run."""
    notes: list[dict[str, Any]] = []
    names = {r["account_id"]: r["username"] for r in query(con, "SELECT account_id, username FROM acct")}

    def note(account_id: str, **fields: Any) -> None:
        notes.append({"accounts": [{"account_id": account_id, "username": names.get(account_id)}], **fields})

    con.execute("CREATE OR REPLACE TEMP TABLE outcomes (account_id VARCHAR, media_id VARCHAR, outcome VARCHAR, "
                "label VARCHAR, reason VARCHAR)")
    if outcomes:
        con.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?)",
                        [(o["account_id"], o.get("media_id"), o["outcome"], o["label"], o["reason"]) for o in outcomes])
    config = shlex.quote(config_path) if config_path else "CONFIG"
    for r in query(con, """
            WITH days AS (SELECT CAST(d AS DATE) AS day FROM range(CAST($since AS TIMESTAMP), CAST($until AS TIMESTAMP),
                                                                   INTERVAL 1 DAY) t(d))
            SELECT a.account_id, list(d.day ORDER BY d.day) AS days
            FROM acct a CROSS JOIN days d ANTI JOIN daily t ON t.account_id = a.account_id AND t.day = d.day
                                                              AND t.metric = 'reach'
            GROUP BY a.account_id""", p):
        for kind in _gaps(r["days"], today, config):
            note(r["account_id"], what="account totals", **kind)
    for r in query(con, """
            SELECT p.account_id, p.content_type, coalesce(any_value(o.reason), $unknown) AS reason,
                   count(DISTINCT p.media_id) AS count, list(DISTINCT p.media_id) AS ids
            FROM posts p LEFT JOIN outcomes o ON o.media_id = p.media_id
            WHERE NOT p.has_insights AND p.local_day >= $since AND p.local_day < $until
            GROUP BY p.account_id, p.content_type, o.reason""", {**p, "unknown": UNKNOWN_REASON}):
        what = "stories" if r["content_type"] == "STORY" else "posts"
        note(r["account_id"], what=f"{what} without insights", reason=r["reason"], count=r["count"],
             ids=sorted(r["ids"]))
    for r in query(con, """
            SELECT a.account_id, max(s.day) FILTER (s.day < $since) AS before_,
                   max(s.day) FILTER (s.day < $until) AS last_, min(s.day) AS first_
            FROM acct a LEFT JOIN accounts s USING (account_id) GROUP BY a.account_id
            HAVING before_ IS NULL OR last_ IS NULL""", p):
        first = f"the first is of {r['first_']}" if r["first_"] else "none is stored yet"
        note(r["account_id"], what="follower change", count=1,
             reason=f"needs the follower count of a day before the period and of one in it, which each run "
                    f"records on the day it runs ({first}); New followers counts the API's daily new followers")
    for r in query(con, """
            SELECT account_id FROM acct ANTI JOIN (SELECT account_id FROM posts
                WHERE content_type <> 'STORY' AND local_day >= $since AND local_day < $until) USING (account_id)""", p):
        note(r["account_id"], what="posts", count=0,
             reason="no post published in the period: no engagement rates (posts published: 0 is a true zero)")
    for r in query(con, "SELECT account_id, followers FROM acct WHERE followers < $min", {"min": MIN_FOLLOWERS}):
        note(r["account_id"], what="audience, online followers, new followers", count=1,
             reason=f"fewer than {MIN_FOLLOWERS} followers: the API gives none of these")
    for r in query(con, """
            SELECT account_id, reason, count(*) AS count, list(label ORDER BY label) AS labels FROM outcomes
            WHERE outcome = 'failed' AND account_id IN (SELECT account_id FROM acct) GROUP BY ALL"""):
        note(r["account_id"], what="failed units of the latest run", reason=r["reason"], count=r["count"],
             labels=r["labels"])
    out: dict[str, list[dict[str, Any]]] = {ALL: _grouped(notes)}
    for n in notes:
        out.setdefault(n["accounts"][0]["account_id"], []).append(_listed(n))
    for scope in out.values():      # a stable order: the same output gives the same page
        scope.sort(key=lambda n: (n["what"], n["reason"], n.get("days", []), [a["account_id"] for a in n["accounts"]]))
    return out


def _gaps(days: Sequence[date], today: date, config: str) -> list[dict[str, Any]]:
    """Days without account totals, by what fetches them: the next run (data the API may still
    deliver), a backfill of each run of days (not harvested), nothing (older than the API keeps)."""
    earliest = earliest_whole_day(today)      # what a backfill may still ask for (the CLI checks the same)
    late = [d for d in days if d >= today - timedelta(days=LATE_DAYS)]
    old = [d for d in days if d < earliest]
    gone = [d for d in days if earliest <= d < today - timedelta(days=LATE_DAYS)]
    kinds = []
    if gone:
        fix = [f"harvester backfill --config {config} --since {a} --until {b + timedelta(days=1)}"
               for a, b in _spans(gone)]
        kinds.append({"reason": "not harvested: no record of these days", "count": len(gone),
                      "days": [d.isoformat() for d in gone], "fix": fix})
    if late:
        kinds.append({"reason": f"no data yet: the API's data can be {24 * LATE_DAYS} hours late, and the next "
                                "run's window fetches these days again", "count": len(late),
                      "days": [d.isoformat() for d in late], "fix": [f"harvester run --config {config}"]})
    if old:
        kinds.append({"reason": f"older than the two years the API keeps (the earliest day a backfill gets whole "
                                f"is {earliest}): no command can fetch them", "count": len(old),
                      "days": [d.isoformat() for d in old]})
    return kinds


def _spans(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) pairs."""
    spans: list[tuple[date, date]] = []
    for d in sorted(days):
        if spans and d == spans[-1][1] + timedelta(days=1):
            spans[-1] = (spans[-1][0], d)
        else:
            spans.append((d, d))
    return spans


def spans_text(days: Sequence[str]) -> str:
    """``2026-11-23 to 2026-11-27, 2026-11-30``: days as runs of consecutive days."""
    parts = []
    for a, b in _spans([date.fromisoformat(d) for d in days]):
        parts.append(a.isoformat() if a == b else f"{a} to {b}")
    return ", ".join(parts)


def _grouped(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notes of all accounts, one per kind, reason, days and fix, naming every account of it."""
    groups: dict[tuple, dict[str, Any]] = {}
    for n in notes:
        key = (n["what"], n["reason"], tuple(n.get("days", ())), tuple(n.get("fix", ())))
        group = groups.get(key)
        if group is None:
            groups[key] = {**n, "accounts": list(n["accounts"]), "ids": list(n.get("ids", [])),
                           "labels": list(n.get("labels", []))}
            continue
        group["accounts"] += n["accounts"]
        group["count"] += n["count"]
        group["ids"] += n.get("ids", [])
        group["labels"] += n.get("labels", [])
    out = []
    for g in groups.values():
        g["accounts"].sort(key=lambda a: (a["username"] or "", a["account_id"]))
        out.append(_listed(g))
    return out


def _listed(n: dict[str, Any]) -> dict[str, Any]:
    """A note with its ids and labels sorted and cut to :data:`LIST_IDS` (none: no key)."""
    out = {k: v for k, v in n.items() if k not in ("ids", "labels")}
    for key in ("ids", "labels"):
        if n.get(key):
            out[key] = sorted(n[key])[:LIST_IDS]
    return out


_MEDIA_LABEL = re.compile(r"^media (\d+)")


def run_outcomes(output: Path, state_path: Path | None, runs: Sequence[str]) -> list[dict[str, Any]]:
    """The skipped and failed units the runs recorded: each run's ``outcomes.jsonl`` where the CLI
    wrote one, else the examples its summary in the state keeps; failed units of the latest run
    from the state. Each with the media id its label names (None for other units)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    summaries, failed = _from_state(state_path, runs)
    latest = runs[-1] if runs else None
    for run in runs:
        path = output / run / "outcomes.jsonl"
        lines: list[dict[str, Any]] = []
        if path.is_file():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            summary = summaries.get(run) or {}
            lines = [{"outcome": "skipped", **o} for o in summary.get("skipped") or []]
            lines += [{"outcome": "failed", **o} for o in summary.get("failed") or []]
        if run == latest:
            lines += failed
        for o in lines:
            if o.get("outcome") == "failed" and run != latest:
                continue
            match = _MEDIA_LABEL.match(o.get("label", ""))
            found[(o.get("outcome", ""), o.get("label", ""))] = {
                "account_id": o.get("account_id"), "media_id": match.group(1) if match else None,
                "outcome": o.get("outcome"), "label": o.get("label", ""), "reason": o.get("reason", "")}
    return list(found.values())


def _from_state(state_path: Path | None, runs: Sequence[str]
                ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Run id -> its summary as the state keeps it, and the latest run's failed units (read only,
    never locking: a run may be going on; no state: nothing)."""
    if state_path is None or not state_path.is_file() or not runs:
        return {}, []
    db = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT run_id, summary FROM runs WHERE run_id IN ({', '.join('?' for _ in runs)})",
                          list(runs)).fetchall()
        failed = db.execute(f"SELECT account_id, label, last_error FROM ({LATEST_UNITS}) WHERE status = 'failed'",
                            (runs[-1],)).fetchall()
    except sqlite3.Error:
        return {}, []
    finally:
        db.close()
    return ({run: json.loads(summary) for run, summary in rows if summary},
            [{"outcome": "failed", "account_id": a, "label": label or "", "reason": reason or "failed"}
             for a, label, reason in failed])


