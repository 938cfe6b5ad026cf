"""The simulator's rate limits: an exact rolling window per token, and one for the whole app.

Invariant of :class:`RollingWindow`: a call at time ``t`` is throttled exactly when, counting
it, more than ``limit`` calls fall in ``(t - seconds, t]``. Every call is recorded, throttled or
not, so calls made while throttled extend the penalty, as on the real API. A client that keeps
at most ``limit`` calls in any window of ``seconds`` is therefore never throttled.
"""

from __future__ import annotations

import math

import msgspec
import orjson

from ..schedule.times import Times

CPU_SHARE = 0.5
"""total_cputime and total_time, as a share of call_count: the simulator's calls are cheap."""


class RollingWindow:
    """Call times of one key over the last ``seconds``: a :class:`~harvester.schedule.times.Times`
    (8 bytes a call, compacted as calls leave), as the harvester's own limiter keeps them: a
    harvest that never nears its limit still holds a window's calls, a million of them in the
    memory benchmark, where a deque of floats costs four times as much."""

    __slots__ = ("_times", "limit", "seconds")

    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._times = Times()

    def record(self, now: float) -> int:
        """Record a call at ``now``; return how many calls the window holds, this one included."""
        held = self._times.expire(now - self.seconds)
        self._times.append(now)
        return held + 1

    def charge(self, n: int, now: float) -> int:
        """Record ``n`` more calls at ``now`` (what one request costs beyond itself); the count after."""
        self._times.expire(now - self.seconds)
        self._times.append_many(now, n)
        return len(self._times)

    def count(self, now: float) -> int:
        """The calls the window holds at ``now`` (those at or before ``now - seconds`` have left)."""
        return self._times.expire(now - self.seconds)

    def percent(self, now: float) -> int:
        """Whole percentage of the window's budget used (can pass 100 while throttled)."""
        return int(100 * self.count(now) / self.limit)

    def regain_seconds(self, now: float) -> float:
        """Seconds until one more call would be admitted: enough old calls must have left."""
        excess = self.count(now) - self.limit
        if excess < 0:
            return 0.0
        return max(0.0, self._times[excess] + self.seconds - now)


class Verdict(msgspec.Struct, frozen=True):
    """What the limits say about one call: ``throttle`` is None, "app" or "token"."""

    throttle: str | None
    in_window: int
    headers: dict[str, str]


class RateLimits:
    """Per-token windows (keyed by token index, never the token) plus an optional app window."""

    def __init__(self, calls_per_window: int, window_seconds: float, app_calls_per_window: int | None = None):
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.tokens: dict[int, RollingWindow] = {}
        self.app = RollingWindow(app_calls_per_window, window_seconds) if app_calls_per_window else None

    def check(self, index: int, kind: str, account_ids: tuple[str, ...], now: float) -> Verdict:
        """Record a call of token ``index`` at ``now`` and judge it."""
        window = self._window(index)
        in_window = window.record(now)
        app_over = self.app is not None and self.app.record(now) > self.app.limit
        throttle = "app" if app_over else "token" if in_window > window.limit else None
        return Verdict(throttle, in_window, self.usage_headers(index, kind, account_ids, now, throttle))

    def charge(self, index: int, n: int, now: float) -> int:
        """Token ``index``'s request at ``now`` counts ``n`` calls more (a page of media with their
        insights nested, under a per-object accounting); the token's window count after."""
        if self.app is not None:
            self.app.charge(n, now)
        return self._window(index).charge(n, now)

    def usage_headers(self, index: int, kind: str, account_ids: tuple[str, ...], now: float,
                      throttle: str | None = None) -> dict[str, str]:
        window = self._window(index)
        windows = [window] + ([self.app] if self.app is not None else [])
        pct = max(w.percent(now) for w in windows)
        cpu = int(pct * CPU_SHARE)
        if kind != "instagram":
            return {"X-App-Usage": _json({"call_count": pct, "total_time": cpu, "total_cputime": cpu})}
        regain = max(w.regain_seconds(now) for w in windows) if throttle else 0.0
        usage = [{"type": "instagram", "call_count": pct, "total_cputime": cpu, "total_time": cpu,
                  "estimated_time_to_regain_access": math.ceil(regain / 60)}]
        return {"X-Business-Use-Case-Usage": _json({account_id: usage for account_id in account_ids[:32]})}

    def _window(self, index: int) -> RollingWindow:
        window = self.tokens.get(index)
        if window is None:
            window = self.tokens[index] = RollingWindow(self.calls_per_window, self.window_seconds)
        return window


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
