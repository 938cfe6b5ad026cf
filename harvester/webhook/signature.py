"""``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the raw body, keyed by the app secret.

Checked before the body is parsed (a forged body never reaches the decoder), compared in
constant time (``hmac.compare_digest``: no timing tells how much of a guess was right).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value Meta sends for ``body`` (the simulator and the tests sign with it)."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body``: False for a missing or malformed one."""
    return Checker(secret)(body, header)


class Checker:
    """:func:`valid` for one secret, keyed once (each check copies the keyed HMAC instead of
    hashing the key again: a few us a delivery); its repr says nothing of the secret."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes):
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __call__(self, body: bytes, header: str | None) -> bool:
        if not header or not header.startswith(PREFIX):
            return False
        given = header[len(PREFIX):].strip().lower().encode("ascii", "replace")
        mac = self._keyed.copy()
        mac.update(body)
        return hmac.compare_digest(given, mac.hexdigest().encode())

    def __repr__(self) -> str:
        return "Checker(<not shown>)"
