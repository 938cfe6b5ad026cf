"""Shards: ``harvester run --shard I/N`` harvests the accounts of the tokens that hash to shard I.

A token's rate limit is one budget, so a token is never split between shards: every account of a
token goes to the token's shard. What is hashed is the token's *name* (its environment variable,
token_file path, or a discover table's token name): stable, known before any call, never the token
text. Why the name and not a digest of the token:

- adding an account moves no other token: a name's shard depends on the name and N only;
- rotating a token (a refreshed long-lived token is a new string under the same name) moves
  nothing either, so an account's state (owed work, refresh ages) stays in its shard's state file;
  a digest of the token would move the account to another shard at every refresh;
- two names holding one token stay together: the tokens are read at start (before any call) and
  names holding the same token all go to the shard of the first of them in sorted order. Adding
  a name that holds a token others hold already can move that token (only that one).

Shards are numbered from 0 to N-1, like a Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX`` and
an Airflow mapped task's ``map_index``. Each shard keeps its own state file and output directory by
default (:func:`sharded`): ``state.shard-0-of-4.sqlite`` and ``out/shard-0-of-4/``; ``harvester
manifest --merge`` (:mod:`harvester.sinks.merge`) gives their union.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ..errors import ConfigError
from .model import Config
from .tokens import resolve

INDEX_ENV = "JOB_COMPLETION_INDEX"
_SHARD = re.compile(r"(\d+)/(\d+)")


class Shard(msgspec.Struct, frozen=True):
    index: int
    """From 0 to count - 1."""
    count: int

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def parse(text: str) -> Shard:
    """``I/N`` as a Shard, or ConfigError saying what is allowed."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--shard {text!r} is not valid; expected I/N, whole numbers with 0 <= I < N "
                          f"(e.g. --shard 0/4 .. --shard 3/4)")
    return _checked(int(match[1]), int(match[2]), f"--shard {text}")


def from_env(count: int, env: Mapping[str, str] | None = None) -> Shard:
    """``--shards N``: the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it)."""
    env = os.environ if env is None else env
    text = env.get(INDEX_ENV)
    if text is None or not text.strip():
        raise ConfigError(f"--shards {count}: the environment variable {INDEX_ENV} is not set; expected the "
                          f"shard index from 0 to {count - 1} in it (a Kubernetes Indexed Job sets it), "
                          f"or --shard I/{count}")
    if not text.strip().isdigit():
        raise ConfigError(f"--shards {count}: {INDEX_ENV} = {text!r} is not valid; expected a whole number "
                          f"from 0 to {count - 1}")
    return _checked(int(text), count, f"--shards {count} with {INDEX_ENV}={text.strip()}")


def _checked(index: int, count: int, where: str) -> Shard:
    if count < 1:
        raise ConfigError(f"{where}: N = {count} is not valid; expected at least 1 shard")
    if index >= count:
        raise ConfigError(f"{where}: shard index {index} is out of range; expected 0 <= I < N, "
                          f"from 0 to {count - 1} (shards are numbered from 0)")
    return Shard(index, count)


def shard_of(name: str, count: int) -> int:
    """The shard of a token name: 64 bits of its BLAKE2b digest, modulo the number of shards
    (the same in every process and Python version, unlike ``hash``)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def assign(keys: Mapping[str, str | None], count: int) -> dict[str, int]:
    """Token name -> its shard. ``keys``: token name -> the slot key of the token it holds (a
    digest, see :func:`harvester.run.harvester.token_key`), or None when it holds none (missing): names
    holding one token all take the shard of the first of them in sorted order."""
    first: dict[str, str] = {}
    for name in sorted(keys):
        key = keys[name]
        if key is not None:
            first.setdefault(key, name)
    return {name: shard_of(first[key] if key is not None else name, count) for name, key in keys.items()}


def sharded(config: Config, shard: Shard, *, state: bool = True, output: bool = True) -> Config:
    """The config with a state file and an output directory of the shard's own:
    ``harvest-state.sqlite`` -> ``harvest-state.shard-0-of-4.sqlite``, ``out`` -> ``out/shard-0-of-4``
    (left as they are where ``state``/``output`` is False: a shared sink, say)."""
    if state:
        path = Path(config.state.path)
        suffix = path.suffix or ".sqlite"
        named = path.with_name(f"{path.stem if path.suffix else path.name}.{shard.name}{suffix}")
        config = msgspec.structs.replace(config, state=msgspec.structs.replace(config.state, path=str(named)))
    if output:
        directory = str(Path(config.output.path) / shard.name)
        config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, path=directory))
    return config


def own(config: Config, shard: Shard, env: Mapping[str, str] | None = None) -> Config:
    """The config cut to the shard's accounts and [[discover]] tables, with the tokens read as a run
    reads them (for what happens before any call: a backfill's estimate). A run keeps the config
    whole and asks :meth:`harvester.Harvester.in_shard` instead."""
    keys = {}
    for name in config.token_keys():
        token = resolve(name, env)
        keys[name] = hashlib.blake2b(token.encode(), digest_size=8).hexdigest() if token else None
    mine = {name for name, index in assign(keys, shard.count).items() if index == shard.index}
    return msgspec.structs.replace(config, accounts=tuple(a for a in config.accounts if a.token_name in mine),
                                   discover=tuple(d for d in config.discover if d.token_name in mine))
