"""Parquet files, one dataset per stream: ``<path>/<run_id>/<stream>/part-000001-000040.parquet`` ...

A Parquet file is complete only once its footer is written, so a part cannot grow across commits
as a JSONL part does. Each commit instead writes what it holds as one small file per stream,
``c-000007.parquet`` (to a temporary name, fsynced, renamed: ``files.replacing``), which the state
records as a committed part. Small files are merged into readers' sizes as the run goes: once the
committed small files of a stream hold ``part_records`` records, the next commit writes them as
one ``part-<first>-<last>.parquet`` (row groups of ``row_group_records``), then removes them; at
publish the remaining ones are merged the same way, and the manifest (manifest.py, as for JSONL)
lists the ``part-*`` files only. The name of a merged file says which small files it replaces, so
every crash leaves a state :meth:`ParquetSink.recover` can settle from the names alone:

- a small file the state does not list was never committed: removed (its units are fetched again);
- a merged file is kept only if every small file it names was committed (it is then complete: it
  was renamed into place after being written in full); the small files it covers are removed;
- temporaries (``.*.tmp``) of a killed write are removed.

Merges read only committed files, so a merged file never holds an uncommitted record, and no record
is in two kept files. Nothing reads a run's files before it is published.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .. import files
from ..records import STREAM_OF, STREAMS, Record, Stream
from . import arrow, manifest
from .base import Commit, PartCommit

COMPRESSION = "zstd"
ROW_GROUP_RECORDS = 128 * 1024
"""Rows per row group of a merged file: a few MB of columns, the size readers parallelise over."""

_SMALL = re.compile(r"c-(\d{6})\.parquet")
_MERGED = re.compile(r"part-(\d{6})-(\d{6})(?:\..+)?\.parquet")


class ParquetFiles:
    """Reading and rewriting Parquet parts, for the manifest."""

    suffix = ".parquet"

    def read(self, path: Path) -> Iterator[dict]:
        stream = _stream_of(path)
        file = pq.ParquetFile(path)
        for group in range(file.num_row_groups):
            yield from arrow.to_dicts(file.read_row_group(group), stream)

    def rewrite(self, source: Path, out: BinaryIO, drop: Callable[[dict], bool]) -> tuple[int, int]:
        stream = _stream_of(source)
        table = pq.read_table(source)
        keep = pa.array([not drop(r) for r in arrow.to_dicts(table, stream)], pa.bool_())
        kept = table.filter(keep)
        _write(kept, out)
        return kept.num_rows, table.num_rows - kept.num_rows


PARQUET: manifest.FileFormat = ParquetFiles()


def _stream_of(path: Path) -> Stream:
    stream = path.parent.name
    if stream not in STREAMS:
        raise ValueError(f"{path}: not in a stream's directory ({', '.join(STREAMS)})")
    return stream


def _write(table: pa.Table, out: BinaryIO | str | os.PathLike) -> None:
    pq.write_table(table, out, row_group_size=ROW_GROUP_RECORDS, compression=COMPRESSION)


class _StreamFiles:
    """One stream of a run: the records buffered since the last commit, the committed small
    files not merged yet, and the merged files whose small files are still to be removed."""

    def __init__(self, directory: Path, stream: Stream, part_records: int):
        self.directory, self.stream, self.part_records = directory, stream, part_records
        self.buffer: list[Record] = []
        self.small: list[tuple[int, pa.Table | None]] = []
        """Committed small files not merged yet, in order: (seq, its table, kept from the commit that
        wrote it so a merge need not read it back; None for a file of an earlier attempt)."""
        self.merged: list[Path] = []                # small files to remove once it is durable
        self.seq = 0
        self._small_records = 0

    def commit(self, records: Sequence[Record]) -> PartCommit | None:
        """Write ``records`` as the next small file (durably); merge the committed ones first when
        they are enough for a part. Runs in a thread (the buffer is not touched)."""
        self._remove_merged()
        if self._small_records >= self.part_records:
            self.merge()
        if not records:
            return None
        table = arrow.to_table(self.stream, records)
        self.seq += 1
        new = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        if new:
            files.fsync_dir(self.directory.parent)
            files.fsync_dir(self.directory.parent.parent)
        with files.replacing(self.directory / f"c-{self.seq:06d}.parquet") as out:
            _write(table, out)
        self.small.append((self.seq, table))
        self._small_records += table.num_rows
        return PartCommit(f"{self.stream}/c-{self.seq:06d}.parquet", table.num_rows)

    def merge(self) -> None:
        """The committed small files as one part file; they are removed at the next commit or
        at publish (a crash in between: recover removes them)."""
        if not self.small:
            return
        first, last = self.small[0][0], self.small[-1][0]
        sources = [self.directory / f"c-{seq:06d}.parquet" for seq, _ in self.small]
        table = pa.concat_tables(pq.read_table(path, schema=arrow.SCHEMAS[self.stream]) if kept is None else kept
                                 for path, (_, kept) in zip(sources, self.small, strict=True))
        with files.replacing(self.directory / f"part-{first:06d}-{last:06d}.parquet") as out:
            _write(table, out)
        self.small, self.merged, self._small_records = [], self.merged + sources, 0

    def _remove_merged(self) -> None:
        for path in self.merged:
            path.unlink(missing_ok=True)
        if self.merged:
            files.fsync_dir(self.directory)
        self.merged = []

    def publish(self) -> None:
        self.merge()
        self._remove_merged()

    def recover(self, committed: Mapping[str, int | None]) -> list[str]:
        changed: list[str] = []
        if not self.directory.exists():
            return changed
        done = {int(m[1]) for name in committed
                if name.startswith(f"{self.stream}/") and (m := _SMALL.fullmatch(name.split("/", 1)[1]))}
        covered: set[int] = set()
        for path in sorted(self.directory.iterdir()):
            if (m := _MERGED.fullmatch(path.name)) and path.name.count(".") == 1:
                first, last = int(m[1]), int(m[2])
                if set(range(first, last + 1)) <= done:
                    covered |= set(range(first, last + 1))
                    continue
            elif ((m := _SMALL.fullmatch(path.name)) and int(m[1]) in done) or _MERGED.fullmatch(path.name):
                continue
            path.unlink()
            changed.append(f"{self.stream}/{path.name}")
        for seq in sorted(covered):
            small = self.directory / f"c-{seq:06d}.parquet"
            if small.exists():
                small.unlink()
                changed.append(f"{self.stream}/{small.name} (merged)")
        if changed:
            files.fsync_dir(self.directory)
        self.seq = max(done, default=0)
        self.small, self._small_records = [], 0
        for seq in sorted(done - covered):
            small = self.directory / f"c-{seq:06d}.parquet"
            if small.exists():
                self.small.append((seq, None))
                self._small_records += pq.ParquetFile(small).metadata.num_rows
        return changed


class ParquetSink:
    def __init__(self, directory: str | os.PathLike, *, part_records: int = 100_000,
                 commit_seconds: float = 1.0, commit_units: int = 100):
        self.directory = Path(directory)
        self.part_records = part_records
        self.commit_seconds = commit_seconds
        self.commit_units = commit_units
        self._streams = {stream: _StreamFiles(self.directory / stream, stream, part_records) for stream in STREAMS}
        self._units: list[str] = []
        self._buffered = 0
        self._committed_at = time.monotonic()

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        for record in records:
            self._streams[STREAM_OF[type(record)]].buffer.append(record)
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return bool(self._units) and (len(self._units) >= self.commit_units
                                      or self._buffered >= self.part_records
                                      or time.monotonic() - self._committed_at >= self.commit_seconds)

    async def commit(self) -> Commit | None:
        if not self._units:
            return None
        units, self._units, self._committed_at, self._buffered = tuple(self._units), [], time.monotonic(), 0
        buffered = [(files_, files_.buffer) for files_ in self._streams.values()]
        for files_ in self._streams.values():
            files_.buffer = []          # writes go on into new buffers while the thread writes
        parts = await asyncio.to_thread(_commit_all, buffered)
        return Commit(units, tuple(parts))

    async def close(self) -> Commit | None:
        return await self.commit()

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        return [change for files_ in self._streams.values() for change in files_.recover(committed_parts)]

    def publish(self) -> None:
        """Merge the run's remaining small files, then make its part files current (manifest)."""
        for files_ in self._streams.values():
            files_.publish()
        manifest.publish(self.directory.parent, self.directory.name, PARQUET)


def _commit_all(buffered: Sequence[tuple[_StreamFiles, list[Record]]]) -> list[PartCommit]:
    parts = []
    for files_, records in buffered:
        if (part := files_.commit(records)) is not None:
            parts.append(part)
    return parts
