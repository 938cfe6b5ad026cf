"""The run's Graph API clients: one per login kind (its host), all over one transport, the one
the caller gave or the run's own (aiohttp, sized to the calls in flight), opened when the
Harvester is entered and closed when it is left (only its own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ..config import Config
from ..graph.client import GraphClient
from ..graph.transport import Transport

Login = Literal["facebook", "instagram"]


class Clients:
    """The clients of one run (see the module's docstring)."""

    def __init__(self, config: Config, transport: Transport | None):
        self.config = config
        self._transport, self._own = transport, transport is None
        self._clients: dict[str, GraphClient] = {}

    def __repr__(self) -> str:
        return f"Clients(logins={sorted(self._clients)}, own_transport={self._own})"

    @property
    def transport(self) -> Transport | None:
        """What the calls go through: the one given, or its own once opened."""
        return self._transport

    @property
    def opened(self) -> bool:
        return bool(self._clients)

    def open(self, limit: int) -> None:
        """Make the clients (and the transport, unless one was given: ``limit`` connections)."""
        graph = self.config.graph
        if self._transport is None:
            from ..graph.aiohttp_transport import AiohttpTransport
            self._transport = AiohttpTransport(limit=limit, max_response_bytes=graph.max_response_bytes)
        self._clients = {login: GraphClient(self._transport, url, graph.api_version,
                                            max_response_bytes=graph.max_response_bytes)
                         for login, url in (("facebook", graph.base_url), ("instagram", graph.instagram_base_url))}

    @property
    def facebook(self) -> GraphClient:
        """The client of graph.facebook.com: discovery, token checks, every Facebook Login token."""
        return self._clients["facebook"]

    def by_key(self, logins: Mapping[str, str]) -> dict[str, GraphClient]:
        """Token key -> its client, for the tokens of another login than Facebook's."""
        return {key: self._clients[login] for key, login in logins.items() if login != "facebook"}

    async def close(self) -> None:
        """Close the transport if it is the run's own."""
        if self._own and self._transport is not None:
            await self._transport.close()
