"""The progress display reads counters and slots; it never touches the work."""

import io

import pytest

from harvester import Harvester
from harvester.progress import Progress
from harvester.simulator.server import Simulator
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import world_config


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.looptime
async def test_live_block_on_a_terminal_and_lines_otherwise(tmp_path):
    world = World(WorldSpec(seed=2, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "out")
    async with Harvester(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        await h.run()
        live, plain = Progress(h, stream=Tty()), Progress(h, stream=io.StringIO())
        live.show(), plain.show()
    text = live.stream.getvalue()
    assert "units" in text and "TOKEN_0" in text and "queued 0 calls" in text
    assert plain.stream.getvalue().startswith("[harvester] units ") and "TOKEN_0" not in plain.stream.getvalue()
    assert plain.interval == 30.0 and live.interval == 0.5
    for token in env.values():
        assert token not in text
