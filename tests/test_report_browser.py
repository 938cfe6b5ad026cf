"""The report in a real browser: headless Chromium (Debian's package) over the DevTools protocol.

It renders with no console error, makes no request beyond its own file, every chart has marks,
a phone-width page does not scroll sideways, it prints; screenshots of the whole page and of a
phone-width page go to the test's directory and to docs/ (report-full.png, report-phone.png).
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


@pytest.fixture
def report_file(tmp_path):
    world = World(WorldSpec(seed=31, accounts=5, media_per_account=150, stories_per_account=3.0, now=NOW))
    config = harvest(world, tmp_path / "out")
    today = from_unix(int(world.now))
    since, until = today - timedelta(days=6), today + timedelta(days=1)

    def complete(a) -> bool:
        posts = [m for m in posts_of(world, a) if since <= local_day(m.timestamp) < until and has_insights(world, m)]
        stories = [s for s in world.live_stories(a) if since <= local_day(s.timestamp) < until
                   and has_insights(world, s)]
        return a.followers >= catalog.MIN_FOLLOWERS and bool(posts) and bool(stories)

    account = next(a for a in accounts(world, config) if complete(a))
    path = write(config, since=since, until=until, tz=TZ, accounts=[account.id], out=tmp_path / "report.html")
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
        full = await page.screenshot(tmp_path / "report-full.png")
        pdf = await page.send("Page.printToPDF", printBackground=False)
        assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
        await page.open(path, width=390, mobile=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        phone = await page.screenshot(tmp_path / "report-phone.png")
        assert page.console_errors == []
        assert set(page.requests) == {path.resolve().as_uri()}, page.requests
    assert full[0] >= 1000 and phone[0] == 390 and phone[1] > full[1]
    for name in ("report-full.png", "report-phone.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
        shutil.copyfile(tmp_path / name, DOCS / name)
