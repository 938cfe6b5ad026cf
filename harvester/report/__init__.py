"""``harvester report``: the Monday report, one self-contained HTML page (or its figures as JSON).

:func:`build` queries the stored output with DuckDB (views.py, figures.py) and returns the figures
as plain data; html.py draws the page from exactly those figures.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import files
from ..config.model import Output
from ..errors import ConfigError
from ..sinks import factory, manifest
from . import figures, missing, views

FORMAT_VERSION = 2
"""The JSON figures' shape. 2: ``reach`` is the average day's (it was the sum of the days), the
headline figures carry their account-days and ``new_followers`` is new, the best-time map its
``posts_n`` counts, posts their ``username``, and each note of ``missing`` names its
``accounts`` (id and username) and, where a command fills it, the ``fix``."""


def zone(name: str) -> ZoneInfo:
    """The report's time zone, or a clear message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError([f"--tz {name!r} is not a time zone; use an IANA name such as UTC or Europe/Berlin"]) \
            from None


def last_week(today: date) -> tuple[date, date]:
    """The last whole week (Monday to Sunday) before ``today``: ``[since, until)``."""
    until = today - timedelta(days=today.weekday())
    return until - timedelta(days=7), until


def period(since: date | None, until: date | None, week: bool, today: date) -> tuple[date, date]:
    """``[since, until)`` from the options: both dates, or ``--week`` (the default: last week)."""
    if (since is None) != (until is None):
        raise ConfigError(["give --since and --until together (or --week)"])
    if since is not None and until is not None:
        if week:
            raise ConfigError(["give either --since/--until or --week, not both"])
        if until <= since:
            raise ConfigError([f"--until {until} must be after --since {since} (--until is the day after the last)"])
        return since, until
    return last_week(today)


def build(output: str | Path | Output, *, since: date, until: date, tz: str = "UTC", accounts: Sequence[str] = (),
          state_path: str | Path | None = None, output_format: str = "jsonl", today: date | None = None,
          config_path: str | None = None) -> dict[str, Any]:
    """Every figure of the report of ``[since, until)`` against the period before, per account and
    for all. ``output``: a JSONL output directory, or the ``[output]`` settings of any format.
    ``today`` (UTC; default the clock's) and ``config_path`` make the commands that fill a gap."""
    zone(tz)
    con = views.connect(output, output_format)
    output = factory.output_directory(output) if isinstance(output, Output) else Path(output)
    try:
        figures.prepare(con, since=since, until=until, tz=tz, accounts=accounts)
        p = {**figures.periods(since, until), "tz": tz}
        runs = manifest.load(output).runs or _finished_runs(state_path)
        outcomes = missing.run_outcomes(output, Path(state_path) if state_path else None, runs)
        parts: dict[str, Any] = {"headline": figures.headline(con, p), "daily": figures.daily(con, p),
                 "posts": figures.ranked_posts(con, p), "content_types": figures.content_types(con, p),
                 "best_time": figures.best_time(con, p), "stories": figures.stories(con, p),
                 "audience": figures.audience(con, p),
                 "missing": missing.missing(con, p, outcomes, today=today or datetime.now(UTC).date(),
                                            config_path=config_path)}
        known = con.execute("SELECT account_id, username, followers FROM acct ORDER BY account_id").fetchall()
    finally:
        con.close()
    total = _sum(f for _, _, f in known)
    scopes: list[dict[str, Any]] = [{"account_id": figures.ALL, "username": None, "followers": total,
                                     "accounts": len(known)}]
    scopes += [{"account_id": a, "username": u, "followers": f, "accounts": 1} for a, u, f in known]
    for scope in scopes:
        key = scope["account_id"]
        scope["headline"] = _headline(parts["headline"].get(key, {}))
        scope["daily"] = parts["daily"].get(key, [])
        scope["posts"] = parts["posts"].get(key, {"top": [], "bottom": []})
        scope["content_types"] = _content_types(parts["content_types"].get(key, []))
        scope["best_time"] = parts["best_time"].get(key, {}) or {}
        for name in ("posts", "online_followers"):
            scope["best_time"].setdefault(name, [[None] * 24 for _ in range(7)])
            scope["best_time"].setdefault(name + "_count", 0)
        scope["best_time"].setdefault("posts_n", [[0] * 24 for _ in range(7)])
        scope["best_time"]["min_posts"] = figures.MIN_CELL_POSTS
        scope["stories"] = parts["stories"].get(key) or {"count": 0, "with_insights": 0, "reach": None,
                                                         "replies": None,
                                                         "navigation": dict.fromkeys(figures.NAVIGATION)}
        scope["audience"] = parts["audience"].get(key) or {"pyramid": [], "countries": [], "cities": [], "ages": []}
        scope["missing"] = parts["missing"].get(key, [])
    p = figures.periods(since, until)
    return {"version": FORMAT_VERSION, "period": {
                "since": since.isoformat(), "until": until.isoformat(), "days": (until - since).days,
                "previous_since": p["psince"].isoformat(), "previous_until": since.isoformat(), "tz": tz,
                "best_time_since": p["best_since"].isoformat(), "online_since": p["online_since"].isoformat()},
            "runs": runs, "notes": NOTES, "scopes": scopes}


NOTES = {
    "until": "until is the day after the last day of the period",
    "account_totals": "views, interactions and profile link taps are sums of the API's daily totals (UTC days); "
                      "a change against the period before is given only when both have data for as many days of their "
                      "accounts (the page says of how many where some lack)",
    "reach": "reach is the average day's: the API's daily reach (accounts reached that day) averaged over the days "
             "with data, then summed over the accounts; daily reach cannot be added up, since an account reached "
             "on two days is one account of their reach",
    "new_followers": "new followers: the sum of the API's daily follower_count (new follows on each US-Pacific "
                     "day, unfollows not taken off; the last 30 days only, accounts of 100 followers or more)",
    "posts": "posts are counted on the day of their timestamp in the report's time zone (stories apart)",
    "engagement_rate": "a post's lifetime total_interactions / reach; per follower: / the account's followers",
    "best_time": "median engagement rate of the posts of the last 90 days by weekday and hour, in a colour where "
                 f"a cell has {figures.MIN_CELL_POSTS} posts or more; online followers: median per weekday and "
                 "hour of the last 30 days (the API's hours of a US-Pacific day)",
    "follower_growth": "followers at the last daily snapshot of the period less the last before it",
    "null": "null means no data (see missing), never zero",
}


def _sum(values: Any) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _headline(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    empty = {"value": None, "previous": None, "change": None, "change_pct": None}
    names = (*figures.HEADLINE, "new_followers", "follower_growth", "posts")
    out = {name: found.get(name, dict(empty)) for name in names}
    if "posts" not in found:
        out["posts"] = {"value": 0, "previous": 0, "change": 0, "change_pct": None}
    return out


def _content_types(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_type = {r["content_type"]: r for r in rows}
    return [by_type.get(t, {"content_type": t, "count": 0, "with_insights": 0, "median_reach": None,
                            "median_er": None}) for t in figures.CONTENT_TYPES]


def today_in(tz: str) -> date:
    return datetime.now(zone(tz)).date()


def write(config: Any, *, since: date | None = None, until: date | None = None, week: bool = False,
          accounts: Sequence[str] = (), tz: str = "UTC", output_format: str = "html", out: str | Path | None = None,
          today: date | None = None) -> Path:
    """The report of a configuration's output, written to ``out``: its path."""
    start, end = period(since, until, week, today or today_in(tz))
    known = {a.id for a in config.accounts}
    unknown = [a for a in accounts if a not in known]
    if unknown and known:
        raise ConfigError([f"--account {a} is not an account of the configuration (it has "
                           f"{', '.join(sorted(known)[:5])}{' …' if len(known) > 5 else ''})" for a in unknown])
    figures_ = build(config.output, since=start, until=end, tz=tz, accounts=accounts, state_path=config.state.path,
                     today=today or datetime.now(UTC).date(), config_path=config.path)
    path = Path(out or f"report.{output_format}")
    if output_format == "json":
        text = json.dumps(figures_, indent=1, ensure_ascii=False) + "\n"
    else:
        from .html import render
        text = render(figures_)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, text.encode())
    return path


def _finished_runs(state_path: str | Path | None) -> list[str]:
    """The runs a database sink holds (it has no manifest): the state's finished ones, oldest first."""
    if state_path is None or not Path(state_path).is_file():
        return []
    db = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        return [r for (r,) in db.execute("SELECT run_id FROM runs WHERE status LIKE 'finished%' ORDER BY started_at")]
    except sqlite3.Error:
        return []
    finally:
        db.close()
