"""``harvester simulate``: argument errors exit 2; a real process serves on a free port, prints its
URL and tokens, writes the world file, answers GETs and stops cleanly on SIGINT."""

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from harvester import Harvester
from harvester.config import load_config
from harvester.days import from_unix
from harvester.simulator.cli import config_text, describe, main, token_env
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import NOW, assert_streams_match

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def simulate_command() -> list[str]:
    """``python -m harvester.simulator``; while conftest's temporary stand-in replaces the world
    modules (they have no file), the same entry point with the stand-in installed first."""
    if getattr(sys.modules["harvester.simulator.world"], "__file__", None):
        return [sys.executable, "-m", "harvester.simulator"]
    return [sys.executable, "-c", "import sys; sys.path.insert(0, 'tests'); import conftest; "
            "from harvester.simulator.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.mark.parametrize("argv, says", [
    (["--faults", "1.5"], "--faults must be a share between 0 and 1"),
    (["--calls-per-window", "0"], "--calls-per-window must be at least 1"),
    (["--window-seconds", "-1"], "--window-seconds must be more than 0"),
    (["--latency", "-5"], "--latency must be 0 or more milliseconds"),
    (["--accounts", "0"], "--accounts must be at least 1"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--world-file", "/no/such/dir/world.json"], "--world-file must be in an existing directory"),
    (["--config-out", "/no/such/dir/sim.toml"], "--config-out must be in an existing directory"),
    (["--port", "eighty"], "invalid int value: 'eighty'"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["--now", "yesterday"], "'yesterday' is not a time; use YYYY-MM-DDTHH:MM (UTC) or unix seconds"),
])
def test_bad_arguments_exit_2_with_a_clear_message(capsys, argv, says):
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_a_busy_port_exits_2(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1]), "--accounts", "2", "--now", str(NOW)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


@pytest.mark.slow
async def test_serves_until_sigint(tmp_path):
    world_file = tmp_path / "world.json"
    process = await asyncio.create_subprocess_exec(
        *simulate_command(), "--port", "0", "--seed", "3", "--accounts", "4",
        "--media-per-account", "5", "--world-file", str(world_file), "--calls-per-window", "50",
        "--now", "2026-11-20T10:00", "--config-out", str(tmp_path / "sim.toml"),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert first.startswith("simulator listening on http://127.0.0.1:")
        url = first.split()[-1]
        written = json.loads(world_file.read_text())
        assert written["base_url"] == url
        assert written["now"] == 1795168800.0                    # 2026-11-20T10:00Z: the same world again
        lines = 2 + len(written["tokens"])
        banner = [(await asyncio.wait_for(process.stdout.readline(), 5)).decode() for _ in range(lines)]
        for entry in written["tokens"]:
            assert any(entry["token"] in line and ",".join(entry["accounts"]) in line for line in banner)
        assert "rate limit 50 calls per token per hour" in banner[0]
        assert f'base_url = "{url}"' in (tmp_path / "sim.toml").read_text()
        token = written["tokens"][0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/v25.0/{token['accounts'][0]}",
                                   headers={"Authorization": f"Bearer {token['token']}"}) as response:
                assert response.status == 200
                assert orjson.loads(await response.read())["id"] == token["accounts"][0]
            async with session.get(f"{url}/__simulator__/counters") as response:
                assert orjson.loads(await response.read())["calls"] == 1
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert b"simulator stopped" in await process.stderr.read()
        assert not list(tmp_path.glob(".world.json.*"))          # the atomic write left no temporary
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_banner_says_the_rate_limit_and_the_config_and_its_variables():
    world = World(WorldSpec(seed=3, accounts=3, now=NOW))
    settings = SimulatorSettings(calls_per_window=200, window_seconds=3600, app_calls_per_window=900)
    lines = describe(world, "http://127.0.0.1:8000", settings, config_out=Path("sim.toml")).splitlines()
    assert lines[1].startswith("  rate limit 200 calls per token per hour, 900 of all tokens together "
                               "(a harvest's [rate_limit] must stay within it); faults 0%")
    assert "config for this world: sim.toml (harvester run --config sim.toml), with its tokens in:" in lines
    assert [line for line in lines if line.startswith("  export ")] == [
        f"  export TOKEN_{t.index}={t.token}" for t in world.tokens]


@pytest.mark.looptime
async def test_config_out_harvests_the_served_world_within_the_limit_it_enforces(tmp_path):
    """The written config, read like any (tokens from the variables the banner names), harvests
    every record of the world at the simulator's own limit without one throttled call; no token
    is in the file."""
    world = World(WorldSpec(seed=5, accounts=5, media_per_account=12, now=NOW))
    settings = SimulatorSettings(calls_per_window=30, window_seconds=60)
    path = tmp_path / "sim.toml"
    path.write_text(config_text(world, "http://simulator", settings, output=str(tmp_path / "out")))
    assert not [t.token for t in world.tokens if t.token in path.read_text()]
    env = {token_env(t.index): t.token for t in world.tokens}
    config = load_config(path, env=env, today=from_unix(int(world.now)))
    assert (config.rate_limit.calls_per_window, config.rate_limit.window_seconds) == (30, 60)
    assert {a.token_env for a in config.accounts} == set(env)
    simulator = Simulator(world, settings)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    served = simulator.counters.snapshot()
    assert summary.exit_code == 0 and served["throttled"] == 0
    assert max(served["calls_by_token"].values()) > 30          # the limit bound the harvest
    assert_streams_match(tmp_path / "out", world, config)
