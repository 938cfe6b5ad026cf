"""The report's charts, each an inline ``<svg class="chart" data-chart=...>`` drawn from plain values.

Every mark has the class ``mark``; every text is placed where nothing else is (labels in their own
columns and margins, numbers in compact form where a margin is narrow: ``1.4M``), so none is cut
by the chart's edge or lies over a bar or another text: the browser test measures that. A text
deliberately inside a mark (a heat map cell's count) has the class ``in-mark``.
"""

from __future__ import annotations

from html import escape
from typing import Any

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BLUE, ORANGE, GREY = "#2f6fdf", "#e0703a", "#9aa3b2"
FEW = "#e6e9ef"
"""A heat map cell with too few posts for its median to mean much."""


def fmt(v: Any, percent: bool = False) -> str:
    """A value as the page shows it: 1,234 / 12.5 / 4.2%; an en dash for no value."""
    if v is None:
        return "\u2013"
    if percent:
        return f"{100 * v:.1f}%"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{int(v):,}"


def compact(v: float) -> str:
    """A number in at most five characters: 950, 9.5k, 95k, 1.4M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            x = v / size
            text = f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}"
            return text.removesuffix(".0") + suffix
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def nice(top: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at least ``top``: an axis's end."""
    if top <= 0:
        return 1.0
    power = 10 ** (len(str(int(top))) - 1) if top >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


def line(days: list[dict[str, Any]], metric: str, name: str, color: str, title: str) -> str | None:
    """A line of the daily values; a gap where a day has no data; a triangle under a day with posts.
    None: no day has data."""
    values = [d[metric] for d in days]
    known = [v for v in values if v is not None]
    if not known:
        return None
    w, h, left, bottom, top_margin = 600, 230, 46, 40, 26
    top = nice(max(known))
    n = len(days)
    x = lambda i: left + (w - left - 10) * (i + 0.5) / n                    # noqa: E731
    y = lambda v: top_margin + (h - bottom - top_margin) * (1 - v / top)    # noqa: E731
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {h}' role='img' "
           f"aria-label='{escape(title)}'><title>{escape(title)}</title>",
           f"<text x='{left}' y='14' style='font-size:13px;fill:{color}'>{escape(title)}</text>"]
    for tick in (0, top / 2, top):
        out.append(f"<line x1='{left}' y1='{y(tick):.1f}' x2='{w - 10}' y2='{y(tick):.1f}' stroke='#e3e7ee'/>")
        out.append(f"<text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end'>{compact(tick)}</text>")
    segment: list[str] = []
    for i, v in enumerate([*values, None]):
        if v is None:
            if segment:
                out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{' '.join(segment)}'/>")
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(v):.1f}")
        out.append(f"<circle class='mark' cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='{color}'>"
                   f"<title>{days[i]['day']}: {fmt(v)}</title></circle>")
    step = max(1, -(-n // 8))
    for i, d in enumerate(days):
        if i % step == 0:
            out.append(f"<text x='{x(i):.1f}' y='{h - bottom + 14}' text-anchor='middle'>{d['day'][5:]}</text>")
        if d["posts"]:
            px, py = x(i), h - bottom + 20
            out.append(f"<path class='post' d='M{px:.1f},{py:.1f} l-5,9 h10 z' fill='#1d2330'>"
                       f"<title>{d['day']}: {len(d['posts'])} posts</title></path>")
    out.append("</svg>")
    return "".join(out)


def bars(items: list[tuple[str, float | None, str]], name: str, color: str = BLUE) -> str:
    """Horizontal bars: (label, value, value text); "" when no item has a value."""
    known = [v for _, v, _ in items if v is not None]
    if not known:
        return ""
    top = max(known) or 1
    w, row, left, right = 600, 24, 190, 80
    out = [f"<svg class='chart bars' data-chart='{name}' viewBox='0 0 {w} {row * len(items) + 6}' role='img'>"]
    for i, (label, v, text) in enumerate(items):
        y = 3 + i * row
        short = label if len(label) <= 30 else label[:29] + "\u2026"
        out.append(f"<text x='{left - 6}' y='{y + 15}' text-anchor='end'><title>{escape(label)}</title>"
                   f"{escape(short)}</text>")
        width = (w - left - right) * (v or 0) / top
        if v is not None:
            out.append(f"<rect class='mark' x='{left}' y='{y + 3}' width='{max(1.0, width):.1f}' height='{row - 8}' "
                       f"fill='{color}'><title>{escape(label)}: {escape(text)}</title></rect>")
        out.append(f"<text x='{left + max(1.0, width) + 4:.1f}' y='{y + 15}'>{escape(text)}</text>")
    out.append("</svg>")
    return "".join(out)


def heat(grid: list[list[Any]], name: str, *, percent: bool, counts: list[list[int]] | None = None,
         min_count: int = 0, label: str = "") -> str | None:
    """A weekday x hour map with its legend: a colour per value from the lightest (lowest) to
    the darkest (highest). With ``counts``, each cell shows how many posts its value is of, and a
    cell of fewer than ``min_count`` is grey, its value not shown as a colour. None: no data."""
    shown = [v for d, row in enumerate(grid) for h, v in enumerate(row)
             if v is not None and (counts is None or counts[d][h] >= min_count)]
    if not any(v is not None for row in grid for v in row):
        return None
    low, high = (min(shown), max(shown)) if shown else (None, None)
    cell, left, topm = 22, 34, 18
    w, h = left + 24 * cell + 4, topm + 7 * cell + 34
    out = [f"<svg class='chart heat' data-chart='{name}' viewBox='0 0 {w} {h}' role='img'>"]
    for hour in range(0, 24, 3):
        out.append(f"<text x='{left + hour * cell + cell / 2}' y='12' text-anchor='middle'>{hour}h</text>")
    for d, row in enumerate(grid):
        y = topm + d * cell
        out.append(f"<text x='{left - 4}' y='{y + 15}' text-anchor='end'>{WEEKDAYS[d]}</text>")
        for hour, v in enumerate(row):
            x = left + hour * cell
            n = counts[d][hour] if counts is not None else None
            size = f"x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}'"
            if v is None:
                out.append(f"<rect {size} fill='none' stroke='#eceff4'/>")
                continue
            when = f"{WEEKDAYS[d]} {hour}:00"
            shade = _shade(v, low, high) if low is not None and high is not None else 1.0
            if n is not None and n < min_count:
                shade = 0.0
                out.append(f"<rect class='mark few' {size} fill='{FEW}'><title>{when}: {n} "
                           f"post{'s' if n != 1 else ''}, too few for a median</title></rect>")
            else:
                posts = f" of {n} posts" if n is not None else ""
                out.append(f"<rect class='mark' {size} fill='{BLUE}' fill-opacity='{shade:.2f}'><title>{when}: "
                           f"{fmt(v, percent)}{posts}</title></rect>")
            if n is not None:
                ink = "#fff" if shade > 0.6 else "#1d2330"
                out.append(f"<text class='in-mark' x='{x + (cell - 2) / 2}' y='{y + 14}' text-anchor='middle' "
                           f"style='font-size:9px;fill:{ink}'>{n}</text>")
    out.append(_legend(left, topm + 7 * cell + 18, low, high, percent, counts is not None, min_count, label))
    out.append("</svg>")
    return "".join(out)


def _shade(v: float, low: float, high: float) -> float:
    return 0.12 + 0.88 * ((v - low) / (high - low) if high > low else 1.0)


def _legend(x: float, y: float, low: float | None, high: float | None, percent: bool, counted: bool,
            min_count: int, label: str) -> str:
    """The scale under a heat map: its lowest and highest value either side of five shades; for
    posts, the grey of too few and what the numbers are."""
    text = (lambda v: fmt(v, True)) if percent else compact
    if low is None or high is None:         # every cell grey: no scale to show
        return (f"<g class='legend'><rect x='{x}' y='{y}' width='15' height='14' fill='{FEW}'/><text x='{x + 19}' "
                f"y='{y + 11}'>no hour has {min_count} posts yet; numbers: posts</text></g>")
    out = [f"<g class='legend'><text x='{x}' y='{y + 11}'>{escape(label)} {text(low)}</text>"]
    start = x + 8 + 6.2 * (len(label) + 1 + len(text(low)))
    for i in range(5):
        out.append(f"<rect x='{start + i * 16:.1f}' y='{y}' width='15' height='14' fill='{BLUE}' "
                   f"fill-opacity='{0.12 + 0.22 * i:.2f}'/>")
    after = start + 5 * 16 + 4
    out.append(f"<text x='{after:.1f}' y='{y + 11}'>{text(high)}</text>")
    if counted:
        grey = after + 6.2 * len(text(high)) + 14
        out.append(f"<rect x='{grey:.1f}' y='{y}' width='15' height='14' fill='{FEW}'/>"
                   f"<text x='{grey + 19:.1f}' y='{y + 11}'>under {min_count} posts; numbers: posts</text>")
    out.append("</g>")
    return "".join(out)


def pyramid(rows: list[dict[str, Any]], name: str) -> str | None:
    """Followers by age: women to the left of the ages, men to the right, gender not given in a
    column of its own, all bars on one scale. None: no data."""
    ages: dict[str, dict[str, int]] = {}
    for r in rows:
        ages.setdefault(r["age"], {})[r["gender"]] = r["value"]
    if not ages:
        return None
    top = max(max(v.values()) for v in ages.values()) or 1
    w, row, head, col = 600, 24, 20, 170
    women_end, label_x, men_start, unknown_start = 8 + col, 8 + col + 26, 8 + col + 52, 8 + 2 * col + 72
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {head + row * len(ages) + 6}' role='img'>",
           f"<text x='{women_end}' y='13' text-anchor='end'>Women</text>",
           f"<text x='{label_x}' y='13' text-anchor='middle'>Age</text>",
           f"<text x='{men_start}' y='13'>Men</text>",
           f"<text x='{unknown_start}' y='13'>Not given</text>"]
    for i, (age, v) in enumerate(ages.items()):
        y = head + 3 + i * row
        f, m, u = v.get("F", 0), v.get("M", 0), v.get("U")
        fw, mw = col * f / top, col * m / top
        out.append(f"<rect class='mark' x='{women_end - fw:.1f}' y='{y + 3}' width='{fw:.1f}' height='{row - 8}' "
                   f"fill='{ORANGE}'><title>{age} women: {f:,}</title></rect>")
        out.append(f"<text x='{label_x}' y='{y + 15}' text-anchor='middle'>{escape(age)}</text>")
        out.append(f"<rect class='mark' x='{men_start}' y='{y + 3}' width='{mw:.1f}' height='{row - 8}' "
                   f"fill='{BLUE}'><title>{age} men: {m:,}</title></rect>")
        if u is not None:
            out.append(f"<rect class='mark' x='{unknown_start}' y='{y + 3}' width='{col * u / top:.1f}' "
                       f"height='{row - 8}' fill='{GREY}'><title>{age} gender not given: {u:,}</title></rect>")
    out.append("</svg>")
    return "".join(out)


def ages(rows: list[dict[str, Any]], name: str) -> str | None:
    """Each age's share of the followers (blue) beside that of the engaged audience (orange)."""
    if not rows:
        return None
    w, row, left, right = 600, 30, 60, 60
    out = [f"<svg class='chart' data-chart='{name}' viewBox='0 0 {w} {row * len(rows) + 6}' role='img'>"]
    top = max(max(r["followers"] or 0, r["engaged"] or 0) for r in rows) or 1
    for i, r in enumerate(rows):
        y = 3 + i * row
        out.append(f"<text x='{left - 6}' y='{y + 16}' text-anchor='end'>{escape(r['age'])}</text>")
        for j, (key, color) in enumerate((("followers", BLUE), ("engaged", ORANGE))):
            if r[key] is None:
                continue
            width = (w - left - right) * r[key] / top
            out.append(f"<rect class='mark' x='{left}' y='{y + 2 + j * 12}' width='{width:.1f}' height='11' "
                       f"fill='{color}'><title>{r['age']} {key}: {fmt(r[key], True)}</title></rect>")
            out.append(f"<text x='{left + width + 4:.1f}' y='{y + 12 + j * 12}' style='font-size:10px'>"
                       f"{fmt(r[key], True)}</text>")
    out.append("</svg>")
    return "".join(out)
