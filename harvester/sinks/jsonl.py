"""JSONL files, one directory per run: ``<path>/<run_id>/part-00001.jsonl`` ...

A part is appended to across many commits, up to ``part_records`` records, so that frequent
checkpoints (every ``commit_seconds`` or ``commit_units`` units, whichever comes first) bound
the work a crash repeats without making thousands of small files. A commit writes what is
buffered, fsyncs the part (and its directory, when the part is new) and returns the part's
committed length; the state stores ``(part, bytes, records)`` with the units. On resume,
:meth:`JsonlSink.recover` cuts every committed part back to its committed length (bytes appended
after the last checkpoint belong to units that will be fetched again) and removes parts never
committed; appending goes on in a new part. A part may thus hold a partial tail while the run is
alive: nothing reads parts before the run is published (the manifest lists them only then).
Records are encoded by msgspec straight from the Record structs (no dict in between).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from .. import files
from ..records import Record
from .base import Commit

_encoder = msgspec.json.Encoder()


class JsonlSink:
    def __init__(self, directory: str | os.PathLike, *, part_records: int = 100_000,
                 commit_seconds: float = 1.0, commit_units: int = 100, buffer_bytes: int = 1 << 20):
        self.directory = Path(directory)
        self.part_records = part_records
        self.commit_seconds = commit_seconds
        self.commit_units = commit_units
        self.buffer_bytes = buffer_bytes
        self._file: BinaryIO | None = None
        self._part = ""                         # name of the open part
        self._part_records = 0                  # records in the open part, committed or not
        self._part_synced = False               # the directory entry of the open part is durable
        self._buffer = bytearray()
        self._units: list[str] = []
        self._committed_at = time.monotonic()
        self._seq: int | None = None

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        if records:
            self._buffer += _encoder.encode_lines(records)
            self._part_records += len(records)
        self._units.append(unit_id)
        if len(self._buffer) >= self.buffer_bytes:
            self._spill()

    def should_commit(self) -> bool:
        return bool(self._units) and (len(self._units) >= self.commit_units
                                      or self._part_records >= self.part_records
                                      or time.monotonic() - self._committed_at >= self.commit_seconds)

    async def commit(self) -> Commit | None:
        """Make everything written so far durable; writes may go on while the part is fsynced
        (they land after the committed length, or in the next part once this one is full)."""
        if not self._units:
            return None
        self._spill()
        units, self._units, self._committed_at = tuple(self._units), [], time.monotonic()
        file = self._file
        if file is None:
            return Commit("", units, 0)  # only units without records since the last commit: nothing to write
        commit = Commit(self._part, units, self._part_records, file.tell())
        new, self._part_synced = not self._part_synced, True
        full = self._part_records >= self.part_records
        if full:                          # the next write opens the next part
            self._file, self._part, self._part_records, self._part_synced = None, "", 0, False
        await asyncio.to_thread(_sync, file, self.directory if new else None, full)
        return commit

    async def close(self) -> Commit | None:
        commit = await self.commit()
        if self._file is not None:
            self._file.close()
            self._file, self._part, self._part_records, self._part_synced = None, "", 0, False
        return commit

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        """Cut committed parts back to their committed length (``None``: the whole file, as a
        harvester before lengths were recorded committed it) and remove the others."""
        if not self.directory.exists():
            return []
        changed = []
        for path in sorted(self.directory.glob("part-*")):
            length = committed_parts.get(path.name, -1)
            if length == -1:
                path.unlink()
                changed.append(path.name)
            elif length is not None and path.stat().st_size > length:
                _truncate(path, length)
                changed.append(f"{path.name} (from byte {length:,})")
        if changed:
            files.fsync_dir(self.directory)
        self._seq = self._last_part()
        return changed

    def publish(self) -> None:
        """Make this run's parts the current records of the output directory (see manifest)."""
        from . import manifest
        manifest.publish(self.directory.parent, self.directory.name)

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.jsonl"))

    # -- internals --------------------------------------------------------------------------

    def _last_part(self) -> int:
        return max((int(p.name[5:10]) for p in self.parts()), default=0) if self.directory.exists() else 0

    def _next_name(self) -> str:
        if self._seq is None:
            self._seq = self._last_part()
        self._seq += 1
        return f"part-{self._seq:05d}.jsonl"

    def _spill(self) -> None:
        if not self._buffer:
            return
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._part = self._next_name()
            self._file = open(self.directory / self._part, "xb")  # noqa: SIM115 (open across commits)
        self._file.write(self._buffer)
        self._file.flush()                      # to the OS: a commit's length is what the file holds
        self._buffer.clear()


def _sync(file: BinaryIO, directory: Path | None, close: bool) -> None:
    """The part's bytes to disk (and its directory entry, for a new part); a full part is closed."""
    os.fsync(file.fileno())
    if directory is not None:
        files.fsync_dir(directory)
    if close:
        file.close()


def _truncate(path: Path, length: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(length)
        f.flush()
        os.fsync(f.fileno())
