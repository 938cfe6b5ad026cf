"""Fault injection and latency, reproducible from the seed whatever the order of requests.

Each request is judged by hashing (seed, token index, path, query without the token, how many
times this exact request was seen before). The same seed therefore gives the same faults to the
same requests in any interleaving, and a retry of a failed request draws afresh, so it can
succeed. Latency is drawn from the same hash: exponential around the configured mean. With
latency only (no faults) nothing is kept per request: a repeat is drawn as the first request
was, but a copy sent while the same request is still being served (a hedged call) draws its own
latency, as another server of a real API would take its own time; only requests being served
are counted for that (:meth:`Faults.served` forgets them).

The kinds drawn are chosen (:data:`DEFAULT_KINDS` unless told): besides transient failures there
are throttle "blips" (``throttle_4``, ``throttle_17``, ``throttle_32``, ``throttle_613``,
``throttle_80002``): the API's throttle answer for that code, with no wait estimate, while the
normal usage headers (far from spent) are still attached, as a real API sometimes answers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping

import msgspec

from .errors import SimReply, graph_error


class Drop(msgspec.Struct, frozen=True):
    """Close the connection without answering (the in-memory transport raises TransportError)."""


class Truncate(msgspec.Struct):
    """A 200 answer whose JSON body was cut short; ``reply.body`` is already cut."""

    reply: SimReply


class FaultDraw(msgspec.Struct, frozen=True):
    kind: str | None
    """None for a normal answer, else a key of :data:`FAULTS`."""
    latency: float
    """Seconds to wait before answering."""
    request: bytes | None = None
    """With latency only: the request, counted as being served until :meth:`Faults.served`."""


NO_FAULT = FaultDraw(None, 0.0)

HTML_503 = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
            b"<h1>Service Unavailable</h1><p>Sorry, something went wrong. We're working on it and "
            b"we'll get it fixed as soon as we can.</p></body></html>")


def _code_1() -> SimReply:
    return graph_error(500, 1, "An unknown error occurred", subcode=99)


def _code_2() -> SimReply:
    return graph_error(500, 2, "An unexpected error has occurred. Please retry your request later.",
                       is_transient=True)


def _html_503() -> SimReply:
    return SimReply(status=503, body=HTML_503, headers={"Content-Type": "text/html; charset=utf-8"})


THROTTLE_MESSAGES: dict[int, str] = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
}
"""The API's throttle messages by code (all HTTP 400, type OAuthException)."""


def _throttle_blip(code: int) -> Callable[[], SimReply]:
    """A throttle answer without evidence: no estimate (the usage headers the pipeline adds stay low)."""
    return lambda: graph_error(400, code, THROTTLE_MESSAGES[code])


FAULTS: dict[str, Callable[[], SimReply] | None] = {
    "code_1": _code_1,
    "code_2": _code_2,
    "html_503": _html_503,
    "truncated": None,  # needs the real answer: see truncate()
    "drop": None,
    **{f"throttle_{code}": _throttle_blip(code) for code in THROTTLE_MESSAGES},
}
"""Every fault kind; those that replace the answer build it here."""

DEFAULT_KINDS: tuple[str, ...] = ("code_1", "code_2", "html_503", "truncated", "drop")
"""The kinds drawn unless told otherwise (with equal chances): transient failures, no throttles."""

BLIP_KINDS: tuple[str, ...] = tuple(f"throttle_{code}" for code in THROTTLE_MESSAGES)


def check_kinds(kinds: tuple[str, ...]) -> str | None:
    """What is wrong with ``kinds`` as a selection of fault kinds (None: nothing)."""
    if not kinds:
        return "no fault kind given; choose from " + ", ".join(FAULTS)
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown:
        return f"unknown fault kind {', '.join(map(repr, unknown))}; choose from {', '.join(FAULTS)}"
    return None


class Faults:
    def __init__(self, seed: int, share: float, latency_ms: float = 0.0, kinds: tuple[str, ...] = DEFAULT_KINDS):
        problem = check_kinds(kinds)
        if problem:
            raise ValueError(problem)
        self.seed = seed
        self.share = share
        self.latency_ms = latency_ms
        self.kinds = tuple(kinds)
        self._seen: dict[bytes, int] = {}
        self._serving: dict[bytes, int] = {}
        """With latency only: copies of each request being served now (none once answered)."""

    def decide(self, token_index: int, path: str, query: Mapping[str, str]) -> FaultDraw:
        if self.share <= 0 and self.latency_ms <= 0:
            return NO_FAULT            # the hot path of benchmarks: no hashing, no memory per request
        canonical = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "access_token")
        request = f"{self.seed}|{token_index}|{path}|{canonical}".encode()
        if self.share <= 0:     # latency only: a repeat may take as long, and no memory per request
            copies = self._serving.get(request, 0)      # but a copy sent meanwhile draws its own
            self._serving[request] = copies + 1
            digest = hashlib.blake2b(request + b"|%d" % copies, digest_size=20).digest()
            return FaultDraw(None, -self.latency_ms / 1000 * math.log(1.0 - _unit(digest, 12)), request)
        digest = self._digest(request)
        kind = None
        if _unit(digest, 0) < self.share:
            kind = self.kinds[int.from_bytes(digest[8:12], "big") % len(self.kinds)]
        latency = -self.latency_ms / 1000 * math.log(1.0 - _unit(digest, 12)) if self.latency_ms > 0 else 0.0
        return FaultDraw(kind, latency)

    def served(self, draw: FaultDraw) -> None:
        """The request ``draw`` was drawn for is answered (or abandoned)."""
        if draw.request is not None:
            copies = self._serving.pop(draw.request) - 1
            if copies:
                self._serving[draw.request] = copies

    def _digest(self, request: bytes) -> bytes:
        key = hashlib.blake2b(request, digest_size=12).digest()
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return hashlib.blake2b(request + b"|%d" % seen, digest_size=20).digest()


def fault_reply(kind: str) -> SimReply | None:
    """The answer that replaces the API's for ``kind``, or None if the kind needs the real answer."""
    build = FAULTS[kind]
    return build() if build is not None else None


def truncate(reply: SimReply) -> Truncate:
    """Cut a real answer's body in half (at least one byte goes), keeping status 200."""
    body = reply.body[: max(0, min(len(reply.body) - 1, len(reply.body) // 2))]
    return Truncate(SimReply(status=200, body=body, headers=dict(reply.headers)))


def _unit(digest: bytes, start: int) -> float:
    """A float in [0, 1) from 8 bytes of the digest."""
    return int.from_bytes(digest[start:start + 8], "big") / 2.0 ** 64
