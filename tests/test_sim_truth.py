"""Ground truth equals what the API serves, harvested call by call as the planner plans them and
flattened by the flattener: same keys, same values, nothing twice."""

from datetime import timedelta

import pytest

from harvester import catalog
from harvester.days import from_unix
from harvester.simulator.truth import expected_records, iter_expected
from harvester.simulator.world import World, WorldSpec

from support import SKIPPED, call_by_call

NOW = 1_790_000_000.0
SPEC = WorldSpec(seed=5, accounts=8, media_per_account=10, now=NOW, revoked_tokens=1, converted_share=0.6)


@pytest.mark.parametrize("days, totals", [(3, "day"), (40, "window")])
def test_truth_equals_a_harvest_of_the_api(days, totals):
    world = World(SPEC)
    today = from_unix(int(NOW))
    since, until = today - timedelta(days=days), today
    found, skipped = call_by_call(world, since, until, totals)
    truth = expected_records(world, since, until, totals=totals)
    assert found.keys() == truth.keys()
    assert found == truth
    assert set(skipped) == SKIPPED                 # the world holds every kind of skipped media
    metrics = {key[1] for key in truth}
    assert metrics >= {m.name for m in catalog.ACCOUNT_METRICS} | {m.name for m in catalog.MEDIA_METRICS}


def test_conditional_media_metrics_are_in_the_truth_exactly_where_their_condition_holds():
    """facebook_views (and a reel's crossposted_views) for media shared to Facebook; total_likes,
    total_comments, total_views and link_clicks for media of a Facebook Login token; every other
    metric of every media whatever its conditions."""
    world = World(SPEC)
    today = from_unix(int(NOW))
    truth = expected_records(world, today - timedelta(days=1), today)
    by_media: dict[str, set[str]] = {}
    for key in truth:
        if key[0].startswith(("1790", "1791")) and not key[5]:
            by_media.setdefault(key[0], set()).add(key[1])
    conditional = {m.name: m.condition for m in catalog.MEDIA_METRICS if m.condition}
    seen = set()
    for media_id, metrics in by_media.items():
        media = world.media_by_id(media_id)
        login = world.owner(media.account).kind
        for m in catalog.metrics_for_product(media.product_type):
            holds = m.condition is None or (world.shared_to_facebook(media) if m.condition == "shared_to_facebook"
                                            else login == "facebook")
            assert (m.name in metrics) == holds, (media_id, m.name, login)
            seen.add((m.name, holds))
    assert {(name, holds) for name in conditional for holds in (True, False)} <= seen     # each way, each metric


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
