"""JSONL files, one directory per run: ``<path>/<run_id>/part-00001.jsonl`` ...

Each part is written as ``.tmp`` and renamed once flushed and fsynced, so a part file is complete
or absent. Records are encoded by msgspec straight from the Record structs (no dict in between).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Sequence

import msgspec

from ..records import Record
from .base import Commit

_encoder = msgspec.json.Encoder()


class JsonlSink:
    def __init__(self, directory: str | os.PathLike, *, part_records: int = 100_000,
                 commit_seconds: float = 15.0, buffer_bytes: int = 1 << 20):
        self.directory = Path(directory)
        self.part_records = part_records
        self.commit_seconds = commit_seconds
        self.buffer_bytes = buffer_bytes
        self._file = None
        self._buffer = bytearray()
        self._units: list[str] = []
        self._records = 0
        self._opened_at = time.monotonic()
        self._seq: int | None = None

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        if records:
            self._buffer += _encoder.encode_lines(records)
            self._records += len(records)
        self._units.append(unit_id)
        if len(self._buffer) >= self.buffer_bytes:
            self._spill()

    def should_commit(self) -> bool:
        return bool(self._units) and (self._records >= self.part_records
                                      or time.monotonic() - self._opened_at >= self.commit_seconds)

    async def commit(self) -> Commit | None:
        """Make everything written so far durable; writes may go on while the part is fsynced."""
        if not self._units:
            return None
        self._spill()
        file, units, records = self._file, tuple(self._units), self._records
        self._file, self._units, self._records, self._opened_at = None, [], 0, time.monotonic()
        if file is None:
            return Commit("", units, 0)  # only units without records: nothing to write
        name = self._next_name()
        await asyncio.to_thread(_finish, file, self.directory / name)
        return Commit(name, units, records)

    async def close(self) -> Commit | None:
        return await self.commit()

    def recover(self, committed_parts: set[str]) -> list[str]:
        if not self.directory.exists():
            return []
        removed = []
        for path in sorted(self.directory.glob("part-*")):
            if path.name not in committed_parts:
                path.unlink()
                removed.append(path.name)
        self._seq = self._last_part()
        return removed

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
            self._file = open(self.directory / f"part-{id(self._buffer)}-{time.monotonic_ns()}.tmp", "wb")
        self._file.write(self._buffer)
        self._buffer.clear()


def _finish(file, final: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(file.name, final)
    _fsync_dir(final.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
