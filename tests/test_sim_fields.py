"""The ``fields`` parameter as the Graph API reads it (simulator/fields.py), and the objects the
simulator serves through it: nested expansion on the account node, the media node, /media,
/stories and /children, fields the API omits, and the API's errors for broken or unknown fields."""

import orjson
import pytest

from harvester.simulator.api import GraphApi
from harvester.simulator.fields import Field, FieldsSyntaxError, parse_fields
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import World, WorldSpec

from support import NOW

WORLD = World(WorldSpec(seed=11, accounts=12, media_per_account=40, now=NOW))
API = GraphApi(WORLD)
PAGE_FIELDS = ("id,media_type,media_product_type,timestamp,permalink,shortcode,caption,like_count,comments_count,"
               "is_comment_enabled,media_url,thumbnail_url,children{id,media_type}")
STORY_FIELDS = "id,media_type,media_product_type,timestamp,permalink,shortcode,caption,media_url,thumbnail_url"
ACCOUNT_FIELDS = "id,username,name,followers_count,follows_count,media_count,biography,website,profile_picture_url"


def call(path, **query):
    account_index = _owner_index(path.split("/")[0])
    token = WORLD.owner(account_index)
    reply = API.handle(f"/v25.0/{path}", query, token, "http://sim")
    return reply.status, orjson.loads(reply.body)


def _owner_index(object_id):
    account = WORLD.account_by_id(object_id)
    return account.index if account is not None else WORLD.media_by_id(object_id).account


def all_media():
    for index in range(WORLD.spec.accounts):
        account = WORLD.account(index)
        for n in range(WORLD.listed_media(account)):
            yield WORLD.media(account, n)


def find(predicate):
    return next(m for m in all_media() if predicate(m))


def error_of(body):
    error = dict(body["error"])
    assert error.pop("fbtrace_id")
    return error


# --- the parser ------------------------------------------------------------------------------

def test_parse_nested_fields_with_limits_and_modifiers():
    assert parse_fields("a,b{c,d{e}},f.limit(5){g}") == [
        Field("a"), Field("b", (Field("c"), Field("d", (Field("e"),)))),
        Field("f", (Field("g"),), 5, (("limit", "5"),))]
    assert parse_fields("albums.limit(5){name, photos.limit(2)}") == [
        Field("albums", (Field("name"), Field("photos", None, 2, (("limit", "2"),))), 5, (("limit", "5"),))]
    insights = parse_fields("id,insights.metric(reach,views).period(day)")[1]
    assert insights == Field("insights", None, None, (("metric", "reach,views"), ("period", "day")))
    assert parse_fields("id,,name,") == [Field("id"), Field("name")]


@pytest.mark.parametrize("text, position, expected, found", [
    # the API's own answer for this one (node-facebook/facebook-node-sdk#123): code 2500, 0-based index
    ("likes.limit(1000){id},comments.limit(1000){id}{from},sharedposts{id}", 46, "end of string", '"{"'),
    ("id,children{id,media_type", 25, '"}"', "end of string"),
    ("id}", 2, "end of string", '"}"'),
    ("id,na-me", 5, "end of string", '"-"'),
    ("id,children{id;x}", 14, '"}"', '";"'),
    ("id,children.limit(5", 19, '")"', "end of string"),
])
def test_syntax_errors_name_the_character(text, position, expected, found):
    with pytest.raises(FieldsSyntaxError) as caught:
        parse_fields(text)
    message = f'Syntax error "Expected {expected} instead of {found}." at character {position}: {text}'
    assert str(caught.value) == message


def test_nesting_deeper_than_the_limit_is_a_syntax_error_not_a_crash():
    deep = "a{" * 32 + "b" + "}" * 32
    assert parse_fields(deep)[0].name == "a"
    with pytest.raises(FieldsSyntaxError) as caught:
        parse_fields("a{" * 10_000 + "b" + "}" * 10_000)
    assert caught.value.position == 2 * 32 + 1


def test_a_syntax_error_is_the_api_code_2500_answer():
    account = WORLD.account(0)
    status, body = call(f"{account.id}/media", fields="id,children{id")
    assert (status, error_of(body)) == (400, {
        "message": 'Syntax error "Expected "}" instead of end of string." at character 14: id,children{id',
        "type": "OAuthException", "code": 2500})


def test_unknown_fields_are_named_with_their_node_type_at_any_depth():
    album = find(lambda m: m.children)
    for path, fields, field, node in [
        (WORLD.account(album.account).id, "id,colour", "colour", "IGUser"),
        (f"{WORLD.account(album.account).id}/media", "id,children{id,colour}", "colour", "IGMedia"),
        (f"{WORLD.account(album.account).id}/media", "id,caption{id}", "caption", "IGMedia"),
        (album.id, "id,owner{id,colour}", "colour", "IGUser"),
        (f"{album.id}/children", "id,caption", "caption", "IGMedia"),       # children have no caption
        (WORLD.child(album, 0).id, "like_count", "like_count", "IGMedia"),
    ]:
        status, body = call(path, fields=fields)
        assert (status, error_of(body)) == (400, {
            "message": f"(#100) Tried accessing nonexisting field ({field}) on node type ({node})",
            "type": "OAuthException", "code": 100}), (path, fields)


# --- the objects -----------------------------------------------------------------------------

def test_account_node_answers_its_fields_and_omits_the_absent_ones():
    seen_without = set()
    for index in range(WORLD.spec.accounts):
        account = WORLD.account(index)
        status, node = call(account.id, fields=ACCOUNT_FIELDS)
        assert status == 200
        expected = {"id": account.id, "username": account.username, "name": account.name,
                    "followers_count": account.followers, "follows_count": account.follows,
                    "media_count": account.media_count, "biography": account.biography, "website": account.website,
                    "profile_picture_url": account.profile_picture_url}
        assert node == {k: v for k, v in expected.items() if v is not None}
        seen_without |= {k for k, v in expected.items() if v is None}
    assert seen_without == {"biography", "website"}, "the world has no account without one of them"


def test_media_pages_expand_children_and_omit_what_the_api_omits():
    account = max((WORLD.account(i) for i in range(WORLD.spec.accounts)), key=lambda a: a.media_count)
    status, page = call(f"{account.id}/media", fields=PAGE_FIELDS, limit="100")
    assert status == 200 and len(page["data"]) == min(100, account.media_count)
    absent = set()
    for n, item in enumerate(page["data"]):
        media = WORLD.media(account, n)
        d = WORLD.details(media)
        expected = {"id": media.id, "media_type": media.media_type, "media_product_type": media.media_product_type,
                    "permalink": d.permalink, "shortcode": d.shortcode, "caption": d.caption,
                    "like_count": None if d.likes_hidden else d.like_count, "comments_count": d.comments_count,
                    "is_comment_enabled": d.is_comment_enabled, "media_url": d.media_url,
                    "thumbnail_url": d.thumbnail_url}
        assert {k: item.get(k) for k in expected} == expected
        assert set(item) == {k for k, v in expected.items() if v is not None} | {"timestamp"} | \
            ({"children"} if media.children else set())
        absent |= {k for k, v in expected.items() if v is None}
        if media.children:
            assert item["children"] == {"data": [{"id": c.id, "media_type": c.media_type}
                                                 for c in WORLD.children_of(media)]}
        assert (item.get("thumbnail_url") is not None) == (media.media_type == "VIDEO")
    assert {"caption", "like_count", "media_url", "thumbnail_url"} <= absent


def test_a_hidden_like_count_is_omitted_only_where_the_media_is_listed():
    hidden = find(lambda m: WORLD.details(m).likes_hidden)
    _, page = call(f"{WORLD.account(hidden.account).id}/media", fields="id,like_count", limit="100")
    listed = next(item for item in page["data"] if item["id"] == hidden.id)
    assert listed == {"id": hidden.id}
    status, node = call(hidden.id, fields="id,like_count")
    assert (status, node) == (200, {"id": hidden.id, "like_count": WORLD.details(hidden).like_count})


def test_children_are_media_nodes_and_the_children_edge_honours_fields():
    album = find(lambda m: m.children >= 3 and any(c.media_type == "VIDEO" for c in WORLD.children_of(m)))
    child = next(c for c in WORLD.children_of(album) if c.media_type == "VIDEO")
    status, node = call(child.id, fields="id,media_type,media_url,thumbnail_url,permalink,timestamp")
    assert status == 200
    assert node == {"id": child.id, "media_type": "VIDEO", "media_url": WORLD.details(child).media_url,
                    "thumbnail_url": WORLD.details(child).thumbnail_url, "timestamp": page_stamp(album)}
    status, page = call(f"{album.id}/children", fields="id,media_type")
    assert [c["id"] for c in page["data"]] == [c.id for c in WORLD.children_of(album)]
    status, node = call(album.id, fields="children.limit(2){media_type}")
    assert status == 200
    assert node["children"]["data"] == [{"media_type": c.media_type, "id": c.id} for c in WORLD.children_of(album)[:2]]
    assert node["children"]["paging"]["next"].startswith(f"http://sim/v25.0/{album.id}/children?")
    status, node = call(album.id, fields="children")
    assert node == {"children": {"data": [{"id": c.id} for c in WORLD.children_of(album)]}, "id": album.id}
    single = find(lambda m: m.media_type == "IMAGE")
    assert call(single.id, fields="id,children{id}") == (200, {"id": single.id})


def page_stamp(media):
    _, node = call(media.id, fields="timestamp")
    return node["timestamp"]


def test_stories_answer_their_fields_without_caption_or_likes():
    account = next(WORLD.account(i) for i in range(WORLD.spec.accounts) if WORLD.account(i).stories)
    status, page = call(f"{account.id}/stories", fields=STORY_FIELDS + ",like_count,comments_count")
    assert status == 200 and [s["id"] for s in page["data"]] == [s.id for s in WORLD.live_stories(account)]
    for item, story in zip(page["data"], WORLD.live_stories(account), strict=True):
        d = WORLD.details(story)
        assert item["media_product_type"] == "STORY" and item["permalink"] == d.permalink
        assert item["shortcode"] == d.shortcode and item.get("media_url") == d.media_url
        assert not {"caption", "like_count", "comments_count"} & set(item)


def test_the_account_node_expands_its_media_and_owner_links_back():
    account = max((WORLD.account(i) for i in range(WORLD.spec.accounts)), key=lambda a: a.media_count)
    status, node = call(account.id, fields="username,media.limit(3){id,caption,owner{username}}")
    assert status == 200 and node["username"] == account.username
    assert [m["id"] for m in node["media"]["data"]] == [WORLD.media(account, n).id for n in range(3)]
    assert all(m["owner"] == {"username": account.username, "id": account.id} for m in node["media"]["data"])
    assert "next" in node["media"]["paging"]


# --- a media that refuses the children field (hostile kind refuse_children) --------------------

async def test_a_page_holding_an_album_that_refuses_children_answers_the_error_only_with_children():
    simulator = Simulator(WORLD, SimulatorSettings(hostile=("refuse_children",)))
    refusing = find(lambda m: m.ordinal < 100 and WORLD.refuses_children(m))
    account = WORLD.account(refusing.account)
    token = {"Authorization": f"Bearer {WORLD.owner(account.index).token}"}
    query = {"fields": PAGE_FIELDS, "limit": "100"}

    async def get(path, query):
        reply = await simulator.serve("GET", f"/v25.0/{path}", query, token)
        return reply.status, orjson.loads(reply.body)

    status, body = await get(f"{account.id}/media", query)
    assert (status, error_of(body)) == (400, {
        "message": "(#100) Tried accessing nonexisting field (children) on node type (IGMedia)",
        "type": "OAuthException", "code": 100})
    without = {**query, "fields": PAGE_FIELDS.replace(",children{id,media_type}", "")}
    status, page = await get(f"{account.id}/media", without)
    assert status == 200 and refusing.id in [m["id"] for m in page["data"]]
    assert (await get(refusing.id, {"fields": "id,children{id}"}))[0] == 400
    assert await get(refusing.id, {"fields": "id,caption"}) == (200, {"id": refusing.id, **_caption(refusing)})
    first_pages = {i: [WORLD.media(WORLD.account(i), n) for n in range(min(100, WORLD.listed_media(WORLD.account(i))))]
                   for i in range(WORLD.spec.accounts)}
    clean = next(WORLD.account(i) for i, page in first_pages.items()
                 if any(m.children for m in page) and not any(WORLD.refuses_children(m) for m in page))
    token = {"Authorization": f"Bearer {WORLD.owner(clean.index).token}"}
    status, page = await get(f"{clean.id}/media", query)
    assert status == 200 and any("children" in m for m in page["data"])
    assert simulator.hostile.hits["refuse_children"] == {f"/v25.0/{account.id}/media", f"/v25.0/{refusing.id}"}


def _caption(media):
    caption = WORLD.details(media).caption
    return {} if caption is None else {"caption": caption}
