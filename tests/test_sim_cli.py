"""``harvester simulate``: argument errors exit 2; a real process serves on a free port, prints its
URL and tokens, writes the world file, answers GETs and stops cleanly on SIGINT."""

import asyncio
import json
import os
import signal
import socket
import sys

import aiohttp
import orjson
import pytest

from harvester.simulator.cli import main

from support import NOW

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
        "--now", "2026-11-20T10:00",   # pinned: it is what the world file must give back
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
