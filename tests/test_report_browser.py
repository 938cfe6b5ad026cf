"""The report in a real browser: headless Chromium (Debian's package) over the DevTools protocol.

It renders with no console error, makes no request beyond its own file, every chart has marks,
every heat map its legend, no text is cut by its chart's edge or lies over another text or a bar,
at full and at phone width; a phone-width page does not scroll sideways; it prints; screenshots
of the whole page and of a phone-width page go to the test's directory and to docs/
(report-full.png, report-phone.png).
"""

from __future__ import annotations

import base64
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from browser import Page, chromium

from harvester import catalog
from harvester.days import from_unix
from harvester.report import write
from harvester.simulator.world import World, WorldSpec

from support import REPORT_NOW as NOW
from support import REPORT_TZ as TZ
from support import has_insights, local_day, posts_of
from support import report_accounts as accounts
from support import report_harvest as harvest

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
DOCS = Path(__file__).resolve().parent.parent / "docs"
CHARTS = ("daily-reach", "daily-views", "content-types", "best-time", "online", "stories", "pyramid", "ages",
          "countries", "cities")
"""The charts of a scope whose account has posts, stories with insights and demographics."""

LAYOUT = """(() => {
  const problems = [];
  const box = e => e.getBoundingClientRect();
  const inside = (a, b, slack) => a.left >= b.left - slack && a.right <= b.right + slack &&
                                  a.top >= b.top - slack && a.bottom <= b.bottom + slack;
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 &&
                            Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const name = svg.dataset.chart, frame = box(svg);
    const texts = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim());
    const marks = Array.from(svg.querySelectorAll('.mark'));
    texts.forEach((t, i) => {
      const r = box(t), what = `${name}: "${t.textContent}"`;
      if (!inside(r, frame, 0.5)) problems.push(`${what} is cut by the chart's edge`);
      texts.slice(i + 1).forEach(u => {
        if (overlap(r, box(u))) problems.push(`${what} overlaps "${u.textContent}"`);
      });
      if (t.classList.contains('in-mark')) {
        if (!marks.some(m => inside(r, box(m), 0.5))) problems.push(`${what} is not inside its mark`);
      } else {
        marks.forEach(m => { if (overlap(r, box(m))) problems.push(`${what} lies over a mark`); });
      }
    });
  }
  for (const e of document.querySelectorAll('.card, td, th, h2, li'))
    if (e.scrollWidth > e.clientWidth + 1) problems.push(`text overflows its box: ${e.textContent.slice(0, 60)}`);
  return problems;
})()"""
"""Every text of every chart inside its chart, over no other text and no mark (a heat map cell's
count: inside its cell), and no card, cell or line of the page wider than its box."""

LEGENDS = """Array.from(document.querySelectorAll('svg.heat')).map(s => [s.dataset.chart,
    s.querySelectorAll('.legend rect').length, (s.querySelector('.legend') || {textContent: ''}).textContent])"""


@pytest.fixture
def report_file(tmp_path):
    world = World(WorldSpec(seed=31, accounts=5, media_per_account=500, stories_per_account=3.0, now=NOW))
    config = harvest(world, tmp_path / "out")
    today = from_unix(int(world.now))
    since, until = today - timedelta(days=7), today       # whole days: every headline has its change

    def complete(a) -> bool:
        posts = [m for m in posts_of(world, a) if since <= local_day(m.timestamp) < until and has_insights(world, m)]
        stories = [s for s in world.live_stories(a) if since <= local_day(s.timestamp) < until
                   and has_insights(world, s)]
        return a.followers >= catalog.MIN_FOLLOWERS and bool(posts) and bool(stories)

    account = next(a for a in accounts(world, config) if complete(a))
    path = write(config, since=since, until=until, tz=TZ, accounts=[account.id], out=tmp_path / "report.html",
                 today=today)
    return path, account.id


async def test_the_report_renders_in_chromium_with_every_chart_and_nothing_fetched(report_file, tmp_path):
    if not chromium():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: make install puts Debian's chromium package in")
        pytest.skip("chromium is not installed (make install installs it)")
    path, account_id = report_file
    async with Page() as page:
        await page.open(path, width=1200)
        charts = await page.evaluate("Array.from(document.querySelectorAll('svg.chart'))"
                                     ".map(s => [s.dataset.chart, s.querySelectorAll('.mark').length])")
        expected = {f"{c}-{scope}" for c in CHARTS for scope in ("all", account_id)}
        assert {name for name, _ in charts} == expected
        assert all(marks > 0 for _, marks in charts), charts
        legends = await page.evaluate(LEGENDS)
        assert {name for name, _, _ in legends} == {f"{c}-{s}" for c in ("best-time", "online")
                                                     for s in ("all", account_id)}
        assert all(swatches >= 5 and text for _, swatches, text in legends), legends
        assert await page.evaluate(LAYOUT) == []
        full = await page.screenshot(tmp_path / "report-full.png")
        pdf = await page.send("Page.printToPDF", printBackground=False)
        assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
        await page.open(path, width=390, mobile=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        assert await page.evaluate(LAYOUT) == []
        phone = await page.screenshot(tmp_path / "report-phone.png")
        assert page.console_errors == []
        assert set(page.requests) == {path.resolve().as_uri()}, page.requests
    assert full[0] >= 1000 and phone[0] == 390 and phone[1] > full[1]
    for name in ("report-full.png", "report-phone.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
        shutil.copyfile(tmp_path / name, DOCS / name)
