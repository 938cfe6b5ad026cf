"""The seam between the Graph client and the network (as in httpx): one small method.

The client sends every request through a :class:`Transport`; :class:`AiohttpTransport` is the
real one, and the simulator offers an in-memory one so that tests and benchmarks run without
sockets on a fast-forwarded clock. A transport raises only :class:`TransportError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec


class Response(msgspec.Struct):
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes


class Transport(Protocol):
    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        """GET an absolute URL; raise TransportError if no complete answer arrives."""
        ...

    async def close(self) -> None: ...
