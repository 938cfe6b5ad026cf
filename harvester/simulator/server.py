"""The simulator over HTTP: an aiohttp.web app that routes every request to the one pipeline.

Kept lean for throughput (it is also the benchmark server): one catch-all route, no middleware,
no access log, no per-request logging. ``/__simulator__/counters`` and ``/__simulator__/world``
expose what was served and the world's tokens (for tests and tools, never for harvests).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from aiohttp import web

from .errors import SimReply
from .faults import Drop, Truncate
from .pipeline import Simulator, SimulatorSettings
from .world import World, WorldSpec

JSON = "application/json; charset=UTF-8"


class SimulatorServer:
    """``async with SimulatorServer(world, settings) as server``: serves on ``server.url``."""

    def __init__(self, world: World | WorldSpec, settings: SimulatorSettings | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.monotonic):
        self.simulator = Simulator(world, settings, clock=clock)
        self.host = host
        self.port = port
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> SimulatorServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        self.simulator.base_url = self.url
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/__simulator__/"):
            return self._introspect(request.path)
        answer = await self.simulator.serve(request.method, request.path, request.query, request.headers,
                                            base_url=self.url)
        if isinstance(answer, Drop):
            return _drop(request)
        return _response(answer.reply if isinstance(answer, Truncate) else answer)

    def _introspect(self, path: str) -> web.Response:
        views = {"/__simulator__/counters": self.simulator.counters.snapshot,
                 "/__simulator__/world": lambda: self.simulator.world.to_json(self.url)}
        view = views.get(path)
        if view is None:
            return web.Response(status=404, body=b'{"error": "no such simulator view"}',
                                content_type="application/json")
        return web.Response(body=orjson.dumps(view()), content_type="application/json")


def _response(reply: SimReply) -> web.Response:
    headers = dict(reply.headers)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = JSON
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer; the client sees a disconnect. (aiohttp then
    fails to write the returned response and ignores that quietly, as a client disconnection.)"""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)
