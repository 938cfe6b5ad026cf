"""A pytest plugin: a simulated Graph API for your own tests.

Enable it with ``pytest_plugins = ["harvester.simulator.fixtures"]`` in a conftest, then::

    async def test_my_pipeline(simulator_server):
        server = await simulator_server(WorldSpec(accounts=3), SimulatorSettings(faults=0.1))
        ...  # call server.url; read server.simulator.counters.snapshot()

    async def test_fast(simulator_transport):
        transport = simulator_transport(WorldSpec(accounts=3))   # no sockets; loop-clock limits

Everything started is closed at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from .pipeline import Simulator, SimulatorSettings
from .server import SimulatorServer
from .transport import SimulatorTransport
from .world import World, WorldSpec

ServerFactory = Callable[..., Awaitable[SimulatorServer]]
TransportFactory = Callable[..., SimulatorTransport]


@pytest_asyncio.fixture
async def simulator_server() -> AsyncIterator[ServerFactory]:
    """``await simulator_server(spec=None, settings=None, **server_kwargs)`` -> a running server."""
    servers: list[SimulatorServer] = []

    async def start(spec: World | WorldSpec | None = None, settings: SimulatorSettings | None = None,
                    **kwargs) -> SimulatorServer:
        server = SimulatorServer(spec or WorldSpec(), settings, **kwargs)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.close()


@pytest_asyncio.fixture
async def simulator_transport() -> AsyncIterator[TransportFactory]:
    """``simulator_transport(spec=None, settings=None)`` -> an in-memory transport; its
    ``.simulator`` holds the world and the counters."""
    transports: list[SimulatorTransport] = []

    def build(spec: World | WorldSpec | None = None, settings: SimulatorSettings | None = None) -> SimulatorTransport:
        transports.append(SimulatorTransport(Simulator(spec or WorldSpec(), settings)))
        return transports[-1]

    yield build
    for transport in transports:
        await transport.close()
