"""Pushing a batch run's metrics to a Prometheus Pushgateway: every ``push_seconds`` while it runs
and once at its end.

Each push is a POST to ``/metrics/job/<job>/shard/<shard>``: it replaces the metrics of the same
names in that group only, so shards never overwrite one another, and a run that fails keeps the
``harvester_run_last_success_timestamp_seconds`` an earlier run pushed (a failed run has none to
push). A Pushgateway that cannot be reached costs a warning line, once, never the run.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import aiohttp

from .metrics import RunMetrics

log = logging.getLogger("harvester.telemetry")

TIMEOUT_SECONDS = 10.0


def group_url(gateway: str, job: str, shard: str) -> str:
    """The Pushgateway URL of a run's group: its job, and its shard (``0-of-4``, ``all``)."""
    return f"{gateway.rstrip('/')}/metrics/job/{quote(job, safe='')}/shard/{quote(shard, safe='')}"


class Pusher:
    """Pushes ``metrics`` to ``url`` every ``seconds`` from :meth:`start` until :meth:`stop`, which
    pushes once more (the final figures, exit code included)."""

    def __init__(self, metrics: RunMetrics, url: str, seconds: float):
        self.metrics, self.url, self.seconds = metrics, url, seconds
        self.pushes = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        self._task = asyncio.ensure_future(self._every())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.push()
        finally:
            if self._session is not None:
                await self._session.close()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self.push()

    async def push(self) -> bool:
        """One push; False (and a warning, the first time) when the Pushgateway did not take it."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest  # RunMetrics required it

        assert self._session is not None, "start() first"
        body = generate_latest(self.metrics.registry)
        try:
            async with self._session.post(self.url, data=body, headers={"Content-Type": CONTENT_TYPE_LATEST}) as reply:
                if reply.status >= 300:
                    raise aiohttp.ClientResponseError(reply.request_info, (), status=reply.status,
                                                      message=(await reply.text())[:200])
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("metrics not pushed to %s: %s (the run goes on; later failures are not logged)",
                            self.url, _reason(exc))
            return False
        self.pushes += 1
        return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".strip()
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    return str(exc) or type(exc).__name__
