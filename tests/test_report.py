"""``harvester report``: every figure against values computed here, in plain Python, from the
simulator's world (the ground truth), over a harvest of that world in memory."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from harvester import Harvester, catalog
from harvester.cli import main
from harvester.days import DAY, from_unix, to_unix
from harvester.report import build, last_week, write
from harvester.report.html import render
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import factory

from support import REPORT_DAYS as HARVEST_DAYS
from support import REPORT_NOW as NOW
from support import REPORT_TZ as TZ
from support import has_insights, local_day, posts_of, world_config
from support import report_accounts as accounts
from support import report_harvest as harvest

ZONE = ZoneInfo(TZ)
PT = ZoneInfo("America/Los_Angeles")


@pytest.fixture(scope="module")
def harvested(tmp_path_factory):
    """A world with small accounts, accounts without a post in the week, stories with too few
    viewers and posts before the business conversion; its last 14 days harvested."""
    world = World(WorldSpec(seed=16, accounts=7, media_per_account=100, stories_per_account=3.0, now=NOW))
    output = tmp_path_factory.mktemp("report") / "out"
    config = harvest(world, output)
    today = from_unix(int(world.now))
    since, until = today - timedelta(days=6), today + timedelta(days=1)     # today: no totals yet (late data)
    report = build(output, since=since, until=until, tz=TZ, state_path=config.state.path, today=today,
                   config_path=config.path)
    return world, config, report, since, until


@pytest.fixture(scope="module")
def converted(harvested):
    """The same output over 60 days before the latest business conversion: posts without insights."""
    world, config, _, _, _ = harvested
    latest = max((a for a in accounts(world, config) if a.converted_at > world.now - 700 * DAY),
                 key=lambda a: a.converted_at)
    until = from_unix(latest.converted_at) + timedelta(days=1)
    since = until - timedelta(days=60)
    return build(config.output.path, since=since, until=until, tz=TZ, state_path=config.state.path,
                 today=from_unix(int(world.now)), config_path=config.path), since, until


# --- the truth, from the world ------------------------------------------------------------------


def rate(world: World, media, account) -> tuple[float, float] | None:
    """(engagement rate, per follower) of a post with insights, None without."""
    if world.before_conversion(media):
        return None
    reach = world.media_value(media, "reach")
    if not reach:
        return None
    interactions = world.media_value(media, "total_interactions")
    return interactions / reach, interactions / account.followers


def day_total(world, account, metric: str, day: date, harvest_since: date, harvest_until: date) -> int | None:
    if not harvest_since <= day < harvest_until:
        return None
    s = to_unix(day)
    return world.values.interaction(account, metric, s, s + DAY)


def scope(report, key: str) -> dict:
    return next(s for s in report["scopes"] if s["account_id"] == key)


def scopes_of(world, config):
    """Scope key -> the accounts it sums."""
    acc = accounts(world, config)
    return {"all": acc, **{a.id: [a] for a in acc}}


# --- tests ------------------------------------------------------------------------------------


def test_the_world_has_the_edge_cases(harvested, converted):
    world, config, _, since, until = harvested
    acc = accounts(world, config)
    assert any(a.followers < catalog.MIN_FOLLOWERS for a in acc)
    assert any(not [m for m in posts_of(world, a) if since <= local_day(m.timestamp) < until] for a in acc)
    _, old_since, old_until = converted
    assert any(world.before_conversion(m) for a in acc for m in posts_of(world, a)
               if old_since <= local_day(m.timestamp) < old_until)
    assert any(s.viewers < catalog.STORY_MIN_VIEWERS for a in acc for s in world.live_stories(a))


def test_headline_and_its_change_equal_the_truth(harvested):
    """Sums of the daily totals (views, interactions, taps, new followers), the average day's reach
    (it cannot be added up), each with the account-days it is of; a change only between whole
    periods: this one lacks today (late data), so none but the posts' has one."""
    world, config, report, since, until = harvested
    h_since, h_until = config.window.since, config.window.until
    days = (until - since).days
    periods = {"value": [since + timedelta(days=i) for i in range(days)],
               "previous": [since - timedelta(days=days - i) for i in range(days)]}
    for key, members in scopes_of(world, config).items():
        headline = scope(report, key)["headline"]
        for metric in ("reach", "views", "total_interactions", "profile_links_taps"):
            got = headline[metric]
            for name, period in periods.items():
                found = {a.id: [v for d in period if (v := day_total(world, a, metric, d, h_since, h_until))
                                is not None] for a in members}
                if metric == "reach":       # the average day's, per account, summed over the accounts
                    want = sum(math.floor(sum(v) / len(v) + 0.5) for v in found.values() if v)
                else:
                    want = sum(sum(v) for v in found.values())
                assert got[name] == want, (key, metric, name)
                days_key = "days" if name == "value" else "previous_days"
                assert got[days_key] == sum(len(v) for v in found.values())
            assert got["expected_days"] == got["previous_expected_days"] == days * len(members)
            assert got["previous_days"] == got["expected_days"] > got["days"]     # today: no totals yet
            assert got["change"] is None and got["change_pct"] is None
        new = headline["new_followers"]
        eligible = [a for a in members if a.followers >= catalog.MIN_FOLLOWERS]
        ends = world.values.series_days(max(to_unix(h_since), world.last30), to_unix(h_until))
        for name, period in periods.items():
            values = [world.values.daily(a, "follower_count", end) for a in eligible for end in ends
                      if datetime.fromtimestamp(end, PT).date() - timedelta(days=1) in period]
            assert new[name] == (sum(values) if values else None), (key, name)
            assert new["days" if name == "value" else "previous_days"] == len(values)
        assert new["expected_days"] == days * len(eligible)
        posts = sum(1 for a in members for m in posts_of(world, a) if since <= local_day(m.timestamp) < until)
        before = sum(1 for a in members for m in posts_of(world, a)
                     if periods["previous"][0] <= local_day(m.timestamp) < since)
        assert headline["posts"]["value"] == posts and headline["posts"]["previous"] == before, key
        assert headline["posts"]["change"] == posts - before
        assert headline["follower_growth"]["value"] is None       # one harvest: no snapshot before the period


def test_a_change_between_whole_periods(harvested):
    """Both periods with every day of every account: each sum's change, and the average reach's."""
    world, config, _, _, _ = harvested
    today = from_unix(int(world.now))
    report = build(config.output.path, since=today - timedelta(days=7), until=today, tz=TZ,
                   state_path=config.state.path, today=today)
    for key, members in scopes_of(world, config).items():
        for metric in ("reach", "views", "total_interactions", "profile_links_taps"):
            got = scope(report, key)["headline"][metric]
            assert got["days"] == got["expected_days"] == got["previous_days"] == 7 * len(members)
            assert got["change"] == got["value"] - got["previous"], (key, metric)
            assert got["change_pct"] == (round(100 * got["change"] / got["previous"], 1) if got["previous"] else None)


def test_daily_reach_and_views_with_posts_marked(harvested):
    world, config, report, since, _ = harvested
    for key, members in scopes_of(world, config).items():
        daily = scope(report, key)["daily"]
        assert [d["day"] for d in daily] == [(since + timedelta(days=i)).isoformat() for i in range(7)]
        for d in daily:
            day = date.fromisoformat(d["day"])
            for metric in ("reach", "views"):
                values = [day_total(world, a, metric, day, config.window.since, config.window.until) for a in members]
                expected = None if all(v is None for v in values) else sum(v for v in values if v is not None)
                assert d[metric] == expected, (key, day, metric)
            posted = sorted(m.id for a in members for m in posts_of(world, a) if local_day(m.timestamp) == day)
            assert sorted(d["posts"]) == posted
        assert daily[-1]["reach"] is None             # today: not harvested yet, a gap, not a zero


def test_top_and_bottom_posts_by_engagement_rate(harvested):
    world, config, report, since, until = harvested
    for key, members in scopes_of(world, config).items():
        rated = []
        for a in members:
            for m in posts_of(world, a):
                if since <= local_day(m.timestamp) < until and (r := rate(world, m, a)):
                    rated.append((r[0], m.id, r[1]))
        top = sorted(rated, key=lambda x: (-x[0], x[1]))[:5]
        bottom = sorted(rated, key=lambda x: (x[0], x[1]))[:5]
        posts = scope(report, key)["posts"]
        for got, want in (("top", top), ("bottom", bottom)):
            assert [p["media_id"] for p in posts[got]] == [m for _, m, _ in want], (key, got)
            assert [p["er"] for p in posts[got]] == pytest.approx([e for e, _, _ in want])
            assert [p["er_follower"] for p in posts[got]] == pytest.approx([f for _, _, f in want])
    post = scope(report, "all")["posts"]["top"][0]
    media = world.media_by_id(post["media_id"])
    details = world.details(media)
    assert post["permalink"] == details.permalink and post["media_product_type"] == media.media_product_type
    assert post["caption"] == (details.caption[:80] if details.caption else None)


def content_type(media) -> str:
    if media.media_product_type in ("STORY", "REELS"):
        return media.media_product_type
    return "CAROUSEL" if media.media_type == "CAROUSEL_ALBUM" else "FEED"


def test_content_types_count_and_medians(harvested):
    world, config, report, since, until = harvested
    for key, members in scopes_of(world, config).items():
        groups: dict[str, list] = defaultdict(list)
        for a in members:
            for m in posts_of(world, a) + world.live_stories(a):
                if since <= local_day(m.timestamp) < until:
                    groups[content_type(m)].append((m, a))
        for row in scope(report, key)["content_types"]:
            items = groups.get(row["content_type"], [])
            with_insights = [(m, a) for m, a in items if has_insights(world, m)]
            assert (row["count"], row["with_insights"]) == (len(items), len(with_insights)), (key, row)
            reaches = [world.media_value(m, "reach") for m, _ in with_insights]
            rates = [world.media_value(m, "total_interactions") / r for (m, _), r in zip(with_insights, reaches,
                                                                                           strict=True) if r]
            assert row["median_reach"] == (statistics.median(reaches) if reaches else None)
            assert row["median_er"] == (pytest.approx(statistics.median(rates)) if rates else None)


def test_best_time_heat_maps_equal_the_truth(harvested):
    world, config, report, _, until = harvested
    best_since = until - timedelta(days=90)
    online_since = until - timedelta(days=30)
    ends = world.values.series_days(max(to_unix(config.window.since), world.last30), to_unix(config.window.until))
    for key, members in scopes_of(world, config).items():
        cells: dict[tuple[int, int], list[float]] = defaultdict(list)
        for a in members:
            for m in posts_of(world, a):
                when = datetime.fromtimestamp(m.timestamp, ZONE)
                if best_since <= when.date() < until and (r := rate(world, m, a)):
                    cells[when.weekday(), when.hour].append(r[0])
        grid = scope(report, key)["best_time"]["posts"]
        counts = scope(report, key)["best_time"]["posts_n"]
        for d in range(7):
            for h in range(24):
                want = statistics.median(cells[d, h]) if cells.get((d, h)) else None
                assert grid[d][h] == (None if want is None else pytest.approx(want)), (key, d, h)
                assert counts[d][h] == len(cells.get((d, h), []))      # what each median is of
        online: dict[int, float] = defaultdict(float)
        for end in ends:
            if not online_since <= datetime.fromtimestamp(end - DAY, PT).date() < until:
                continue
            for a in members:
                if a.followers >= catalog.MIN_FOLLOWERS:
                    for hour, v in world.values.online_followers(a, end).items():
                        online[end - DAY + int(hour) * 3600] += v
        by_cell: dict[tuple[int, int], list[float]] = defaultdict(list)
        for at, v in online.items():
            when = datetime.fromtimestamp(at, ZONE)
            by_cell[when.weekday(), when.hour].append(v)
        grid = scope(report, key)["best_time"]["online_followers"]
        assert any(v is not None for row in grid for v in row) == bool(by_cell), key
        for d in range(7):
            for h in range(24):
                want = statistics.median(by_cell[d, h]) if by_cell.get((d, h)) else None
                assert grid[d][h] == want, (key, d, h)


def test_stories_reach_replies_and_navigation_funnel(harvested):
    world, config, report, since, until = harvested
    for key, members in scopes_of(world, config).items():
        stories = [s for a in members for s in world.live_stories(a) if since <= local_day(s.timestamp) < until]
        seen = [s for s in stories if has_insights(world, s)]
        got = scope(report, key)["stories"]
        assert (got["count"], got["with_insights"]) == (len(stories), len(seen)), key
        if not seen:
            assert got["reach"] is None
            continue
        assert got["reach"] == sum(world.media_value(s, "reach") for s in seen)
        assert got["replies"] == sum(world.media_value(s, "replies") for s in seen)
        nav: dict[str, int] = dict.fromkeys(got["navigation"], 0)
        for s in seen:
            for action, v in world.media_breakdown(s, "navigation", "story_navigation_action_type"):
                nav[action] += v
        assert got["navigation"] == nav
    assert scope(report, "all")["stories"]["with_insights"] > 0


def test_audience_pyramid_places_and_engaged_shares(harvested):
    world, config, report, _, _ = harvested
    for key, members in scopes_of(world, config).items():
        def summed(metric, breakdowns, members=members):
            out: dict[tuple, int] = defaultdict(int)
            for a in members:
                if world.values.has_demographic(a, metric):
                    for combo, v in world.values.demographics(a, metric, "this_month", breakdowns):
                        out[combo] += v
            return out

        got = scope(report, key)["audience"]
        pyramid = summed("follower_demographics", ("age", "gender"))
        assert {(p["age"], p["gender"]): p["value"] for p in got["pyramid"]} == pyramid, key
        for place in ("country", "city"):
            top = sorted(summed("follower_demographics", (place,)).items(), key=lambda x: (-x[1], x[0]))[:10]
            assert [(c["name"], c["value"]) for c in got["countries" if place == "country" else "cities"]] == \
                [(k[0], v) for k, v in top]
        followers, engaged = summed("follower_demographics", ("age",)), summed("engaged_audience_demographics",
                                                                               ("age",))
        for row in got["ages"]:
            assert row["followers"] == pytest.approx(followers.get((row["age"],), 0) / sum(followers.values()))
            if engaged:
                assert row["engaged"] == pytest.approx(engaged.get((row["age"],), 0) / sum(engaged.values()))
    small = [a for a in accounts(world, config) if a.followers < catalog.MIN_FOLLOWERS]
    for a in small:
        assert scope(report, a.id)["audience"]["pyramid"] == []
        assert any(n["what"].startswith("audience") for n in scope(report, a.id)["missing"])


def test_what_is_missing_says_why(harvested, converted):
    world, config, report, since, until = harvested
    today = from_unix(int(world.now))
    for a in accounts(world, config):
        notes = scope(report, a.id)["missing"]
        days = [n for n in notes if n["what"] == "account totals"]
        assert days and days[0]["days"] == [today.isoformat()]           # late data, named by day
    check_missing(world, config, report, since, until)
    old, old_since, old_until = converted
    assert any(n["what"] == "posts without insights" for n in scope(old, "all")["missing"])
    check_missing(world, config, old, old_since, old_until)
    assert any(n["what"] == "follower change" for n in scope(report, "all")["missing"])


def check_missing(world, config, report, since, until):
    for a in accounts(world, config):
        notes = scope(report, a.id)["missing"]
        before = sorted(m.id for m in posts_of(world, a)
                        if since <= local_day(m.timestamp) < until and world.before_conversion(m))
        got = [n for n in notes if n["what"] == "posts without insights"]
        assert sorted(i for n in got for i in n["ids"]) == before
        assert all(n["reason"] == "posted before business conversion (100/2108006)" for n in got)
        few = sorted(s.id for s in world.live_stories(a)
                     if since <= local_day(s.timestamp) < until and s.viewers < catalog.STORY_MIN_VIEWERS)
        got = [n for n in notes if n["what"] == "stories without insights"]
        assert sorted(i for n in got for i in n["ids"]) == few
        assert all(n["reason"] == "not enough viewers (10)" for n in got)
        no_posts = not [m for m in posts_of(world, a) if since <= local_day(m.timestamp) < until]
        assert any(n["what"] == "posts" for n in notes) == no_posts
        if no_posts:
            assert scope(report, a.id)["headline"]["posts"]["value"] == 0
            assert scope(report, a.id)["posts"] == {"top": [], "bottom": []}


@pytest.mark.slow
def test_a_single_day_with_two_snapshots_has_follower_growth_and_no_data_yet(tmp_path):
    """Harvested yesterday and today: today's report has a growth (the simulator's followers do
    not move: 0, not None) and no totals yet (late data: None and a missing note)."""
    world = World(WorldSpec(seed=12, accounts=3, media_per_account=40, now=NOW))
    output = tmp_path / "out"
    harvest(world, output, days=2, at=world.now - DAY)
    config = harvest(world, output, days=2)
    today = from_unix(int(world.now))
    report = build(output, since=today, until=today + timedelta(days=1), tz="UTC", state_path=config.state.path)
    assert report["period"]["previous_since"] == (today - timedelta(days=1)).isoformat()
    for a in accounts(world, config):
        headline = scope(report, a.id)["headline"]
        assert headline["follower_growth"]["value"] == 0
        assert headline["reach"]["value"] is None
        yesterday = to_unix(today - timedelta(days=1))
        assert headline["reach"]["previous"] == world.values.interaction(a, "reach", yesterday, yesterday + DAY)
    assert scope(report, "all")["headline"]["follower_growth"]["value"] == 0


def test_a_period_before_any_harvest_is_blank_not_zero(harvested):
    _, config, _, _, _ = harvested
    report = build(config.output.path, since=date(2020, 1, 6), until=date(2020, 1, 13), tz=TZ,
                   state_path=config.state.path)
    headline = scope(report, "all")["headline"]
    assert all(headline[m]["value"] is None for m in ("reach", "views", "total_interactions", "profile_links_taps"))
    assert headline["posts"]["value"] == 0
    html = render(report)
    assert "No daily reach for this period yet." in html and "no data" in html


def test_only_the_accounts_asked_for(harvested):
    world, config, report, since, until = harvested
    a = accounts(world, config)[1]
    one = build(config.output.path, since=since, until=until, tz=TZ, accounts=[a.id], state_path=config.state.path,
                today=from_unix(int(world.now)), config_path=config.path)
    assert [s["account_id"] for s in one["scopes"]] == ["all", a.id]
    assert scope(one, "all")["headline"] == scope(report, a.id)["headline"]
    assert scope(one, a.id) == scope(report, a.id)


@pytest.mark.slow
def test_json_and_html_from_the_same_figures(harvested, tmp_path):
    """``--format json`` writes the figures; the page shows each headline figure and top post of them."""
    world, config, report, since, until = harvested
    today = from_unix(int(world.now))
    out_json = write(config, since=since, until=until, tz=TZ, output_format="json", out=tmp_path / "r.json",
                     today=today)
    out_html = write(config, since=since, until=until, tz=TZ, output_format="html", out=tmp_path / "r.html",
                     today=today)
    figures = json.loads(out_json.read_text())
    assert figures == json.loads(json.dumps(report))       # the fixture made the Parquet cache: read here
    page = out_html.read_text()
    assert page == render(figures)
    for s in figures["scopes"]:
        for name in ("reach", "views"):
            value = s["headline"][name]["value"]
            assert value is None or f"{value:,}" in page
        for post in s["posts"]["top"]:
            assert post["permalink"] in page
    assert "<script" not in page and "http-equiv='Content-Security-Policy'" in page
    assert "src=" not in page and "@import" not in page and "url(" not in page


def test_week_default_is_the_last_whole_week():
    assert last_week(date(2026, 12, 2)) == (date(2026, 11, 23), date(2026, 11, 30))      # a Wednesday
    assert last_week(date(2026, 11, 30)) == (date(2026, 11, 23), date(2026, 11, 30))     # a Monday


def test_cli_writes_the_report_and_names_bad_options(harvested, tmp_path, capsys):
    _, config, _, since, until = harvested
    path = tmp_path / "c.toml"
    accounts_toml = "".join(f'[[accounts]]\nid = "{a.id}"\ntoken_env = "T"\n' for a in config.accounts)
    path.write_text(f'[window]\ndays = 3\n[output]\npath = "{config.output.path}"\n'
                    f'[state]\npath = "{config.state.path}"\n{accounts_toml}')
    out = tmp_path / "week.json"
    assert main(["report", "--config", str(path), "--since", str(since), "--until", str(until), "--tz", TZ,
                 "--format", "json", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads(out.read_text())["period"]["since"] == since.isoformat()
    zoned = tmp_path / "zoned.toml"                  # without --tz: the config's [report] tz
    zoned.write_text(path.read_text() + '[report]\ntz = "America/New_York"\n')
    assert main(["report", "--config", str(zoned), "--since", str(since), "--until", str(until),
                 "--format", "json", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["period"]["tz"] == "America/New_York"
    capsys.readouterr()
    for args, words in ((["--since", "2026-11-10"], "give --since and --until together"),
                        (["--since", "2026-11-10", "--until", "2026-11-09"], "must be after --since"),
                        (["--tz", "Mars/Olympus"], "is not a time zone"),
                        (["--account", "123"], "--account 123 is not an account of the configuration"),
                        (["--week", "--since", "2026-11-10", "--until", "2026-11-12"], "not both")):
        assert main(["report", "--config", str(path), "--out", str(tmp_path / "x.html"), *args]) == 2
        assert words in capsys.readouterr().err


def test_without_duckdb_the_report_names_the_extra(harvested, tmp_path, monkeypatch, capsys):
    config = harvested[1]
    monkeypatch.setitem(__import__("sys").modules, "duckdb", None)     # as if not installed
    path = tmp_path / "c.toml"
    path.write_text(f'[window]\ndays = 3\n[output]\npath = "{config.output.path}"\n[state]\npath = '
                    f'"{config.state.path}"\n[[accounts]]\nid = "{config.accounts[0].id}"\ntoken_env = "T"\n')
    assert main(["report", "--config", str(path), "--out", str(tmp_path / "r.html")]) == 2
    assert "pip install 'harvester[report]'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_the_failed_units_of_the_latest_run_are_named_with_their_reason(tmp_path):
    """A token that expires mid-run: its account's units fail; the report says so, with the reason."""
    world = World(WorldSpec(seed=5, accounts=4, media_per_account=20, now=NOW, expiring_tokens=((0, 30),)))
    config = harvest(world, tmp_path / "out", days=3, exit_code=3)
    run_id = manifest_runs(tmp_path / "out")[-1]
    failed = [json.loads(line) for line in (tmp_path / "out" / run_id / "outcomes.jsonl").read_text().splitlines()]
    failed = [o for o in failed if o["outcome"] == "failed"]
    assert failed
    today = from_unix(int(world.now))
    report = build(tmp_path / "out", since=today - timedelta(days=3), until=today, state_path=config.state.path)
    what = "failed units of the latest run"
    by_account: dict[tuple[str, str], int] = defaultdict(int)
    for o in failed:
        by_account[o["account_id"], o["reason"]] += 1
    notes = {(s["account_id"], n["reason"]): n["count"] for s in report["scopes"][1:] for n in s["missing"]
             if n["what"] == what}
    assert notes == by_account
    grouped = [n for n in scope(report, "all")["missing"] if n["what"] == what]      # a note per reason
    assert {n["reason"]: (n["count"], sorted(a["account_id"] for a in n["accounts"])) for n in grouped} == {
        reason: (sum(c for (_, r), c in by_account.items() if r == reason),
                 sorted(a for a, r in by_account if r == reason)) for _, reason in by_account}
    assert "token expired (190/463)" in render(report)


def manifest_runs(output):
    from harvester.sinks import manifest
    return manifest.load(output).runs


@pytest.mark.slow
def test_the_parquet_cache_gives_the_same_figures_and_follows_the_manifest(tmp_path):
    """The first report copies each current insights part to Parquet; the next reads the copies
    and gives the same figures; a run that supersedes parts leaves a copy of the current ones only."""
    from harvester.report.sources import CACHE
    from harvester.sinks import manifest
    world = World(WorldSpec(seed=13, accounts=3, media_per_account=30, now=NOW))
    output = tmp_path / "out"
    config = harvest(world, output, days=3, at=world.now - DAY)
    today = from_unix(int(world.now))
    period = {"since": today - timedelta(days=3), "until": today, "tz": TZ, "state_path": config.state.path}
    first = build(output, **period)
    assert len(list((output / CACHE).glob("*.parquet"))) == len(manifest.load(output).files("insights"))
    assert build(output, **period) == first
    harvest(world, output, days=3)                     # today's run re-fetches days and media: parts rewritten
    second = build(output, **period)
    current = manifest.load(output).files("insights")
    assert len(list((output / CACHE).glob("*.parquet"))) == len(current)
    shutil.rmtree(output / CACHE)
    assert build(output, **period) == second           # what the JSON says, read afresh


@pytest.mark.slow
@pytest.mark.parametrize("output_format", ["parquet", "duckdb", "postgres"])
def test_every_sink_format_gives_the_same_report(harvested, tmp_path, output_format, request, monkeypatch):
    """The report reads what any sink stored, in bulk: the same world harvested into Parquet,
    DuckDB or PostgreSQL gives the figures the JSONL harvest gave, every one."""
    world, _, report, since, until = harvested
    config, env = world_config(world, tmp_path / "out", days=HARVEST_DAYS)
    settings: dict = {"format": output_format}
    if output_format == "postgres":
        settings["schema"] = request.getfixturevalue("pg").schema
    config = msgspec.structs.replace(config, refresh=msgspec.structs.replace(config.refresh, enabled=False),
                                     output=msgspec.structs.replace(config.output, **settings))

    async def run():
        transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
            assert (await harvester.run()).exit_code == 0         # it writes its outcomes.jsonl itself

    asyncio.run(run())

    def one_by_one(*args, **kwargs):
        raise AssertionError("the report read the records one at a time, through Python")

    from harvester.sinks import manifest, postgres
    for module, name in ((factory, "current_records"), (manifest, "current_records"), (postgres, "read_records")):
        monkeypatch.setattr(module, name, one_by_one)
    other = build(config.output, since=since, until=until, tz=TZ, state_path=config.state.path,
                  today=from_unix(int(world.now)), config_path=config.path)
    assert len(other.pop("runs")) == len(report["runs"]) == 1         # the run ids differ, nothing else
    assert other == {k: v for k, v in report.items() if k != "runs"}


# --- a report a manager can use (issue 22.6) ------------------------------------------------------


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    """A nightly harvest (the last 3 days) of a world, then the report of the week before: the
    days the nightly did not fetch are missing for every account."""
    world = World(WorldSpec(seed=16, accounts=7, media_per_account=100, stories_per_account=3.0, now=NOW))
    output = tmp_path_factory.mktemp("nightly") / "out"
    config = harvest(world, output, days=3)
    config = msgspec.structs.replace(config, path="/etc/harvester/my config.toml")
    today = from_unix(int(world.now))
    path = write(config, week=True, today=today, tz="UTC", out=output.parent / "week.json", output_format="json")
    html = write(config, week=True, today=today, tz="UTC", out=output.parent / "week.html")
    return world, config, json.loads(path.read_text()), html.read_text(), today


def test_after_a_nightly_the_week_names_accounts_and_the_backfill_that_fills_it(nightly):
    world, config, report, page, _ = nightly
    since, until = date.fromisoformat(report["period"]["since"]), date.fromisoformat(report["period"]["until"])
    harvested = config.window.since
    assert since < harvested < until                   # the nightly fetched the end of the week only
    members = accounts(world, config)
    notes = scope(report, "all")["missing"]
    totals = [n for n in notes if n["what"] == "account totals"]
    assert len(totals) == 1                             # one note for every account, not one per account
    gap = totals[0]
    assert gap["days"] == [(since + timedelta(days=i)).isoformat() for i in range((harvested - since).days)]
    assert gap["fix"] == [f"harvester backfill --config '/etc/harvester/my config.toml' --since {since} "
                          f"--until {harvested}"]
    assert sorted((a["account_id"], a["username"]) for a in gap["accounts"]) == \
        sorted((a.id, a.username) for a in members)
    assert len(notes) == len({n["what"] for n in notes})      # each kind of gap once, its accounts named
    missing = page[page.index("What is missing"):]
    assert "harvester backfill --config &#x27;/etc/harvester/my config.toml&#x27; --since" in missing
    assert all(f"@{a.username}" in missing for a in members)
    assert not any(f"account {a.id}:" in missing for a in members)
    for a in members:                                   # an account's own notes: the same command
        own = [n for n in scope(report, a.id)["missing"] if n["what"] == "account totals"]
        assert [n["fix"] for n in own] == [gap["fix"]]


def test_after_a_nightly_new_followers_come_from_the_follower_count_series(nightly):
    """No snapshot of the followers before the week (the nightly's first is of today): the net change
    is unknown, but the week's new followers are the harvested daily follower_count, summed."""
    world, config, report, page, _ = nightly
    since, until = date.fromisoformat(report["period"]["since"]), date.fromisoformat(report["period"]["until"])
    ends = world.values.series_days(max(to_unix(config.window.since), world.last30), to_unix(config.window.until))
    members = [a for a in accounts(world, config) if a.followers >= catalog.MIN_FOLLOWERS]
    in_week = [e for e in ends if since <= datetime.fromtimestamp(e, PT).date() - timedelta(days=1) < until]
    assert in_week
    got = scope(report, "all")["headline"]
    assert got["follower_growth"]["value"] is None
    assert got["new_followers"]["value"] == sum(world.values.daily(a, "follower_count", e)
                                                for a in members for e in in_week)
    assert got["new_followers"]["days"] == len(in_week) * len(members)
    assert f"{got['new_followers']['value']:,}" in page and "New followers" in page


def test_a_day_too_recent_is_the_next_runs_and_one_before_the_harvest_a_backfills(harvested):
    world, config, _, _, _ = harvested
    today = from_unix(int(world.now))
    report = build(config.output.path, since=config.window.since - timedelta(days=3), until=today + timedelta(days=1),
                   tz="UTC", state_path=config.state.path, today=today, config_path="c.toml")
    notes = {n["reason"]: n for n in scope(report, "all")["missing"] if n["what"] == "account totals"}
    late = next(n for reason, n in notes.items() if reason.startswith("no data yet"))
    assert late["days"] == [today.isoformat()] and late["fix"] == ["harvester run --config c.toml"]
    gone = notes["not harvested: no record of these days"]
    assert gone["fix"] == [f"harvester backfill --config c.toml --since {config.window.since - timedelta(days=3)} "
                           f"--until {config.window.since}"]
    old = build(config.output.path, since=today - timedelta(days=731), until=today - timedelta(days=728), tz="UTC",
                state_path=config.state.path, today=today, config_path="c.toml")
    notes = [n for n in scope(old, "all")["missing"] if n["what"] == "account totals"]
    by_days = {tuple(n["days"]): n for n in notes}          # 729 days back is the first a backfill gets whole
    lost, kept = by_days[(str(today - timedelta(days=731)), str(today - timedelta(days=730)))], \
        by_days[(str(today - timedelta(days=729)),)]
    assert "no command can fetch them" in lost["reason"] and "fix" not in lost
    assert kept["fix"] == [f"harvester backfill --config c.toml --since {today - timedelta(days=729)} "
                           f"--until {today - timedelta(days=728)}"]


def expected_thumbnail(world, media) -> str | None:
    """A picture of the post, never its video: the video's thumbnail, the image, an album's first
    image; nothing for an album that starts with a video."""
    details = world.details(media)
    if details.thumbnail_url:
        return details.thumbnail_url
    if media.media_type == "IMAGE":
        return details.media_url
    if media.media_type == "CAROUSEL_ALBUM" and world.child(media, 0).media_type == "IMAGE":
        return details.media_url
    return None


def test_posts_name_their_account_and_type_and_link_no_video_as_a_thumbnail(harvested):
    world, config, report, _, _ = harvested
    today = from_unix(int(world.now))
    for key in [s["account_id"] for s in report["scopes"]]:
        for post in scope(report, key)["posts"]["top"] + scope(report, key)["posts"]["bottom"]:
            media = world.media_by_id(post["media_id"])
            assert post["username"] == world.account(media.account).username
            assert post["content_type"] == content_type(media)
            assert post["thumbnail"] == expected_thumbnail(world, media)
    album = next((a, m) for a in accounts(world, config) for m in posts_of(world, a)
                 if m.media_type == "CAROUSEL_ALBUM" and world.child(m, 0).media_type == "VIDEO"
                 and has_insights(world, m) and world.media_value(m, "reach"))
    a, m = album                            # the album's own day: every post of it ranked
    day = local_day(m.timestamp)
    one = build(config.output.path, since=day, until=day + timedelta(days=1), tz=TZ, accounts=[a.id],
                state_path=config.state.path, today=today)
    ranked = {p["media_id"]: p for p in scope(one, a.id)["posts"]["top"]}
    assert world.details(m).media_url.endswith(".mp4") and ranked[m.id]["thumbnail"] is None
    page = render(report)
    for section in page.split("<section")[1:]:
        tables = [t for t in section.split("<table data-table='posts'>")[1:]]
        whole = section.startswith(" id='scope-all'")
        assert all((">Account</th>" in t) == whole for t in tables)
        for t in tables:
            assert "<td>FEED</td>" not in t and "<td>CAROUSEL_ALBUM</td>" not in t
    assert "Reach (sum of daily)" not in page and "Daily reach (average)" in page


def test_a_postgresql_output_the_report_cannot_reach_is_a_clear_message(harvested, monkeypatch):
    """No server on the port: the reason, the DSN's password nowhere, no traceback (ConfigError: exit 2)."""
    from harvester.errors import ConfigError
    from harvester.ports import free_port
    _, config, _, since, until = harvested
    monkeypatch.setenv("REPORT_PG_DSN", f"postgresql://reader:s3cret-pw@127.0.0.1:{free_port()}/harvester")
    output = msgspec.structs.replace(config.output, format="postgres", dsn_env="REPORT_PG_DSN")
    with pytest.raises(ConfigError) as caught:
        build(output, since=since, until=until)
    message = "; ".join(caught.value.problems)
    assert "the report cannot read [output]: cannot read harvester.insights from PostgreSQL" in message
    assert "s3cret-pw" not in message
