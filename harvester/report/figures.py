"""Every figure of the report, as SQL over the views ``insights``, ``media`` and ``accounts``.

Each figure is computed for every account of the report and for all of them together in one
query: a row is counted under its own account and under the scope ``all`` (``unnest([account_id,
'all'])``). The result is plain data (:func:`figures`), which ``--format json`` writes as is and
the HTML page is drawn from.

Conventions, stated in the JSON's ``notes`` too:

- Days of account totals are the API's UTC days (``since``/``until`` one day apart); a period is
  ``[since, until)`` and the previous period the same number of days just before it.
- Posts belong to the day of their ``timestamp`` in the report's time zone; the best-time heat map
  uses the posts of the :data:`BEST_TIME_DAYS` days up to the period's end (a week has too few).
- ``online_followers`` hours are those of the API's day, a US-Pacific day (its ``end_time``),
  moved into the report's time zone; median per weekday and hour over the last 30 days.
- Engagement rate: a post's lifetime ``total_interactions / reach``; per follower: over the
  account's followers in its latest snapshot.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HEADLINE = ("reach", "views", "total_interactions", "profile_links_taps")
"""Account totals of the headline (each a sum of the period's daily totals)."""
DAILY = ("reach", "views")
USED = ("online_followers", "follower_demographics", "engaged_audience_demographics")
"""Account metrics the report reads besides the headline's."""
INSIGHT_COLUMNS = ("account_id", "object_id", "object_type", "metric", "period", "timeframe", "since_ts", "until_ts",
                   "end_ts", "dimension_keys", "dimension_values", "value", "observed_on")
"""What the report reads of an insight: DuckDB then parses no other field of the JSON."""
TOP_POSTS = 5
BEST_TIME_DAYS = 90
ONLINE_DAYS = 30
TOP_PLACES = 10
NAVIGATION = ("tap_forward", "tap_back", "tap_exit", "swipe_forward")
"""The story funnel's steps, in the order a viewer takes them."""
CONTENT_TYPES = ("REELS", "FEED", "CAROUSEL", "STORY")
AGES = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
ALL = "all"
MIN_FOLLOWERS = 100
UNKNOWN_REASON = "no insights; the run recorded no reason (no outcomes.jsonl)"


_PARAM = re.compile(r"\$(\w+)")


def _rows(con: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    used = set(_PARAM.findall(sql))         # DuckDB refuses a parameter the query does not name
    cursor = con.execute(sql, {k: v for k, v in (params or {}).items() if k in used})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def prepare(con: Any, *, since: date, until: date, tz: str, accounts: Sequence[str] = ()) -> None:
    """The report's working tables: its accounts, daily totals, posts with their rates."""
    params = {"tz": tz}
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ins AS
        SELECT {", ".join(INSIGHT_COLUMNS)} FROM insights
        WHERE (object_type = 'media' AND (len(dimension_keys) = 0 OR metric = 'navigation'))
           OR (object_type = 'account' AND metric IN {_in(USED)})
           OR (object_type = 'account' AND metric IN {_in(HEADLINE)} AND len(dimension_keys) = 0)""")
    con.execute("CREATE OR REPLACE TEMP TABLE wanted (account_id VARCHAR)")
    if accounts:
        con.executemany("INSERT INTO wanted VALUES (?)", [(a,) for a in accounts])
    else:
        con.execute("INSERT INTO wanted SELECT DISTINCT account_id FROM accounts "
                    "UNION SELECT DISTINCT account_id FROM ins")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE acct AS
        SELECT w.account_id, arg_max(a.username, a.day) AS username, arg_max(a.followers_count, a.day) AS followers
        FROM wanted w LEFT JOIN accounts a USING (account_id) GROUP BY w.account_id""")
    con.execute("DELETE FROM ins WHERE account_id NOT IN (SELECT account_id FROM acct)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE daily AS
        SELECT account_id, metric, CAST(since_ts AS DATE) AS day, sum(value) AS value FROM ins
        WHERE object_type = 'account' AND period = 'day' AND end_ts IS NULL AND len(dimension_keys) = 0
          AND metric IN {_in(HEADLINE)} AND until_ts - since_ts = INTERVAL 1 DAY
          AND account_id IN (SELECT account_id FROM acct)
        GROUP BY ALL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE mv AS
        SELECT object_id AS media_id, metric, value FROM ins
        WHERE object_type = 'media' AND len(dimension_keys) = 0
        QUALIFY row_number() OVER (PARTITION BY object_id, metric ORDER BY observed_on DESC NULLS LAST) = 1""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE posts AS
        WITH v AS (
            SELECT media_id, max(value) FILTER (metric = 'reach') AS reach,
                   max(value) FILTER (metric = 'total_interactions') AS interactions,
                   max(value) FILTER (metric = 'views') AS views, max(value) FILTER (metric = 'replies') AS replies
            FROM mv GROUP BY media_id)
        SELECT m.media_id, m.account_id, m.media_type, m.media_product_type, m.ts, timezone($tz, m.ts) AS local_ts,
               CAST(timezone($tz, m.ts) AS DATE) AS local_day, m.permalink, m.caption,
               coalesce(m.thumbnail_url, m.media_url) AS thumbnail,
               CASE WHEN m.media_product_type = 'STORY' THEN 'STORY' WHEN m.media_product_type = 'REELS' THEN 'REELS'
                    WHEN m.media_type = 'CAROUSEL_ALBUM' THEN 'CAROUSEL' ELSE 'FEED' END AS content_type,
               v.media_id IS NOT NULL AS has_insights, v.reach, v.interactions, v.views, v.replies,
               v.interactions / nullif(v.reach, 0) AS er, v.interactions / nullif(a.followers, 0) AS er_follower
        FROM media m JOIN acct a USING (account_id) LEFT JOIN v USING (media_id)""", params)


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


SCOPED = "(SELECT unnest([account_id, 'all']) AS scope, * FROM {table})"
"""Every row of ``table`` once under its account and once under ``all``."""


def headline(con: Any, p: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Scope -> figure -> {value, previous, change, change_pct}; None where no day has data."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in _rows(con, f"""
            SELECT scope, metric, sum(value) FILTER (day >= $since AND day < $until) AS value,
                   sum(value) FILTER (day >= $psince AND day < $since) AS previous
            FROM {SCOPED.format(table='daily')} GROUP BY ALL""", p):
        out.setdefault(r["scope"], {})[r["metric"]] = _change(r["value"], r["previous"])
    for r in _rows(con, f"""
            SELECT scope, count(*) FILTER (local_day >= $since AND local_day < $until) AS value,
                   count(*) FILTER (local_day >= $psince AND local_day < $since) AS previous
            FROM {SCOPED.format(table='posts')} WHERE content_type <> 'STORY' GROUP BY ALL""", p):
        out.setdefault(r["scope"], {})["posts"] = _change(r["value"], r["previous"])
    for r in _rows(con, f"""
            WITH snap AS (
                SELECT a.account_id, arg_max(a.followers_count, a.day) FILTER (a.day < $until) AS last_,
                       arg_max(a.followers_count, a.day) FILTER (a.day < $since) AS before_,
                       arg_max(a.followers_count, a.day) FILTER (a.day < $psince) AS before_prev
                FROM accounts a JOIN acct USING (account_id) GROUP BY a.account_id)
            SELECT scope, sum(last_ - before_) AS value, sum(before_ - before_prev) AS previous,
                   count(*) FILTER (last_ IS NULL OR before_ IS NULL) AS unknown
            FROM {SCOPED.format(table='snap')} GROUP BY ALL""", p):
        growth = _change(None, None) if r["unknown"] else _change(r["value"], r["previous"])
        out.setdefault(r["scope"], {})["follower_growth"] = growth
    return out


def _change(value: float | None, previous: float | None) -> dict[str, Any]:
    value, previous = _num(value), _num(previous)
    change = None if value is None or previous is None else value - previous
    pct = None if change is None or not previous else round(100.0 * change / previous, 1)
    return {"value": value, "previous": previous, "change": change, "change_pct": pct}


def _num(x: Any) -> Any:
    """Whole numbers as ints (the JSON says 12, not 12.0), others as they are."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def daily(con: Any, p: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Scope -> one row per day of the period: reach, views (None: no data for that day), posts that day."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(con, f"""
            WITH days AS (SELECT CAST(d AS DATE) AS day FROM range(CAST($since AS TIMESTAMP), CAST($until AS TIMESTAMP),
                                                                   INTERVAL 1 DAY) t(d)),
                 scopes AS (SELECT DISTINCT unnest([account_id, 'all']) AS scope FROM acct),
                 totals AS (SELECT scope, day, sum(value) FILTER (metric = 'reach') AS reach,
                                   sum(value) FILTER (metric = 'views') AS views
                            FROM {SCOPED.format(table='daily')} GROUP BY ALL),
                 published AS (SELECT scope, local_day AS day, list(media_id ORDER BY ts) AS posts
                               FROM {SCOPED.format(table='posts')} WHERE content_type <> 'STORY' GROUP BY ALL)
            SELECT scope, day, reach, views, coalesce(posts, []) AS posts
            FROM scopes CROSS JOIN days LEFT JOIN totals USING (scope, day) LEFT JOIN published USING (scope, day)
            ORDER BY scope, day""", p):
        out.setdefault(r.pop("scope"), []).append({**r, "day": r["day"].isoformat(), "reach": _num(r["reach"]),
                                                   "views": _num(r["views"])})
    return out


def ranked_posts(con: Any, p: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Scope -> {top, bottom}: the period's posts with insights by engagement rate (ties by id)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in _rows(con, f"""
            WITH s AS (SELECT * FROM {SCOPED.format(table='posts')}
                       WHERE content_type <> 'STORY' AND er IS NOT NULL AND local_day >= $since AND local_day < $until),
                 r AS (SELECT *, row_number() OVER (PARTITION BY scope ORDER BY er DESC, media_id) AS top_rank,
                              row_number() OVER (PARTITION BY scope ORDER BY er, media_id) AS bottom_rank FROM s)
            SELECT scope, top_rank, bottom_rank, media_id, account_id, content_type, media_product_type,
                   strftime(local_ts, '%Y-%m-%d %H:%M') AS published, permalink, thumbnail,
                   left(caption, 80) AS caption, reach, interactions, er, er_follower
            FROM r WHERE top_rank <= {TOP_POSTS} OR bottom_rank <= {TOP_POSTS} ORDER BY scope, top_rank""", p):
        scope, top, bottom = r.pop("scope"), r.pop("top_rank"), r.pop("bottom_rank")
        post = {k: _num(v) for k, v in r.items()}
        ranks = out.setdefault(scope, {"top": [], "bottom": []})
        if top <= TOP_POSTS:
            ranks["top"].append(post)
        if bottom <= TOP_POSTS:
            ranks["bottom"].append(post)
    for ranks in out.values():
        ranks["bottom"].sort(key=lambda x: (x["er"], x["media_id"]))
    return out


def content_types(con: Any, p: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Scope -> per content type: posts published, with insights, median reach, median engagement rate."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(con, f"""
            SELECT scope, content_type, count(*) AS count, count(*) FILTER (has_insights) AS with_insights,
                   median(reach) AS median_reach, median(er) AS median_er
            FROM {SCOPED.format(table='posts')} WHERE local_day >= $since AND local_day < $until
            GROUP BY ALL""", p):
        out.setdefault(r.pop("scope"), []).append({k: _num(v) for k, v in r.items()})
    for rows in out.values():
        rows.sort(key=lambda x: CONTENT_TYPES.index(x["content_type"]))
    return out


def best_time(con: Any, p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scope -> {posts, online_followers}: 7 x 24 grids (Monday first, hours 0-23 in the report's
    zone) of the posts' median engagement rate and the median followers online; None: no data."""
    out: dict[str, dict[str, Any]] = {}

    def grid(scope: str, name: str) -> list[list[Any]]:
        entry = out.setdefault(scope, {})
        if name not in entry:
            entry[name] = [[None] * 24 for _ in range(7)]
            entry[name + "_count"] = 0
        return entry[name]

    for r in _rows(con, f"""
            SELECT scope, isodow(local_ts) - 1 AS weekday, hour(local_ts) AS hour, median(er) AS value, count(*) AS n
            FROM {SCOPED.format(table='posts')}
            WHERE content_type <> 'STORY' AND er IS NOT NULL AND local_day >= $best_since AND local_day < $until
            GROUP BY ALL""", p):
        grid(r["scope"], "posts")[r["weekday"]][r["hour"]] = r["value"]
        out[r["scope"]]["posts_count"] += r["n"]
    for r in _rows(con, f"""
            WITH o AS (SELECT account_id,
                              end_ts - INTERVAL 1 DAY + CAST(dimension_values[1] AS INTEGER) * INTERVAL 1 HOUR
                                  AS online_at,
                              value
                       FROM ins
                       WHERE object_type = 'account' AND metric = 'online_followers' AND end_ts IS NOT NULL
                         AND dimension_keys = ['hour'] AND account_id IN (SELECT account_id FROM acct)
                         AND CAST(timezone('America/Los_Angeles', end_ts - INTERVAL 1 DAY) AS DATE) >= $online_since
                         AND CAST(timezone('America/Los_Angeles', end_ts - INTERVAL 1 DAY) AS DATE) < $until),
                 summed AS (SELECT scope, online_at, sum(value) AS value FROM {SCOPED.format(table='o')} GROUP BY ALL)
            SELECT scope, isodow(timezone($tz, online_at)) - 1 AS weekday, hour(timezone($tz, online_at)) AS hour,
                   median(value) AS value, count(*) AS n
            FROM summed GROUP BY ALL""", p):
        grid(r["scope"], "online_followers")[r["weekday"]][r["hour"]] = _num(r["value"])
        out[r["scope"]]["online_followers_count"] += r["n"]
    return out


def stories(con: Any, p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scope -> the period's stories: count, with insights, reach, replies, navigation funnel."""
    out: dict[str, dict[str, Any]] = {}
    for r in _rows(con, f"""
            SELECT scope, count(*) AS count, count(*) FILTER (has_insights) AS with_insights,
                   sum(reach) AS reach, sum(replies) AS replies
            FROM {SCOPED.format(table='posts')}
            WHERE content_type = 'STORY' AND local_day >= $since AND local_day < $until GROUP BY ALL""", p):
        scope = r.pop("scope")
        out[scope] = {**{k: _num(v) for k, v in r.items()}, "navigation": dict.fromkeys(NAVIGATION)}
    for r in _rows(con, f"""
            WITH nav AS (SELECT p.account_id, i.dimension_values[1] AS action, i.value
                         FROM ins i JOIN posts p ON p.media_id = i.object_id
                         WHERE i.object_type = 'media' AND i.metric = 'navigation'
                           AND i.dimension_keys = ['story_navigation_action_type'] AND p.content_type = 'STORY'
                           AND p.local_day >= $since AND p.local_day < $until)
            SELECT scope, action, sum(value) AS value FROM {SCOPED.format(table='nav')} GROUP BY ALL""", p):
        if r["scope"] in out and r["action"] in NAVIGATION:
            out[r["scope"]]["navigation"][r["action"]] = _num(r["value"])
    for story in out.values():        # an action no story had is a zero once any story has insights
        if story["with_insights"]:
            story["navigation"] = {n: v or 0 for n, v in story["navigation"].items()}
    return out


def audience(con: Any, p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scope -> follower pyramid (age x gender), top countries and cities, and the age shares of
    followers beside those of the engaged audience; the timeframe ``this_month`` where harvested."""
    out: dict[str, dict[str, Any]] = {}
    demo = f"""
        WITH d AS (SELECT account_id, metric, timeframe, dimension_keys[2:] AS keys, dimension_values[2:] AS vals, value
                   FROM ins WHERE object_type = 'account' AND period = 'lifetime'
                     AND metric IN ('follower_demographics', 'engaged_audience_demographics')
                     AND account_id IN (SELECT account_id FROM acct)
                   QUALIFY timeframe = max(timeframe) OVER (PARTITION BY account_id))
        SELECT scope, metric, keys, vals, sum(value) AS value FROM {SCOPED.format(table='d')} GROUP BY ALL"""
    for r in _rows(con, demo, p):
        a = out.setdefault(r["scope"], {"pyramid": [], "countries": [], "cities": [], "ages": {}})
        keys, vals, v = r["keys"], r["vals"], _num(r["value"])
        if r["metric"] == "follower_demographics" and keys == ["age", "gender"]:
            a["pyramid"].append({"age": vals[0], "gender": vals[1], "value": v})
        elif r["metric"] == "follower_demographics" and keys in (["country"], ["city"]):
            a["countries" if keys == ["country"] else "cities"].append({"name": vals[0], "value": v})
        elif keys == ["age"]:
            a["ages"].setdefault(vals[0], {})[r["metric"]] = v
    for a in out.values():
        a["pyramid"].sort(key=lambda x: (AGES.index(x["age"]) if x["age"] in AGES else 99, x["gender"]))
        for place in ("countries", "cities"):
            a[place] = sorted(a[place], key=lambda x: (-x["value"], x["name"]))[:TOP_PLACES]
        totals = {m: sum(v.get(m, 0) for v in a["ages"].values()) for m in ("follower_demographics",
                                                                         "engaged_audience_demographics")}
        a["ages"] = [{"age": age, **{("followers" if m == "follower_demographics" else "engaged"):
                                     (a["ages"][age].get(m, 0) / totals[m] if totals[m] else None) for m in totals}}
                     for age in AGES if age in a["ages"]]
    return out


def missing(con: Any, p: dict[str, Any], outcomes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Scope -> what is not on the page and why: days without totals, media without insights (by the
    reason the run recorded), accounts without demographics, failed units of the latest run."""
    out: dict[str, list[dict[str, Any]]] = {}
    con.execute("CREATE OR REPLACE TEMP TABLE outcomes (account_id VARCHAR, media_id VARCHAR, outcome VARCHAR, "
                "label VARCHAR, reason VARCHAR)")
    if outcomes:
        con.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?)",
                        [(o["account_id"], o.get("media_id"), o["outcome"], o["label"], o["reason"]) for o in outcomes])
    for r in _rows(con, """
            WITH days AS (SELECT CAST(d AS DATE) AS day FROM range(CAST($since AS TIMESTAMP), CAST($until AS TIMESTAMP),
                                                                   INTERVAL 1 DAY) t(d))
            SELECT a.account_id, list(d.day ORDER BY d.day) AS days
            FROM acct a CROSS JOIN days d ANTI JOIN daily t ON t.account_id = a.account_id AND t.day = d.day
                                                              AND t.metric = 'reach'
            GROUP BY a.account_id""", p):
        days = [d.isoformat() for d in r["days"]]
        _note(out, r["account_id"], {"what": "account totals", "reason": "no data for these days yet (not "
                                     "harvested, or the API's data is late)", "count": len(days), "days": days})
    for r in _rows(con, """
            SELECT p.account_id, p.content_type, coalesce(any_value(o.reason), $unknown) AS reason,
                   count(DISTINCT p.media_id) AS count, list(DISTINCT p.media_id) AS ids
            FROM posts p LEFT JOIN outcomes o ON o.media_id = p.media_id
            WHERE NOT p.has_insights AND p.local_day >= $since AND p.local_day < $until
            GROUP BY p.account_id, p.content_type, o.reason""", {**p, "unknown": UNKNOWN_REASON}):
        what = "stories" if r["content_type"] == "STORY" else "posts"
        _note(out, r["account_id"], {"what": f"{what} without insights", "reason": r["reason"],
                                     "count": r["count"], "ids": sorted(r["ids"])[:20]})
    for r in _rows(con, """
            SELECT a.account_id, max(s.day) FILTER (s.day < $since) AS before_,
                   max(s.day) FILTER (s.day < $until) AS last_
            FROM acct a LEFT JOIN accounts s USING (account_id) GROUP BY a.account_id
            HAVING before_ IS NULL OR last_ IS NULL ORDER BY a.account_id""", p):
        _note(out, r["account_id"], {"what": "follower growth", "count": 1, "reason": "needs a daily account snapshot "
                                     "before the period and one in it (a harvest on those days)"})
    for r in _rows(con, """
            SELECT account_id FROM acct ANTI JOIN (SELECT account_id FROM posts
                WHERE content_type <> 'STORY' AND local_day >= $since AND local_day < $until) USING (account_id)
            ORDER BY account_id""", p):
        _note(out, r["account_id"], {"what": "posts", "count": 0, "reason": "no post published in the period: "
                                     "no engagement rates (posts published: 0 is a true zero)"})
    for r in _rows(con, "SELECT account_id, followers FROM acct WHERE followers < $min ORDER BY account_id",
                   {"min": MIN_FOLLOWERS}):
        _note(out, r["account_id"], {"what": "audience, online followers", "reason": f"{r['followers']} followers: "
                                     f"the API gives no demographics under {MIN_FOLLOWERS}", "count": 1})
    for r in _rows(con, """
            SELECT account_id, reason, count(*) AS count, list(label ORDER BY label) AS labels FROM outcomes
            WHERE outcome = 'failed' AND account_id IN (SELECT account_id FROM acct) GROUP BY ALL"""):
        _note(out, r["account_id"], {"what": "failed units of the latest run", "reason": r["reason"],
                                     "count": r["count"], "labels": r["labels"][:20]})
    for notes in out.values():      # a stable order: the same output gives the same page
        notes.sort(key=lambda n: (n["account_id"], n["what"], n["reason"]))
    return out


def _note(out: dict[str, list[dict[str, Any]]], account_id: str, note: dict[str, Any]) -> None:
    out.setdefault(account_id, []).append({"account_id": account_id, **note})
    out.setdefault(ALL, []).append({"account_id": account_id, **note})


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
        failed = db.execute("SELECT account_id, label, last_error FROM units WHERE run_id = ? AND status = 'failed'",
                            (runs[-1],)).fetchall()
    except sqlite3.Error:
        return {}, []
    finally:
        db.close()
    return ({run: json.loads(summary) for run, summary in rows if summary},
            [{"outcome": "failed", "account_id": a, "label": label or "", "reason": reason or "failed"}
             for a, label, reason in failed])


def periods(since: date, until: date) -> dict[str, Any]:
    """The query parameters of a period and the one before it."""
    days = (until - since).days
    return {"since": since, "until": until, "psince": since - timedelta(days=days),
            "best_since": until - timedelta(days=BEST_TIME_DAYS), "online_since": until - timedelta(days=ONLINE_DAYS)}
