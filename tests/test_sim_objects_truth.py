"""Ground truth of the object streams (truth.expected_media, truth.expected_accounts) equals what
the simulator serves: the edges walked page by page with the harvest's own field lists, each
item made a record the way MediaRecord/AccountRecord hold it, compared whole."""

from datetime import date
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson
import pytest

from harvester.records import AccountRecord, MediaRecord, natural_key
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.truth import expected_accounts, expected_media
from harvester.simulator.world import World, WorldSpec

from support import NOW

SPEC = WorldSpec(seed=5, accounts=10, media_per_account=120, now=NOW, revoked_tokens=1)
ACCOUNT_FIELDS = "id,username,name,followers_count,follows_count,media_count,biography,website,profile_picture_url"
MEDIA_FIELDS = ("id,media_type,media_product_type,timestamp,permalink,shortcode,caption,like_count,comments_count,"
                "is_comment_enabled,media_url,thumbnail_url,children{id,media_type}")
STORY_FIELDS = "id,media_type,media_product_type,timestamp,permalink,shortcode,caption,media_url,thumbnail_url"
RUN_FIELDS = {"run_id", "harvested_at"}
MEDIA_RECORD_FIELDS = [f.name for f in msgspec.structs.fields(MediaRecord) if f.name not in RUN_FIELDS]
ACCOUNT_RECORD_FIELDS = [f.name for f in msgspec.structs.fields(AccountRecord)
                         if f.name not in RUN_FIELDS | {"account_id", "day"}]


class Walk:
    """The harvest's discovery calls, made on the simulator's pipeline (tokens, hostile kinds)."""

    def __init__(self, world, hostile=()):
        self.world, self.simulator, self.retries = world, Simulator(world, SimulatorSettings(hostile=hostile)), 0

    async def get(self, token, path, query):
        reply = await self.simulator.serve("GET", f"/v25.0/{path}", query, {"Authorization": f"Bearer {token}"})
        return reply.status, orjson.loads(reply.body)

    async def pages(self, token, path, fields):
        """Every page of an edge; a page refusing ``children`` asked again without it."""
        query = {"fields": fields, "limit": "100"}
        while True:
            status, page = await self.get(token, path, query)
            refused = status == 400 and "(children)" in page["error"]["message"]
            if refused:
                self.retries += 1
                status, page = await self.get(token, path, {**query, "fields": fields.replace(
                    ",children{id,media_type}", "")})
            assert status == 200, page
            yield page["data"], refused
            following = page.get("paging", {}).get("next")
            if not following:
                return
            query = {k: v for k, v in parse_qsl(urlsplit(following).query) if k != "access_token"}
            query["fields"] = fields

    async def harvest(self, accounts=None):
        tokens = {a: t.token for t in self.world.tokens if not t.revoked for a in t.account_ids}
        media, people = {}, {}
        for account in accounts or [a for t in self.world.tokens for a in t.account_ids]:
            if account not in tokens:
                continue
            status, node = await self.get(tokens[account], account, {"fields": ACCOUNT_FIELDS})
            assert status == 200
            people[(account, "2026-09-21")] = account_record(node)
            for edge, fields in (("media", MEDIA_FIELDS), ("stories", STORY_FIELDS)):
                async for items, refused in self.pages(tokens[account], f"{account}/{edge}", fields):
                    for item in items:
                        media.setdefault((item["id"],), media_record(item, account, refused))
        return media, people


def media_record(item, account, refused):
    kids = item.get("children", {}).get("data", [])
    refused = refused and item.get("media_type") == "CAROUSEL_ALBUM"    # only an album has children to hide
    record = {name: item.get(name) for name in MEDIA_RECORD_FIELDS}
    record.update(media_id=item["id"], account_id=account,
                  children_ids=None if refused else tuple(k["id"] for k in kids),
                  children_types=None if refused else tuple(k["media_type"] for k in kids))
    assert natural_key(MediaRecord(**record)) == (item["id"],)
    return record


def account_record(node):
    return {"account_id": node["id"], "day": "2026-09-21", **{name: node.get(name) for name in ACCOUNT_RECORD_FIELDS}}


@pytest.mark.parametrize("hostile", [(), ("refuse_children", "duplicate_across_accounts")])
async def test_truth_of_media_and_accounts_equals_the_simulators_answers(hostile):
    world = World(SPEC)
    walk = Walk(world, hostile)
    media, people = await walk.harvest()
    assert media == expected_media(world, hostile=hostile)
    assert people == expected_accounts(world, date(2026, 9, 21))
    records = list(media.values())
    assert {k for r in records for k, v in r.items() if v is None} >= {"caption", "like_count", "media_url",
                                                                      "thumbnail_url", "comments_count"}
    assert any(r["children_ids"] for r in records) and any(r["media_product_type"] == "STORY" for r in records)
    assert {k for r in people.values() for k, v in r.items() if v is None} == {"biography", "website"}
    if hostile:
        assert walk.retries > 0 and any(r["children_ids"] is None for r in records)
        owners = {(r["media_id"], r["account_id"]) for r in records}
        assert any(world.media_by_id(m).account != int(a) - 17841400000000000 for m, a in owners), \
            "no media owned by the first account that lists it"
    else:
        assert walk.retries == 0 and all(r["children_ids"] is not None for r in records)


async def test_each_media_once_owned_by_the_first_account_in_config_order():
    world = World(SPEC)
    live = list(world.accounts_of_live_tokens())
    order = [a.id for a in reversed(live)]
    hostile = ("duplicate_across_accounts",)
    media, _ = await Walk(world, hostile).harvest(order)
    truth = expected_media(world, accounts=order, hostile=hostile)
    assert media == truth
    assert expected_accounts(world, date(2026, 9, 21), accounts=order[:2]).keys() == \
        {(a, "2026-09-21") for a in order[:2]}
    assert truth.keys() == expected_media(world, hostile=hostile).keys()
    assert truth != expected_media(world, hostile=hostile)       # the owner of a collaboration post changed
    revoked = next(t for t in world.tokens if t.revoked)
    assert not {r["account_id"] for r in truth.values()} & set(revoked.account_ids)
