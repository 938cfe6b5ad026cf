"""Media metrics served on a condition (issue 24.3): ``facebook_views`` and ``crossposted_views``
only for media shared to Facebook, asked in a call of their own; ``total_likes``,
``total_comments``, ``total_views`` and ``link_clicks`` only with Facebook Login, asked where
the configuration says the token is one. Worlds with both logins, some media shared (seeded)."""

from __future__ import annotations

from urllib.parse import parse_qs

import msgspec
import pytest

from harvester import Harvester, catalog
from harvester.days import DAY
from harvester.plan.unshared import REPROBE_SECONDS
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.state.store import StateStore

from support import NOW, Recording, assert_matches_truth, run_records, world_config

SHARED = {m.name for m in catalog.MEDIA_METRICS if m.condition == "shared_to_facebook"}
FACEBOOK_LOGIN = {m.name for m in catalog.MEDIA_METRICS if m.condition == "facebook_login"}
SPEC = WorldSpec(seed=24, accounts=6, media_per_account=40, now=NOW)


async def harvest(tmp_path, world, *, state=None, out="out", **tables):
    tables.setdefault("refresh", {"enabled": False})
    config, env = world_config(world, tmp_path / out, days=2, **tables)
    transport = Recording(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    return summary, run_records(tmp_path / out, harvester.run_id), transport.calls, config


def metrics_asked(query: str) -> set[str]:
    return set(parse_qs(query).get("metric", [""])[0].split(","))


@pytest.mark.looptime
async def test_conditional_metrics_are_harvested_exactly_where_their_condition_holds(tmp_path):
    """The ground truth exactly: every other metric of every media, the Facebook ones of the media
    shared to Facebook, the Facebook Login ones of the media of Facebook Login tokens."""
    world = World(SPEC)
    assert {t.kind for t in world.tokens} == {"facebook", "instagram"}
    summary, records, calls, config = await harvest(tmp_path, world)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
    media = [r for r in records if r["object_type"] == "media"]
    shared = {r["object_id"] for r in media if r["metric"] == "facebook_views"}
    assert shared and all(world.shared_to_facebook(world.media_by_id(m)) for m in shared)
    assert {r["object_id"] for r in media if r["metric"] == "crossposted_views"} == {
        m for m in shared if world.media_by_id(m).media_product_type == "REELS"}
    logins = {r["object_id"]: world.owner(world.media_by_id(r["object_id"]).account).kind for r in media}
    assert {logins[r["object_id"]] for r in media if r["metric"] in FACEBOOK_LOGIN} == {"facebook"}
    assert "instagram" in logins.values()
    for path, query, _ in calls:                         # never asked where the login is known not to hold
        if path.endswith("/insights") and metrics_asked(query) & FACEBOOK_LOGIN:
            assert world.owner(world.media_by_id(path.split("/")[0]).account).kind == "facebook"
    assert summary.refused == []                         # a condition that fails is no refusal to learn


@pytest.mark.looptime
async def test_a_media_not_shared_to_facebook_loses_only_its_facebook_metrics_in_a_call_of_their_own(tmp_path):
    """The metrics that need a share to Facebook ride in no other call: each media with insights
    costs one more call, which a media not shared answers -1/2207086 (skipped: nothing to harvest),
    and every other metric of that media is there."""
    world = World(SPEC)
    summary, records, calls, config = await harvest(tmp_path, world)
    shared_calls = [(path, query, status) for path, query, status in calls
                    if path.endswith("/insights") and metrics_asked(query) & SHARED]
    assert all(metrics_asked(query) <= SHARED for _, query, _ in shared_calls)       # apart, always
    refused = {path.split("/")[0] for path, _, status in shared_calls if status == 400}
    assert refused and all(not world.shared_to_facebook(world.media_by_id(m)) for m in refused)
    assert summary.skipped_by_reason["not shared to Facebook (-1/2207086)"] == len(refused)
    truth = expected_records(world, config.window.since, config.window.until)
    for media_id in refused:                             # the rest of each media not shared: whole
        theirs = {k[1] for k in truth if k[0] == media_id}
        assert theirs and not theirs & SHARED
        assert theirs == {r["metric"] for r in records if r["object_id"] == media_id}

    # What they cost: one call per media whose insights answered, against a harvest without them.
    without = [{"name": m.name, "breakdowns": list(m.breakdowns)} if m.breakdowns else m.name
               for m in catalog.MEDIA_METRICS if m.name not in SHARED]
    _, _, fewer, _ = await harvest(tmp_path / "without", World(SPEC), metrics={"media": without})
    answered = {path.split("/")[0] for path, query, status in calls
                if path.endswith("/insights") and status == 200 and path.startswith("179")
                and not metrics_asked(query) & SHARED and "breakdown" not in query}
    assert len(calls) - len(fewer) == len(shared_calls) == len(answered)


@pytest.mark.looptime
async def test_a_refusal_of_a_metric_that_needs_the_share_is_never_learned_for_the_kind(tmp_path):
    """Refused in the words that name a kind ("does not support the facebook_views metric") for
    most IMAGE posts, facebook_views is still asked of every IMAGE post: the refusals say no more
    than that those posts lack the share, so the posts that have it keep it."""
    from harvester.simulator.drift import Drift, without_refused
    from harvester.state.store import StateStore

    drift = Drift(refuse_some=(("facebook_views", "IMAGE", 0.8),))
    world = World(SPEC)
    config, env = world_config(world, tmp_path / "out", days=2, refresh={"enabled": False})
    state = StateStore(tmp_path / "state.db")
    async with Harvester.pinned(config, tokens=env, state=state, now=world.now,
                                transport=Recording(Simulator(world, SimulatorSettings(drift=drift)))) as harvester:
        summary = await harvester.run()
    records = run_records(tmp_path / "out", harvester.run_id)
    truth = expected_records(world, config.window.since, config.window.until)
    expected = without_refused(truth, world, drift)
    kept = {k[0] for k in expected if k[1] == "facebook_views" and world.media_by_id(k[0]).media_type == "IMAGE"}
    assert kept and len(expected) < len(truth)
    assert_matches_truth(records, expected)
    assert {r.metric for r in summary.refused} == {"facebook_views"}
    assert sum(r.refusals for r in summary.refused) > 3 and all(r.dropped == 0 for r in summary.refused)
    assert state.learned_refusals() == []
    state.close()


def shared_calls(calls) -> dict[str, int]:
    """Media id -> the status of its call of the metrics that need a share to Facebook."""
    return {path.split("/")[0]: status for path, query, status in calls
            if path.endswith("/insights") and metrics_asked(query) & SHARED}


@pytest.mark.looptime
async def test_a_media_not_shared_is_not_asked_again_for_a_week(tmp_path):
    """Run 1 asks every media's call of the metrics that need a share; the state keeps those
    that answered "not shared". Run 2, a day on over the same media, asks none of them (only the
    shared ones, whose views change); a week on, they are asked again (a media may be shared
    later). The ground truth is met by each run."""
    state = StateStore(tmp_path / "state.db")
    summary, records, calls, config = await harvest(tmp_path, World(SPEC), state=state)
    first = shared_calls(calls)
    not_shared = {m for m, status in first.items() if status == 400}
    assert len(not_shared) > 50 and len(first) > len(not_shared)
    assert summary.skipped_by_reason["not shared to Facebook (-1/2207086)"] == len(not_shared)

    world = World(msgspec.structs.replace(SPEC, now=NOW + DAY))
    summary, records, again, config = await harvest(tmp_path, world, state=state, out="again")
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
    second = shared_calls(again)
    assert not set(second) & not_shared and set(second) <= set(first)
    assert all(status == 200 for status in second.values())
    assert "not shared to Facebook (-1/2207086)" not in summary.skipped_by_reason
    assert summary.counters["media/not_shared"] == len(not_shared)
    assert len(calls) - len(again) == len(not_shared)      # 1,061 calls, then 830 (the 231 not shared left out)

    state.not_shared("17999999999999999", "1", NOW - DAY, "r0")     # a media gone since: asked by no run
    world = World(msgspec.structs.replace(SPEC, now=NOW + REPROBE_SECONDS + DAY))
    summary, records, later, config = await harvest(tmp_path, world, state=state, out="later")
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
    third = shared_calls(later)
    assert {m for m, status in third.items() if status == 400} == not_shared and len(later) == len(calls)
    kept = state.db.execute("SELECT COUNT(*), MIN(answered_at) FROM not_shared").fetchone()
    assert kept == (len(not_shared), world.now)     # the week-old answers dropped (the gone media's too)
    state.close()
