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
    assert parse_usage({"x-app-usage": APP}) == Usage(percent=28, regain_seconds=0.0)


def test_business_usage_takes_every_object_and_regain_in_minutes():
    assert parse_usage({"x-business-use-case-usage": BUC}) == Usage(percent=100, regain_seconds=19 * 60)


def test_both_headers_together():
    usage = parse_usage({"x-app-usage": '{"call_count": 99}', "x-business-use-case-usage": BUC})
    assert usage == Usage(percent=100, regain_seconds=19 * 60)


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
    assert (error.status, error.code, error.subcode, error.is_transient, error.fbtrace_id) == (400, 100, 2108006, False, "A1")


def test_error_body_that_is_html_raises_decode_error_with_status():
    with pytest.raises(DecodeError) as info:
        decode_error(503, b"<!DOCTYPE html><html>Service Unavailable</html>")
    assert info.value.status == 503
