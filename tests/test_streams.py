"""The object streams: accounts and media records from the calls the harvest makes anyway."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import pytest

from harvester import Harvester
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.truth import expected_media
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore

from support import NOW, Recording, assert_streams_match, world_config

pytestmark = pytest.mark.looptime


def _kind(path: str) -> str:
    """What a call asked: the account node, a page of an edge, or insights."""
    parts = path.split("/")
    return parts[1] if len(parts) > 1 else "node"


async def test_three_streams_equal_the_truth_and_cost_no_extra_call(tmp_path):
    """Every account and media record equals the simulator's; the calls are the ones insights
    need anyway: one account node per account, the edges' pages, and the insights calls."""
    world = World(WorldSpec(now=NOW, seed=21, accounts=4, media_per_account=230))
    config, env = world_config(world, tmp_path / "out")
    transport = Recording(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    assert_streams_match(tmp_path / "out", world, config)
    kinds = Counter(_kind(path) for path, _, _ in transport.calls)
    listed = [world.listed_media(world.account_by_id(a.id)) for a in config.accounts]
    insights = kinds.pop("insights")
    assert kinds == {"node": 4, "media": sum(max(1, math.ceil(n / 100)) for n in listed), "stories": 4}
    assert harvester.stats.get("units/done") <= insights <= harvester.stats.get("units/planned")
    media = list(manifest.current_records(tmp_path / "out", "media"))
    albums = [m for m in media if m["media_type"] == "CAROUSEL_ALBUM"]
    assert albums and all(len(m["children_ids"]) == len(m["children_types"]) > 0 for m in albums)
    assert any(m["caption"] is None for m in media) and any(m["like_count"] is None for m in media)


async def test_lifetime_history_keeps_a_value_per_day_observed(tmp_path):
    """Off: the latest run's lifetime value replaces the last one. On: each UTC day a harvest sees
    a media adds its value under ``observed_on``, so a reach curve can be drawn."""
    world = World(WorldSpec(now=NOW, seed=23, accounts=2, media_per_account=20))
    for history, out in ((False, "plain"), (True, "history")):
        config, env = world_config(world, tmp_path / out)
        config = msgspec.structs.replace(config, refresh=msgspec.structs.replace(config.refresh, enabled=False),
                                         output=msgspec.structs.replace(config.output, lifetime_history=history))
        for day in range(2):
            state = StateStore(config.state.path)
            async with Harvester.pinned(config, tokens=env, transport=Recording(Simulator(world)), state=state,
                                 now=world.now + day * 86400) as harvester:
                assert (await harvester.run()).exit_code == 0
            state.close()
        lifetime = [r for r in manifest.current_records(tmp_path / out)
                    if r["object_type"] == "media" and r["metric"] == "reach" and not r["dimension_keys"]
                    and r["media_product_type"] != "STORY"]   # stories live a day: seen once
        per_media = Counter(r["object_id"] for r in lifetime)
        if history:
            assert set(per_media.values()) == {2}
            days = {r["observed_on"] for r in lifetime}
            assert len(days) == 2 and all(d and len(d) == 10 for d in days)
        else:
            assert set(per_media.values()) == {1} and {r["observed_on"] for r in lifetime} == {None}


async def test_a_resumed_run_writes_each_object_record_once(tmp_path):
    """Object records are checkpointed like units: the attempt after a stop writes only what the
    first did not commit, and the run's output holds each media and account once."""
    world = World(WorldSpec(now=NOW, seed=24, accounts=3, media_per_account=150))
    config, env = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_units=10))
    state = StateStore(config.state.path)
    transport = Recording(Simulator(world))

    class StopAfter(Recording):
        """Stops the harvest a few calls after its first page of /media."""

        async def get(self, url, headers):
            pages = [n for n, (path, _, _) in enumerate(self.calls) if path.endswith("/media")]
            if pages and len(self.calls) == pages[0] + 5:
                harvester.stop()
            return await super().get(url, headers)

    async with Harvester.pinned(config, tokens=env, transport=StopAfter(Simulator(world)), state=state,
                         now=world.now) as harvester:
        await harvester.run()
    first = harvester.stats.get("records/media")
    assert 0 < first < len(expected_media(world))
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        summary = await harvester.run()
    state.close()
    assert summary.exit_code == 0 and harvester.resumed
    assert harvester.stats.get("records/media") == len(expected_media(world)) - first
    assert_streams_match(tmp_path / "out", world, config)
