"""The world's tokens, the only thing built up front: which accounts each owns, its kind (Facebook
Login owning 1-4 accounts, or Instagram Login owning one), its expiry and scopes, and the tokens
renewed since (Instagram Login's ``/refresh_access_token``). A token's secret names its seed and
index, so two worlds never share one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Literal

import msgspec

from ..days import DAY
from .spec import ACCOUNT_BASE, WorldSpec, account_id

USER_BASE = 102000000000000
TOKEN_LIFETIME = 60 * 86400
"""A long-lived token's life: 60 days, from its issue or its refresh."""
SCOPES = {"facebook": ("instagram_basic", "instagram_manage_insights", "pages_read_engagement", "pages_show_list"),
          "instagram": ("instagram_business_basic", "instagram_business_manage_insights")}
INSIGHTS_SCOPES = frozenset({"instagram_manage_insights", "instagram_business_manage_insights"})

TokenKind = Literal["facebook", "instagram"]


class TokenInfo(msgspec.Struct, frozen=True):
    token: str
    index: int
    kind: TokenKind
    account_ids: tuple[str, ...]
    user_id: str
    """The Facebook user of a Facebook-Login token; the account itself for Instagram Login."""
    revoked: bool = False
    expires_after_calls: int | None = None
    expires_at: float | None = None
    """Unix time after which the token answers 190/463; None: never."""
    scopes: tuple[str, ...] = ()
    issued_at: float = 0.0


class TokenBook:
    """A world's tokens (``bits(*key)``: the world's hash of its seed and ``key``)."""

    def __init__(self, spec: WorldSpec, now: float, bits: Callable[..., int]):
        self._spec, self._now, self._bits = spec, now, bits
        self.tokens = self._build_tokens()
        self._by_secret = {t.token: t for t in self.tokens}
        self._renewals = 0
        self._owner = [0] * spec.accounts
        for t in self.tokens:
            for a in t.account_ids:
                self._owner[int(a) - ACCOUNT_BASE] = t.index

    def _unit(self, *key: object) -> float:
        return self._bits(*key) / 2.0 ** 64

    def _build_tokens(self) -> list[TokenInfo]:
        spec = self._spec
        groups = self._groups()
        expiring = dict(spec.expiring_tokens)
        tokens = []
        for i, (kind, members) in enumerate(groups):
            ids = tuple(account_id(a) for a in members)
            secret = f"{'EAA' if kind == 'facebook' else 'IGAA'}sim{spec.seed}x{i}x{self._bits('token', i):016x}"
            user = str(USER_BASE + i) if kind == "facebook" else ids[0]
            tokens.append(TokenInfo(secret, i, kind, ids, user, revoked=i >= len(groups) - spec.revoked_tokens,
                                    expires_after_calls=expiring.get(i), **self._health(i, kind)))
        return tokens

    def _health(self, i: int, kind: TokenKind) -> dict:
        """A token's expiry, issue time and scopes (see WorldSpec.token_health)."""
        scopes = SCOPES[kind]
        expires_in = dict(self._spec.token_expiry).get(i)
        if self._spec.token_health:
            if expires_in is None:
                days = 0.5 + self._unit("expiry", i) * 6 if i % 3 == 1 else 7 + self._unit("expiry", i) * 53
                expires_in = days * DAY
            if i % 4 == 3:
                scopes = tuple(s for s in scopes if s not in INSIGHTS_SCOPES)
        expires_at = None if expires_in is None else self._now + expires_in
        issued_at = (expires_at if expires_at is not None else self._now) - TOKEN_LIFETIME
        return {"expires_at": expires_at, "scopes": scopes, "issued_at": issued_at}

    def renew(self, token: TokenInfo, now: float) -> TokenInfo:
        """A refreshed Instagram Login token: a new secret valid TOKEN_LIFETIME from ``now``; the
        old one keeps working until its own expiry."""
        self._renewals += 1
        n = self._renewals
        secret = f"IGAAsim{self._spec.seed}x{token.index}r{n}x{self._bits('renew', token.index, n):016x}"
        renewed = msgspec.structs.replace(token, token=secret, expires_at=now + TOKEN_LIFETIME, issued_at=now)
        self._by_secret[secret] = renewed
        return renewed

    def _groups(self) -> list[tuple[TokenKind, list[int]]]:
        n = self._spec.accounts
        if self._spec.tokens is not None:
            return _even_groups(n, max(1, min(self._spec.tokens, n)))
        groups: list[tuple[TokenKind, list[int]]] = []
        start, i = 0, 0
        while start < n:
            kind: TokenKind = "facebook" if i == 0 else "instagram" if i == 1 else \
                ("facebook" if self._unit("kind", i) < 0.5 else "instagram")
            size = 1 if kind == "instagram" else 1 + self._bits("owns", i) % 4
            if i == 0 and n > 1:
                size = min(size, n - 1)            # leave an account for an Instagram-Login token
            groups.append((kind, list(range(start, min(n, start + size)))))
            start += size
            i += 1
        return groups

    def token(self, secret: str) -> TokenInfo | None:
        """The token of this secret (a renewed one too), or None."""
        return self._by_secret.get(secret)

    def owner(self, index: int) -> TokenInfo:
        """The token owning the account of this index."""
        return self.tokens[self._owner[index]]


def _even_groups(n: int, tokens: int) -> list[tuple[TokenKind, list[int]]]:
    """``tokens`` tokens over ``n`` accounts: odd ones Instagram (one account), even ones Facebook
    sharing the rest in contiguous blocks; a single token is a Facebook one owning everything."""
    kinds: list[TokenKind] = ["facebook" if i % 2 == 0 or tokens == 1 else "instagram" for i in range(tokens)]
    facebook = kinds.count("facebook")
    rest = n - (tokens - facebook)
    sizes = [1 if k == "instagram" else rest // facebook + (1 if j < rest % facebook else 0)
             for j, k in zip(_facebook_numbers(kinds), kinds, strict=True)]
    groups: list[tuple[TokenKind, list[int]]] = []
    start = 0
    for kind, size in zip(kinds, sizes, strict=True):
        groups.append((kind, list(range(start, start + size))))
        start += size
    return groups


def _facebook_numbers(kinds: list[TokenKind]) -> list[int]:
    counter = itertools.count()
    return [next(counter) if k == "facebook" else -1 for k in kinds]
