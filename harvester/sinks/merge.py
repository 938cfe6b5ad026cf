"""The union of shards' JSONL outputs as one manifest: ``harvester manifest --merge OUT...``.

Each shard publishes its own ``<out>/shard-I-of-N/manifest.json`` (:mod:`.manifest`). The merged
manifest, written in a directory of its own (by default the shards' common parent, the config's
``[output] path``), lists every shard's current files, paths relative to itself, so that
:func:`.manifest.current_records` reads the union. Shards partition the accounts by token, so a
natural key is in one shard only and the files are listed as they are, never copied. A key can be
in two shards only when its account moved (N changed, or a token name now holds another name's
token): then the record harvested last wins, and each file holding such an account is copied
without the records that lost, into ``<into>/merged/``. The shards' own files are never changed.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec

from .. import files
from ..errors import ConfigError
from ..records import STREAMS, Stream
from .manifest import Manifest, _digest, _line, load, manifest_without_v1

LOCK = ".merge.lock"
"""In the merged manifest's directory: merges there take turns (each shard of ``run --merge``
merges after it publishes; the last one to finish leaves the whole union)."""
MERGED_DIR = "merged"
"""Under the merged manifest's directory: the copies of files that held a record that lost."""


class _Owner(msgspec.Struct):
    account_id: str = ""


class _Stamp(msgspec.Struct):
    harvested_at: str | None = None
    run_id: str | None = None


_owner = msgspec.json.Decoder(_Owner)
_stamp = msgspec.json.Decoder(_Stamp)


def merge(outputs: Sequence[str | os.PathLike], into: str | os.PathLike) -> Manifest:
    """Write ``<into>/manifest.json``: the current records of every stream of ``outputs``, each
    natural key once; ConfigError when an output has no manifest or ``into`` holds runs' own."""
    into = Path(into)
    shards = [Path(out) for out in outputs]
    _check_target(into, shards)
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--into {into}: cannot be created: {exc.strerror or exc}") from None
    with _turn(into):
        return _merge(shards, [_shard_manifest(out) for out in shards], into)


def shard_outputs(output: str | os.PathLike, count: int) -> list[Path]:
    """The outputs of the N shards under ``output`` that have published (``<output>/shard-I-of-N``)."""
    candidates = (Path(output) / f"shard-{index}-of-{count}" for index in range(count))
    return [out for out in candidates if (out / "manifest.json").is_file()]


@contextmanager
def _turn(into: Path) -> Iterator[None]:
    """An exclusive flock on ``<into>/.merge.lock``, waited for: a merge reads the shards'
    manifests and writes its own in one turn."""
    fd = os.open(into / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _merge(shards: list[Path], manifests: list[Manifest], into: Path) -> Manifest:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    streams: dict[str, list[str]] = {s: _merge_stream(s, shards, manifests, into, stamp) for s in STREAMS}
    merged = Manifest(streams=streams, updated_at=time.time(),
                      merged=[os.path.relpath(out, into) for out in shards])
    files.write_atomic(into / "manifest.json", msgspec.json.format(msgspec.json.encode(manifest_without_v1(merged))))
    _remove_stale_copies(into, merged)
    return merged


def _shard_manifest(out: Path) -> Manifest:
    if not (out / "manifest.json").is_file():
        raise ConfigError(f"{out}: no manifest.json; expected the output directory of a shard that has "
                          f"finished a run (e.g. out/shard-0-of-4)")
    try:
        return load(out)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{out / 'manifest.json'}: cannot be read: {exc}") from None


def _check_target(into: Path, shards: Sequence[Path]) -> None:
    """The merged manifest never replaces one that runs published (the shards' or any other)."""
    if any(into.resolve() == out.resolve() for out in shards):
        raise ConfigError(f"--into {into} is one of the shards' directories; expected another directory "
                          f"(by default their common parent)")
    if (into / "manifest.json").is_file():
        existing = _shard_manifest(into)
        if existing.runs or (not existing.merged and any(existing.streams.values())):
            raise ConfigError(f"{into / 'manifest.json'} is the manifest of runs published there, not of a merge; "
                              f"expected --into a directory without one")


def _merge_stream(stream: Stream, shards: Sequence[Path], manifests: Sequence[Manifest], into: Path,
                  stamp: str) -> list[str]:
    owners = [{name: _accounts(out / name) for name in m.files(stream)}
              for out, m in zip(shards, manifests, strict=True)]
    seen: dict[str, int] = {}
    shared: set[str] = set()
    for i, shard_files in enumerate(owners):
        for account in set().union(*shard_files.values()):
            if seen.setdefault(account, i) != i:
                shared.add(account)
    winners = _winners(shards, owners, shared) if shared else {}
    listed: list[str] = []
    for i, (out, shard_files) in enumerate(zip(shards, owners, strict=True)):
        for name, accounts in shard_files.items():
            if accounts & shared:
                copy = _copy_winners(out / name, i, shared, winners, into / MERGED_DIR / stamp / stream, len(listed))
                if copy is not None:
                    listed.append(os.path.relpath(copy, into))
            else:
                listed.append(os.path.relpath(out / name, into))
    return listed


def _accounts(path: Path) -> set[str]:
    with open(path, "rb") as f:
        return {_owner.decode(line).account_id for line in f}


def _winners(shards: Sequence[Path], owners: Sequence[dict[str, set[str]]], shared: set[str]) -> dict[int, int]:
    """Natural-key digest -> the shard whose record of it was harvested last, for the accounts in
    more than one shard (only theirs are held: a few accounts' records, not the world's)."""
    best: dict[int, tuple[tuple[str, str], int]] = {}
    for i, (out, shard_files) in enumerate(zip(shards, owners, strict=True)):
        for name, accounts in shard_files.items():
            if not accounts & shared:
                continue
            for record in _records(out / name, shared):
                digest = _digest(record)
                when = (record.get("harvested_at") or "", record.get("run_id") or "")
                if digest not in best or when > best[digest][0]:
                    best[digest] = (when, i)
    return {digest: i for digest, (_, i) in best.items()}


def _records(path: Path, accounts: set[str]):
    with open(path, "rb") as f:
        for line in f:
            if _owner.decode(line).account_id in accounts:
                yield _line.decode(line)


def _copy_winners(source: Path, shard: int, shared: set[str], winners: dict[int, int], directory: Path,
                  n: int) -> Path | None:
    """``source`` without the records another shard has a later one of; None if nothing is left."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"part-{n:05d}.jsonl"
    kept = 0
    with open(source, "rb") as f, files.replacing(target) as out:
        for line in f:
            if _owner.decode(line).account_id in shared and winners[_digest(_line.decode(line))] != shard:
                continue
            out.write(line)
            kept += 1
    if not kept:
        target.unlink()
        return None
    return target


def _remove_stale_copies(into: Path, manifest: Manifest) -> None:
    """Copies an earlier merge made that this one no longer lists."""
    current = {os.path.normpath(into / name) for names in manifest.streams.values() for name in names}
    for path in (into / MERGED_DIR).glob("*/*/part-*.jsonl"):
        if os.path.normpath(path) not in current:
            path.unlink()
    for directory in sorted((into / MERGED_DIR).glob("*/*"), reverse=True) + sorted((into / MERGED_DIR).glob("*")):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
