"""Settled days are not asked again (issue 24.5): an account call answered by a run at least
``[window] settle_days`` after its days ended is final; a later run on the same state leaves it
out, and ``harvester run --refresh`` (``Harvester(refresh=True)``) asks it again."""

from __future__ import annotations

import pytest

from harvester import Harvester
from harvester.days import DAY
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore
from harvester.summary import UNITS_SETTLED

from support import assert_matches_truth, world_config

NOW = 1_793_000_000.0          # 2026-10-26T07:33:20Z


async def harvest(tmp_path, world, state, *, refresh=False, **window):
    config, env = world_config(world, tmp_path / "out", days=40, window=window)
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state, now=world.now,
                         refresh=refresh) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    return config, harvester, simulator.counters.snapshot()["endpoints"].get("insights/account", 0)


@pytest.mark.looptime
async def test_a_second_run_asks_only_the_days_inside_the_settle_horizon(tmp_path):
    world = World(WorldSpec(seed=25, accounts=4, media_per_account=5, now=NOW))
    state = StateStore(tmp_path / "state.db")
    config, first, calls = await harvest(tmp_path, world, state)
    assert first.stats.get(UNITS_SETTLED) == 0 and calls > 400

    _, second, again = await harvest(tmp_path, world, state)
    settled = second.stats.get(UNITS_SETTLED)
    assert again + settled == calls                            # each call asked, or left out as settled
    assert 0 < again <= calls * 6 / 40, (again, calls)          # the last days (and lifetime calls), not 40
    # what the output holds is still the whole window, exactly
    truth = expected_records(world, config.window.since, config.window.until)
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth)

    _, third, everything = await harvest(tmp_path, world, state, refresh=True)
    assert everything == calls and third.stats.get(UNITS_SETTLED) == 0
    state.close()


@pytest.mark.looptime
async def test_settle_days_is_the_horizon_and_a_later_run_asks_what_was_not_yet_settled(tmp_path):
    """With settle_days = 10 more of the window is asked again; a day first answered while it was
    recent is asked again by a run once it has settled, and then no more."""
    state = StateStore(tmp_path / "state.db")
    world = World(WorldSpec(seed=25, accounts=2, media_per_account=3, now=NOW))
    _, _, calls = await harvest(tmp_path, world, state, settle_days=10)
    _, second, again3 = await harvest(tmp_path, world, state, settle_days=10)
    assert again3 > 0 and second.stats.get(UNITS_SETTLED) + again3 == calls
    # Eleven days on, the days that were recent then have settled: asked once more, then never.
    later = World(WorldSpec(seed=25, accounts=2, media_per_account=3, now=NOW + 11 * DAY))
    _, third, after = await harvest(tmp_path, later, state, settle_days=10, since="2026-09-16", until="2026-10-26")
    _, fourth, last = await harvest(tmp_path, later, state, settle_days=10, since="2026-09-16", until="2026-10-26")
    assert third.stats.get(UNITS_SETTLED) > second.stats.get(UNITS_SETTLED) - 5     # the old ones stay settled
    assert 0 < last < after                                  # what settled since is asked no more
    assert fourth.stats.get(UNITS_SETTLED) + last == third.stats.get(UNITS_SETTLED) + after
    state.close()
