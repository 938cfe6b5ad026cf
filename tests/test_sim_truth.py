"""Ground truth equals what the API serves, harvested call by call as the planner plans them and
flattened by the flattener: same keys, same values, nothing twice."""

from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson
import pytest

from harvester import catalog
from harvester.config import Selection, Window
from harvester.days import from_unix, parse_iso
from harvester.graph.flatten import flatten
from harvester.plan import units as plan
from harvester.records import key_of, natural_key
from harvester.simulator.api import GraphApi
from harvester.simulator.truth import expected_records, iter_expected
from harvester.simulator.world import World, WorldSpec

from support import NOW

SPEC = WorldSpec(seed=4, accounts=8, media_per_account=10, now=NOW, revoked_tokens=1, converted_share=0.6)
SKIPPED = {(100, 2108006), (10, None)}


def discover(api, token, account, edge):
    query = {"fields": "id,media_type,media_product_type,timestamp", "limit": "4"}
    while True:
        page = orjson.loads(api.handle(f"/v25.0/{account}/{edge}", query, token, "http://sim").body)
        yield from page["data"]
        following = page.get("paging", {}).get("next")
        if not following:
            return
        query = {k: v for k, v in parse_qsl(urlsplit(following).query) if k != "access_token"}


def harvest(world, since, until, totals="day"):
    """Every unit of the planner for every account of a live token, flattened; skips counted."""
    api, selection, window = GraphApi(world), Selection(), Window(since, until, totals)
    found, skipped = {}, []
    for token in (t for t in world.tokens if not t.revoked):
        for account in token.account_ids:
            node = orjson.loads(api.handle(f"/v25.0/{account}", {"fields": "followers_count"}, token, "http://sim").body)
            units = plan.account_units(account, node["followers_count"], window, selection, world.now)
            for edge in ("media", "stories"):
                for item in discover(api, token, account, edge):
                    product = "STORY" if edge == "stories" else item["media_product_type"]
                    units += plan.media_units(account, item["id"], item["media_type"], product,
                                              parse_iso(item["timestamp"]), selection, world.now)
            for unit in units:
                reply = api.handle(f"/v25.0/{unit.path}", dict(unit.params), token, "http://sim")
                if reply.status != 200:
                    error = orjson.loads(reply.body)["error"]
                    assert (error["code"], error.get("error_subcode")) in SKIPPED, (unit.label, error)
                    skipped.append((error["code"], error.get("error_subcode")))
                    continue
                for record in flatten(reply.body, unit.ctx):
                    key = natural_key(record)
                    assert key not in found
                    assert key_of(msgspec.json.decode(msgspec.json.encode(record))) == key
                    found[key] = record.value
    return found, skipped


@pytest.mark.parametrize("days, totals", [(3, "day"), (40, "window")])
def test_truth_equals_a_harvest_of_the_api(days, totals):
    world = World(SPEC)
    today = from_unix(int(NOW))
    since, until = today - timedelta(days=days), today
    found, skipped = harvest(world, since, until, totals)
    truth = expected_records(world, since, until, totals=totals)
    assert found.keys() == truth.keys()
    assert found == truth
    assert set(skipped) == SKIPPED                 # the world holds both kinds of skipped media
    metrics = {key[1] for key in truth}
    assert metrics >= {m.name for m in catalog.ACCOUNT_METRICS} | {m.name for m in catalog.MEDIA_METRICS}


def test_truth_follows_the_rules_for_small_accounts_and_revoked_tokens():
    world = World(SPEC)
    today = from_unix(int(NOW))
    truth = expected_records(world, today - timedelta(days=2), today)
    revoked = {a for t in world.tokens if t.revoked for a in t.account_ids}
    assert revoked and not revoked & {key[0] for key in truth}
    small = [a for a in world.accounts_of_live_tokens() if a.followers < 100]
    for account in small:
        mine = {key[1] for key in truth if key[0] == account.id}
        assert mine and not mine & {"follows_and_unfollows", "follower_count", "online_followers",
                                    "follower_demographics", "engaged_audience_demographics"}


def test_accounts_restrict_and_the_iterator_agrees():
    world = World(SPEC)
    today = from_unix(int(NOW))
    since, until = today - timedelta(days=1), today
    first = world.tokens[0].account_ids[0]
    only = expected_records(world, since, until, accounts=[first])
    everything = expected_records(world, since, until)
    assert only and all(everything[k] == v for k, v in only.items())
    account_keys = {k for k in only if k[0] == first}
    assert account_keys and len(account_keys) < len(only)      # the rest are its media
    assert dict(iter_expected(world, since, until)) == everything


def test_demographic_keys_carry_the_timeframe():
    world = World(SPEC)
    today = from_unix(int(NOW))
    truth = expected_records(world, today - timedelta(days=1), today, timeframes=("this_week", "this_month"),
                             demographic_breakdowns=(("age", "gender"),))
    demographic = [k for k in truth if k[1] == "follower_demographics"]
    assert demographic
    assert {k[3] for k in demographic} == {"this_week", "this_month"}
    assert all(k[4] == ("timeframe", "age", "gender") and k[5][0] == k[3].upper() for k in demographic)
