"""One token's pace: the evidence its answers gave (the usage they reported, throttles, errors,
latencies) and what the slot makes of it (its limiter's limit, its depth). The slot
(:mod:`.slot`) owns the queue and the pause; this owns how fast the queue may drain.

Usage feedback (AutoThrottle, clamped): when the server reports a usage at or above
``HIGH_MARK`` percent, the effective limit drops to what that percentage implies for the calls
this slot made in the window (``in_window * 100 / percent``); below the mark it may climb back,
never above the configured limit. An error's usage can only slow the slot down.

The pace also keeps the latest usage its token's answers reported (``usage_percent``, at
``usage_at``): the evidence the scheduler weighs when a throttle comes without an estimate.
A wait the server asks for (``estimated_time_to_regain_access``) is capped at the rolling
window: no answer parks a token longer than the window the budget is counted over.

Evidence ages with the window it describes (:meth:`Pace.age`): a usage figure not repeated for a
whole window is stale, since every call it counted has left the window since. It is then
forgotten with what it did: the limit it lowered comes back to the configured one, and a depth
it eased ramps up again. So a capped wait is waited once: a token told "100 %, come back in
10^9 minutes" pauses one window, and is not held back again by that same figure afterwards
when the server's later answers carry no usage headers (which the API may omit).

Depth (AutoThrottle's idea, counted in calls in flight instead of a delay between them): a slot
starts with ``START_DEPTH`` calls in flight (at most its cap) and the depth adapts to what its
answers say. It grows while latency, not the budget, holds the token back: an answer with data
came while the slot had work queued that only its depth kept waiting (not its limiter, not the
global cap) and the usage it last reported is below ``LOW_MARK``: one more call per answer
(doubling each round trip) until the first cut, then one more per round trip. It shrinks at
once, like AutoThrottle's delay, which follows a slower server without averaging: a usage at
or above ``LOW_MARK`` caps it in proportion to what is left of the budget (the cap at
``LOW_MARK``, one call at 100 %); a throttle waited out (a lone one costs only its call),
transient errors (once they are ``ERROR_SHARE`` of the recent answers: a steady trickle of
faults is not the server giving way) or slow answers (the recent latency past ``SLOW_FACTOR``
times the slot's long-run latency) halve it, once per round trip (only a call started after the
last cut can cut it again). Never above the cap, never below one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .limiter import RollingWindowLimiter

HIGH_MARK = 90
"""Usage percentage from which the server's figure sets the pace."""

LOW_MARK = 50
"""Usage percentage from which the depth stops growing and shrinks as usage rises."""

START_DEPTH = 8
"""Calls in flight a proven token starts with (at most its cap)."""

SLOW_FACTOR = 2.0
"""Answers are slow when the recent latency passes this many times the long-run latency."""

FAST_WEIGHT, SLOW_WEIGHT = 1 / 8, 1 / 64
"""Weights of a new answer in the recent and the long-run latency (moving averages)."""

ERROR_SHARE = 0.2
"""Transient errors cut the depth when they make this share of its recent answers (a moving
average of weight ``FAST_WEIGHT / 2``): a steady trickle of faults (5 %) does not, a server
failing every few calls does at once."""

WARM_ANSWERS = 32
"""Answers before the latencies are trusted to call answers slow."""


class UsageLike(Protocol):
    percent: int
    regain_seconds: float


@dataclass(slots=True, eq=False)
class Pace:
    """How fast one token's work may go, by the evidence of its answers (see the module's
    docstring). Its slot reads it and tells it what happened; it never pauses the slot itself."""

    limiter: RollingWindowLimiter
    """Its slot's rolling-window limiter: the pace sets its limit."""
    max_in_flight: int = 8
    """The cap on the slot's calls in flight: the depth adapts under it."""
    usage_percent: int | None = None
    """The latest usage percentage the token's answers reported (None: none yet)."""
    usage_at: float = float("-inf")
    """When ``usage_percent`` was reported."""
    depth: float = START_DEPTH
    """Calls in flight the slot may have now, once proven (whole part; see the module's docstring)."""
    ramping: bool = True
    """Growing one call per answer (until the first cut), else one per round trip."""
    cut_at: float = float("-inf")
    """When the depth was last cut: only a call started after it cuts again."""
    latency: float = 0.0
    """Recent latency of its answers (a moving average, seconds)."""
    latency_long: float = 0.0
    """Long-run latency of its answers."""
    answers: int = 0
    """Answers timed."""
    error_share: float = 0.0
    """Share of transient errors among its recent answers (a moving average)."""
    throttle_share: float = 0.0
    """Share of throttles among its recent answers (a moving average of the same weight)."""

    def __post_init__(self) -> None:
        self.depth = min(self.depth, self.max_in_flight)

    # -- usage evidence -----------------------------------------------------------------------

    def usage(self, now: float, fresh: float) -> float:
        """The share of its rate limit in use (0 to 1): its rolling window's calls, or what its
        answers reported in the last ``fresh`` seconds, whichever is more."""
        reported = self.reported_usage(now, fresh)
        in_window = self.limiter.in_window() / self.limiter.limit if self.limiter.limit else 1.0
        return max(in_window, (reported or 0) / 100)

    def reported_usage(self, now: float, fresh: float) -> int | None:
        """The latest usage reported in the last ``fresh`` seconds (None: no such report)."""
        return self.usage_percent if now - self.usage_at <= fresh else None

    def stale_at(self) -> float | None:
        """When its usage evidence goes stale (None: it has none)."""
        return None if self.usage_percent is None else self.usage_at + self.limiter.seconds

    def age(self, now: float) -> bool:
        """Forget usage evidence a whole window old, and what it did (see the module's docstring):
        the limiter's limit back to the configured one, and a depth it eased ramps up again.
        True when something was forgotten."""
        if self.usage_percent is None or now - self.usage_at < self.limiter.seconds:
            return False
        if self.usage_percent >= LOW_MARK:
            self.ramping = True
        self.usage_percent = None
        self.limiter.set_limit(self.limiter.calls)
        return True

    def observe(self, usage: UsageLike, now: float, *, in_window: int | None = None,
                may_speed_up: bool = True) -> float | None:
        """Read the server's usage report: slow down near the limit. Returns the wait the server
        asked for when it is above the window (the slot pauses at most the window), else None."""
        self.usage_percent, self.usage_at = usage.percent, now
        if usage.percent > 0:
            self._pace(usage.percent, in_window, may_speed_up)
            self._ease(usage.percent)
        return usage.regain_seconds if usage.regain_seconds > self.limiter.seconds else None

    def _pace(self, percent: int, in_window: int | None, may_speed_up: bool) -> None:
        """Set the limiter by the reported ``percent`` (see the module's docstring)."""
        calls = self.limiter.in_window() if in_window is None else in_window
        if percent >= HIGH_MARK:
            limit = calls * 100 // percent
        else:  # the low end of what the rounded-down percentage allows: never too fast
            limit = calls * 100 // (percent + 1)
            if not may_speed_up or limit <= self.limiter.limit:
                return
        if may_speed_up or limit < self.limiter.limit:
            self.limiter.set_limit(limit)

    # -- depth ---------------------------------------------------------------------------------

    def timed(self, started: float, now: float, *, may_grow: bool) -> None:
        """A call started at ``started`` answered with data at ``now``: time it, cut the depth if
        answers turned slow, else grow it when ``may_grow`` (its work waited on the depth alone,
        with room under the global cap) and the usage it reported last is below ``LOW_MARK``."""
        latency = now - started
        self.answers += 1
        self.error_share -= self.error_share * FAST_WEIGHT / 2
        self.throttle_share -= self.throttle_share * FAST_WEIGHT / 2
        # Plain means until there are enough answers for the moving averages' weights.
        self.latency += (latency - self.latency) * max(FAST_WEIGHT, 1 / self.answers)
        self.latency_long += (latency - self.latency_long) * max(SLOW_WEIGHT, 1 / self.answers)
        if self.answers >= WARM_ANSWERS and self.latency > SLOW_FACTOR * self.latency_long:
            self.cut(started, now)
        elif may_grow and (self.usage_percent is None or self.usage_percent < LOW_MARK):
            self.depth = min(float(self.max_in_flight), self.depth + (1.0 if self.ramping else 1.0 / self.depth))

    def erred(self, started: float, now: float) -> None:
        """A call started at ``started`` met a transient error: cut the depth once they make
        ``ERROR_SHARE`` of the recent answers."""
        self.error_share += (1.0 - self.error_share) * FAST_WEIGHT / 2
        self.throttle_share -= self.throttle_share * FAST_WEIGHT / 2
        if self.error_share >= ERROR_SHARE:
            self.cut(started, now)

    def throttled(self) -> None:
        """A throttle answered one of its calls (counted in its share of the recent answers)."""
        self.throttle_share += (1.0 - self.throttle_share) * FAST_WEIGHT / 2

    def cut(self, started: float, now: float) -> None:
        """Halve the depth for trouble met by a call started at ``started`` (a transient error, a
        throttle, slow answers): once per round trip, so a burst of errors of one depth cuts once."""
        if started <= self.cut_at:
            return
        self.depth, self.ramping, self.cut_at = max(1.0, self.depth / 2), False, now

    def _ease(self, percent: int) -> None:
        """Usage at or above ``LOW_MARK``: at most the cap in proportion to the budget left."""
        if percent >= LOW_MARK:
            allowed = self.max_in_flight * max(0, 100 - percent) / (100 - LOW_MARK)
            self.depth, self.ramping = max(1.0, min(self.depth, allowed)), False
