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

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from ..catalog import MIN_FOLLOWERS

HEADLINE = ("reach", "views", "total_interactions", "profile_links_taps")
"""Account totals of the headline: the API's daily totals of the period (reach averaged, the others summed)."""
SUMMED = ("views", "total_interactions", "profile_links_taps", "follower_count")
"""Daily figures that add up over days: counts of events (a view, a follow). Reach does not: it
counts accounts, and one reached on two days is one account of the two days' reach."""
USED = ("online_followers", "follower_demographics", "engaged_audience_demographics", "follower_count")
"""Account metrics the report reads besides the headline's."""
MIN_CELL_POSTS = 3
"""Posts a best-time cell needs for its median to be shown as a colour (fewer: grey, the count only)."""

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


_PARAM = re.compile(r"\$(\w+)")


def query(con: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
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
        INSERT INTO daily
        SELECT account_id, metric, CAST(timezone('America/Los_Angeles', end_ts) AS DATE) - 1 AS day, sum(value)
        FROM ins WHERE object_type = 'account' AND metric = 'follower_count' AND end_ts IS NOT NULL
          AND len(dimension_keys) = 0 AND account_id IN (SELECT account_id FROM acct)
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
        SELECT m.media_id, m.account_id, a.username, m.media_type, m.media_product_type, m.ts,
               timezone($tz, m.ts) AS local_ts,
               CAST(timezone($tz, m.ts) AS DATE) AS local_day, m.permalink, m.caption,
               CASE WHEN m.thumbnail_url IS NOT NULL THEN m.thumbnail_url
                    WHEN m.media_type = 'IMAGE' THEN m.media_url
                    WHEN m.media_type = 'CAROUSEL_ALBUM' AND m.children_types[1] = 'IMAGE' THEN m.media_url
               END AS thumbnail,
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
    """Scope -> figure -> {value, previous, change, change_pct, days, expected_days, previous_days,
    previous_expected_days} for every scope. ``days``: the account-days with data of the ones the
    figure needs; a change only where both periods have as many (a partial week against a whole
    one is no change); None where no day has data. Reach is the average day's (per account, then
    summed over the scope's accounts); the others, and new followers (``follower_count``), sums."""
    days = (p["until"] - p["since"]).days
    out: dict[str, dict[str, dict[str, Any]]] = {}
    counts = {r["scope"]: r for r in query(con, f"""
            SELECT scope, count(*) AS accounts, count(*) FILTER (followers IS NULL OR followers >= $min) AS eligible
            FROM {SCOPED.format(table='acct')} GROUP BY ALL""", {"min": MIN_FOLLOWERS})}
    for scope, c in counts.items():
        for metric in (*HEADLINE, "new_followers"):
            expected = days * (c["eligible"] if metric == "new_followers" else c["accounts"])
            out.setdefault(scope, {})[metric] = {**_change(None, None), "days": 0, "expected_days": expected,
                                                "previous_days": 0, "previous_expected_days": expected}
    for r in query(con, f"""
            SELECT scope, metric, sum(value) FILTER (day >= $since AND day < $until) AS value,
                   count(*) FILTER (day >= $since AND day < $until) AS days,
                   sum(value) FILTER (day >= $psince AND day < $since) AS previous,
                   count(*) FILTER (day >= $psince AND day < $since) AS previous_days
            FROM {SCOPED.format(table='daily')} WHERE metric IN {_in(SUMMED)} GROUP BY ALL""", p):
        _coverage(out[r["scope"]]["new_followers" if r["metric"] == "follower_count" else r["metric"]], r)
    for r in query(con, f"""
            WITH per AS (
                SELECT account_id, round(avg(value) FILTER (day >= $since AND day < $until)) AS value,
                       count(*) FILTER (day >= $since AND day < $until) AS days,
                       round(avg(value) FILTER (day >= $psince AND day < $since)) AS previous,
                       count(*) FILTER (day >= $psince AND day < $since) AS previous_days
                FROM daily WHERE metric = 'reach' GROUP BY account_id)
            SELECT scope, sum(value) AS value, sum(days) AS days, sum(previous) AS previous,
                   sum(previous_days) AS previous_days
            FROM {SCOPED.format(table='per')} GROUP BY ALL""", p):
        _coverage(out[r["scope"]]["reach"], r)
    for r in query(con, f"""
            SELECT scope, count(*) FILTER (local_day >= $since AND local_day < $until) AS value,
                   count(*) FILTER (local_day >= $psince AND local_day < $since) AS previous
            FROM {SCOPED.format(table='posts')} WHERE content_type <> 'STORY' GROUP BY ALL""", p):
        out.setdefault(r["scope"], {})["posts"] = _change(r["value"], r["previous"])
    for r in query(con, f"""
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


def _coverage(figure: dict[str, Any], r: dict[str, Any]) -> None:
    """A figure's values and days from a row; its change only where both periods have as many
    account-days (a partial week against a whole one is no change)."""
    change = _change(r["value"], r["previous"])
    if r["days"] != r["previous_days"]:
        change = {**change, "change": None, "change_pct": None}
    figure.update(change, days=r["days"], previous_days=r["previous_days"])


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
    for r in query(con, f"""
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
    for r in query(con, f"""
            WITH s AS (SELECT * FROM {SCOPED.format(table='posts')}
                       WHERE content_type <> 'STORY' AND er IS NOT NULL AND local_day >= $since AND local_day < $until),
                 r AS (SELECT *, row_number() OVER (PARTITION BY scope ORDER BY er DESC, media_id) AS top_rank,
                              row_number() OVER (PARTITION BY scope ORDER BY er, media_id) AS bottom_rank FROM s)
            SELECT scope, top_rank, bottom_rank, media_id, account_id, username, content_type, media_product_type,
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
    for r in query(con, f"""
            SELECT scope, content_type, count(*) AS count, count(*) FILTER (has_insights) AS with_insights,
                   median(reach) AS median_reach, median(er) AS median_er
            FROM {SCOPED.format(table='posts')} WHERE local_day >= $since AND local_day < $until
            GROUP BY ALL""", p):
        out.setdefault(r.pop("scope"), []).append({k: _num(v) for k, v in r.items()})
    for rows in out.values():
        rows.sort(key=lambda x: CONTENT_TYPES.index(x["content_type"]))
    return out


def best_time(con: Any, p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Scope -> {posts, posts_n, online_followers}: 7 x 24 grids (Monday first, hours 0-23 in the
    report's zone) of the posts' median engagement rate, how many posts each median is of, and the
    median followers online; None: no data."""
    out: dict[str, dict[str, Any]] = {}

    def grid(scope: str, name: str) -> list[list[Any]]:
        entry = out.setdefault(scope, {})
        if name not in entry:
            entry[name] = [[None] * 24 for _ in range(7)]
            entry[name + "_count"] = 0
        return entry[name]

    for r in query(con, f"""
            SELECT scope, isodow(local_ts) - 1 AS weekday, hour(local_ts) AS hour, median(er) AS value, count(*) AS n
            FROM {SCOPED.format(table='posts')}
            WHERE content_type <> 'STORY' AND er IS NOT NULL AND local_day >= $best_since AND local_day < $until
            GROUP BY ALL""", p):
        grid(r["scope"], "posts")[r["weekday"]][r["hour"]] = r["value"]
        out[r["scope"]].setdefault("posts_n", [[0] * 24 for _ in range(7)])[r["weekday"]][r["hour"]] = r["n"]
        out[r["scope"]]["posts_count"] += r["n"]
    for r in query(con, f"""
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
    for r in query(con, f"""
            SELECT scope, count(*) AS count, count(*) FILTER (has_insights) AS with_insights,
                   sum(reach) AS reach, sum(replies) AS replies
            FROM {SCOPED.format(table='posts')}
            WHERE content_type = 'STORY' AND local_day >= $since AND local_day < $until GROUP BY ALL""", p):
        scope = r.pop("scope")
        out[scope] = {**{k: _num(v) for k, v in r.items()}, "navigation": dict.fromkeys(NAVIGATION)}
    for r in query(con, f"""
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
    for r in query(con, demo, p):
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


def periods(since: date, until: date) -> dict[str, Any]:
    """The query parameters of a period and the one before it."""
    days = (until - since).days
    return {"since": since, "until": until, "psince": since - timedelta(days=days),
            "best_since": until - timedelta(days=BEST_TIME_DAYS), "online_since": until - timedelta(days=ONLINE_DAYS)}
