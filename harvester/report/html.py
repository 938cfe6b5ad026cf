"""The report page, drawn from the figures :func:`harvester.report.build` returns and nothing else.

One self-contained file: inline CSS, charts as inline SVG drawn here, no script, no font and no
image fetched from anywhere (thumbnails and permalinks are links, never loaded). Every chart is an
``<svg class="chart" data-chart=...>`` whose marks have the class ``mark``; a figure without data
says why instead of drawing an empty chart, so a blank never looks like a zero.
"""

from __future__ import annotations

from html import escape
from typing import Any

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HEADLINE_TITLES = {"reach": "Reach (sum of daily)", "views": "Views", "total_interactions": "Interactions",
                   "profile_links_taps": "Profile link taps", "follower_growth": "Follower growth",
                   "posts": "Posts published"}
CONTENT_TITLES = {"REELS": "Reels", "FEED": "Feed posts", "CAROUSEL": "Carousels", "STORY": "Stories"}
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
ul.missing li { margin-bottom: 4px; }
a { color: var(--accent);
    overflow-wrap: anywhere; }
@media (max-width: 600px) { body { padding: 10px; font-size: 14px; } .hide-narrow { display: none; } }
@media print { body { max-width: none; padding: 0; } h2 { break-before: page; }
               .card, svg, table { break-inside: avoid; }
               a { color: var(--ink); text-decoration: none; } }
"""


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    p = report["period"]
    body = [f"<h1>Instagram report, {escape(p['since'])} to {escape(_last_day(report))}</h1>",
            f"<p class='sub'>{p['days']} days against the {p['days']} days before ({escape(p['previous_since'])} to "
            f"{escape(p['since'])}), times in {escape(p['tz'])}. {len(report['scopes']) - 1} accounts. "
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
    from datetime import date, timedelta
    return (date.fromisoformat(report["period"]["until"]) - timedelta(days=1)).isoformat()


def _scope(scope: dict[str, Any], report: dict[str, Any]) -> str:
    key = scope["account_id"]
    title = "All accounts" if key == "all" else f"@{scope['username']}" if scope["username"] else f"Account {key}"
    followers = f", {scope['followers']:,} followers" if scope["followers"] is not None else ""
    slug = escape(key)
    parts = [f"<section id='scope-{slug}'><h2>{escape(title)}<span class='muted'> {escape(key)}{followers}</span></h2>",
             _headline(scope["headline"]),
             "<h3>Daily reach and views</h3><p class='muted'>Triangles mark the days posts were published.</p>",
             "<div class='row'>",
             f"<div>{_line(scope['daily'], 'reach', f'daily-reach-{slug}', 'var(--accent)')}</div>",
             f"<div>{_line(scope['daily'], 'views', f'daily-views-{slug}', 'var(--accent2)')}</div></div>",
             "<h3>Top posts by engagement rate</h3>", _posts(scope["posts"]["top"]),
             "<h3>Bottom posts by engagement rate</h3>", _posts(scope["posts"]["bottom"]),
             "<h3>Content types</h3>", _content(scope["content_types"], slug),
             f"<h3>Best time to post ({escape(report['period']['tz'])})</h3><div class='row'>",
             f"<div><p class='muted'>Median engagement rate of {scope['best_time']['posts_count']} posts since "
             f"{escape(report['period']['best_time_since'])}</p>"
             f"{_heat(scope['best_time']['posts'], f'best-time-{slug}', percent=True)}</div>",
             f"<div><p class='muted'>Followers online (median since {escape(report['period']['online_since'])})</p>"
             f"{_heat(scope['best_time']['online_followers'], f'online-{slug}', percent=False)}</div></div>",
             "<h3>Stories</h3>", _stories(scope["stories"], slug),
             "<h3>Audience</h3>", _audience(scope["audience"], slug),
             "<h3>What is missing, and why</h3>", _missing(scope["missing"]), "</section>"]
    return "\n".join(parts)


def _fmt(v: Any, percent: bool = False) -> str:
    if v is None:
        return "\u2013"     # an en dash: no value
    if percent:
        return f"{100 * v:.1f}%"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{int(v):,}"


def _headline(headline: dict[str, dict[str, Any]]) -> str:
    cards = []
    for name, title in HEADLINE_TITLES.items():
        h = headline[name]
        if h["value"] is None:
            change = "<span class='muted'>no data</span>"
        elif h["change"] is None:
            change = "<span class='muted'>no previous period</span>"
        else:
            css = "up" if h["change"] > 0 else "down" if h["change"] < 0 else "muted"
            pct = f" ({h['change_pct']:+.1f}%)" if h["change_pct"] is not None else ""
            change = f"<span class='{css}'>{h['change']:+,}{pct}</span> vs {_fmt(h['previous'])}"
        cards.append(f"<div class='card' data-figure='{name}'><div class='muted'>{title}</div>"
                     f"<div class='v'>{_fmt(h['value'])}</div><div class='c'>{change}</div></div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def _none(reason: str) -> str:
    return f"<div class='none'>{escape(reason)}</div>"


def _line(days: list[dict[str, Any]], metric: str, name: str, color: str) -> str:
    """A line of the daily values; a gap where a day has no data; a triangle under a day with posts."""
    values = [d[metric] for d in days]
    known = [v for v in values if v is not None]
    if not known:
        return _none(f"No daily {metric} for this period yet.")
    w, h, left, bottom = 600, 220, 56, 40
    top = max(known) or 1
    n = len(days)
    x = lambda i: left + (w - left - 10) * (i + 0.5) / n            # noqa: E731
    y = lambda v: 10 + (h - bottom - 10) * (1 - v / top)            # noqa: E731
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {h}' role='img' "
           f"aria-label='daily {metric}'><title>Daily {metric}</title>",
           f"<line x1='{left}' y1='{h - bottom}' x2='{w - 10}' y2='{h - bottom}' stroke='#d8dde6'/>",
           f"<text x='{left - 6}' y='14' text-anchor='end'>{_fmt(top)}</text>",
           f"<text x='{left + 6}' y='14' style='font-size:14px;fill:{color}'>Daily {metric}</text>",
           f"<text x='{left - 6}' y='{h - bottom}' text-anchor='end'>0</text>"]
    segment: list[str] = []
    for i, v in enumerate([*values, None]):
        if v is None:
            if segment:
                out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{' '.join(segment)}'/>")
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(v):.1f}")
        out.append(f"<circle class='mark' cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='{color}'>"
                   f"<title>{days[i]['day']}: {_fmt(v)}</title></circle>")
    step = max(1, n // 8)
    for i, d in enumerate(days):
        if i % step == 0:
            out.append(f"<text x='{x(i):.1f}' y='{h - bottom + 14}' text-anchor='middle'>{d['day'][5:]}</text>")
        if d["posts"]:
            px, py = x(i), h - bottom + 20
            out.append(f"<path class='post' d='M{px:.1f},{py:.1f} l-5,9 h10 z' fill='#1d2330'>"
                       f"<title>{d['day']}: {len(d['posts'])} posts</title></path>")
    out.append("</svg>")
    return "".join(out)


def _posts(posts: list[dict[str, Any]]) -> str:
    if not posts:
        return _none("No post of this period has insights.")
    rows = ["<div class='scroll'><table data-table='posts'><tr><th>Post</th><th class='hide-narrow'>Caption</th>"
            "<th>Type</th><th class='n'>Reach</th><th class='n'>Eng. rate</th><th class='n'>per follower</th></tr>"]
    for p in posts:
        thumb = f" · <a href='{escape(p['thumbnail'])}'>thumbnail</a>" if p["thumbnail"] else ""
        link = f"<a href='{escape(p['permalink'])}'>{escape(p['published'])}</a>" if p["permalink"] else \
            escape(p["published"])
        caption = escape(p["caption"]) if p["caption"] else "<span class='muted'>no caption</span>"
        rows.append(f"<tr><td>{link}{thumb}</td><td class='hide-narrow'>{caption}</td>"
                    f"<td>{escape(p['media_product_type'] or '')}</td><td class='n'>{_fmt(p['reach'])}</td>"
                    f"<td class='n'>{_fmt(p['er'], True)}</td><td class='n'>{_fmt(p['er_follower'], True)}</td></tr>")
    return "".join(rows) + "</table></div>"


def _bars(items: list[tuple[str, float | None, str]], name: str, percent: bool = False,
          color: str = "var(--accent)") -> str:
    """Horizontal bars: (label, value, value text)."""
    known = [v for _, v, _ in items if v is not None]
    if not known:
        return ""
    top = max(known) or 1
    w, row, left = 600, 24, 170
    h = row * len(items) + 6
    out = [f"<svg class='chart bars' data-chart='{name}' viewBox='0 0 {w} {h}' role='img'>"]
    for i, (label, v, text) in enumerate(items):
        y = 3 + i * row
        out.append(f"<text x='{left - 6}' y='{y + 15}' text-anchor='end'>{escape(label[:28])}</text>")
        if v is not None:
            width = max(1.0, (w - left - 90) * v / top)
            out.append(f"<rect class='mark' x='{left}' y='{y + 3}' width='{width:.1f}' height='{row - 8}' "
                       f"fill='{color}'><title>{escape(label)}: {escape(text)}</title></rect>")
        out.append(f"<text x='{left + 4 + (w - left - 90) * (v or 0) / top:.1f}' y='{y + 15}'>{escape(text)}</text>")
    out.append("</svg>")
    return "".join(out)


def _content(rows: list[dict[str, Any]], slug: str) -> str:
    table = ["<div class='scroll'><table data-table='content-types'><tr><th>Type</th><th class='n'>Count</th>"
             "<th class='n'>with insights</th><th class='n'>Median reach</th><th class='n'>Median eng. rate</th></tr>"]
    for r in rows:
        table.append(f"<tr><td>{CONTENT_TITLES[r['content_type']]}</td><td class='n'>{r['count']}</td>"
                     f"<td class='n'>{r['with_insights']}</td><td class='n'>{_fmt(r['median_reach'])}</td>"
                     f"<td class='n'>{_fmt(r['median_er'], True)}</td></tr>")
    table.append("</table></div>")
    bars = _bars([(CONTENT_TITLES[r["content_type"]], r["median_er"], _fmt(r["median_er"], True)) for r in rows],
                 f"content-types-{slug}")
    return "".join(table) + (bars or _none("No post of this period has insights: no engagement rates."))


def _heat(grid: list[list[Any]], name: str, percent: bool) -> str:
    known = [v for row in grid for v in row if v is not None]
    if not known:
        return _none("No data for this map in the period (see what is missing).")
    top = max(known) or 1
    cell, left, topm = 22, 34, 16
    w, h = left + 24 * cell, topm + 7 * cell + 4
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {h}' role='img'>"]
    for hour in range(0, 24, 3):
        out.append(f"<text x='{left + hour * cell + cell / 2}' y='12' text-anchor='middle'>{hour}h</text>")
    for d, row in enumerate(grid):
        y = topm + d * cell
        out.append(f"<text x='{left - 4}' y='{y + 15}' text-anchor='end'>{WEEKDAYS[d]}</text>")
        for hour, v in enumerate(row):
            x = left + hour * cell
            if v is None:
                out.append(f"<rect x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}' fill='none' "
                           f"stroke='#eceff4'/>")
            else:
                shade = 0.12 + 0.88 * v / top
                out.append(f"<rect class='mark' x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}' "
                           f"fill='#2f6fdf' fill-opacity='{shade:.2f}'><title>{WEEKDAYS[d]} {hour}:00: "
                           f"{_fmt(v, percent)}</title></rect>")
    out.append("</svg>")
    return "".join(out)


def _stories(s: dict[str, Any], slug: str) -> str:
    if not s["count"]:
        return _none("No story was published in this period.")
    head = (f"<p>{s['count']} stories, {s['with_insights']} with insights: reach {_fmt(s['reach'])}, "
            f"replies {_fmt(s['replies'])}.</p>")
    if not s["with_insights"]:
        return head + _none("No story of this period has insights (see what is missing).")
    steps = [("Reach", s["reach"]), *((NAV_TITLES[k], v) for k, v in s["navigation"].items())]
    return head + _bars([(label, v, _fmt(v)) for label, v in steps], f"stories-{slug}", color="var(--accent2)")


def _audience(a: dict[str, Any], slug: str) -> str:
    if not a["pyramid"] and not a["countries"]:
        return _none("No demographics: the API gives none for accounts under 100 followers.")
    return ("<div class='row'><div><p class='muted'>Followers by age and gender (women left, men right)</p>"
            + _pyramid(a["pyramid"], f"pyramid-{slug}") + "</div><div><p class='muted'>Share of each age: followers"
            " (blue) and engaged audience (orange)</p>" + _ages(a["ages"], f"ages-{slug}") + "</div></div>"
            "<div class='row'><div><p class='muted'>Top countries</p>"
            + (_bars([(c["name"], c["value"], _fmt(c["value"])) for c in a["countries"]], f"countries-{slug}")
               or _none("No country data."))
            + "</div><div><p class='muted'>Top cities</p>"
            + (_bars([(c["name"], c["value"], _fmt(c["value"])) for c in a["cities"]], f"cities-{slug}")
               or _none("No city data.")) + "</div></div>")


def _pyramid(rows: list[dict[str, Any]], name: str) -> str:
    ages: dict[str, dict[str, int]] = {}
    for r in rows:
        ages.setdefault(r["age"], {})[r["gender"]] = r["value"]
    if not ages:
        return _none("No age and gender data.")
    top = max(max(v.get("F", 0), v.get("M", 0)) for v in ages.values()) or 1
    w, row, mid = 600, 24, 300
    half = mid - 50
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {row * len(ages) + 6}' role='img'>"]
    for i, (age, v) in enumerate(ages.items()):
        y = 3 + i * row
        f, m = v.get("F", 0), v.get("M", 0)
        fw, mw = half * f / top, half * m / top
        out.append(f"<rect class='mark' x='{mid - 24 - fw:.1f}' y='{y + 3}' width='{fw:.1f}' height='{row - 8}' "
                   f"fill='#e0703a'><title>{age} women: {f:,}</title></rect>")
        out.append(f"<rect class='mark' x='{mid + 24}' y='{y + 3}' width='{mw:.1f}' height='{row - 8}' "
                   f"fill='#2f6fdf'><title>{age} men: {m:,}</title></rect>")
        out.append(f"<text x='{mid}' y='{y + 15}' text-anchor='middle'>{escape(age)}</text>")
        if "U" in v:
            out.append(f"<text x='{w - 2}' y='{y + 15}' text-anchor='end'>U {v['U']:,}</text>")
    out.append("</svg>")
    return "".join(out)


def _ages(rows: list[dict[str, Any]], name: str) -> str:
    if not rows:
        return _none("No age data.")
    w, row, left = 600, 30, 60
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {row * len(rows) + 6}' role='img'>"]
    top = max(max(r["followers"] or 0, r["engaged"] or 0) for r in rows) or 1
    for i, r in enumerate(rows):
        y = 3 + i * row
        out.append(f"<text x='{left - 6}' y='{y + 16}' text-anchor='end'>{escape(r['age'])}</text>")
        for j, (key, color) in enumerate((("followers", "#2f6fdf"), ("engaged", "#e0703a"))):
            if r[key] is None:
                continue
            width = (w - left - 70) * r[key] / top
            out.append(f"<rect class='mark' x='{left}' y='{y + 2 + j * 12}' width='{width:.1f}' height='11' "
                       f"fill='{color}'><title>{r['age']} {key}: {_fmt(r[key], True)}</title></rect>")
            out.append(f"<text x='{left + width + 4:.1f}' y='{y + 12 + j * 12}'>{_fmt(r[key], True)}</text>")
    out.append("</svg>")
    return "".join(out)


def _missing(notes: list[dict[str, Any]]) -> str:
    if not notes:
        return "<p class='muted'>Nothing: every figure above has all its data.</p>"
    items = []
    for n in notes:
        detail = ""
        if n.get("days"):
            detail = ": " + ", ".join(n["days"][:10]) + (" …" if len(n["days"]) > 10 else "")
        elif n.get("labels"):
            detail = ": " + "; ".join(n["labels"][:5])
        items.append(f"<li><b>{escape(n['what'])}</b> ({n['count']}), account {escape(n['account_id'])}: "
                     f"{escape(n['reason'])}{escape(detail)}</li>")
    return "<ul class='missing'>" + "".join(items) + "</ul>"
