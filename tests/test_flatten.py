"""The flattener against every response shape: tests/fixtures/, the reference pages' samples,
and the shapes the reference allows (multi-key breakdowns, object values, missing values)."""

from datetime import date
from pathlib import Path

import orjson
import pytest

from harvester.days import iso, to_unix
from harvester.errors import DecodeError
from harvester.graph.flatten import Context, flatten
from harvester.records import natural_key

FIXTURES = Path(__file__).parent / "fixtures"
S, U = to_unix(date(2026, 10, 1)), to_unix(date(2026, 10, 2))


def fixture(name: str) -> bytes:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path.read_bytes()


def account(**kw) -> Context:
    return Context("1784", "1784", "account", **kw)


# The IG User insights reference's interaction sample (account reach by media_product_type), as given there.
ACCOUNT_SAMPLE_BREAKDOWN = orjson.dumps({"data": [{
    "name": "reach", "period": "day", "title": "Accounts reached", "description": "...",
    "total_value": {"value": 224, "breakdowns": [{"dimension_keys": ["media_product_type"], "results": [
        {"dimension_values": ["CAROUSEL_CONTAINER"], "value": 100},
        {"dimension_values": ["POST"], "value": 124}]}]},
    "id": "17841405309211844/insights/reach/day"}],
    "paging": {"previous": "https://graph.face...", "next": "https://graph.face..."}})

# The IG User insights reference's demographics sample (timeframe + country keys).
ACCOUNT_SAMPLE_DEMOGRAPHICS = orjson.dumps({"data": [{
    "name": "engaged_audience_demographics", "period": "lifetime", "title": "t", "description": "d",
    "total_value": {"breakdowns": [{"dimension_keys": ["timeframe", "country"], "results": [
        {"dimension_values": ["LAST_90_DAYS", "AR"], "value": 1},
        {"dimension_values": ["LAST_90_DAYS", "US"], "value": 7}]}]},
    "id": "17841401130346306/insights/engaged_audience_demographics/lifetime"}]})

# The IG Media insights reference's story navigation sample.
STORY_SAMPLE_NAVIGATION = orjson.dumps({"data": [{
    "name": "navigation", "period": "lifetime", "values": [{"value": 25}], "title": "Navigation",
    "description": "d", "total_value": {"value": 25, "breakdowns": [{
        "dimension_keys": ["story_navigation_action_type"], "results": [
            {"dimension_values": ["tap_forward"], "value": 19}, {"dimension_values": ["tap_back"], "value": 4},
            {"dimension_values": ["tap_exit"], "value": 1}, {"dimension_values": ["swipe_forward"], "value": 1}]}]},
    "id": "17969782069736348/insights/navigation/lifetime"}]})


def test_interaction_totals_one_record_per_metric_with_request_window():
    body = orjson.dumps({"data": [
        {"name": "reach", "period": "day", "total_value": {"value": 224}, "id": "x"},
        {"name": "likes", "period": "day", "total_value": {"value": 0.5}},
    ]})
    records = flatten(body, account(metric_type="total_value", since=S, until=U), run_id="r1",
                      harvested_at="2026-10-03T00:00:00+0000")
    assert [(r.metric, r.value) for r in records] == [("reach", 224), ("likes", 0.5)]
    first = records[0]
    assert (first.since, first.until, first.end_time) == (iso(S), iso(U), None)
    assert (first.since, first.until) == ("2026-10-01T00:00:00+0000", "2026-10-02T00:00:00+0000")
    assert first.dimension_keys == () and first.dimension_values == ()
    assert (first.object_type, first.metric_type, first.period) == ("account", "total_value", "day")
    assert (first.run_id, first.harvested_at) == ("r1", "2026-10-03T00:00:00+0000")


def test_breakdown_call_emits_results_not_the_total():
    records = flatten(ACCOUNT_SAMPLE_BREAKDOWN, account(metric_type="total_value", since=S, until=U,
                                                  breakdown_only=True))
    assert [(r.dimension_keys, r.dimension_values, r.value) for r in records] == [
        (("media_product_type",), ("CAROUSEL_CONTAINER",), 100), (("media_product_type",), ("POST",), 124)]
    assert all(r.since == iso(S) and r.end_time is None for r in records)


def test_demographics_keep_timeframe_keys():
    ctx = account(metric_type="total_value", timeframe="last_90_days", breakdown_only=True)
    records = flatten(ACCOUNT_SAMPLE_DEMOGRAPHICS, ctx)
    assert [(r.dimension_keys, r.dimension_values, r.value) for r in records] == [
        (("timeframe", "country"), ("LAST_90_DAYS", "AR"), 1), (("timeframe", "country"), ("LAST_90_DAYS", "US"), 7)]
    assert all(r.timeframe == "last_90_days" and r.since is None and r.until is None for r in records)


def test_demographics_multi_key_breakdown_gains_the_timeframe_key():
    ctx = account(metric_type="total_value", timeframe="this_month", breakdown_only=True)
    records = flatten(fixture("user_lifetime_insights_for_age_gender.json"), ctx)
    assert len(records) == 6
    assert records[0].dimension_keys == ("timeframe", "age", "gender")
    assert records[0].dimension_values == ("THIS_MONTH", "18-24", "F")
    assert records[-1].dimension_values == ("THIS_MONTH", "25-34", "U") and records[-1].value == 2


def test_time_series_one_record_per_day_with_end_time():
    ctx = account(metric_type="time_series", since=S, until=U)
    records = flatten(fixture("user_insights.json"), ctx)
    assert [(r.metric, r.end_time, r.value) for r in records] == [
        ("follower_count", "2024-01-15T07:00:00+0000", 1000), ("reach", "2024-01-15T07:00:00+0000", 500)]
    assert all(r.since == iso(S) and r.metric_type == "time_series" for r in records)


def test_online_followers_object_value_becomes_one_record_per_hour():
    hours = {str(h): 10 + h for h in range(24)}
    body = orjson.dumps({"data": [{"name": "online_followers", "period": "lifetime", "values": [
        {"value": hours, "end_time": "2026-10-02T07:00:00+0000"},
        {"value": {"0": 3, "1": None}, "end_time": "2026-10-03T07:00:00+0000"}]}]})
    records = flatten(body, account(since=S, until=U))
    assert len(records) == 25
    assert all(r.dimension_keys == ("hour",) for r in records)
    assert [r.dimension_values[0] for r in records[:24]] == [str(h) for h in range(24)]
    assert records[23].value == 33 and records[23].end_time == "2026-10-02T07:00:00+0000"
    assert (records[24].dimension_values, records[24].end_time) == (("0",), "2026-10-03T07:00:00+0000")
    assert len({natural_key(r) for r in records}) == 25


def test_media_lifetime_values_with_unknown_and_retired_metrics():
    ctx = Context("1784", "84386203808767123", "media", "VIDEO", "REELS")
    records = flatten(fixture("media_insights_for_reels.json"), ctx)
    assert len(records) == 10
    by_metric = {r.metric: r for r in records}
    assert by_metric["ig_reels_avg_watch_time"].value == 12549 and by_metric["plays"].value == 2385
    reach = by_metric["reach"]
    assert (reach.media_type, reach.media_product_type, reach.object_type) == ("VIDEO", "REELS", "media")
    assert (reach.period, reach.since, reach.until, reach.end_time) == ("lifetime", None, None, None)


def test_media_plain_call_takes_values_and_ignores_total_breakdowns():
    ctx = Context("1784", "17969782069736348", "media", "IMAGE", "STORY")
    records = flatten(STORY_SAMPLE_NAVIGATION, ctx)
    assert [(r.metric, r.value, r.dimension_keys) for r in records] == [("navigation", 25, ())]


def test_media_breakdown_call_gives_lower_case_results():
    ctx = Context("1784", "17969782069736348", "media", "IMAGE", "STORY", breakdown_only=True)
    records = flatten(STORY_SAMPLE_NAVIGATION, ctx)
    assert [r.dimension_values[0] for r in records] == ["tap_forward", "tap_back", "tap_exit", "swipe_forward"]
    assert sum(r.value for r in records) == 25
    assert all(r.dimension_keys == ("story_navigation_action_type",) for r in records)


def test_missing_values_yield_no_record():
    body = orjson.dumps({"data": [
        {"name": "reach", "period": "lifetime", "values": [{}]},
        {"name": "likes", "period": "lifetime", "values": [{"value": None}]},
        {"name": "saved", "period": "lifetime"},
        {"name": "shares", "period": "lifetime", "values": [{"value": 2}]},
    ]})
    records = flatten(body, Context("1", "m", "media", "IMAGE", "FEED"))
    assert [(r.metric, r.value) for r in records] == [("shares", 2)]


def test_breakdown_result_without_value_yields_no_record():
    body = orjson.dumps({"data": [{"name": "profile_activity", "period": "lifetime", "total_value": {
        "value": 4, "breakdowns": [{"dimension_keys": ["action_type"], "results": [
            {"dimension_values": ["email"]}, {"dimension_values": ["text"], "value": 1}]}]}}]})
    records = flatten(body, Context("1", "m", "media", "IMAGE", "FEED", breakdown_only=True))
    assert [(r.dimension_values, r.value) for r in records] == [(("text",), 1)]


@pytest.mark.parametrize("body", [b'{"data": []}', b'{"data": [], "paging": {"next": "x"}}'])
def test_empty_data_yields_nothing(body):
    assert flatten(body, account(metric_type="total_value", since=S, until=U)) == []


def test_unknown_fields_everywhere_are_ignored():
    body = orjson.dumps({"data": [{"name": "reach", "period": "day", "new_field": {"a": [1]},
                                   "total_value": {"value": 5, "unit": "accounts", "breakdowns": []}}],
                         "summary": {"x": 1}})
    assert [r.value for r in flatten(body, account(metric_type="total_value", since=S, until=U))] == [5]


@pytest.mark.parametrize("cut", [1, 10, 40, 80])
def test_truncated_body_raises_decode_error(cut):
    body = fixture("user_insights.json")
    with pytest.raises(DecodeError):
        flatten(body[: len(body) * cut // 100], account(metric_type="time_series", since=S, until=U))


@pytest.mark.parametrize("body", [b"", b"<!DOCTYPE html><html></html>", b'{"data": {"name": 1}}',
                                  b'{"data": [{"period": "day"}]}'])
def test_not_insights_raises_decode_error(body):
    with pytest.raises(DecodeError):
        flatten(body, account())


def test_dimensions_are_immutable_tuples():
    """Records may share their dimension tuples: nothing one consumer does can change another's."""
    body = orjson.dumps({"data": [{"name": m, "period": "day", "total_value": {"value": 1}} for m in "ab"]})
    first, second = flatten(body, account(metric_type="total_value", since=S, until=U))
    assert first.dimension_keys == second.dimension_keys == () and type(first.dimension_values) is tuple


@pytest.mark.parametrize("metric", ["reach", "views"])
def test_an_object_value_on_a_media_lifetime_metric_is_a_complete_decode_error(metric):
    """No invented hourly breakdown: the catalog says a media's reach is a number."""
    body = orjson.dumps({"data": [{"name": "likes", "period": "lifetime", "values": [{"value": 3}]},
                                  {"name": metric, "period": "lifetime", "values": [{"value": {"a": 1}}]}]})
    with pytest.raises(DecodeError) as info:
        flatten(body, Context("1784", "18000000000000001", "media", "IMAGE", "FEED"))
    assert info.value.complete
    assert f"media metric {metric!r} has an object value where the catalog expects a number" in str(info.value)


def test_an_object_value_on_an_account_metric_other_than_online_followers_is_refused():
    body = orjson.dumps({"data": [{"name": "reach", "period": "day", "values": [
        {"value": {"1": 2}, "end_time": "2026-10-01T07:00:00+0000"}]}]})
    with pytest.raises(DecodeError, match="account metric 'reach' has an object value"):
        flatten(body, account(metric_type="time_series", since=S, until=U))


def test_an_error_object_after_the_data_is_the_graph_error_not_empty_data():
    from harvester.errors import GraphError
    body = orjson.dumps({"data": [], "error": {"message": "(#1) An unknown error occurred", "code": 1}})
    with pytest.raises(GraphError):
        flatten(body, account(metric_type="total_value", since=S, until=U))


def test_insights_without_data_are_not_empty_data():
    with pytest.raises(DecodeError) as info:
        flatten(b"{}", account(metric_type="total_value", since=S, until=U))
    assert info.value.complete and "missing required field `data`" in str(info.value)


def test_a_number_where_online_followers_has_an_object_is_refused():
    body = orjson.dumps({"data": [{"name": "online_followers", "period": "lifetime", "values": [
        {"value": 12, "end_time": "2026-10-01T07:00:00+0000"}]}]})
    with pytest.raises(DecodeError, match="account metric 'online_followers' has a number where the catalog"):
        flatten(body, account(since=S, until=U))
