"""One call outside a harvest, retried as the scheduler retries a job: ``harvester tokens``,
``validate --discover`` and the expiry check at a run's start (issue 22, point 3: a 500, a body
cut short or a dropped connection made a health check flap).

The error policy decides (:func:`harvester.graph.policy.decide`). A ``RETRY`` waits the
scheduler's backoff (:func:`.outcomes.backoff`: full jitter, doubling) and tries again, up to
``max_attempts`` attempts (or the decision's own, fewer); a ``THROTTLE`` waits as the scheduler
would for that token (:func:`.outcomes.waited_out`: a lone one a short jittered retry, one the
evidence says is real the server's wait or a minute doubling, at most the window), at most
``max_attempts`` times in a row; anything else (a bad token, a missing permission) is raised at
once, as are retries used up: the last error, as it was.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..config import Config
from ..errors import GraphError, HarvesterError
from ..graph.policy import Action, Decision, decide
from .outcomes import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    LONE_RETRY,
    THROTTLE_FIRST_PAUSE,
    ThrottleEvidence,
    backoff,
    waited_out,
)

T = TypeVar("T")


class Retry:
    """``await retry(lambda: client.get(...))``: the call's result, after the retries it needed."""

    def __init__(self, max_attempts: int = 5, *, window_seconds: float = 3600.0, base: float = BACKOFF_BASE,
                 cap: float = BACKOFF_CAP, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 decide: Callable[[HarvesterError], Decision] = decide):
        self.max_attempts, self.window_seconds, self.base, self.cap = max_attempts, window_seconds, base, cap
        self.rng = rng or random.Random()
        self.sleep, self.decide = sleep, decide
        self.retries = 0
        """Attempts made again, over every call (for a report)."""

    @classmethod
    def of(cls, config: Config, **kwargs) -> Retry:
        """The retries a run of ``config`` makes: its ``[scheduler] max_attempts`` and window."""
        return cls(config.scheduler.max_attempts, window_seconds=config.rate_limit.window_seconds, **kwargs)

    def __repr__(self) -> str:
        return f"Retry(max_attempts={self.max_attempts}, window_seconds={self.window_seconds})"

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        attempts = throttles = 0
        while True:
            try:
                return await call()
            except HarvesterError as error:
                decision = self.decide(error)
                if decision.action is Action.RETRY:
                    attempts += 1
                    if attempts >= min(self.max_attempts, decision.attempts or self.max_attempts):
                        raise
                    wait = backoff(attempts, decision, self.rng, self.base, self.cap)
                elif decision.action is Action.THROTTLE:
                    throttles += 1
                    if throttles >= self.max_attempts:
                        raise
                    wait = self._pause(error, decision, throttles)
                else:
                    raise
            self.retries += 1
            await self.sleep(min(wait, self.window_seconds))

    def _pause(self, error: HarvesterError, decision: Decision, in_row: int) -> float:
        """A throttle's pause, judged on its evidence as the scheduler judges it: a lone one a
        short jittered retry, one waited out the server's wait or a minute doubling."""
        usage = error.usage if isinstance(error, GraphError) else None
        evidence = ThrottleEvidence(decision.wait, getattr(usage, "percent", None), in_row)
        if waited_out(evidence) is None:
            return self.rng.random() * _doubling(LONE_RETRY, in_row, self.window_seconds)
        return decision.wait or _doubling(THROTTLE_FIRST_PAUSE, in_row, self.window_seconds)


def _doubling(first: float, n: int, cap: float) -> float:
    """``first`` for the first in a row, doubling with each after, at most ``cap`` (as the scheduler's)."""
    return min(cap, first * 2 ** (n - 1))
