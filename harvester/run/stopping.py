"""Stopping a run before its end (SIGINT/SIGTERM in the CLI, ``Harvester.stop()`` in a service):
dispatch stops and the calls in flight finish (the grace); after it, ``cancel_in_flight()``
gives up on those still out (their units are fetched next run). A stopped run ends unfinished,
with the exit code its caller gave, and the next run resumes it."""

from __future__ import annotations

import asyncio

from ..schedule.scheduler import Scheduler


class Stopping:
    """Whether and how a run was stopped, and the scheduler it stops (see the module's docstring)."""

    def __init__(self) -> None:
        self._requested = False
        self._exit_code: int | None = None
        self._scheduler: Scheduler | None = None
        self._task: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"Stopping(requested={self._requested}, exit_code={self._exit_code})"

    @property
    def requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._requested

    @property
    def exit_code(self) -> int | None:
        """What the stopped run's summary and state say (None: not given, or not stopped)."""
        return self._exit_code

    def stop(self, exit_code: int | None = None) -> None:
        """Stop dispatching; the calls in flight finish."""
        self._requested, self._exit_code = True, exit_code
        if self._scheduler is not None:
            self._scheduler.stop()

    def cancel_in_flight(self) -> None:
        """After :meth:`stop`, give up on the calls still in flight."""
        task = self._task
        if self._requested and task is not None and not task.done():
            task.cancel()

    def attach(self, scheduler: Scheduler) -> None:
        """The run's scheduler, from now on stopped by :meth:`stop`."""
        self._scheduler = scheduler

    async def run(self, scheduler: Scheduler) -> None:
        """Run ``scheduler`` to its end, or to a stop (a cancel of its calls by
        :meth:`cancel_in_flight` ends it quietly; the caller's cancel goes through)."""
        task = self._task = asyncio.ensure_future(scheduler.run())
        try:
            await task
        except asyncio.CancelledError:
            if not self._requested or not task.cancelled():
                raise                   # the caller cancelled us: let it through
