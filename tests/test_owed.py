"""Nothing owed is forgotten and a token is one budget: whole harvests against the simulator,
with the answers bent on the way by small transports (each media planned once and paging that
ends are in test_jobs)."""

from __future__ import annotations

import msgspec
import pytest

from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore

from support import NOW, Outage, assert_matches_truth, world_config
from support import harvest_with_state as harvest


def truth(world, config):
    return expected_records(world, config.window.since, config.window.until)


@pytest.mark.slow
@pytest.mark.looptime
async def test_an_outage_mid_run_is_owed_and_the_next_run_gets_everything(tmp_path):
    """The API goes down after 150 calls (every answer an HTML 503): the run gives up what it
    cannot call, exit 3. It comes back: the next run, a new one, asks again what was owed
    (breakdowns of media whose plain call was done among them), exits 0, and the output is the
    ground truth record for record."""
    world = World(WorldSpec(now=NOW, seed=5, accounts=6, media_per_account=25))
    config, env = world_config(world, tmp_path / "out")
    transport = Outage(Simulator(world), after=150)
    first, summary = await harvest(config, env, transport, world)
    assert summary.exit_code == 3 and summary.failed
    state = StateStore(config.state.path)
    owed = state.owed(a.id for a in config.accounts)
    state.close()
    assert owed and any(o.kind == "unit" and "breakdown" in o.body.decode() for o in owed)

    transport.down = False
    second, summary = await harvest(config, env, transport, world)
    assert second.run_id != first.run_id
    assert summary.exit_code == 0, summary.render()
    assert summary.carried_over == {first.run_id: len([o for o in owed if o.kind == "unit"])}
    assert f"carried over from run {first.run_id}" in summary.render()
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth(world, config))
    state = StateStore(config.state.path)
    assert state.owed(a.id for a in config.accounts) == []
    state.close()


@pytest.mark.looptime
async def test_owed_work_the_api_no_longer_keeps_is_reported_once_and_forgotten(tmp_path):
    world = World(WorldSpec(now=NOW, seed=5, accounts=3, media_per_account=10, stories_per_account=4, few_viewers=0))
    config, env = world_config(world, tmp_path / "out")
    transport = Outage(Simulator(world), after=100)
    await harvest(config, env, transport, world)
    state = StateStore(config.state.path)
    stories = [o for o in state.owed(a.id for a in config.accounts) if o.expires_at < world.now + 86400]
    state.close()
    assert stories, "the outage should leave story units owed"
    transport.down = False
    _, summary = await harvest(config, env, transport, world, now=world.now + 86400)
    lost = [o for o in summary.failed if "no longer keeps it" in o.reason]
    assert len(lost) >= len(stories) and summary.exit_code == 3
    _, summary = await harvest(config, env, transport, world, now=world.now + 86400)
    assert not [o for o in summary.failed if "no longer keeps it" in o.reason]


@pytest.mark.looptime
async def test_two_variables_holding_one_token_share_one_budget(tmp_path):
    """Slots are keyed by the token, not the variable: a token named twice gets one slot, and
    a tight limit is never exceeded for it."""
    world = World(WorldSpec(now=NOW, seed=4, accounts=4, media_per_account=3, tokens=1))
    config, env = world_config(world, tmp_path / "out", calls_per_window=40, window_seconds=60)
    token = next(iter(env.values()))
    raw_accounts = list(config.accounts)
    assert len(raw_accounts) == 4
    accounts = tuple(msgspec.structs.replace(a, token_env=f"NAME_{i}") for i, a in enumerate(raw_accounts))
    config = msgspec.structs.replace(config, accounts=accounts)
    env = {f"NAME_{i}": token for i in range(4)}
    simulator = Simulator(world, SimulatorSettings(calls_per_window=40, window_seconds=60))
    harvester, summary = await harvest(config, env, SimulatorTransport(simulator), world)
    assert summary.exit_code == 0, summary.render()
    pacing = harvester.pacing(10**6)
    assert pacing is not None and pacing.tokens == 1
    assert harvester.token_names == {pacing.slots[0].key: "NAME_0, NAME_1, NAME_2, NAME_3"}
    assert simulator.counters.snapshot()["throttled"] == 0
    assert token not in repr(pacing) and token not in repr(harvester.keys)
