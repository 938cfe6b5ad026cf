"""What a page of media with their insights nested costs a token, read from the usage headers.

Meta says nothing of how field expansion counts against the rate limits (a page counted as one
call, or as one more per media nested), so each token's cost is measured, never assumed. Every
call a token makes is logged when it is sent (with the media a page nested, once it answered);
each usage header the token's answers carry says how many calls the API counts in its window:
``call_count`` percent of ``[rate_limit] calls_per_window``, taken at the middle of its whole
percent. Against the calls the log holds in the same window (``sent``, each counted once) and
the media nested in them (``nested``), the cost of one media nested, beyond the page, is

    per_media = (counted - sent) / nested        (0: a page is one call; 1: one more per media)

Invariant: an estimate is made only from a reading whose window holds enough media nested
(:meth:`CallCosts.can_price`: a whole percent is two calls at 200 an hour, and the error stays
under 0.05 call per media), and it is clamped to ``[0, 2]``. A token whose answers carry no usage
header has no estimate: ``reported`` is False and the caller stays with a call per media.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

import msgspec

from .times import Times

MIN_NESTED = 40
"""Media nested in a window before its reading is trusted to price them."""
MAX_COST = 2.0


class Sent(msgspec.Struct):
    """One call, as sent: ``nested`` media insights its answer carried (pages only)."""

    at: float
    nested: int = 0
    logged: bool = False
    """Among its token's pages (one that nested something)."""


class _Token(msgspec.Struct):
    times: Times = msgspec.field(default_factory=Times)
    """When each call in the window was sent, oldest first (8 bytes a call: a harvest that never
    prices a page still sends a window's calls)."""
    pages: deque[Sent] = msgspec.field(default_factory=deque)
    """The calls in the window that nested media, oldest first."""
    nested: int = 0
    """The media nested by the calls in ``pages`` (kept as they come and go)."""
    edge: float = float("-inf")
    """Calls sent at or before this left the window."""
    reported: bool = False
    per_media: float | None = None
    measured_at: float = float("-inf")

    def expire(self, edge: float) -> int:
        """Forget the calls sent at or before ``edge``; the calls left."""
        self.edge = edge
        while self.pages and self.pages[0].at <= edge:
            self.nested -= self.pages.popleft().nested
        return self.times.expire(edge)


class CallCosts:
    """Per token (by key): its calls in the window and what the API counted for them."""

    def __init__(self, calls_per_window: int, window_seconds: float, clock: Callable[[], float]):
        self.calls_per_window, self.window_seconds, self.clock = calls_per_window, window_seconds, clock
        self._min_nested = max(MIN_NESTED, calls_per_window / 10)
        """The media nested a window needs to price them (:meth:`can_price`), read on every answer."""
        self._tokens: defaultdict[str, _Token] = defaultdict(_Token)
        """Made on a key's first call sent (or answered); read with ``get``, which makes none."""

    def sent(self, key: str) -> Sent:
        """Log a call of ``key`` sent now (:meth:`read` its answer's usage)."""
        now = self.clock()
        self._tokens[key].times.append(now)
        return Sent(now)

    def nested(self, key: str, entry: Sent, n: int) -> None:
        """The page ``entry`` answered with ``n`` media insights nested."""
        token = self._tokens[key]
        if entry.at > token.edge:                   # still in the window
            token.nested += n - entry.nested
            if not entry.logged:
                entry.logged = True
                token.pages.append(entry)
        entry.nested = n

    def read(self, key: str, call_count: float | None) -> None:
        """A usage header of ``key``'s (``Usage.call_count``; None: the answer had none)."""
        if call_count is None:
            return
        token = self._tokens[key]
        token.reported = True
        now = self.clock()
        sent = token.expire(now - self.window_seconds)
        if not self.can_price(token.nested):
            return
        counted = (call_count + 0.5) * self.calls_per_window / 100
        token.per_media = min(MAX_COST, max(0.0, (counted - sent) / token.nested))
        token.measured_at = now

    def can_price(self, nested: int) -> bool:
        """Whether a window holding ``nested`` media nested prices them: at least
        :data:`MIN_NESTED`, and enough that a whole percent of the budget (half a percent of
        error) is at most 0.05 call per media (a budget of 10,000 calls an hour cannot price a
        page of 100: its usage moves a percent every 100 calls)."""
        return nested >= self._min_nested

    def reported(self, key: str) -> bool:
        """Whether ``key``'s answers ever carried a usage header."""
        token = self._tokens.get(key)
        return token is not None and token.reported

    def per_media(self, key: str) -> float | None:
        """The latest estimate of what one media nested costs ``key`` (None: not measured)."""
        token = self._tokens.get(key)
        return None if token is None else token.per_media

    def measured_at(self, key: str) -> float:
        token = self._tokens.get(key)
        return float("-inf") if token is None else token.measured_at
