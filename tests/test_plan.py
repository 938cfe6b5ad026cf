"""The planner (harvester.plan.units): one call per group of metrics that can share it, stable ids,
never a call the catalog knows will fail or come back empty. Retention by level (what days an
account call may cover, when a unit expires) is in test_retention."""

from __future__ import annotations

from datetime import timedelta

from harvester import catalog
from harvester.config import Selection, Window
from harvester.days import DAY, from_unix, to_unix
from harvester.plan import units as plan

NOW = 1_790_000_000.0                    # 2026-09-21 14:13 UTC
TODAY = from_unix(int(NOW))
ACCOUNT, MEDIA = "17841400000000000", "17900000000000001"


def metrics_of(unit: plan.Unit) -> set[str]:
    return set(dict(unit.params)["metric"].split(","))


def test_a_units_id_is_its_call_whatever_the_order_of_its_parameters():
    a = plan.unit_id("1/insights", (("metric", "reach"), ("period", "day")))
    assert a == plan.unit_id("1/insights", (("period", "day"), ("metric", "reach")))
    assert a != plan.unit_id("1/insights", (("metric", "reach"), ("period", "lifetime")))
    assert a != plan.unit_id("2/insights", (("metric", "reach"), ("period", "day")))


def test_the_same_plan_twice_has_the_same_ids_and_no_two_units_share_one():
    window = Window(TODAY - timedelta(days=40), TODAY)
    first = plan.account_units(ACCOUNT, 1000, window, Selection(), NOW)
    again = plan.account_units(ACCOUNT, 1000, window, Selection(), NOW)
    assert [u.id for u in first] == [u.id for u in again]
    assert len({u.id for u in first}) == len(first)


def test_a_media_is_one_call_for_its_metrics_then_one_per_breakdown_then_its_facebook_share_apart():
    units = plan.media_units(ACCOUNT, MEDIA, "IMAGE", "FEED", NOW - DAY, Selection(), NOW)
    first, *breakdowns, shared = units
    feed = catalog.metrics_for_product("FEED")
    assert metrics_of(first) == {m.name for m in feed if m.condition != "shared_to_facebook"}
    assert "breakdown" not in dict(first.params)
    assert {(dict(u.params)["metric"], dict(u.params)["breakdown"]) for u in breakdowns} == {
        (m.name, b) for m in feed for b in m.breakdowns}
    assert all(u.ctx.breakdown_only for u in breakdowns) and not first.ctx.breakdown_only
    assert metrics_of(shared) == {"facebook_views"} and not shared.ctx.breakdown_only
    assert shared.label.endswith("shared to Facebook")


def test_a_reel_is_planned_by_its_product_type_not_its_media_type():
    (first, *_, shared) = plan.media_units(ACCOUNT, MEDIA, "VIDEO", "REELS", NOW - DAY, Selection(), NOW)
    reels = catalog.metrics_for_product("REELS")
    assert metrics_of(first) == {m.name for m in reels if m.condition != "shared_to_facebook"}
    assert metrics_of(shared) == {"facebook_views", "crossposted_views"}


def test_a_metric_of_facebook_login_rides_along_with_it_and_is_not_asked_with_instagram_login():
    """total_likes, total_comments, total_views and link_clicks need Facebook Login: the login
    is the configuration's, so they share the call of the other metrics where it holds."""
    only_facebook = {"total_likes", "total_comments", "total_views", "link_clicks"}
    for product in ("FEED", "STORY"):
        facebook = plan.media_units(ACCOUNT, MEDIA, "IMAGE", product, NOW - 3600, Selection(), NOW)
        instagram = plan.media_units(ACCOUNT, MEDIA, "IMAGE", product, NOW - 3600, Selection(), NOW, "instagram")
        asked = {m.name for m in catalog.metrics_for_product(product)} & only_facebook
        assert asked and asked <= metrics_of(facebook[0])
        assert not set().union(*map(metrics_of, instagram)) & only_facebook
        assert len(facebook) == len(instagram)                              # no call more, none less


def test_a_selection_of_only_conditional_metrics_plans_only_their_call():
    from harvester.config import MetricChoice

    selection = Selection(media=(MetricChoice(catalog.media_metric("facebook_views"), (), ()),))
    (only,) = plan.media_units(ACCOUNT, MEDIA, "IMAGE", "FEED", NOW - DAY, selection, NOW)
    assert metrics_of(only) == {"facebook_views"}


def test_a_story_past_its_24_hours_is_not_planned_and_one_within_them_is():
    selection = Selection()
    gone = NOW - catalog.STORY_LIFETIME_SECONDS
    assert plan.media_units(ACCOUNT, MEDIA, "IMAGE", "STORY", gone, selection, NOW) == []
    assert plan.media_units(ACCOUNT, MEDIA, "IMAGE", "STORY", gone + 1, selection, NOW)


def test_a_small_account_gets_no_demographics_and_no_follower_series():
    """(A total such as follows_and_unfollows rides along in the call of the other totals: the
    API answers it empty, and it costs no call of its own.)"""
    window = Window(TODAY - timedelta(days=10), TODAY)
    small = plan.account_units(ACCOUNT, catalog.MIN_FOLLOWERS - 1, window, Selection(), NOW)
    big = plan.account_units(ACCOUNT, catalog.MIN_FOLLOWERS, window, Selection(), NOW)
    series = {"follower_count", "online_followers"}
    assert not set().union(*map(metrics_of, small)) & series and series <= set().union(*map(metrics_of, big))
    assert not any(u.ctx.timeframe for u in small) and any(u.ctx.timeframe for u in big)
    assert len(small) < len(big)


def test_daily_totals_take_a_call_a_day_and_window_totals_one_per_30_days():
    since = TODAY - timedelta(days=45)
    by_day = plan.account_units(ACCOUNT, 1000, Window(since, TODAY, "day"), Selection(), NOW)
    by_window = plan.account_units(ACCOUNT, 1000, Window(since, TODAY, "window"), Selection(), NOW)

    def totals(units):
        return sorted((u.ctx.since, u.ctx.until) for u in units
                      if dict(u.params).get("metric_type") == "total_value" and u.ctx.since is not None
                      and "breakdown" not in dict(u.params))

    assert len(totals(by_day)) == 45 and all(hi - lo == DAY for lo, hi in totals(by_day))
    assert totals(by_window) == [(to_unix(since), to_unix(since) + catalog.MAX_RANGE_SECONDS),
                                 (to_unix(since) + catalog.MAX_RANGE_SECONDS, to_unix(TODAY))]


def test_follower_count_is_asked_only_over_the_last_30_days():
    window = Window(TODAY - timedelta(days=60), TODAY)
    units = plan.account_units(ACCOUNT, 1000, window, Selection(), NOW)
    follower = [u for u in units if "follower_count" in metrics_of(u)]
    assert follower and min(u.ctx.since for u in follower) >= plan.last30_start(NOW)
    assert any(u.ctx.since < plan.last30_start(NOW) for u in units if "reach" in metrics_of(u))


def test_a_story_expires_a_day_after_it_was_posted_and_a_post_after_the_media_retention():
    posted = NOW - 3600
    assert plan.media_expires_at("STORY", posted, NOW) == posted + catalog.STORY_LIFETIME_SECONDS
    assert plan.media_expires_at("FEED", posted, NOW) == posted + catalog.RETENTION_DAYS["media"] * DAY
