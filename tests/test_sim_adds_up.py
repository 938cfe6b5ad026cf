"""The simulated world adds up as the API's figures do (issue 22, point 5): each identity checked on
generated worlds of several seeds and sizes, then once over the wire as a user's pipeline sees it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest

from harvester import catalog
from harvester.days import DAY, days_back, from_unix, to_unix
from harvester.simulator import rates
from harvester.simulator.audience import city_country
from harvester.simulator.world import Account, Media, World, WorldSpec

NOW = 1_796_126_400.0
"""2026-12-01 12:00 UTC."""
WORLDS = [WorldSpec(seed=1, accounts=40, media_per_account=60, now=NOW),
          WorldSpec(seed=7, accounts=12, media_per_account=250, now=NOW),
          WorldSpec(seed=23, accounts=150, media_per_account=15, now=NOW + 5 * 3600)]
DEMOGRAPHIC_BREAKDOWNS = (*catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS, ("gender", "age"), ("country", "city"),
                          ("city",), ("country", "age"), ("age", "gender", "country"))


@pytest.fixture(scope="module", params=WORLDS, ids=lambda s: f"seed{s.seed}x{s.accounts}")
def world(request) -> World:
    return World(request.param)


def accounts(world: World) -> list[Account]:
    return [world.account(i) for i in range(world.spec.accounts)]


def posts(world: World) -> list[Media]:
    """Every listed post, reel and album that has insights."""
    return [m for a in accounts(world) for n in range(world.listed_media(a))
            if not world.before_conversion(m := world.media(a, n))]


def stories(world: World) -> list[Media]:
    return [s for a in accounts(world) for s in world.live_stories(a) if s.viewers >= catalog.STORY_MIN_VIEWERS]


def values(world: World, media: Media) -> dict[str, int]:
    return {m.name: world.media_value(media, m.name) for m in catalog.metrics_for_product(media.product_type)}


def windows(world: World) -> list[tuple[int, int]]:
    """A UTC day, a 7-day and a 30-day window, and an odd one (9 hours)."""
    today = to_unix(from_unix(int(world.now)))
    return [(today - DAY, today), (today - 7 * DAY, today), (today - 30 * DAY, today),
            (today - 3 * DAY + 3600, today - 3 * DAY + 10 * 3600)]


# --- demographics ------------------------------------------------------------------------------


def test_demographics_sum_to_at_most_their_audience(world):
    """follower_demographics add up to at most the followers, engaged_audience_demographics to at
    most the accounts engaged in the timeframe; age, gender and age x gender to the same total
    (every account with demographic data), the cross-tab to its margins, a city to at most its
    country; never more than the top 45 (old world: one country held more than all the followers)."""
    checked = 0
    for account in accounts(world):
        for metric in ("follower_demographics", "engaged_audience_demographics"):
            for timeframe in catalog.TIMEFRAMES:
                if not world.values.has_demographic(account, metric, timeframe):
                    continue
                checked += 1
                size = account.followers if metric == "follower_demographics" else world.values.interaction(
                    account, "accounts_engaged", int(world.now) - (7 if timeframe == "this_week" else 30) * DAY,
                    int(world.now))
                got = {b: world.values.demographics(account, metric, timeframe, b) for b in DEMOGRAPHIC_BREAKDOWNS}
                for b, results in got.items():
                    assert len(results) <= catalog.DEMOGRAPHIC_TOP and all(v > 0 for _, v in results)
                    assert sum(v for _, v in results) <= size, (account.id, metric, b)
                    assert [v for _, v in results] == sorted((v for _, v in results), reverse=True)
                totals = {b: sum(v for _, v in got[b]) for b in (("age",), ("gender",), ("age", "gender"))}
                assert len(set(totals.values())) == 1 and totals["age",] >= 0.85 * size, totals
                cross = dict(got["age", "gender"])
                for (age,), v in got["age",]:
                    assert v == sum(n for (a, _), n in cross.items() if a == age)
                for (gender,), v in got["gender",]:
                    assert v == sum(n for (_, g), n in cross.items() if g == gender)
                assert dict(got["gender", "age"]) == {(g, a): n for (a, g), n in cross.items()}
                country = dict(got["country",])
                floor = min(country.values())
                for (city,), v in got["city",]:
                    assert v <= country.get((city_country(city),), floor)
                assert all(city_country(city) == c for (c, city), _ in got["country", "city"])
    assert checked > world.spec.accounts // 2


def test_demographics_need_100_followers_and_100_engagements_in_their_timeframe(world):
    """Not under 100 followers; the engaged audience not under 100 accounts engaged in the timeframe
    (7 days for this_week, 30 for this_month), so a mid-size account may have this month's and not
    this week's (old world: the same answer for every timeframe)."""
    now = int(world.now)
    for account in accounts(world):
        for timeframe, days in (("this_week", 7), ("this_month", 30)):
            engaged = world.values.interaction(account, "accounts_engaged", now - days * DAY, now)
            big = account.followers >= catalog.MIN_FOLLOWERS
            assert world.values.has_demographic(account, "follower_demographics", timeframe) == big
            assert world.values.has_demographic(account, "engaged_audience_demographics", timeframe) == \
                (big and engaged >= catalog.MIN_ENGAGEMENTS)
    has = world.values.has_demographic
    assert any(has(a, "engaged_audience_demographics", "this_month")
               and not has(a, "engaged_audience_demographics", "this_week") for a in accounts(world))


# --- media -------------------------------------------------------------------------------------


def test_total_interactions_is_the_sum_of_its_parts(world):
    """Posts and reels: likes + comments + saved + shares (the media reference's definition);
    stories: replies + shares; an account's window: likes + comments + saves + shares + replies."""
    for media in posts(world):
        v = values(world, media)
        assert v["total_interactions"] == v["likes"] + v["comments"] + v["saved"] + v["shares"], media.id
    for story in stories(world):
        v = values(world, story)
        assert v["total_interactions"] == v["replies"] + v["shares"], story.id
    for account in accounts(world):
        for since, until in windows(world):
            t = world.values.totals(account, since, until)
            assert t["total_interactions"] == sum(t[k] for k in ("likes", "comments", "saves", "shares", "replies"))


def test_like_count_and_comments_count_are_the_insights_likes_and_comments(world):
    for media in posts(world):
        details = world.details(media)
        assert details.like_count == world.media_value(media, "likes")
        assert details.comments_count == world.media_value(media, "comments")
        if not details.is_comment_enabled:
            assert details.comments_count == 0


def test_reach_at_most_views_and_interactions_at_most_reach(world):
    seen = 0
    for media in [*posts(world), *stories(world)]:
        v = values(world, media)
        assert 0 <= v["reach"] <= v["views"] and v["total_interactions"] <= v["reach"], media.id
        seen += v["reach"] > 0
    for account in accounts(world):
        for since, until in windows(world):
            t = world.values.totals(account, since, until)
            assert t["accounts_engaged"] <= t["reach"] <= t["views"]
            assert t["accounts_engaged"] <= t["total_interactions"]
    assert seen


def test_watch_time_and_profile_activity_follow_from_their_parts(world):
    """A reel's total watch time is its views times its average watch time; the actions taken on a
    profile after a post (profile_activity) are taken by some of its visits (profile_visits)."""
    reels = [m for m in posts(world) if m.media_product_type == "REELS"]
    for reel in reels:
        v = values(world, reel)
        assert v["ig_reels_video_view_total_time"] == v["views"] * v["ig_reels_avg_watch_time"]
    for media in [*posts(world), *stories(world)]:
        if media.media_product_type != "REELS":
            v = values(world, media)
            assert v["profile_activity"] <= v["profile_visits"]
    assert reels


def test_a_breakdown_adds_up_to_its_total(world):
    """Account metrics asked with a breakdown (one or two) give results that add up to the total
    asked without; a media breakdown metric's value is the sum of its results."""
    for account in accounts(world)[:25]:
        for since, until in windows(world):
            for m in catalog.account_metrics("interaction"):
                if account.followers < m.min_followers:
                    continue
                total = world.values.interaction(account, m.name, since, until)
                for b in m.breakdowns:
                    parts = [world.values.interaction(account, m.name, since, until, ((b, v),))
                             for v in catalog.BREAKDOWN_VALUES[b]]
                    assert sum(parts) == total, (account.id, m.name, b)
                if len(m.breakdowns) == 2:
                    first, second = m.breakdowns
                    cells = [world.values.interaction(account, m.name, since, until, ((second, y), (first, x)))
                             for x in catalog.BREAKDOWN_VALUES[first] for y in catalog.BREAKDOWN_VALUES[second]]
                    assert sum(cells) == total
    for media in [*posts(world)[:500], *stories(world)]:
        for m in catalog.metrics_for_product(media.product_type):
            for b in m.breakdowns:
                assert world.media_value(media, m.name) == sum(v for _, v in world.media_breakdown(media, m.name, b))


def test_the_daily_series_are_their_days_totals(world):
    """A day's reach is that US-Pacific day's reach total; follower_count, the day's new followers,
    is the FOLLOWER result of follows_and_unfollows over the same day."""
    for account in accounts(world)[:20]:
        for end in world.values.series_days(days_back(world.now, 5), int(world.now)):
            values = world.values
            assert values.daily(account, "reach", end) == values.interaction(account, "reach", end - DAY, end)
            if account.followers >= catalog.MIN_FOLLOWERS:
                follows = world.values.interaction(account, "follows_and_unfollows", end - DAY, end,
                                            (("follow_type", "FOLLOWER"),))
                assert world.values.daily(account, "follower_count", end) == follows


# --- rates -------------------------------------------------------------------------------------


def test_engagement_and_reach_at_realistic_rates(world):
    """rates.py's sources: a post reaches 10-40 % of its followers and a few percent of those it
    reaches interact (old world: a median of 40 %, some posts over 100 %)."""
    rate, per_follower, reach_rate = [], [], defaultdict(list)
    for media in posts(world):
        v = values(world, media)
        followers = world.account(media.account).followers
        if v["reach"] >= 20:
            rate.append(v["total_interactions"] / v["reach"])
        if followers >= catalog.MIN_FOLLOWERS:
            per_follower.append(v["total_interactions"] / followers)
            reach_rate[media.media_product_type].append(v["reach"] / followers)
    assert 0.03 <= statistics.median(rate) <= 0.10 and max(rate) <= rates.ENGAGEMENT_CAP
    assert statistics.quantiles(rate, n=10)[-1] <= 0.2
    assert 0.005 <= statistics.median(per_follower) <= 0.04
    assert 0.1 <= statistics.median(reach_rate["FEED"]) <= 0.4
    assert statistics.median(reach_rate["REELS"]) > 1.5 * statistics.median(reach_rate["FEED"])
    for account in accounts(world):
        if account.followers >= 1000:
            day = world.values.totals(account, *windows(world)[0])
            assert day["reach"] < account.followers and day["total_interactions"] < 0.05 * account.followers


def test_posts_do_best_when_the_followers_are_online(world):
    """The report's best-time view (median engagement rate by hour in its zone, UTC by default)
    finds the evening of the simulated audience, when most followers are online (old world: flat)."""
    by_hour: dict[int, list[float]] = defaultdict(list)
    for media in posts(world):
        reach = world.media_value(media, "reach")
        if reach:
            hour = datetime.fromtimestamp(media.timestamp, UTC).hour
            by_hour[hour].append(world.media_value(media, "total_interactions") / reach)
    medians = {h: statistics.median(v) for h, v in by_hour.items() if len(v) >= 15}
    best, worst = max(medians, key=medians.__getitem__), min(medians, key=medians.__getitem__)
    assert medians[best] >= 1.5 * medians[worst]
    online = defaultdict(list)
    big = max(accounts(world), key=lambda a: a.followers)
    for end in world.values.series_days(days_back(world.now, 14), int(world.now)):
        for hour, n in world.values.online_followers(big, end).items():
            online[((end - DAY) // 3600 + int(hour)) % 24].append(n)      # hour h of the day ending at `end`
    peak = max(online, key=lambda h: statistics.median(online[h]))
    assert min((best - peak) % 24, (peak - best) % 24) <= 3, (best, peak)
    assert min((worst - peak) % 24, (peak - worst) % 24) >= 6


# --- over the wire -----------------------------------------------------------------------------


@pytest.fixture
async def api(simulator_server):
    world = World(WORLDS[0])
    server = await simulator_server(world)
    async with aiohttp.ClientSession() as session:
        async def get(path, owner: int, **params):
            headers = {"Authorization": f"Bearer {world.owner(owner).token}"}
            async with session.get(f"{server.url}/v25.0/{path}", params=params, headers=headers) as response:
                assert response.status == 200, await response.read()
                return orjson.loads(await response.read())
        yield world, get


async def test_what_the_api_serves_adds_up(api):
    """As a user's pipeline reads them: a total asked without and with a breakdown, a media's
    like_count and comments_count beside its insights, follower demographics beside
    followers_count."""
    world, get = api
    account = max(accounts(world), key=lambda a: a.followers)
    since, until = windows(world)[1]
    common = {"period": "day", "metric_type": "total_value", "since": str(since), "until": str(until)}
    names = "likes,comments,saves,shares,replies,total_interactions,reach,views"
    whole = await get(f"{account.id}/insights", account.index, metric=names, **common)
    split = await get(f"{account.id}/insights", account.index, metric="likes,reach,total_interactions",
                      breakdown="media_product_type", **common)
    totals = {d["name"]: d["total_value"]["value"] for d in whole["data"]}
    assert totals["total_interactions"] == sum(totals[k] for k in ("likes", "comments", "saves", "shares", "replies"))
    assert totals["reach"] <= totals["views"]
    for item in split["data"]:
        [breakdown] = item["total_value"]["breakdowns"]
        assert sum(r["value"] for r in breakdown["results"]) == item["total_value"]["value"] == totals[item["name"]]
    media = next(m for m in (world.media(account, n) for n in range(account.media_count))
                 if not world.before_conversion(m) and world.media_value(m, "likes") > 0)
    node = await get(media.id, account.index, fields="like_count,comments_count")
    insights = await get(f"{media.id}/insights", account.index, metric="likes,comments,saved,shares,total_interactions")
    got = {d["name"]: d["values"][0]["value"] for d in insights["data"]}
    assert (node["like_count"], node["comments_count"]) == (got["likes"], got["comments"])
    assert got["total_interactions"] == got["likes"] + got["comments"] + got["saved"] + got["shares"]
    profile = await get(account.id, account.index, fields="followers_count")
    demographics = await get(f"{account.id}/insights", account.index, metric="follower_demographics",
                             period="lifetime", timeframe="this_month", breakdown="country", metric_type="total_value")
    [breakdown] = demographics["data"][0]["total_value"]["breakdowns"]
    assert sum(r["value"] for r in breakdown["results"]) <= profile["followers_count"]
    has = world.values.has_demographic
    quiet = next(a for a in accounts(world) if has(a, "engaged_audience_demographics", "this_month")
                 and not has(a, "engaged_audience_demographics", "this_week"))
    engaged = {timeframe: await get(f"{quiet.id}/insights", quiet.index, metric="engaged_audience_demographics",
                                    period="lifetime", timeframe=timeframe, breakdown="age", metric_type="total_value")
               for timeframe in ("this_week", "this_month")}
    assert engaged["this_week"] == {"data": []} and engaged["this_month"]["data"]


# --- through the report ------------------------------------------------------------------------


@pytest.mark.looptime
async def test_the_reports_best_time_view_finds_the_hour_effect(tmp_path):
    """A harvest of a world, then the report's best-time grid (median engagement rate per weekday
    and hour, UTC): the cells of the three hours around the followers' online peak beat those of
    the three hours around their trough by half (old world: no difference)."""
    from harvester import Harvester
    from harvester.report import build
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.state.store import StateStore

    from support import world_config

    world = World(WorldSpec(seed=31, accounts=6, media_per_account=900, stories_per_account=0, now=NOW))
    config, env = world_config(world, tmp_path / "out", days=1)

    state = StateStore(config.state.path)
    transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        assert (await harvester.run()).exit_code == 0
    state.close()
    today = from_unix(int(world.now))
    report = build(config.output.path, since=today, until=today + timedelta(days=1), tz="UTC",
                   state_path=config.state.path)
    scope = next(s for s in report["scopes"] if s["account_id"] == "all")
    grid = scope["best_time"]["posts"]
    assert scope["best_time"]["posts_count"] > 500
    peak_utc = (20 + 8) % 24            # rates.ACTIVITY peaks at 20:00 Pacific (PST on December 1st)
    trough_utc = (4 + 8) % 24
    def band(centre: int) -> list[float]:
        return [v for day in grid for h in range(centre - 1, centre + 2) if (v := day[h % 24]) is not None]
    assert statistics.median(band(peak_utc)) >= 1.5 * statistics.median(band(trough_utc))
