"""``harvester status`` says what a run did in words (the object records apart from the units) and
what is left to do: the units not finished of a stopped run, nothing once it finished."""

from __future__ import annotations

import re

import msgspec
import pytest

from harvester import Harvester
from harvester.commands.status import render
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.state.store import StateStore

from support import stopped_after, world_config

pytestmark = pytest.mark.looptime


def status_of(path) -> str:
    state = StateStore(path)
    try:
        return render(state)
    finally:
        state.close()


async def test_status_says_what_a_stopped_run_has_left_and_that_a_finished_one_has_nothing(tmp_path):
    world = World(WorldSpec(seed=16, accounts=3, media_per_account=20, now=1_796_000_000.0))
    config, env = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_seconds=0.5,
                                                                             commit_units=5))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9, latency_ms=200))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as first:
        stopped = await stopped_after(first, 30)
    shown = status_of(config.state.path)
    latest = re.search(r"latest run \S+ \(stopped\): ([\d,]+) units done(?:, ([\d,]+) skipped)?; [\d,]+ media and "
                       r"account records written", shown)
    assert latest, shown
    left = re.search(r"left to do: at least ([\d,]+) units of the ([\d,]+) planned so far", shown)
    assert left, shown
    finished = sum(int(n.replace(",", "")) for n in latest.groups() if n)
    assert int(left.group(2)) == stopped.units["planned"] and int(left.group(1)) == int(left.group(2)) - finished > 0
    assert " object " not in shown

    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as second:
        assert (await second.run()).exit_code == 0
    shown = status_of(config.state.path)
    assert re.search(r"latest run \S+ \(finished\): [\d,]+ units done[^;]*; ", shown), shown
    assert "left to do: nothing in this run's window" in shown and "unfinished" not in shown
