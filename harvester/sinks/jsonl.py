"""JSONL files, one directory per run and stream: ``<path>/<run_id>/<stream>/part-00001.jsonl`` ...

Each stream (insights, media, accounts) has its own open part, appended to across many commits up
to ``part_records`` records, so that frequent checkpoints (every ``commit_seconds`` or
``commit_units`` units, whichever comes first) bound the work a crash repeats without making
thousands of small files. A commit writes what is buffered, fsyncs every part it touched (and its
directory, when the part is new) and returns each part's committed length; the state stores
``(stream/part, bytes, records)`` with the units. On resume, :meth:`JsonlSink.recover` cuts every
committed part back to its committed length (bytes appended after the last checkpoint belong to
units that will be fetched again) and removes parts never committed; appending goes on in new
parts. A part may thus hold a partial tail while the run is alive: nothing reads parts before the
run is published (the manifest lists them only then). Records are encoded by msgspec straight
from the record structs (no dict in between).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec

from .. import files
from ..records import STREAM_OF, STREAMS, Record, Stream
from .base import Commit, CommitPolicy, PartCommit

if TYPE_CHECKING:
    from .manifest import RunInfo

_encoder = msgspec.json.Encoder()


class _StreamParts:
    """The parts of one stream of a run: the open one, its buffer and its counts."""

    def __init__(self, directory: Path, stream: Stream, part_records: int):
        self.directory, self.stream, self.part_records = directory, stream, part_records
        self.file: BinaryIO | None = None
        self.part = ""                          # name of the open part
        self.records = 0                        # records in the open part, committed or not
        self.synced = False                     # the directory entry of the open part is durable
        self.buffer = bytearray()
        self.seq: int | None = None

    def add(self, records: Sequence[Record]) -> None:
        self.buffer += _encoder.encode_lines(records)
        self.records += len(records)

    @property
    def full(self) -> bool:
        return self.records >= self.part_records

    def spill(self) -> None:
        if not self.buffer:
            return
        if self.file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.part = self._next_name()
            self.file = open(self.directory / self.part, "xb")  # noqa: SIM115 (open across commits)
        self.file.write(self.buffer)
        self.file.flush()                       # to the OS: a commit's length is what the file holds
        self.buffer.clear()

    def commit(self) -> tuple[PartCommit, BinaryIO, Path | None, bool] | None:
        """What a commit of this stream makes durable, and how (file, new directory entry, close)."""
        self.spill()
        file = self.file
        if file is None:
            return None
        done = PartCommit(f"{self.stream}/{self.part}", self.records, file.tell())
        new, self.synced = not self.synced, True
        full = self.full
        if full:                          # the next write opens the next part
            self.file, self.part, self.records, self.synced = None, "", 0, False
        return done, file, self.directory if new else None, full

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file, self.part, self.records, self.synced = None, "", 0, False

    def recover(self, committed: Mapping[str, int | None]) -> list[str]:
        changed: list[str] = []
        if not self.directory.exists():
            return changed
        for path in sorted(self.directory.glob("part-*")):
            name = f"{self.stream}/{path.name}"
            length = committed.get(name, -1)
            if length == -1:
                path.unlink()
                changed.append(name)
            elif length is not None and path.stat().st_size > length:
                _truncate(path, length)
                changed.append(f"{name} (from byte {length:,})")
        if changed:
            files.fsync_dir(self.directory)
        self.seq = self._last_part()
        return changed

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.jsonl")) if self.directory.exists() else []

    def _last_part(self) -> int:
        return max((int(p.name[5:10]) for p in self.parts()), default=0)

    def _next_name(self) -> str:
        if self.seq is None:
            self.seq = self._last_part()
        self.seq += 1
        return f"part-{self.seq:05d}.jsonl"


class JsonlSink:
    def __init__(self, directory: str | os.PathLike, *, part_records: int = 100_000,
                 commit_seconds: float = 1.0, commit_units: int = 100, buffer_bytes: int = 1 << 20,
                 clock: Callable[[], float] = time.monotonic):
        self.directory = Path(directory)
        self.part_records = part_records
        self.policy = CommitPolicy(commit_seconds, units=commit_units, clock=clock)
        """Every ``commit_seconds`` or ``commit_units`` units, or when a part is full: a commit
        appends to the open part and fsyncs it, so it costs no file."""
        self.buffer_bytes = buffer_bytes
        self._streams = {stream: _StreamParts(self.directory / stream, stream, part_records) for stream in STREAMS}
        self._buffered = 0
        self._full = self._any_full()
        """Some stream's open part is full: kept up to date by adding records (which fill a part)
        and committing (which starts the next), not worked out again for every unit."""
        self._units: list[str] = []
        self.run_info: RunInfo | None = None
        """What the run asked (set by the harvester before :meth:`publish`): kept in the manifest."""

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        if records:
            kinds = set(map(type, records))
            if len(kinds) == 1:
                self._add(STREAM_OF[kinds.pop()], records)
            else:
                for r in records:
                    self._add(STREAM_OF[type(r)], (r,))
        self._units.append(unit_id)
        if self._buffered >= self.buffer_bytes:
            for parts in self._streams.values():
                parts.spill()
            self._buffered = 0

    def _add(self, stream: Stream, records: Sequence[Record]) -> None:
        parts = self._streams[stream]
        before = len(parts.buffer)
        parts.add(records)
        self._buffered += len(parts.buffer) - before
        self._full = self._full or parts.full

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units)) or (self._full and bool(self._units))

    async def commit(self) -> Commit | None:
        """Make everything written so far durable; writes may go on while the parts are fsynced
        (they land after the committed lengths, or in the next parts once these are full)."""
        if not self._units:
            return None
        units, self._units = tuple(self._units), []
        self.policy.committed()
        self._buffered = 0
        syncs = [s for parts in self._streams.values() if (s := parts.commit()) is not None]
        self._full = self._any_full()
        if syncs:
            await asyncio.to_thread(_sync, [(file, directory, close) for _, file, directory, close in syncs])
        return Commit(units, tuple(done for done, *_ in syncs))

    async def close(self) -> Commit | None:
        commit = await self.commit()
        for parts in self._streams.values():
            parts.close()
        self._full = self._any_full()
        return commit

    def _any_full(self) -> bool:
        return any(parts.full for parts in self._streams.values())

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        """Cut committed parts back to their committed length (``None``: the whole file) and
        remove the others."""
        return [change for parts in self._streams.values() for change in parts.recover(committed_parts)]

    def publish(self) -> None:
        """Make this run's parts the current records of the output directory (see manifest)."""
        from . import manifest
        manifest.publish(self.directory.parent, self.directory.name, info=self.run_info)

    def parts(self, stream: Stream = "insights") -> list[Path]:
        return self._streams[stream].parts()


def _sync(syncs: Sequence[tuple[BinaryIO, Path | None, bool]]) -> None:
    """Each part's bytes to disk (and its directory entry, for a new part); a full part is closed."""
    for file, directory, close in syncs:
        os.fsync(file.fileno())
        if directory is not None:
            files.fsync_dir(directory)
            files.fsync_dir(directory.parent)
        if close:
            file.close()


def _truncate(path: Path, length: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(length)
        f.flush()
        os.fsync(f.fileno())
