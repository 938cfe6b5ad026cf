"""A call that may be sent twice: hedged requests ("The Tail at Scale", Dean and Barroso, 2013).

When a harvest's queue is empty and capacity for calls in flight sits idle, what it waits for is
its slowest calls: with latencies like the API's (a long tail) the slowest of a few hundred takes
several times the mean. A second copy of a GET that has been out much longer than its token's
typical latency, sent into that idle capacity, answers first often enough to cut that tail: the
first answer is taken and the other request cancelled. Every call harvester makes is a GET, which
the API answers the same however often it is asked; the scheduler decides when (and whether its
token's window has room for it: :mod:`harvester.schedule.hedge`), this module only races the two.

The scheduler calls each job with a :class:`Flight`, the job hands it to the client
(``GraphClient.get(..., flight=)``), which sends its GET through it, and the scheduler sends the
copy (:meth:`Flight.copy`) in a task of its own. Without a flight (hedging off, or a call made
outside the scheduler) the client sends as it always did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .transport import Response, Transport

__all__ = ["Flight"]


class Flight:
    """One job's call as the scheduler and the client share it."""

    __slots__ = ("_answer", "_copy", "_out", "_task", "copied", "copy_first", "done", "started", "task")

    def __init__(self, started: float, task: asyncio.Task | None = None) -> None:
        self.started = started
        """When the job started (loop time)."""
        self.task = task
        """The task the job runs in, which sends the GET (the scheduler knows it; None: the one
        :meth:`get` runs in, which asking asyncio for costs a call)."""
        self.done = False
        """The job has ended (the scheduler sets it)."""
        self.copied = False
        """A copy was sent (at most one per call)."""
        self.copy_first = False
        """The copy answered first: its answer was the call's."""
        self._out: tuple[Transport, str, Mapping[str, str]] | None = None
        self._task: asyncio.Task | None = None
        self._copy: asyncio.Task | None = None
        self._answer: Response | None = None

    def __repr__(self) -> str:     # never the URL or the headers: the headers hold the token
        return f"Flight(started={self.started}, out={self._out is not None}, copied={self.copied})"

    def may_copy(self) -> bool:
        """Its GET is out and no copy of this call was sent."""
        return self._out is not None and not self.copied

    async def get(self, transport: Transport, url: str, headers: Mapping[str, str]) -> Response:
        """GET ``url`` through ``transport``: the first answer, this request's or its copy's."""
        self._out, self._task = (transport, url, headers), self.task or asyncio.current_task()
        try:
            return await transport.get(url, headers)
        except asyncio.CancelledError:
            answer, self._answer = self._answer, None
            if answer is not None and self._task is not None and self._task.uncancel() == 0:
                self.copy_first = True
                return answer            # the copy answered first and cancelled this request
            raise
        finally:
            self._out = self._task = None   # a flight kept after its GET keeps no task (nor its result)
            if self._copy is not None:
                self._copy.cancel()      # this request answered first (or failed): the copy is moot

    async def copy(self) -> None:
        """Send a copy of the GET that is out; if it answers first, its answer is the call's and
        the first request is cancelled. A copy that fails changes nothing: the first is still out."""
        if self._out is None:
            return
        out = self._out
        transport, url, headers = out
        self.copied, self._copy = True, asyncio.current_task()
        try:
            answer = await transport.get(url, headers)
        except Exception:               # a transport or decode failure: the first request decides
            return
        finally:
            self._copy = None
        if self._out is out and self._task is not None:
            self._answer = answer
            self._task.cancel()

