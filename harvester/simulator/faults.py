"""Fault injection and latency, reproducible from the seed whatever the order of requests.

Each request is judged by hashing (seed, token index, path, query without the token, how many
times this exact request was seen before). The same seed therefore gives the same faults to the
same requests in any interleaving, and a retry of a failed request draws afresh, so it can
succeed. Latency is drawn from the same hash: exponential around the configured mean.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable, Mapping

import msgspec

from .errors import Reply, graph_error


class Drop(msgspec.Struct, frozen=True):
    """Close the connection without answering (the in-memory transport raises TransportError)."""


class Truncate(msgspec.Struct):
    """A 200 answer whose JSON body was cut short; ``reply.body`` is already cut."""

    reply: Reply


class Decision(msgspec.Struct, frozen=True):
    kind: str | None
    """None for a normal answer, else a key of :data:`FAULTS`."""
    latency: float
    """Seconds to wait before answering."""


NO_FAULT = Decision(None, 0.0)

HTML_503 = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
            b"<h1>Service Unavailable</h1><p>Sorry, something went wrong. We're working on it and "
            b"we'll get it fixed as soon as we can.</p></body></html>")


def _code_1() -> Reply:
    return graph_error(500, 1, "An unknown error occurred", subcode=99)


def _code_2() -> Reply:
    return graph_error(500, 2, "An unexpected error has occurred. Please retry your request later.",
                       is_transient=True)


def _html_503() -> Reply:
    return Reply(status=503, body=HTML_503, headers={"Content-Type": "text/html; charset=utf-8"})


FAULTS: dict[str, Callable[[], Reply] | None] = {
    "code_1": _code_1,
    "code_2": _code_2,
    "html_503": _html_503,
    "truncated": None,  # needs the real answer: see truncate()
    "drop": None,
}
"""Every fault kind, drawn with equal chances; those that replace the answer build it here."""


class Faults:
    def __init__(self, seed: int, share: float, latency_ms: float = 0.0):
        self.seed = seed
        self.share = share
        self.latency_ms = latency_ms
        self.kinds = tuple(FAULTS)
        self._seen: dict[bytes, int] = {}

    def decide(self, token_index: int, path: str, query: Mapping[str, str]) -> Decision:
        if self.share <= 0 and self.latency_ms <= 0:
            return NO_FAULT            # the hot path of benchmarks: no hashing, no memory per request
        digest = self._digest(token_index, path, query)
        kind = None
        if _unit(digest, 0) < self.share:
            kind = self.kinds[int.from_bytes(digest[8:12], "big") % len(self.kinds)]
        latency = -self.latency_ms / 1000 * math.log(1.0 - _unit(digest, 12)) if self.latency_ms > 0 else 0.0
        return Decision(kind, latency)

    def _digest(self, token_index: int, path: str, query: Mapping[str, str]) -> bytes:
        canonical = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "access_token")
        request = f"{self.seed}|{token_index}|{path}|{canonical}".encode()
        key = hashlib.blake2b(request, digest_size=12).digest()
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return hashlib.blake2b(request + b"|%d" % seen, digest_size=20).digest()


def fault_reply(kind: str) -> Reply | None:
    """The answer that replaces the API's for ``kind``, or None if the kind needs the real answer."""
    build = FAULTS[kind]
    return build() if build is not None else None


def truncate(reply: Reply) -> Truncate:
    """Cut a real answer's body in half (at least one byte goes), keeping status 200."""
    body = reply.body[: max(0, min(len(reply.body) - 1, len(reply.body) // 2))]
    return Truncate(Reply(status=200, body=body, headers=dict(reply.headers)))


def _unit(digest: bytes, start: int) -> float:
    """A float in [0, 1) from 8 bytes of the digest."""
    return int.from_bytes(digest[start:start + 8], "big") / 2.0 ** 64
