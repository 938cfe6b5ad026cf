"""The simulator as an in-memory :class:`~harvester.graph.transport.Transport`: no sockets.

The same pipeline and counters as over HTTP, but the simulator's clock becomes the running event
loop's: latency is an ``asyncio.sleep`` and the rolling windows read ``loop.time()``, so under a
fast-forwarding loop (looptime) hours of rate-limited harvesting pass in seconds of wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from ..errors import TransportError
from ..graph.transport import Response
from .faults import Drop, Truncate
from .pipeline import Simulator


class SimulatorTransport:
    def __init__(self, simulator: Simulator):
        self.simulator = simulator
        self.closed = False

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        if self.closed:
            raise TransportError("the simulator transport is closed")
        self.simulator.clock = asyncio.get_running_loop().time
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        base_url = f"{parts.scheme}://{parts.netloc}"
        answer = await self.simulator.serve("GET", parts.path, query, headers, base_url=base_url)
        if isinstance(answer, Drop):
            raise TransportError(f"connection dropped by the simulator ({parts.path})")
        reply = answer.reply if isinstance(answer, Truncate) else answer
        return Response(status=reply.status, headers={k.lower(): v for k, v in reply.headers.items()},
                        body=reply.body)

    async def close(self) -> None:
        self.closed = True
