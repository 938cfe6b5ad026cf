"""A run's tokens: each variable read once, keyed by a digest of the token, named for people,
sharded, and checked for expiry at the start.

A token is one budget whatever names it: slots are keyed by a digest of the token itself, so two
variables holding the same token share one slot (never the token: a digest cannot be turned back
into it). Tokens come from the environment variables the config names, from a mapping, or from an
async callable ``token_env -> token`` that a service supplies.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping

from ..config import Config
from ..config.model import Login
from ..config.shards import Shard, assign
from ..config.tokens import read_token_file
from ..errors import ConfigError, HarvesterError
from ..graph.client import GraphClient
from ..schedule.retry import Retry
from ..summary import Stats
from ..tokens import health as token_health

TokenSource = Mapping[str, str] | Callable[[str], Awaitable[str]] | None
"""Where token variables are read: the environment (None), a mapping, or an async callable."""


def token_key(token: str) -> str:
    """The slot of a token: a short digest, the same for every variable that holds it."""
    return "token-" + hashlib.blake2b(token.encode(), digest_size=8).hexdigest()


class TokenKeys:
    """The tokens of one run, once :meth:`read`: by slot key, with the variables that name each."""

    def __init__(self, config: Config, source: TokenSource = None, shard: Shard | None = None):
        self.config, self.source, self.shard = config, source, shard
        self.tokens: dict[str, str] = {}
        """Slot key -> the token (only ever sent in a header)."""
        self.keys: dict[str, str] = {}
        """Token variable -> its slot key."""
        self.missing: dict[str, str] = {}
        """Token variable (of this shard) -> why it has no token."""
        self.names: dict[str, str] = {}
        """Slot key -> the token variables that name it (for people: the key is a digest)."""
        self.logins: dict[str, Login] = {}
        """Slot key -> the login of its first variable (which host its calls go to)."""
        self.expiry_at: dict[str, float] = {}
        """Token name -> when ``/debug_token`` said it expires (Unix seconds; asked only with [app])."""
        self._shard_names: set[str] | None = None
        """With a shard: the token names (variables) whose accounts it harvests."""

    def __repr__(self) -> str:     # never a token
        return f"TokenKeys(keys={len(self.tokens)}, missing={sorted(self.missing)})"

    async def read(self) -> None:
        """Ask every token variable of the config once; settle which are this shard's."""
        names: defaultdict[str, list[str]] = defaultdict(list)
        missing: list[tuple[str, str]] = []
        self.tokens, self.keys, self.logins = {}, {}, {}
        tables = self.config.token_tables()
        for env in self.config.token_keys():
            token_file = tables[env].token_file
            try:
                token = read_token_file(token_file) if token_file is not None else await self.lookup(env)
            except ConfigError as exc:
                missing.append((env, str(exc)))
                continue
            if not token:
                what = f"token_file {token_file!r} (unreadable or empty)" if token_file else f"token_env {env!r}"
                missing.append((env, f"{self.config.path}: no access token for {what}"))
                continue
            key = self.keys[env] = token_key(token)
            self.logins.setdefault(key, tables[env].login)
            self.tokens[key] = token
            names[key].append(env)
        self.names = {key: ", ".join(envs) for key, envs in names.items()}
        if self.shard is not None:
            shards = assign({env: self.keys.get(env) for env in self.config.token_keys()}, self.shard.count)
            self._shard_names = {name for name, index in shards.items() if index == self.shard.index}
        # Another shard reports the others.
        self.missing = {env: problem for env, problem in missing if self.in_shard(env)}

    async def lookup(self, env: str) -> str | None:
        """A variable's value from the token source: the environment, a mapping, or a callable."""
        source = self.source
        return (os.environ.get(env) if source is None else
                await source(env) if callable(source) else source.get(env))

    def in_shard(self, token_name: str) -> bool:
        """Whether the accounts of this token name (a variable or ``file:<path>``, a listed
        account's or a [[discover]] table's) are this run's: always without a shard."""
        return self._shard_names is None or token_name in self._shard_names

    def key_in_shard(self, key: str) -> bool:
        return any(self.in_shard(name) for name in self.names_of(key))

    def names_of(self, key: str) -> list[str]:
        """The token variables that hold the token of ``key`` (the key itself if none is known)."""
        return self.names.get(key, key).split(", ")

    def key_of(self, name: str) -> str | None:
        """The slot key of a token variable, None if it has no token."""
        return self.keys.get(name)

    async def check(self, client: GraphClient, stats: Stats, now: float) -> list[str]:
        """With [app]: one /debug_token call per token of the shard (the app's budget, not the
        token's); the warnings, said once, for tokens that expire within token_health.WARN_DAYS
        days or are invalid."""
        app = self.config.app
        if not app.configured:
            return []
        try:
            app_id, secret = await self.lookup(app.id_env or ""), await self.lookup(app.secret_env or "")
        except ConfigError:
            app_id = secret = None
        if not app_id or not secret:
            return _warn([], "token expiry not checked: the [app] id_env / secret_env variables are not set")
        warnings: list[str] = []
        health = []
        retry = Retry.of(self.config)           # as the harvest's calls: a transient fault is asked again
        keys = [key for key in self.tokens if self.key_in_shard(key)]
        for i, key in enumerate(keys):
            stats.inc("calls/debug_token")
            try:
                debug = await token_health.debug_token(client, f"{app_id}|{secret}", self.tokens[key], retry)
            except HarvesterError as exc:         # the app token refused, or retries used up: the rest alike
                unchecked = ", ".join(self.names.get(k, k) for k in keys[i:])
                _warn(warnings, f"token expiry not checked for {unchecked}: /debug_token refused: {exc}")
                break
            name = self.names.get(key, key)
            health.append(token_health.Health(name, self.logins.get(key, "facebook"), debug))
            if debug.expires_at:
                self.expiry_at[name] = float(debug.expires_at)
        return warnings + token_health.warnings(health, now)


def _warn(warnings: list[str], warning: str) -> list[str]:
    token_health.log.warning(warning)
    warnings.append(warning)
    return warnings
