"""Wire decoders: usage headers of both kinds, account nodes, media pages, error bodies."""

import orjson
import pytest

from harvester.errors import DecodeError, GraphError
from harvester.graph.wire import Usage, decode_account, decode_error, decode_media_page, parse_usage

APP = '{"call_count": 28, "total_time": 25, "total_cputime": 25}'
BUC = ('{"17841400000000001":[{"type":"instagram","call_count":95,"total_cputime":20,"total_time":20,'
       '"estimated_time_to_regain_access":0}],'
       '"17841400000000002":[{"type":"instagram","call_count":1,"total_cputime":100,"total_time":3,'
       '"estimated_time_to_regain_access":19,"ads_api_access_tier":"standard_access"}]}')


def test_app_usage_is_the_highest_percentage():
    assert parse_usage({"x-app-usage": APP}) == Usage(percent=28, regain_seconds=0.0, call_count=28)


def test_business_usage_takes_every_object_and_regain_in_minutes():
    assert parse_usage({"x-business-use-case-usage": BUC}) == Usage(percent=100, regain_seconds=19 * 60,
                                                                    call_count=95)


def test_both_headers_together():
    usage = parse_usage({"x-app-usage": '{"call_count": 99}', "x-business-use-case-usage": BUC})
    assert usage == Usage(percent=100, regain_seconds=19 * 60, call_count=99)


def test_header_names_in_any_case():
    assert parse_usage({"X-App-Usage": APP}).percent == 28


def test_no_header_is_none_not_zero():
    assert parse_usage({}) is None
    assert parse_usage({"content-type": "application/json"}) is None


@pytest.mark.parametrize("bad", ["not json", "{", "[1, 2]", '{"call_count": "many"}', ""])
def test_malformed_header_is_ignored(bad):
    assert parse_usage({"x-app-usage": bad}) is None
    assert parse_usage({"x-app-usage": bad, "x-business-use-case-usage": BUC}).percent == 100


def test_account_node_ignores_unknown_fields():
    body = orjson.dumps({"id": "1784", "username": "shop", "followers_count": 120, "biography": "hi"})
    node = decode_account(body)
    assert (node.id, node.username, node.followers_count, node.media_count) == ("1784", "shop", 120, None)


def test_media_page_with_paging():
    body = orjson.dumps({"data": [{"id": "18000000000000001", "media_type": "VIDEO", "media_product_type": "REELS",
                                   "timestamp": "2026-10-01T10:00:00+0000", "caption": "x"}],
                         "paging": {"cursors": {"before": "b", "after": "a"},
                                    "next": "https://graph.facebook.com/v25.0/1/media?after=a"}})
    page = decode_media_page(body)
    assert page.data[0].media_product_type == "REELS"
    assert page.paging.cursors.after == "a" and page.paging.next.endswith("after=a")


def test_last_media_page_has_no_next():
    page = decode_media_page(b'{"data": []}')
    assert page.data == [] and page.paging is None


@pytest.mark.parametrize("body", [b'{"id": "17', b"", b"<html></html>", b'{"username": "no id"}'])
def test_bad_bodies_raise_decode_error(body):
    with pytest.raises(DecodeError):
        decode_account(body)


def test_error_body_with_error_data_as_string():
    body = orjson.dumps({"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                                   "error_subcode": 2108006, "error_data": '{"blame_field_specs":[[""]]}',
                                   "is_transient": False, "fbtrace_id": "A1"}})
    error = decode_error(400, body)
    assert isinstance(error, GraphError)
    stated = (error.status, error.code, error.subcode, error.is_transient, error.fbtrace_id)
    assert stated == (400, 100, 2108006, False, "A1")


def test_error_body_that_is_html_raises_decode_error_with_status():
    with pytest.raises(DecodeError) as info:
        decode_error(503, b"<!DOCTYPE html><html>Service Unavailable</html>")
    assert info.value.status == 503


# --- hostile and broken answers (issue 10, point 7) -------------------------------------------

from harvester.days import parse_iso  # noqa: E402
from harvester.graph.wire import decode_insights  # noqa: E402

DEEP = b"[" * 100_000 + b"]" * 100_000
ERROR = {"message": "(#1) An unknown error occurred", "type": "OAuthException", "code": 1, "error_subcode": 99}


@pytest.mark.parametrize("decode, body", [
    (decode_insights, b'{"data": [], "x": ' + DEEP + b"}"),
    (decode_insights, b'{"data": [{"name": "reach", "values": [{"value": 1, "x": ' + DEEP + b"}]}]}"),
    (decode_account, b'{"id": "1784", "x": ' + DEEP + b"}"),
    (decode_media_page, b'{"data": [], "paging": {"x": ' + DEEP + b"}}"),
], ids=["insights", "insights item", "account", "media page"])
def test_nesting_100000_levels_deep_is_a_complete_decode_error(decode, body):
    with pytest.raises(DecodeError) as info:
        decode(body)
    assert info.value.complete and "nested too deep" in str(info.value)


def test_error_data_nested_100000_levels_deep_is_a_decode_error():
    body = b'{"error": {"message": "m", "code": 1, "error_data": ' + DEEP + b"}}"
    with pytest.raises(DecodeError) as info:
        decode_error(500, body)
    assert info.value.complete and info.value.status == 500


def test_usage_header_nested_100000_levels_deep_is_ignored():
    deep = '{"call_count": ' + DEEP.decode() + "}"
    assert parse_usage({"x-app-usage": deep}) is None
    assert parse_usage({"x-app-usage": deep, "x-business-use-case-usage": BUC}).percent == 100
    assert parse_usage({"x-business-use-case-usage": '{"1": ' + DEEP.decode() + "}"}) is None


@pytest.mark.parametrize("bad", ['{"call_count": 1e999}', '{"call_count": ' + "9" * 400 + "}",
                                 '{"estimated_time_to_regain_access": -1e999}'])
def test_usage_figures_out_of_any_range_are_ignored(bad):
    assert parse_usage({"x-app-usage": bad}) is None


def test_the_decoders_own_words_are_kept_and_a_wrong_shape_is_complete():
    with pytest.raises(DecodeError) as info:
        decode_insights(b'{"data": [{"name": "reach", "values": [{"value": "many"}]}]}')
    assert "got `str` - at `$.data[0].values[0].value`" in str(info.value)
    assert info.value.complete


def test_a_body_cut_short_is_not_complete():
    with pytest.raises(DecodeError) as info:
        decode_insights(b'{"data": [{"name": "re')
    assert not info.value.complete and "truncated" in str(info.value)


@pytest.mark.parametrize("body", [b"{}", b'{"paging": {"next": "x"}}', b'{"data": null}'])
def test_insights_without_a_data_list_are_a_complete_decode_error(body):
    with pytest.raises(DecodeError) as info:
        decode_insights(body)
    assert info.value.complete


@pytest.mark.parametrize("decode, before", [
    (decode_insights, {"data": [], "paging": {"previous": "https://graph.facebook.com/v25.0/1/insights"}}),
    (decode_insights, {"paging": {"previous": "https://graph.facebook.com/v25.0/1/insights?x=1"}}),
    (decode_account, {"id": "17841400000000001", "username": "a_rather_long_user_name"}),
    (decode_account, {"username": "a_rather_long_user_name_and_no_id"}),
    (decode_media_page, {"data": [], "paging": {"cursors": {"after": "QVFIUmx1WkJ3"}}}),
], ids=["insights", "insights without data", "account", "account without id", "media page"])
def test_an_error_object_after_32_bytes_of_a_200_is_the_error_it_states(decode, before):
    body = orjson.dumps({**before, "error": ERROR})
    assert b'"error"' not in body[:32]
    with pytest.raises(GraphError) as info:
        decode(body)
    assert (info.value.status, info.value.code, info.value.subcode) == (200, 1, 99)
    assert info.value.message == ERROR["message"]


def media_page(*items) -> bytes:
    return orjson.dumps({"data": list(items), "paging": {"cursors": {"after": "a"}}})


def test_media_items_whose_id_is_not_a_graph_id_are_dropped_with_a_reason():
    good = {"id": "18000000000000001", "media_type": "IMAGE"}
    page = decode_media_page(media_page(good, {"id": "../../me/accounts"}, {"id": "123?access_token=x"},
                                        {"id": "9a" * 5000}, {"id": ""}, {"id": "1" * 33}, {"id": "١٢٣"}))
    assert [i.id for i in page.data] == ["18000000000000001"]
    assert page.rejected[:2] == ["item 1: id '../../me/accounts' is not a Graph id (1 to 32 digits)",
                                 "item 2: id '123?access_token=x' is not a Graph id (1 to 32 digits)"]
    assert page.rejected[2].startswith("item 3: id '9a9a") and page.rejected[2].endswith(
        "... (10000 characters) is not a Graph id (1 to 32 digits)")
    assert [r.split(":")[0] for r in page.rejected[3:]] == ["item 4", "item 5", "item 6"]
    assert page.paging.cursors.after == "a"


def test_one_item_that_does_not_decode_costs_that_item_not_the_page():
    page = decode_media_page(media_page({"id": "1"}, {"id": 2}, {"id": "3", "timestamp": ["x"]}, {"id": "4"}))
    assert [i.id for i in page.data] == ["1", "4"]
    assert page.rejected == ["item 1: Expected `str`, got `int` - at `$.id`",
                             "item 2: Expected `str | null`, got `array` - at `$.timestamp`"]


def test_a_repeated_id_on_a_page_is_kept_for_the_jobs_to_plan_once():
    page = decode_media_page(media_page({"id": "1"}, {"id": "2"}, {"id": "1"}))
    assert [i.id for i in page.data] == ["1", "2", "1"]
    assert page.rejected == []


def test_a_page_says_nothing_about_its_own_rejections():
    page = decode_media_page(b'{"data": [{"id": "1"}], "rejected": ["forged"]}')
    assert page.rejected == []


@pytest.mark.parametrize("text, expected", [
    ("2026-10-02T07:00:00+0000", 1790924400), ("2026-10-02T07:00:00Z", 1790924400),
    ("2026-10-02T07:00:00+00:00", 1790924400), ("2026-10-02T07:00:00.123+0000", 1790924400),
    ("2026-10-02T07:00:00.123456Z", 1790924400), ("2026-10-02T09:00:00+0200", 1790924400),
    ("2026-10-02T07:00:00", 1790924400),
])
def test_parse_iso_reads_every_form_the_api_may_send(text, expected):
    assert parse_iso(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "7" * 10_000, "2026-13-45T07:00:00+0000", "   ",
                                  "2026-10-02T07:00:00+0000 and more", "0000-00-00T00:00:00Z", None, 1790924400])
def test_parse_iso_is_none_for_nonsense(text):
    assert parse_iso(text) is None


def test_what_a_harvest_asks_is_what_its_structs_decode_and_its_records_carry():
    """The fields are declared once, by the wire Structs: the query strings and the records follow."""
    from harvester.graph import wire
    from harvester.records import AccountRecord, MediaRecord

    assert wire.MEDIA_FIELDS.endswith(",children{id,media_type}")
    assert wire.MEDIA_FIELDS.removesuffix(",children{id,media_type}") == wire.MEDIA_FIELDS_WITHOUT_CHILDREN
    assert set(wire.STORY_FIELDS.split(",")) == set(wire.MEDIA_FIELDS_WITHOUT_CHILDREN.split(",")) - {
        "like_count", "comments_count", "is_comment_enabled"}
    asked = set(wire.MEDIA_FIELDS_WITHOUT_CHILDREN.split(",")) - {"id", "username"}
    assert asked <= set(MediaRecord.__struct_fields__)    # username: read to tell a collaboration post
    assert set(wire.ACCOUNT_FIELDS.split(",")) - {"id"} <= set(AccountRecord.__struct_fields__)
