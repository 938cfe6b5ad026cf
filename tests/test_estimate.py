"""The backfill estimate: exact for account insights, and the least time the rolling window allows."""

import pytest

from harvester import Harvester
from harvester.plan.estimate import estimate, window_bound
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import NOW, world_config


def test_window_bound_is_full_window_bursts():
    assert window_bound(0, 200, 3600) == 0
    assert window_bound(200, 200, 3600) == 0
    assert window_bound(201, 200, 3600) == 3600
    assert window_bound(1000, 200, 3600) == 4 * 3600


@pytest.mark.slow
@pytest.mark.looptime
@pytest.mark.parametrize("totals", ["day", "window"])
async def test_account_calls_are_what_a_harvest_makes(tmp_path, totals):
    world = World(WorldSpec(now=NOW, seed=4, accounts=5, media_per_account=5, small_accounts=0.0,
                            stories_per_account=0))
    config, env = world_config(world, tmp_path / "out", days=40, window={"totals": totals})
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        assert (await harvester.run()).exit_code == 0
    served = simulator.counters.endpoints
    made = served["account"] + served["insights/account"] + served["media"] + served["stories"]
    guess = estimate(config, now=world.now)
    assert sum(t.account_calls for t in guess.tokens) == made
    assert guess.calls_per_media == {"FEED": 3, "REELS": 2, "STORY": 4}     # the last: the share to Facebook


@pytest.mark.slow
@pytest.mark.looptime
async def test_media_calls_come_from_the_media_the_state_saw_or_a_stated_assumption(tmp_path):
    from harvester.state.store import StateStore
    world = World(WorldSpec(now=NOW, seed=4, accounts=5, media_per_account=30, small_accounts=0.0,
                            stories_per_account=0, converted_share=0.0))   # every media answers: all its calls
    config, env = world_config(world, tmp_path / "out", days=40)
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        assert (await harvester.run()).exit_code == 0
    served = simulator.counters.endpoints
    state = StateStore(config.state.path)
    known = state.media_counts()
    state.close()
    guess = estimate(config, now=world.now, media=known)
    assert sum(t.media for t in guess.tokens) == harvester.stats.get("discovered/media") > 0
    assert sum(t.media_calls for t in guess.tokens) == served["insights/media"]
    assert all(t.media_assumed == 0 for t in guess.tokens)

    blind = estimate(config, now=world.now, media_per_account=7)        # a state that saw nothing
    assert sum(t.media for t in blind.tokens) == 7 * len(config.accounts)
    assert sum(t.media_calls for t in blind.tokens) == 7 * len(config.accounts) * guess.calls_per_media["FEED"]
    assert sum(t.media_assumed for t in blind.tokens) == len(config.accounts)
