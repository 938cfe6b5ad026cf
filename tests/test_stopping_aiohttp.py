"""The library inside an aiohttp service (issue 22, point 1): a handler streams ``records()`` as
NDJSON from the simulator served on loopback; its client disconnects mid-stream. The handler
ends, and no connection to the simulator is left open."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from harvester import Harvester
from harvester.simulator.pipeline import SimulatorSettings
from harvester.simulator.world import World, WorldSpec

from support import NOW, world_config

HANG = 60.0
"""Seconds after which the handler counts as stuck (it ends in well under one)."""


def established_to(port: int) -> int:
    """TCP connections open (ESTABLISHED) from this host to ``port``: the harvester's to the simulator."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts connections in /proc/net/tcp")
@pytest.mark.parametrize("held", [True, False], ids=["iterator held", "iterator dropped"])
async def test_a_client_that_disconnects_ends_the_handler_and_every_connection(tmp_path, simulator_server, held):
    world = World(WorldSpec(seed=22, accounts=12, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=1_000_000, latency_ms=30))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, days=30)
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[float] = loop.create_future()
    written = 0

    async def stream(request: web.Request) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            async with Harvester.pinned(config, tokens=env, now=world.now) as harvester:
                records = harvester.records()        # held: the loop's end does not close it, the async with must
                async for record in (records if held else harvester.records()):
                    await response.write(msgspec.json.encode(record) + b"\n")
                    written += 1
        finally:
            ended.set_result(loop.time())
        return response

    app = web.Application()
    app.router.add_get("/records", stream)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /records HTTP/1.1\r\nHost: service\r\n\r\n")
        lines = 0
        while lines < 2000:                              # well into the harvest, many calls out
            line = await asyncio.wait_for(reader.readline(), HANG)
            lines += line.startswith(b"{")
        open_before = established_to(server.port)
        calls_before = server.simulator.counters.snapshot()["calls"]
        writer.transport.abort()                         # the client goes away mid-stream
        left = loop.time()
        end = await asyncio.wait_for(ended, HANG)
        handler_took = end - left
        await asyncio.sleep(0.2)                         # the sockets' closing reaches the kernel
        open_after = established_to(server.port)
        calls_after = server.simulator.counters.snapshot()["calls"] - calls_before
        await asyncio.sleep(1.0)
        assert server.simulator.counters.snapshot()["calls"] - calls_before == calls_after   # no call after
    finally:
        await runner.cleanup()
    print(f"handler ended {handler_took * 1000:.0f} ms after the disconnect; connections to the simulator "
          f"{open_before} -> {open_after}; {calls_after} calls after; {written} records written")
    assert open_before > 0
    assert open_after == 0
