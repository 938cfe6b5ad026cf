"""The simulator's one request pipeline, shared by the HTTP app and the in-memory transport.

``Simulator.serve`` takes a request apart in a fixed order: count it; find the token (the
``Authorization: Bearer`` header, else the ``access_token`` query parameter) and refuse missing,
unknown, revoked and expired ones; apply the rolling-window limits; inject a fault; wait the
drawn latency; let :class:`GraphApi` answer; add the usage headers. No step ever logs a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from . import tokens as token_api
from .api import GraphApi
from .counters import Counters
from .drift import Drift
from .errors import SimReply, graph_error
from .expansion import ExpansionCost
from .faults import DEFAULT_KINDS, Drop, Faults, Truncate, fault_reply, truncate
from .hostile import Hostile
from .ratelimit import RateLimits
from .world import TokenInfo, World, WorldSpec

__all__ = ["Drop", "Simulator", "SimulatorSettings", "Truncate"]

PACIFIC = ZoneInfo("America/Los_Angeles")


class SimulatorSettings(msgspec.Struct, frozen=True):
    calls_per_window: int = 200
    """Calls one token may make in any rolling window (the Graph API's 200 per user per hour)."""
    window_seconds: float = 3600
    app_calls_per_window: int | None = None
    """Calls all tokens together may make per window (code 4 beyond); None: no app limit."""
    faults: float = 0.0
    """Share of calls answered with a fault instead of the API's answer."""
    latency_ms: float = 0.0
    """Mean of the (exponential) latency added to every call."""
    fault_seed: int | None = None
    """Seed of faults and latency; None: the world's seed."""
    hostile: tuple[str, ...] = ()
    """Hostile kinds (``hostile.KINDS``) applied to every answer they fit."""
    fault_kinds: tuple[str, ...] = DEFAULT_KINDS
    """The kinds of fault drawn, with equal chances (see faults.FAULTS)."""
    drift: Drift | None = None
    """Metrics refused, served and retired as Meta changes them (:mod:`.drift`); None: none."""
    collabs: int = 0
    """Collaboration posts each account's ``/media`` lists of the next account's (:class:`.api.GraphApi`)."""
    expansion_cost: ExpansionCost = "one"
    """How a page of media with their insights nested counts (:mod:`.expansion`): as ``one`` call,
    or as one call plus one per media nested (``per-object``)."""


MISSING = (190, None, "An active access token must be used to query information about the current user.")
UNKNOWN = (190, None, "Invalid OAuth access token - Cannot parse access token")
REVOKED = (190, 460, "Error validating access token: The session has been invalidated because the user "
                     "changed their password or Facebook has changed the session for security reasons.")
EXPIRED = (190, 463, "Error validating access token: Session has expired on {expired}. The current time is {now}.")
DEBUG_TOKEN_INDEX = -1
"""The token index /debug_token's faults are drawn with: it is asked with the app token."""
THROTTLES = {
    "app": (4, "(#4) Application request limit reached"),
    "facebook": (17, "(#17) User request limit reached"),
    "instagram": (80002, "(#80002) There have been too many calls to this Instagram account. "
                         "Wait a bit and try again."),
}
"""Throttle errors by scope ("app") or token kind; all HTTP 400, type OAuthException."""


class Simulator:
    def __init__(self, world: World | WorldSpec, settings: SimulatorSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic, base_url: str = "http://simulator"):
        self.world = world if isinstance(world, World) else World(world)
        self.settings = settings or SimulatorSettings()
        self.clock = clock
        self.api = GraphApi(self.world, drift=self.settings.drift, wall=self.wall, collabs=self.settings.collabs)
        self.base_url = base_url
        s = self.settings
        self.limits = RateLimits(s.calls_per_window, s.window_seconds, s.app_calls_per_window)
        self.faults = Faults(self.world.spec.seed if s.fault_seed is None else s.fault_seed, s.faults, s.latency_ms,
                             s.fault_kinds)
        self.counters = Counters(a for t in self.world.tokens for a in t.account_ids)
        self.hostile = Hostile(s.hostile, world=self.world)
        self._origin: float | None = None

    def wall(self) -> float:
        """The simulated present: the world's ``now`` plus the time the clock has run since the first
        call (so a token expires in simulated time, as a harvest under looptime sees it)."""
        now = self.clock()
        if self._origin is None:
            self._origin = now
        return self.world.now + (now - self._origin)

    async def serve(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                    *, base_url: str | None = None) -> SimReply | Drop | Truncate:
        self.counters.call(path)
        if token_api.is_debug_token(path):      # asked with the app token: no user budget, faults as any call
            draw = self.faults.decide(DEBUG_TOKEN_INDEX, path, query)
            self.faults.served(draw)            # answered at once: the harvests' timings stay as they were
            fault = self._fault(draw.kind)
            if fault is not None:
                return self._count(fault)
            reply = token_api.debug_token(self.world, bearer(headers) or query.get("access_token"), query,
                                          self.wall(), self._token_problem)
            return self._count(truncate(reply) if draw.kind == "truncated" else reply)
        token = self._authenticate(query, headers)
        if isinstance(token, SimReply):
            return self._count(token)
        verdict = self.limits.check(token.index, token.kind, token.account_ids, self.clock())
        self.counters.window(token.index, verdict.in_window)
        if verdict.throttle is not None:
            return self._count(self._throttled(token, verdict.throttle), verdict.headers)
        decision = self.faults.decide(token.index, path, query)
        try:
            if decision.latency > 0:
                await asyncio.sleep(decision.latency)
        finally:
            self.faults.served(decision)
        if method.upper() != "GET":
            return self._count(graph_error(400, 100, f"Unsupported {method.lower()} request."), verdict.headers)
        answer = self._answer(decision.kind, path, query, token, base_url)
        headers = verdict.headers
        if isinstance(answer, SimReply) and answer.nested and self.settings.expansion_cost == "per-object":
            headers = self._charge(token, answer.nested)
        answer = self._count(answer, headers)
        return self.hostile.apply(path, query, answer, base_url or self.base_url) if self.hostile.kinds else answer

    def _answer(self, fault: str | None, path: str, query: Mapping[str, str], token: TokenInfo,
                base_url: str | None) -> SimReply | Drop | Truncate:
        replaced = self._fault(fault)
        if replaced is not None:
            return replaced
        if "access_token" in query:
            query = {k: v for k, v in query.items() if k != "access_token"}
        if token_api.is_refresh(path):
            return token_api.refresh(self.world, token, query, self.wall())
        reply = self.api.handle(path, query, token, base_url or self.base_url)
        return truncate(reply) if fault == "truncated" else reply

    def _charge(self, token: TokenInfo, nested: int) -> dict[str, str]:
        """A page's nested media counted as calls of their own (``per-object``): in the token's
        window and in the usage headers of the page's answer."""
        now = self.clock()
        in_window = self.limits.charge(token.index, nested, now)
        self.counters.window(token.index, in_window)
        self.counters.nested(token.index, nested)
        return self.limits.usage_headers(token.index, token.kind, token.account_ids, now)

    def _fault(self, fault: str | None) -> SimReply | Drop | None:
        """The answer a fault puts in place of the API's (None: the API's, cut short if ``truncated``)."""
        if fault is None:
            return None
        self.counters.fault(fault)
        return Drop() if fault == "drop" else fault_reply(fault)

    def _authenticate(self, query: Mapping[str, str], headers: Mapping[str, str]) -> TokenInfo | SimReply:
        """The caller's token, or the 190 error that refuses the call."""
        secret = bearer(headers) or query.get("access_token")
        if not secret:
            return self._token_error("missing", MISSING)
        token = self.world.token(secret)
        if token is None:
            return self._token_error("unknown", UNKNOWN)
        self.counters.token_call(token.index)
        problem = self._token_problem(token, self.wall())
        if problem is not None:
            return self._token_error("revoked" if problem[1] == 460 else "expired", problem)
        return token

    def _token_problem(self, token: TokenInfo, now: float) -> tuple[int, int | None, str] | None:
        """Why the API refuses this token now (code, subcode, message), or None."""
        if token.revoked:
            return REVOKED
        limit = token.expires_after_calls
        if limit is not None and self.counters.calls_by_token[token.index] > limit:
            return self._expired()
        if token.expires_at is not None and now >= token.expires_at:
            return self._expired(token.expires_at, now)
        return None

    def _token_error(self, reason: str, error: tuple[int, int | None, str]) -> SimReply:
        self.counters.token_error(reason)
        code, subcode, message = error
        return graph_error(400, code, message, subcode=subcode)

    def _expired(self, expired: float | None = None, now: float | None = None) -> tuple[int, int | None, str]:
        now = self.world.now if now is None else now
        expired = now - now % 3600 if expired is None else expired
        code, subcode, message = EXPIRED
        return code, subcode, message.format(expired=pacific(expired), now=pacific(now))

    def _throttled(self, token: TokenInfo, scope: str) -> SimReply:
        self.counters.throttle(token.index, scope)
        code, message = THROTTLES["app" if scope == "app" else token.kind]
        return graph_error(400, code, message)

    def _count(self, answer: SimReply | Drop | Truncate,
               usage: Mapping[str, str] | None = None) -> SimReply | Drop | Truncate:
        """Count the answer's status and add the usage headers (to a copy: the API may cache replies)."""
        if isinstance(answer, Drop):
            self.counters.status("drop")
            return answer
        reply = answer.reply if isinstance(answer, Truncate) else answer
        self.counters.status(reply.status)
        if not usage:
            return answer
        reply = SimReply(status=reply.status, body=reply.body, headers={**reply.headers, **usage}, nested=reply.nested)
        return Truncate(reply) if isinstance(answer, Truncate) else reply


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header (header names in any case)."""
    value = headers.get("Authorization") or headers.get("authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def pacific(ts: float) -> str:
    """Time as the Graph API writes it in session errors: ``Tuesday, 10-Nov-26 02:00:00 PST``."""
    return datetime.fromtimestamp(ts, UTC).astimezone(PACIFIC).strftime("%A, %d-%b-%y %H:%M:%S %Z")
