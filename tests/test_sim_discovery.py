"""The simulator's discovery nodes as a client of the API reads them: ``/me/accounts`` with nested
field expansion over every page, and Instagram Login's ``/me?fields=user_id,username``."""

from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from harvester.simulator.pipeline import Simulator
from harvester.simulator.world import World, WorldSpec

from support import NOW

WORLD = World(WorldSpec(seed=11, accounts=12, media_per_account=5, now=NOW, tokens=3))
FACEBOOK = next(t for t in WORLD.tokens if t.kind == "facebook" and len(t.account_ids) > 2)
INSTAGRAM = next(t for t in WORLD.tokens if t.kind == "instagram")


async def get(sim, path, token, **params):
    reply = await sim.serve("GET", path, {"access_token": token.token, **params}, {})
    return reply.status, orjson.loads(reply.body)


async def every_page(sim, token, **params):
    """Follow ``paging.next`` from the first page of /me/accounts; each page's data in order."""
    status, body = await get(sim, "/v25.0/me/accounts", token, **params)
    assert status == 200, body
    pages = [body["data"]]
    while "next" in body.get("paging", {}):
        url = urlsplit(body["paging"]["next"])
        query = dict(parse_qsl(url.query))
        status, body = await get(sim, url.path, token, **{k: v for k, v in query.items() if k != "access_token"})
        assert status == 200, body
        pages.append(body["data"])
    return pages


async def test_me_accounts_links_the_instagram_account_on_every_page():
    sim = Simulator(WORLD)
    pages = await every_page(sim, FACEBOOK, fields="id,name,instagram_business_account", limit="1")
    assert len(pages) == len(FACEBOOK.account_ids)
    accounts = [WORLD.account_by_id(a) for a in FACEBOOK.account_ids]
    assert [entry for page in pages for entry in page] == [
        {"id": a.page_id, "name": f"Simulated Page {a.index}", "instagram_business_account": {"id": a.id}}
        for a in accounts]


async def test_me_accounts_expands_the_instagram_account_fields():
    sim = Simulator(WORLD)
    pages = await every_page(sim, FACEBOOK, fields="instagram_business_account{username,followers_count}", limit="2")
    accounts = [WORLD.account_by_id(a) for a in FACEBOOK.account_ids]
    assert [entry for page in pages for entry in page] == [
        {"instagram_business_account": {"username": a.username, "followers_count": a.followers, "id": a.id},
         "id": a.page_id} for a in accounts]
    # without fields: the page's name and id, as before
    status, body = await get(sim, "/v25.0/me/accounts", FACEBOOK)
    assert status == 200 and body["data"][0] == {"name": f"Simulated Page {accounts[0].index}",
                                                 "id": accounts[0].page_id}


@pytest.mark.parametrize(("fields", "message"), [
    ("id,colour", "(#100) Tried accessing nonexisting field (colour) on node type (Page)"),
    ("instagram_business_account{id,colour}", "(#100) Tried accessing nonexisting field (colour) on node type "
                                              "(IGUser)"),
])
async def test_me_accounts_refuses_unknown_fields(fields, message):
    status, body = await get(Simulator(WORLD), "/v25.0/me/accounts", FACEBOOK, fields=fields)
    assert status == 400 and body["error"]["code"] == 100 and body["error"]["message"] == message


async def test_me_accounts_refuses_broken_syntax_as_every_node_does():
    status, body = await get(Simulator(WORLD), "/v25.0/me/accounts", FACEBOOK, fields="instagram_business_account{id")
    assert status == 400 and body["error"]["code"] == 2500 and "Syntax error" in body["error"]["message"]


async def test_a_page_node_expands_its_instagram_account_too():
    account = WORLD.account_by_id(FACEBOOK.account_ids[1])
    status, body = await get(Simulator(WORLD), f"/v25.0/{account.page_id}", FACEBOOK,
                             fields="instagram_business_account{username}")
    assert (status, body) == (200, {"instagram_business_account": {"username": account.username, "id": account.id},
                                    "id": account.page_id})


async def test_instagram_login_me_answers_user_id_and_username():
    sim = Simulator(WORLD)
    account = WORLD.account_by_id(INSTAGRAM.account_ids[0])
    status, body = await get(sim, "/v25.0/me", INSTAGRAM, fields="user_id,username")
    assert (status, body) == (200, {"user_id": account.id, "username": account.username, "id": account.id})
    status, body = await get(sim, "/me", INSTAGRAM, fields="id")
    assert (status, body) == (200, {"id": account.id})
    # a Facebook Login token's IG user node has no user_id
    status, body = await get(sim, f"/v25.0/{FACEBOOK.account_ids[0]}", FACEBOOK, fields="user_id")
    assert status == 400 and "nonexisting field (user_id)" in body["error"]["message"]
