"""The harvests behind ``Harvester.records()``: each runs as a task of its own (the producer)
that puts records in a :class:`~.buffer.Buffer`, while the consumer's generator takes them out.
Leaving the loop, closing the generator or leaving the Harvester cancels the producer, whatever
the buffer holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from ..records import Record
from .buffer import Buffer

Harvest = Callable[[Callable[[Sequence[Record]], Awaitable[None]]], Awaitable[None]]
"""A harvest whose records go to the callable it is given (a Ledger's ``emit``)."""


class Streams:
    """The producers of the record streams a Harvester opened, and the buffer of the latest."""

    def __init__(self) -> None:
        self._producers: set[asyncio.Future[None]] = set()
        self._buffer: Buffer | None = None

    def __repr__(self) -> str:
        return f"Streams(producers={len(self._producers)}, buffered={self.buffered})"

    @property
    def buffered(self) -> int:
        """Records harvested that the consumer has not read yet."""
        return len(self._buffer) if self._buffer is not None else 0

    async def open(self, buffer: Buffer, harvest: Harvest) -> AsyncGenerator[Record, None]:
        """Run ``harvest`` into ``buffer`` and yield its records as they arrive."""
        self._buffer = buffer

        async def produce() -> None:
            try:
                await harvest(buffer.put)
            finally:
                buffer.end()            # never waits: a full buffer cannot hold a cancelled harvest up

        task = asyncio.ensure_future(produce())
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)
        try:
            while (record := await buffer.get()) is not None:
                yield record
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the producers still running (a consumer that broke out of its loop leaves its
        generator suspended) and wait for them."""
        for task in self._producers:
            task.cancel()
        await asyncio.gather(*self._producers, return_exceptions=True)
