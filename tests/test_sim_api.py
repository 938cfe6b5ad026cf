"""The simulated Graph API over real loopback sockets: nodes, paging, both host styles, discovery
through /me/accounts, insights of every shape, and every error body compared whole."""

from urllib.parse import parse_qsl, urlsplit

import aiohttp
import orjson
import pytest

from harvester import catalog
from harvester.days import DAY, from_unix, parse_iso, to_unix
from harvester.simulator import errors as E
from harvester.simulator.world import World, WorldSpec

from support import NOW

SPEC = WorldSpec(seed=7, accounts=30, media_per_account=30, now=NOW, revoked_tokens=1, converted_share=0.6)
WORLD = World(SPEC)
TODAY = to_unix(from_unix(int(NOW)))


def live(kind=None):
    return [t for t in WORLD.tokens if not t.revoked and kind in (None, t.kind)]


def owned_accounts():
    return [WORLD.account_by_id(a) for t in live() for a in t.account_ids]


def token_of(object_account_index):
    return WORLD.owner(object_account_index)


def find_media(predicate):
    for account in owned_accounts():
        for n in range(account.media_count):
            media = WORLD.media(account, n)
            if predicate(media):
                return media
    raise AssertionError("no such media in the test world")


def find_story(predicate):
    return next(s for a in owned_accounts() for s in WORLD.live_stories(a) if predicate(s))


BIG = next(a for a in owned_accounts()
           if a.followers >= 1000 and WORLD.values.has_demographic(a, "engaged_audience_demographics"))
SMALL = next(a for a in owned_accounts() if a.followers < 100)
def served_all(media) -> bool:
    """Every metric of its product type: shared to Facebook, and its token of Facebook Login."""
    return WORLD.shared_to_facebook(media) and WORLD.owner(media.account).kind == "facebook"


FEED = find_media(lambda m: m.media_type == "IMAGE" and not WORLD.before_conversion(m) and served_all(m))
REEL = find_media(lambda m: m.media_product_type == "REELS" and not WORLD.before_conversion(m) and served_all(m))
UNSHARED = find_media(lambda m: m.media_product_type == "REELS" and not WORLD.before_conversion(m)
                      and not WORLD.shared_to_facebook(m) and WORLD.owner(m.account).kind == "facebook")
INSTAGRAM_LOGIN = find_media(lambda m: m.media_type == "IMAGE" and not WORLD.before_conversion(m)
                             and WORLD.owner(m.account).kind == "instagram")
ALBUM = find_media(lambda m: m.media_type == "CAROUSEL_ALBUM")
OLD = find_media(WORLD.before_conversion)
STORY = find_story(lambda s: s.viewers >= 5)
QUIET = find_story(lambda s: s.viewers < 5)


@pytest.fixture
async def api(simulator_server):
    server = await simulator_server(WORLD)
    async with aiohttp.ClientSession() as session:
        async def get(path, token=None, **params):
            url = path if path.startswith("http") else f"{server.url}/v25.0/{path}"
            headers = {"Authorization": f"Bearer {token.token}"} if token else {}
            async with session.get(url, params=params, headers=headers) as response:
                return response.status, response.headers, orjson.loads(await response.read())
        get.url = server.url
        yield get


def error_body(body):
    error = dict(body["error"])
    assert error.pop("fbtrace_id")
    return error


async def insights(api, obj_id, owner_index, **params):
    return await api(f"{obj_id}/insights", token_of(owner_index), **params)


# --- errors, each body whole -----------------------------------------------------------------

ACCOUNT_ERRORS = [
    ({"metric": "reach,email_contacts", "period": "day"}, 400,
     {"message": E.MUST_BE_ONE_OF.format(index=1, values=E.ACCOUNT_METRIC_ENUM), "type": "OAuthException",
      "code": 100}),
    ({"metric": "impressions", "period": "day"}, 400,
     {"message": "Starting from version 22 and above, the impressions metric is no longer supported for the queried "
                 "user. Please refer to the documentation at https://developers.facebook.com/docs/instagram-api/"
                 "reference/ig-user/insights for a list of supported metrics.", "type": "OAuthException", "code": 100}),
    ({"metric": "likes,views,reach", "period": "day"}, 400,
     {"message": "(#100) The following metrics (likes,views) should be specified with parameter "
                 "metric_type=total_value",
      "type": "OAuthException", "code": 100}),
    ({"metric": "likes,accounts_engaged", "period": "day", "metric_type": "total_value",
      "breakdown": "media_product_type"},
     500, {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1}),
    ({"metric": "likes", "period": "day", "metric_type": "total_value", "since": str(TODAY - 31 * DAY),
      "until": str(TODAY)},
     400, {"message": "(#100) There cannot be more than 30 days (2592000 s) between since and until",
           "type": "OAuthException", "code": 100}),
    ({"metric": "likes", "period": "day", "metric_type": "total_value", "since": str(TODAY - 740 * DAY),
      "until": str(TODAY - 739 * DAY)}, 400,
     {"message": "(#100) since param is not valid. Metrics data is available for the last 2 years",
      "type": "OAuthException", "code": 100}),
    ({"metric": "reach,follower_count", "period": "day", "metric_type": "time_series", "since": str(TODAY - 40 * DAY),
      "until": str(TODAY - 20 * DAY)}, 400,
     {"message": "(#100) (follower_count) metric only supports querying data for the last 30 days excluding the "
                 "current day", "type": "OAuthException", "code": 100}),
]


@pytest.mark.parametrize("params, status, expected", ACCOUNT_ERRORS)
async def test_account_insights_errors(api, params, status, expected):
    got_status, headers, body = await insights(api, BIG.id, BIG.index, **params)
    assert (got_status, error_body(body)) == (status, expected)
    assert headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_request" "')


MEDIA_ERRORS = [
    (REEL, {"metric": "reach,follows"}, 400,
     {"message": "(#100) The Media Insights API does not support the follows metric for this media product type.",
      "type": "OAuthException", "code": 100}),
    (STORY, {"metric": "likes,saved"}, 400,
     {"message": "The Instagram Media Insights API does not support the likes, saved metric for this media "
                 "product type",
      "type": "OAuthException", "code": 100}),
    (FEED, {"metric": "reach,impressions"}, 400,
     {"message": "(#100) Starting from version v22.0 and above, the impressions metric is no longer supported for the "
                 "queried media", "type": "OAuthException", "code": 100}),
    (REEL, {"metric": "impressions"}, 400,
     {"message": "(#100) The Media Insights API does not support the impressions metric for this media product type",
      "type": "OAuthException", "code": 100}),
    (FEED, {"metric": "reach,engagement"}, 400,
     {"message": E.MUST_BE_ONE_OF.format(index=1, values=E.MEDIA_METRIC_ENUM), "type": "OAuthException", "code": 100}),
    (FEED, {"metric": "reach,profile_activity", "breakdown": "action_type"}, 500,
     {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1}),
    (QUIET, {"metric": "reach"}, 400,
     {"message": "(#10) Not enough viewers for the media to show insights", "type": "OAuthException", "code": 10}),
    (OLD, {"metric": "reach"}, 400,
     {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
      "error_data": {"blame_field_specs": [[""]]}, "error_subcode": 2108006, "is_transient": False,
      "error_user_title": "Media posted before business account conversion",
      "error_user_msg": "The media was posted before the most recent time that the user's account was converted to a "
                        "business account from a personal account."}),
]


@pytest.mark.parametrize("media, params, status, expected", MEDIA_ERRORS)
async def test_media_insights_errors(api, media, params, status, expected):
    got_status, _, body = await insights(api, media.id, media.account, **params)
    assert (got_status, error_body(body)) == (status, expected)


async def test_objects_of_other_tokens_do_not_exist(api):
    facebook, instagram = live("facebook")[0], live("instagram")[0]
    stranger = next(a for a in owned_accounts() if token_of(a.index) is not facebook)
    unsupported = lambda oid: {  # noqa: E731
        "message": f"Unsupported get request. Object with ID '{oid}' does not exist, cannot be loaded due to missing "
                   "permissions, or does not support this operation.",
        "type": "GraphMethodException", "code": 100, "error_subcode": 33}
    for path, token, oid in [(stranger.id, facebook, stranger.id), (f"{stranger.id}/insights", facebook, stranger.id),
                             ("17841499999999999", facebook, "17841499999999999"), ("nothing", facebook, "nothing"),
                             (WORLD.account_by_id(facebook.account_ids[0]).page_id, instagram,
                              WORLD.account_by_id(facebook.account_ids[0]).page_id)]:
        status, _, body = await api(path, token)
        assert (status, error_body(body)) == (400, unsupported(oid))


async def test_unknown_fields_and_edges(api):
    token = token_of(BIG.index)
    status, _, body = await api(BIG.id, token, fields="username,colour")
    assert (status, error_body(body)) == (400, {"message": "(#100) Tried accessing nonexisting field (colour) on node "
                                                           "type (IGUser)", "type": "OAuthException", "code": 100})
    status, _, body = await api(f"{BIG.id}/followers", token)
    assert (status, error_body(body)) == (400, {"message": "Unknown path components: /followers",
                                                "type": "OAuthException", "code": 2500})


async def test_album_children_and_expired_stories_have_no_insights(api):
    child = WORLD.child(ALBUM, 0)
    status, _, body = await insights(api, child.id, child.account, metric="reach")
    assert (status, error_body(body)) == (400, {"message": "(#100) Insights are not available for media within an "
                                                           "album",
                                                "type": "OAuthException", "code": 100})
    account = WORLD.account(STORY.account)
    expired = WORLD.story(account, account.stories)
    status, _, body = await insights(api, expired.id, expired.account, metric="reach")
    assert (status, body) == (200, {"data": []})


# --- nodes and paging ------------------------------------------------------------------------

async def test_account_node_and_media_pages_with_embedded_tokens(api):
    token = token_of(BIG.index)
    status, _, node = await api(BIG.id, token, fields="id,username,followers_count,media_count")
    assert status == 200
    assert node == {"id": BIG.id, "username": BIG.username, "followers_count": BIG.followers,
                    "media_count": BIG.media_count}
    status, _, page = await api(f"{BIG.id}/media", token)
    assert status == 200 and page["data"] == [{"id": WORLD.media(BIG, n).id} for n in range(min(25, BIG.media_count))]
    seen, url, pages = [], None, 0
    while True:
        if url is None:
            _, _, page = await api(f"{BIG.id}/media", token, fields="id,media_type,media_product_type,timestamp",
                                   limit="7")
        else:
            query = dict(parse_qsl(urlsplit(url).query))
            assert query.pop("access_token") == token.token          # the API embeds the token
            assert query["limit"] == "7" and query["fields"] == "id,media_type,media_product_type,timestamp"
            _, _, page = await api(url, token)
        pages += 1
        seen += page["data"]
        assert set(page["paging"]["cursors"]) == {"before", "after"}
        url = page["paging"].get("next")
        if url is None:
            break
    assert pages == -(-BIG.media_count // 7) and len(seen) == BIG.media_count
    assert [m["id"] for m in seen] == [WORLD.media(BIG, n).id for n in range(BIG.media_count)]
    assert {m["media_type"] for m in seen} <= {"IMAGE", "VIDEO", "CAROUSEL_ALBUM"}
    assert all(m["media_product_type"] in ("FEED", "REELS") for m in seen)
    stamps = [parse_iso(m["timestamp"]) for m in seen]
    assert stamps == sorted(stamps, reverse=True)
    _, _, page = await api(f"{BIG.id}/media", token, limit="1000")
    assert len(page["data"]) == min(100, BIG.media_count)


async def test_stories_and_children(api):
    account = WORLD.account(STORY.account)
    _, _, page = await api(f"{account.id}/stories", token_of(account.index), fields="id,media_product_type,timestamp")
    assert [s["id"] for s in page["data"]] == [s.id for s in WORLD.live_stories(account)]
    assert all(s["media_product_type"] == "STORY" and NOW - parse_iso(s["timestamp"]) < DAY for s in page["data"])
    _, _, page = await api(f"{ALBUM.id}/children", token_of(ALBUM.account), fields="id,media_type")
    assert [c["id"] for c in page["data"]] == [WORLD.child(ALBUM, c).id for c in range(ALBUM.children)]
    assert "next" not in page["paging"]


async def test_facebook_login_discovery_through_pages(api):
    token = next(t for t in live("facebook") if len(t.account_ids) > 1)
    status, _, me = await api("me", token)
    assert status == 200 and me["id"] == token.user_id and "name" in me
    found, url = [], None
    while True:
        _, _, page = await (api(url, token) if url else api("me/accounts", token, limit="1"))
        for entry in page["data"]:
            _, _, node = await api(entry["id"], token, fields="instagram_business_account")
            found.append(node["instagram_business_account"]["id"])
        url = page.get("paging", {}).get("next")
        if url is None:
            break
    assert found == list(token.account_ids)


async def test_instagram_login_me_is_the_account(api):
    token = live("instagram")[0]
    account = WORLD.account_by_id(token.account_ids[0])
    status, _, me = await api("me", token, fields="id,username,followers_count")
    assert (status, me) == (200, {"id": account.id, "username": account.username, "followers_count": account.followers})
    _, _, page = await api("me/media", token, limit="2")
    assert [m["id"] for m in page["data"]] == [WORLD.media(account, n).id for n in range(min(2, account.media_count))]
    status, _, body = await api("me/accounts", token)
    assert status == 400 and body["error"]["code"] == 2500


# --- insights shapes -------------------------------------------------------------------------

async def test_interaction_totals_with_breakdowns_and_window_paging(api):
    since, until = TODAY - 2 * DAY, TODAY - DAY
    common = {"period": "day", "metric_type": "total_value", "since": str(since), "until": str(until)}
    status, _, body = await insights(api, BIG.id, BIG.index, metric="reach,likes", **common)
    assert status == 200
    reach = body["data"][0]
    assert set(reach) == {"name", "period", "title", "description", "total_value", "id"}
    assert reach["total_value"] == {"value": WORLD.values.interaction(BIG, "reach", since, until)}
    assert reach["id"] == f"{BIG.id}/insights/reach/day" and reach["title"] == "Accounts reached"
    previous, following = (dict(parse_qsl(urlsplit(body["paging"][k]).query)) for k in ("previous", "next"))
    assert (previous["since"], previous["until"]) == (str(since - DAY), str(since))
    assert (following["since"], following["until"]) == (str(until), str(until + DAY))
    assert following["access_token"] == token_of(BIG.index).token
    _, _, body = await insights(api, BIG.id, BIG.index, metric="reach,likes", breakdown="media_product_type", **common)
    for item in body["data"]:
        [breakdown] = item["total_value"]["breakdowns"]
        assert breakdown["dimension_keys"] == ["media_product_type"]
        values = [r["value"] for r in breakdown["results"]]
        assert all(values) and item["total_value"]["value"] == sum(values)
        products = set(catalog.BREAKDOWN_VALUES["media_product_type"])
        assert {r["dimension_values"][0] for r in breakdown["results"]} <= products
    _, _, body = await insights(api, BIG.id, BIG.index, metric="reach", breakdown="media_product_type,follow_type",
                                **common)
    [breakdown] = body["data"][0]["total_value"]["breakdowns"]
    assert breakdown["dimension_keys"] == ["media_product_type", "follow_type"]
    assert all(len(r["dimension_values"]) == 2 for r in breakdown["results"])


async def test_since_and_until_may_be_dates_and_iso_times_as_strtotime_reads_them(api):
    """Airbyte's source-instagram sends ``since=2026-11-15T11:57:04+00:00``; the API takes Unix
    seconds or any strtotime value, so the simulator takes ISO dates and times too."""
    since, until = TODAY - 2 * DAY, TODAY - DAY
    common = {"metric": "reach", "period": "day", "metric_type": "total_value"}
    _, _, numeric = await insights(api, BIG.id, BIG.index, since=str(since), until=str(until), **common)
    for s, u in [(from_unix(since).isoformat(), from_unix(until).isoformat()),
                 (f"{from_unix(since).isoformat()}T00:00:00+00:00", f"{from_unix(until).isoformat()}T00:00:00Z")]:
        status, _, body = await insights(api, BIG.id, BIG.index, since=s, until=u, **common)
        assert (status, body["data"]) == (200, numeric["data"])
    status, _, body = await insights(api, BIG.id, BIG.index, since="yesterday", until=str(until), **common)
    assert (status, error_body(body)) == (400, {"message": "(#100) Param since must be a number",
                                                "type": "OAuthException", "code": 100})


async def test_time_series_and_online_followers(api):
    since, until = TODAY - 5 * DAY, TODAY
    status, _, body = await insights(api, BIG.id, BIG.index, metric="reach,follower_count", period="day",
                                     metric_type="time_series", breakdown="follow_type", since=str(since),
                                     until=str(until))
    assert status == 200
    for item in body["data"]:
        assert "total_value" not in item                            # time series: breakdowns are left out
        assert len(item["values"]) == 5
        assert all(v["end_time"][11:] in ("07:00:00+0000", "08:00:00+0000") for v in item["values"])
        assert all(since <= parse_iso(v["end_time"]) < until for v in item["values"])
    _, _, body = await insights(api, BIG.id, BIG.index, metric="online_followers", period="lifetime",
                                since=str(since), until=str(until))
    [item] = body["data"]
    assert item["period"] == "lifetime" and all(set(v["value"]) == {str(h) for h in range(24)} for v in item["values"])


async def test_demographics_with_timeframe_and_cross_tabs(api):
    both = "follower_demographics,engaged_audience_demographics"
    status, _, body = await insights(api, BIG.id, BIG.index, metric=both, period="lifetime",
                                     metric_type="total_value", timeframe="this_month", breakdown="age,gender")
    assert status == 200 and [d["name"] for d in body["data"]] == both.split(",")
    [breakdown] = body["data"][0]["total_value"]["breakdowns"]
    assert breakdown["dimension_keys"] == ["timeframe", "age", "gender"]
    assert all(r["dimension_values"][0] == "THIS_MONTH" and len(r["dimension_values"]) == 3
               for r in breakdown["results"])
    assert "value" not in body["data"][0]["total_value"]
    _, _, body = await insights(api, BIG.id, BIG.index, metric="follower_demographics", period="lifetime",
                                metric_type="total_value", timeframe="this_week", breakdown="city")
    results = body["data"][0]["total_value"]["breakdowns"][0]["results"]
    values = [r["value"] for r in results]
    assert 0 < len(results) <= 45 and values == sorted(values, reverse=True)
    status, _, body = await insights(api, BIG.id, BIG.index, metric="follower_demographics", period="lifetime",
                                     metric_type="total_value", timeframe="last_30_days", breakdown="age")
    assert (status, error_body(body)) == (400, {"message": "(#100) Param timeframe must be one of "
                                                           "{this_week, this_month}",
                                                "type": "OAuthException", "code": 100})


async def test_small_accounts_get_empty_data(api):
    common = {"period": "day", "metric_type": "total_value", "since": str(TODAY - DAY), "until": str(TODAY)}
    _, _, body = await insights(api, SMALL.id, SMALL.index, metric="follows_and_unfollows,likes", **common)
    assert [d["name"] for d in body["data"]] == ["likes"]
    _, _, body = await insights(api, SMALL.id, SMALL.index, metric="follower_count", period="day",
                                metric_type="time_series", since=str(TODAY - DAY), until=str(TODAY))
    assert body["data"] == []
    _, _, body = await insights(api, SMALL.id, SMALL.index, metric="follower_demographics", period="lifetime",
                                metric_type="total_value", timeframe="this_month", breakdown="country")
    assert body == {"data": []}


async def test_conditional_media_metrics_are_refused_where_their_condition_fails(api):
    """facebook_views and crossposted_views only for media shared to Facebook (-1/2207086 for the
    whole call otherwise); total_likes and the like only to Facebook Login (graph.instagram.com's
    list of metrics has no such name)."""
    status, _, body = await insights(api, UNSHARED.id, UNSHARED.account, metric="reach,facebook_views")
    assert status == 400 and error_body(body) == {"message": E.NOT_SHARED, "type": "OAuthException", "code": -1,
                                                  "error_subcode": 2207086}
    status, _, body = await insights(api, UNSHARED.id, UNSHARED.account, metric="reach,total_likes")
    assert status == 200 and [d["name"] for d in body["data"]] == ["reach", "total_likes"]
    shared = ",".join(("facebook_views", "crossposted_views"))
    status, _, body = await insights(api, REEL.id, REEL.account, metric=shared)
    assert status == 200 and [d["values"][0]["value"] for d in body["data"]] == [
        WORLD.media_value(REEL, "facebook_views"), WORLD.media_value(REEL, "crossposted_views")]
    assert WORLD.media_value(REEL, "crossposted_views") > WORLD.media_value(REEL, "views")
    status, _, body = await insights(api, INSTAGRAM_LOGIN.id, INSTAGRAM_LOGIN.account, metric="reach,total_likes")
    assert status == 400 and error_body(body)["message"] == E.MUST_BE_ONE_OF.format(
        index=1, values=E.INSTAGRAM_LOGIN_MEDIA_ENUM)
    assert "total_likes" not in E.INSTAGRAM_LOGIN_MEDIA_ENUM and "facebook_views" in E.INSTAGRAM_LOGIN_MEDIA_ENUM


async def test_media_insights_values_and_breakdowns(api):
    names = [m.name for m in catalog.metrics_for_product("FEED")]
    status, _, body = await insights(api, FEED.id, FEED.account, metric=",".join(names), period="day")
    assert status == 200 and [d["name"] for d in body["data"]] == names
    first = body["data"][0]
    assert first == {"name": names[0], "period": "lifetime", "values": [{"value": WORLD.media_value(FEED, names[0])}],
                     "title": catalog.media_metric(names[0]).title,
                     "description": catalog.media_metric(names[0]).description,
                     "id": f"{FEED.id}/insights/{names[0]}/lifetime"}
    _, _, body = await insights(api, FEED.id, FEED.account, metric="profile_activity", breakdown="action_type")
    [item] = body["data"]
    results = item["total_value"]["breakdowns"][0]["results"]
    assert item["total_value"]["value"] == item["values"][0]["value"] == sum(r["value"] for r in results)
    assert all(r["dimension_values"][0] == r["dimension_values"][0].lower() for r in results)
    _, _, body = await insights(api, STORY.id, STORY.account, metric="navigation",
                                breakdown="story_navigation_action_type")
    assert body["data"][0]["total_value"]["breakdowns"][0]["dimension_keys"] == ["story_navigation_action_type"]
    reels = ",".join(m.name for m in catalog.metrics_for_product("REELS"))
    status, _, body = await insights(api, REEL.id, REEL.account, metric=reels)
    assert status == 200 and len(body["data"]) == len(catalog.metrics_for_product("REELS"))
