"""Which JSONL files hold the current records: ``<output>/manifest.json``.

Each run writes its own directory of parts per stream (``<run>/<stream>/part-*.jsonl``). When a
run finishes, :func:`publish` makes its parts current, stream by stream, and takes the facts it
re-fetched out of the files published before: an older file that holds a natural key the new run
also holds is rewritten without those records (or dropped when nothing is left). The manifest is
replaced atomically and durably (``files.write_atomic``: the directory is fsynced too, for the
manifest is the publish point), so readers see the old set or the new one, and a file not named
in the manifest is never current. Parts are listed only here, at publish, after the run's last
commit: a part that a live run is still appending to is never read as complete. Reading every
current file of a stream (``streams[stream]``) gives each natural key exactly once, with the
value of the latest run that fetched it.

Which API said it: each run that published is described in ``run_info[run_id]`` (its
``[graph] api_version`` and the metrics it asked per kind of object), so a record's ``run_id``
leads to them: ``views`` under v25 is never added to ``impressions`` under v21.

The files may be JSON lines or Parquet (``part-*.parquet``, see parquet.py): a
:class:`FileFormat` says how to read a file's records and how to rewrite one without some keys;
:data:`JSONL` is the default, and every function takes the format of the run it publishes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec

from .. import files
from ..errors import ConfigError
from ..records import STREAMS, Stream, key_of

_line = msgspec.json.Decoder(dict)


class FileFormat(Protocol):
    suffix: str
    """``.jsonl``, ``.parquet``: what a part's name ends with."""

    def read(self, path: Path) -> Iterator[dict]:
        """Every record of a file, as a dict (timestamps as the API's strings)."""
        ...

    def rewrite(self, source: Path, out: BinaryIO, drop: Callable[[dict], bool]) -> tuple[int, int]:
        """Write to ``out`` the records of ``source`` that ``drop`` does not take; ``(kept, dropped)``."""
        ...


class JsonlFiles:
    suffix = ".jsonl"

    def read(self, path: Path) -> Iterator[dict]:
        with open(path, "rb") as f:
            for line in f:
                yield _line.decode(line)

    def rewrite(self, source: Path, out: BinaryIO, drop: Callable[[dict], bool]) -> tuple[int, int]:
        kept = dropped = 0
        with open(source, "rb") as f:
            for line in f:               # the line itself is copied: no re-encoding
                if drop(_line.decode(line)):
                    dropped += 1
                else:
                    kept += 1
                    out.write(line)
        return kept, dropped


JSONL: FileFormat = JsonlFiles()


class RunInfo(msgspec.Struct, omit_defaults=True):
    """What a run asked (the facts of summary.json a downstream model needs beside the records)."""
    api_version: str | None = None
    metrics_asked: dict[str, list[str]] = {}
    """Kind of object (``media FEED IMAGE (facebook, v25.0)``) -> the metrics asked of it."""


class Manifest(msgspec.Struct):
    version: int = 2
    runs: list[str] = []
    run_info: dict[str, RunInfo] = {}
    """Run id (a record's ``run_id``) -> what it asked; runs published before this was kept have none."""
    streams: dict[str, list[str]] = {}
    """Stream -> its current files, paths relative to the output directory."""
    updated_at: float = 0.0
    current: list[str] = []
    """Version 1 (before the streams): the current insights files, read as ``streams["insights"]``."""
    merged: list[str] = []
    """A merged manifest's shards (output directories, relative to it): ``harvester manifest --merge``."""

    def files(self, stream: Stream = "insights") -> list[str]:
        return self.streams.get(stream, [])


def load(output: Path) -> Manifest:
    path = output / "manifest.json"
    if not path.exists():
        return Manifest()
    manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    if manifest.version < 2:
        manifest = Manifest(runs=manifest.runs, streams={"insights": manifest.current}, updated_at=manifest.updated_at)
    return manifest


def publish(output: str | os.PathLike, run_id: str, files_format: FileFormat = JSONL,
            info: RunInfo | None = None) -> Manifest:
    """Make ``run_id``'s parts current, superseding older records with the same natural key, and
    keep ``info`` (what the run asked) under its id.
    Under the output's lock (``.manifest.lock``, flock): a harvest and a webhook receiver may
    publish into one output at once, and each must see the other's manifest."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)       # a run that found nothing still publishes
    with open(output / ".manifest.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _publish(output, run_id, files_format, info)


def _publish(output: Path, run_id: str, files_format: FileFormat, info: RunInfo | None) -> Manifest:
    manifest = load(output)
    if manifest.merged:             # its files are the shards': a run never supersedes them
        raise ConfigError(f"{output}: holds the merged manifest of shards ({', '.join(manifest.merged)}); "
                          f"expected an [output] path of runs' own")
    streams: dict[str, list[str]] = {}
    for stream in STREAMS:
        pattern = f"part-*{files_format.suffix}"
        new_files = sorted(str(p.relative_to(output)) for p in (output / run_id / stream).glob(pattern))
        older = [name for name in manifest.files(stream) if name not in new_files and (output / name).exists()]
        current = []
        if older:                   # the first run has nothing to supersede: no key is read at all
            fresh = KeySet((output / f for f in new_files), files_format)
            current = [kept for name in older
                       if (kept := _without(output, name, fresh, run_id, _format_of(name, files_format)))]
        streams[stream] = current + new_files
    runs = [r for r in manifest.runs if r != run_id] + [run_id]
    run_info = {r: manifest.run_info[r] for r in runs if r in manifest.run_info}
    if info is not None:            # a webhook's publish describes nothing: an earlier description stays
        run_info[run_id] = info
    manifest = Manifest(runs=runs, run_info=run_info, streams=streams, updated_at=time.time())
    files.write_atomic(output / "manifest.json",
                       msgspec.json.format(msgspec.json.encode(manifest_without_v1(manifest))))
    _remove_unlisted(output, manifest)
    return manifest


def manifest_without_v1(manifest: Manifest) -> dict:
    written = msgspec.to_builtins(manifest)
    del written["current"]
    if not manifest.run_info:
        del written["run_info"]
    if not manifest.merged:
        del written["merged"]
    return written


def current_records(output: str | os.PathLike, stream: Stream = "insights",
                    files_format: FileFormat = JSONL) -> Iterator[dict]:
    """Every current record of a stream (a dict per record), each natural key once."""
    output = Path(output)
    for name in load(output).files(stream):
        yield from _format_of(name, files_format).read(output / name)


def _format_of(name: str, files_format: FileFormat) -> FileFormat:
    """The format of a listed file: the run's, or JSONL (an output that changed format keeps
    its older JSONL files current until a later run replaces their keys)."""
    return files_format if name.endswith(files_format.suffix) else JSONL


def _digest(record: dict) -> int:
    """64 bits of the natural key's hash: a collision among a billion keys has odds of 1 in 30."""
    return int.from_bytes(hashlib.blake2b(msgspec.json.encode(key_of(record)), digest_size=8).digest(), "big")


class KeySet:
    """The natural keys of some JSONL files as 64-bit digests in a few thousand C arrays: 8 bytes
    a record (a Python set of them would take about ten times that), found by a short scan."""

    BUCKETS = 4096

    def __init__(self, paths: Iterable[Path], files_format: FileFormat = JSONL):
        self._buckets = [array("Q") for _ in range(self.BUCKETS)]
        for path in paths:
            for record in files_format.read(path):
                digest = _digest(record)
                self._buckets[digest % self.BUCKETS].append(digest)

    def __contains__(self, digest: int) -> bool:
        return digest in self._buckets[digest % self.BUCKETS]


class _Unchanged(Exception):
    """A rewrite that would drop nothing, or everything: abandoned (its temporary removed)."""


def _without(output: Path, name: str, fresh: KeySet, run_id: str, files_format: FileFormat = JSONL) -> str | None:
    """``name`` minus the records whose key is in ``fresh``: the same file if none is, else a rewrite."""
    source = output / name
    target = source.with_name(f"{source.name.split('.')[0]}.{run_id}{files_format.suffix}")
    dropped = kept = 0
    try:
        with files.replacing(target) as out:
            kept, dropped = files_format.rewrite(source, out, lambda record: _digest(record) in fresh)
            if not dropped or not kept:
                raise _Unchanged
    except _Unchanged:
        return name if not dropped else None
    return str(target.relative_to(output))


def _remove_unlisted(output: Path, manifest: Manifest) -> None:
    """Parts superseded by a rewrite; only directories of runs the manifest knows are touched
    (``<run>/part-*``: the layout before the streams)."""
    current = {name for names in manifest.streams.values() for name in names}
    for run_id in manifest.runs:
        for pattern in ("part-*.jsonl", "*/part-*.jsonl", "*/part-*.parquet"):
            for path in (output / run_id).glob(pattern):
                if str(path.relative_to(output)) not in current:
                    path.unlink()
