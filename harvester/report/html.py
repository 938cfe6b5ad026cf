"""The report page, drawn from the figures :func:`harvester.report.build` returns and nothing else.

One self-contained file: inline CSS, charts as inline SVG (charts.py), no script, no font and no
image fetched from anywhere (thumbnails and permalinks are links, never loaded). Every chart is an
``<svg class="chart" data-chart=...>`` whose marks have the class ``mark``; a figure without data
says why instead of drawing an empty chart, so a blank never looks like a zero.
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from ..summary import plural
from . import charts
from .charts import fmt
from .missing import spans_text

HEADLINE_TITLES = {"reach": "Daily reach (average)", "views": "Views", "total_interactions": "Interactions",
                   "profile_links_taps": "Profile link taps", "new_followers": "New followers",
                   "follower_growth": "Follower change", "posts": "Posts published"}
CONTENT_TITLES = {"REELS": "Reels", "FEED": "Feed posts", "CAROUSEL": "Carousels", "STORY": "Stories"}
CONTENT_TITLE = {"REELS": "Reel", "FEED": "Feed post", "CAROUSEL": "Carousel", "STORY": "Story"}
"""One post's type, named as its row of the content types table (a carousel is a carousel in both)."""
NAV_TITLES = {"tap_forward": "Taps forward", "tap_back": "Taps back", "tap_exit": "Exits",
              "swipe_forward": "Swipes forward"}

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d8dde6; --accent: #2f6fdf; --accent2: #e0703a; --bg: #fff; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
       background: var(--bg); margin: 0 auto; padding: 16px; max-width: 1100px; }
h1 { font-size: 1.6em; margin: 0 0 4px; } h2 { font-size: 1.3em; margin: 32px 0 8px; border-top: 2px solid var(--ink);
     padding-top: 12px; } h3 { font-size: 1.05em; margin: 20px 0 6px; }
p.sub, .muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .v { font-size: 1.4em; font-weight: 600; } .card .c { font-size: .9em; }
.up { color: #17803d; } .down { color: #b42318; }
.row { display: flex; flex-wrap: wrap; gap: 16px; } .row > div { flex: 1 1 320px; min-width: 0; }
svg.chart { width: 100%; height: auto; display: block; }
svg.bars { max-width: 640px; }
svg text { font-size: 11px; fill: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n, th.n { text-align: right; white-space: nowrap; }
.scroll { overflow-x: auto; }
.none { border: 1px dashed var(--line); border-radius: 6px; padding: 10px; color: var(--muted); }
ul.missing li { margin-bottom: 6px; }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f6; padding: 1px 4px;
       border-radius: 3px; overflow-wrap: anywhere; }
a { color: var(--accent);
    overflow-wrap: anywhere; }
td.post { white-space: nowrap; } td.post a { overflow-wrap: normal; } .show-narrow { display: none; }
@media (max-width: 600px) { body { padding: 10px; font-size: 14px; } .hide-narrow { display: none; }
                            .show-narrow { display: inline; } }
@media print { body { max-width: none; padding: 0; } h2 { break-before: page; }
               .card, svg, table { break-inside: avoid; }
               a { color: var(--ink); text-decoration: none; } }
"""


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    p = report["period"]
    body = [f"<h1>Instagram report, {escape(p['since'])} to {escape(_last_day(report))}</h1>",
            f"<p class='sub'>{p['days']} days against the {p['days']} days before ({escape(p['previous_since'])} to "
            f"{_day_before(p['since'])}), times in {escape(p['tz'])}. {_count(len(report['scopes']) - 1, 'account')}. "
            "Empty figures say why; none of them is a zero.</p>"]
    for scope in report["scopes"]:
        body.append(_scope(scope, report))
    notes = "".join(f"<li>{escape(text)}</li>" for text in report["notes"].values())
    body.append(f"<h2>How these figures are made</h2><ul class='muted'>{notes}</ul>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            f"<title>Instagram report {escape(p['since'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def _last_day(report: dict[str, Any]) -> str:
    return _day_before(report["period"]["until"])


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _count(n: int, noun: str, nouns: str | None = None) -> str:
    return plural(n, noun, nouns)


def _scope(scope: dict[str, Any], report: dict[str, Any]) -> str:
    key = scope["account_id"]
    whole = key == "all"
    followers = f", {scope['followers']:,} followers" if scope["followers"] is not None else ""
    if whole:
        title, sub = "All accounts", f"{_count(scope['accounts'], 'account')}{followers}"
    else:
        title = f"@{scope['username']}" if scope["username"] else f"Account {key}"
        sub = f"account {key}{followers}"
    slug = escape(key)
    period = report["period"]
    best = scope["best_time"]
    reach = charts.line(scope["daily"], "reach", f"daily-reach-{slug}", "var(--accent)",
                        "Daily reach" + (", summed over the accounts" if whole else ""))
    views = charts.line(scope["daily"], "views", f"daily-views-{slug}", "var(--accent2)", "Daily views")
    posts_map = charts.heat(best["posts"], f"best-time-{slug}", percent=True, counts=best["posts_n"],
                            min_count=best["min_posts"], label="median engagement rate")
    online_map = charts.heat(best["online_followers"], f"online-{slug}", percent=False, label="followers online")
    parts = [f"<section id='scope-{slug}'><h2>{escape(title)}<span class='muted'> \u00b7 {escape(sub)}</span></h2>",
             _headline(scope["headline"], whole),
             "<h3>Daily reach and views</h3><p class='muted'>Triangles mark the days posts were published.</p>",
             "<div class='row'>",
             f"<div>{reach or _none('No daily reach for this period yet.')}</div>",
             f"<div>{views or _none('No daily views for this period yet.')}</div></div>",
             "<h3>Top posts by engagement rate</h3>", _posts(scope["posts"]["top"], whole),
             "<h3>Bottom posts by engagement rate</h3>", _posts(scope["posts"]["bottom"], whole),
             "<h3>Content types</h3>", _content(scope["content_types"], slug),
             f"<h3>Best time to post ({escape(period['tz'])})</h3><div class='row'>",
             f"<div><p class='muted'>Median engagement rate of {_count(best['posts_count'], 'post')} since "
             f"{escape(period['best_time_since'])}, by weekday and hour published; each cell says how many posts "
             f"it is of, grey under {best['min_posts']}</p>"
             f"{posts_map or _none('No post of these 90 days has insights (see what is missing).')}</div>",
             f"<div><p class='muted'>Followers online (median since {escape(period['online_since'])})</p>"
             f"{online_map or _none('No online followers in the last 30 days (see what is missing).')}</div></div>",
             "<h3>Stories</h3>", _stories(scope["stories"], slug),
             "<h3>Audience</h3>", _audience(scope["audience"], slug),
             "<h3>What is missing, and why</h3>", _missing(scope["missing"], whole), "</section>"]
    return "\n".join(parts)


def _headline(headline: dict[str, dict[str, Any]], whole: bool) -> str:
    cards = []
    unit = "account-days" if whole else "days"
    for name, title in HEADLINE_TITLES.items():
        h = headline[name]
        if h["value"] is None:
            change = "<span class='muted'>no data (see what is missing)</span>"
        elif h["change"] is not None:
            css = "up" if h["change"] > 0 else "down" if h["change"] < 0 else "muted"
            pct = f" ({h['change_pct']:+.1f}%)" if h["change_pct"] is not None else ""
            change = f"<span class='{css}'>{h['change']:+,}{pct}</span> vs {fmt(h['previous'])}"
        elif h["previous"] is None:
            change = "<span class='muted'>no data before</span>"
        else:
            change = (f"<span class='muted'>{fmt(h['previous'])} from {h['previous_days']:,} {unit} before: "
                      "not compared</span>")
        days = ""
        if "expected_days" in h and h["value"] is not None and h["days"] < h["expected_days"]:
            days = f"<div class='c muted'>from {h['days']:,} of {h['expected_days']:,} {unit}</div>"
        cards.append(f"<div class='card' data-figure='{name}'><div class='muted'>{title}</div>"
                     f"<div class='v'>{fmt(h['value'])}</div><div class='c'>{change}</div>{days}</div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def _none(reason: str) -> str:
    return f"<div class='none'>{escape(reason)}</div>"


def _posts(posts: list[dict[str, Any]], whole: bool) -> str:
    """The posts as a table; at phone width the caption and the rate per follower give way, and the
    account goes under the date."""
    if not posts:
        return _none("No post of this period has insights.")
    account = "<th class='hide-narrow'>Account</th>" if whole else ""
    rows = [f"<div class='scroll'><table data-table='posts'><tr><th>Post</th>{account}"
            "<th class='hide-narrow'>Caption</th><th>Type</th><th class='n'>Reach</th><th class='n'>Eng. rate</th>"
            "<th class='n hide-narrow'>per follower</th></tr>"]
    for p in posts:
        year, rest = p["published"][:5], p["published"][5:]
        when = f"<span class='hide-narrow'>{escape(year)}</span>{escape(rest)}"
        link = f"<a href='{escape(p['permalink'])}'>{when}</a>" if p["permalink"] else when
        thumb = (f"<span class='hide-narrow'> \u00b7 </span><br class='show-narrow'>"
                 f"<a href='{escape(p['thumbnail'])}'>thumbnail</a>") if p["thumbnail"] else ""
        caption = escape(p["caption"]) if p["caption"] else "<span class='muted'>no caption</span>"
        name = escape("@" + p["username"] if p["username"] else p["account_id"])
        under, who = "", ""
        if whole:
            under, who = f"<span class='show-narrow'><br>{name}</span>", f"<td class='hide-narrow'>{name}</td>"
        rows.append(f"<tr><td class='post'>{link}{under}{thumb}</td>{who}<td class='hide-narrow'>{caption}</td>"
                    f"<td>{CONTENT_TITLE[p['content_type']]}</td><td class='n'>{fmt(p['reach'])}</td>"
                    f"<td class='n'>{fmt(p['er'], True)}</td>"
                    f"<td class='n hide-narrow'>{fmt(p['er_follower'], True)}</td></tr>")
    return "".join(rows) + "</table></div>"


def _content(rows: list[dict[str, Any]], slug: str) -> str:
    table = ["<div class='scroll'><table data-table='content-types'><tr><th>Type</th><th class='n'>Count</th>"
             "<th class='n hide-narrow'>with insights</th><th class='n'>Median reach</th>"
             "<th class='n'>Median eng. rate</th></tr>"]
    for r in rows:
        table.append(f"<tr><td>{CONTENT_TITLES[r['content_type']]}</td><td class='n'>{r['count']}</td>"
                     f"<td class='n hide-narrow'>{r['with_insights']}</td><td class='n'>{fmt(r['median_reach'])}</td>"
                     f"<td class='n'>{fmt(r['median_er'], True)}</td></tr>")
    table.append("</table></div>")
    drawn = charts.bars([(CONTENT_TITLES[r["content_type"]], r["median_er"], fmt(r["median_er"], True))
                         for r in rows], f"content-types-{slug}")
    return "".join(table) + (drawn or _none("No post of this period has insights: no engagement rates."))


def _stories(s: dict[str, Any], slug: str) -> str:
    if not s["count"]:
        return _none("No story was published in this period.")
    head = (f"<p>{_count(s['count'], 'story', 'stories')}, {s['with_insights']} with insights: "
            f"reach {fmt(s['reach'])} (summed over the stories), replies {fmt(s['replies'])}.</p>")
    if not s["with_insights"]:
        return head + _none("No story of this period has insights (see what is missing).")
    steps = [("Reach", s["reach"]), *((NAV_TITLES[k], v) for k, v in s["navigation"].items())]
    return head + charts.bars([(label, v, fmt(v)) for label, v in steps], f"stories-{slug}", color="var(--accent2)")


def _audience(a: dict[str, Any], slug: str) -> str:
    if not a["pyramid"] and not a["countries"]:
        return _none("No demographics: the API gives none for accounts under 100 followers.")
    places = {place: charts.bars([(c["name"], c["value"], fmt(c["value"])) for c in a[place]], f"{place}-{slug}")
              for place in ("countries", "cities")}
    return ("<div class='row'><div><p class='muted'>Followers by age and gender</p>"
            + (charts.pyramid(a["pyramid"], f"pyramid-{slug}") or _none("No age and gender data."))
            + "</div><div><p class='muted'>Share of each age: followers (blue) and engaged audience (orange)</p>"
            + (charts.ages(a["ages"], f"ages-{slug}") or _none("No age data.")) + "</div></div>"
            "<div class='row'><div><p class='muted'>Top countries</p>"
            + (places["countries"] or _none("No country data."))
            + "</div><div><p class='muted'>Top cities</p>" + (places["cities"] or _none("No city data."))
            + "</div></div>")


ACCOUNTS_LISTED = 12
"""Accounts a note of the whole report names (then: and N more)."""


def _missing(notes: list[dict[str, Any]], whole: bool) -> str:
    if not notes:
        return "<p class='muted'>Nothing: every figure above has all its data.</p>"
    items = []
    for n in notes:
        detail = ""
        if n.get("days"):
            detail = f" <span class='days'>{escape(spans_text(n['days']))}</span>."
        elif n.get("labels"):
            detail = ": " + escape("; ".join(n["labels"][:5])) + (" \u2026" if n["count"] > 5 else "") + "."
        elif n.get("ids") and n["count"]:
            detail = f" ({n['count']:,})."
        else:
            detail = "."
        who = ""
        if whole:
            names = [("@" + a["username"]) if a["username"] else a["account_id"] for a in n["accounts"]]
            more = len(names) - ACCOUNTS_LISTED
            listed = escape(", ".join(names[:ACCOUNTS_LISTED])) + (f" and {more} more" if more > 0 else "")
            who = f"<br><span class='muted'>{_count(len(names), 'account')}: {listed}</span>"
        fix = "".join(f"<br>Fill it: <code>{escape(c)}</code>" for c in n.get("fix", []))
        items.append(f"<li><b>{escape(n['what'].capitalize())}</b>: {escape(n['reason'])}{detail}{who}{fix}</li>")
    return "<ul class='missing'>" + "".join(items) + "</ul>"
