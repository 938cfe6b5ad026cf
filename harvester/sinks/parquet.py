"""Parquet files, one dataset per stream: ``<path>/<run_id>/<stream>/part-000001.parquet`` ...

A Parquet file is complete only once its footer is written, so it cannot grow across commits as a
JSONL part does. Commits go instead to a journal per stream, ``journal-000001.arrows``: an Arrow
IPC stream (lz4) to which each commit appends its records as one batch and which it fsyncs, the
state recording the committed length as for a JSONL part. So a commit costs one fsync and no new
file, and its records are already in Arrow's layout. A journal that holds ``part_records``
records is closed, and at the next commit (the state has recorded the last one that wrote to it
by then) a background thread writes its records as ``part-000001.parquet`` (zstd, row groups of
:data:`ROW_GROUP_RECORDS`; to a temporary name, fsynced, renamed), then removes the journal. The
harvest goes on meanwhile: pyarrow writes Parquet without holding the GIL. Publish converts what
is left; the manifest (manifest.py, as for JSONL) lists the ``part-*`` files only. After a crash,
:meth:`ParquetSink.recover` settles every state from the names and the committed lengths:

- a part file is complete (renamed into place once written in full) and holds committed records
  only (a journal is converted after its last commit was recorded): kept, and its journal removed;
- a journal without its part is cut back to its committed length (removed when the state has
  none) and converted at the next commit or at publish; the run goes on in a new journal;
- temporaries (``.*.tmp``) of a killed write are removed.

Nothing reads a run's files before it is published.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .. import files
from ..records import STREAM_OF, STREAMS, Record, Stream
from . import arrow, manifest
from .base import Commit, CommitPolicy, PartCommit

COMPRESSION = "zstd"
ROW_GROUP_RECORDS = 128 * 1024
"""Rows per row group of a part file: a few MB of columns, the size readers parallelise over."""
_JOURNAL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""lz4: a fifth of the bytes to fsync for about a tenth more CPU than none (zstd costs twice as much)."""

_JOURNAL = re.compile(r"journal-(\d{6})\.arrows")
_PART = re.compile(r"part-(\d{6})(?:\..+)?\.parquet")


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


def _journal_name(seq: int) -> str:
    return f"journal-{seq:06d}.arrows"


class _Journal:
    """The journal commits append to, and the tables they appended (so that its part is written
    from memory, without reading the journal back)."""

    def __init__(self, directory: Path, seq: int, schema: pa.Schema):
        self.seq, self.path = seq, directory / _journal_name(seq)
        self.file = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self.writer = pa.ipc.new_stream(self.file, schema, options=_JOURNAL_OPTIONS)
        self.tables: list[pa.Table] = []
        self.records = 0
        self.synced = False

    def append(self, table: pa.Table) -> int:
        """Append and fsync; the durable length (the end of this batch)."""
        self.writer.write_table(table)
        self.file.flush()
        os.fsync(self.file.fileno())
        if not self.synced:             # a new file: its directory entry too
            files.fsync_dir(self.path.parent)
            self.synced = True
        self.tables.append(table)
        self.records += table.num_rows
        return self.file.tell()

    def close(self) -> None:
        self.file.close()               # no end-of-stream marker: readers stop at the end of the file


def _convert(directory: Path, seq: int, tables: list[pa.Table] | None, schema: pa.Schema) -> None:
    """A closed journal as its part file (durable), then the journal removed."""
    journal = directory / _journal_name(seq)
    if tables is None:                  # a journal an earlier attempt left, cut back by recover
        with pa.ipc.open_stream(journal) as reader:
            table = reader.read_all()
    else:
        table = pa.concat_tables(tables) if tables else schema.empty_table()
    if table.num_rows:
        with files.replacing(directory / f"part-{seq:06d}.parquet") as out:
            _write(table, out)
    journal.unlink(missing_ok=True)
    files.fsync_dir(directory)


class _StreamFiles:
    """One stream of a run: records buffered since the last commit, the open journal, the closed
    journals whose part is still to be written, and the background conversion writing them."""

    def __init__(self, directory: Path, stream: Stream, part_records: int):
        self.directory, self.stream, self.part_records = directory, stream, part_records
        self.schema = arrow.SCHEMAS[stream]
        self.buffer: list[Record] = []
        self.journal: _Journal | None = None
        self.closed: list[tuple[int, list[pa.Table] | None]] = []
        self.converting: Future[None] | None = None
        self.seq = 0

    def start_conversions(self, executor: ThreadPoolExecutor) -> None:
        """Write the parts of the journals closed so far, in the background (called at a commit:
        the state has recorded the commits that wrote them). A failed conversion fails the commit."""
        if self.converting is not None:
            if not self.converting.done():
                return
            self.converting.result()
            self.converting = None
        if self.closed:
            closed, self.closed = self.closed, []
            self.converting = executor.submit(self._convert_all, closed)

    def _convert_all(self, closed: Sequence[tuple[int, list[pa.Table] | None]]) -> None:
        for seq, tables in closed:
            _convert(self.directory, seq, tables, self.schema)

    def commit(self, records: Sequence[Record]) -> PartCommit | None:
        """Append ``records`` to the journal, durably (in a thread: the buffer is not touched)."""
        if not records:
            return None
        table = arrow.to_table(self.stream, records)
        if self.journal is None:
            if not self.directory.exists():
                self.directory.mkdir(parents=True)
                files.fsync_dir(self.directory.parent)
                files.fsync_dir(self.directory.parent.parent)
            self.seq += 1
            self.journal = _Journal(self.directory, self.seq, self.schema)
        journal = self.journal
        length = journal.append(table)
        if journal.records >= self.part_records:
            journal.close()
            self.closed.append((journal.seq, journal.tables))
            self.journal = None
        return PartCommit(f"{self.stream}/{_journal_name(journal.seq)}", journal.records, length)

    def publish(self) -> None:
        """Every journal as its part file, now."""
        if self.converting is not None:
            self.converting.result()
            self.converting = None
        if self.journal is not None:
            self.journal.close()
            self.closed.append((self.journal.seq, self.journal.tables))
            self.journal = None
        closed, self.closed = self.closed, []
        self._convert_all(closed)

    def recover(self, committed: Mapping[str, int | None]) -> list[str]:
        changed: list[str] = []
        if not self.directory.exists():
            return changed
        names = {path.name for path in self.directory.iterdir()}
        parts = {int(m[1]) for name in names if (m := _PART.fullmatch(name))}
        for name in sorted(names):
            path = self.directory / name
            if _PART.fullmatch(name):
                continue
            if (m := _JOURNAL.fullmatch(name)) is None:           # a temporary, or not ours
                path.unlink()
                changed.append(f"{self.stream}/{name}")
                continue
            seq = int(m[1])
            self.seq = max(self.seq, seq)
            length = committed.get(f"{self.stream}/{name}", -1)
            if seq in parts:
                path.unlink()
                changed.append(f"{self.stream}/{name} (converted)")
            elif length == -1 or length is None:
                path.unlink()
                changed.append(f"{self.stream}/{name}")
            else:
                if path.stat().st_size > length:
                    os.truncate(path, length)
                    changed.append(f"{self.stream}/{name} (from byte {length:,})")
                self.closed.append((seq, None))
        self.seq = max(self.seq, *parts, 0)
        if changed:
            files.fsync_dir(self.directory)
        return changed


class ParquetSink:
    def __init__(self, directory: str | os.PathLike, *, part_records: int = 100_000, commit_seconds: float = 1.0,
                 batch_records: int = 20_000, clock: Callable[[], float] = time.monotonic):
        self.directory = Path(directory)
        self.part_records = part_records
        self.policy = CommitPolicy(commit_seconds, records=batch_records, clock=clock)
        """Every ``commit_seconds`` or ``batch_records`` records (what is buffered in between, as
        records and as their Arrow table, is the sink's memory), not every ``commit_units`` units
        (as the DuckDB sink): a commit costs an fsync and an Arrow conversion of its own, which a
        commit per 100 calls would pay several times a second."""
        self._streams = {stream: _StreamFiles(self.directory / stream, stream, part_records) for stream in STREAMS}
        self._units: list[str] = []
        self._buffered = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-parts")
        arrow.prepare()
        self.run_info: manifest.RunInfo | None = None
        """What the run asked (set by the harvester before :meth:`publish`): kept in the manifest."""

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        if records:
            kind = type(records[0])
            if all(type(r) is kind for r in records):
                self._streams[STREAM_OF[kind]].buffer.extend(records)
            else:
                for record in records:
                    self._streams[STREAM_OF[type(record)]].buffer.append(record)
        self._buffered += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return self.policy.due(len(self._units), self._buffered)

    async def commit(self) -> Commit | None:
        if not self._units:
            return None
        for stream_files in self._streams.values():
            stream_files.start_conversions(self._executor)
        units, self._units, self._buffered = tuple(self._units), [], 0
        self.policy.committed()
        buffered = [(stream_files, stream_files.buffer) for stream_files in self._streams.values()]
        for stream_files in self._streams.values():
            stream_files.buffer = []    # writes go on into new buffers while the thread writes
        parts = await asyncio.to_thread(_commit_all, buffered)
        return Commit(units, tuple(parts))

    async def close(self) -> Commit | None:
        return await self.commit()

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        return [change for stream_files in self._streams.values() for change in stream_files.recover(committed_parts)]

    def publish(self) -> None:
        """Every journal as its part file, then the run's part files made current (manifest)."""
        for stream_files in self._streams.values():
            stream_files.publish()
        self._executor.shutdown()
        manifest.publish(self.directory.parent, self.directory.name, PARQUET, info=self.run_info)


def _commit_all(buffered: Sequence[tuple[_StreamFiles, list[Record]]]) -> list[PartCommit]:
    return [part for stream_files, records in buffered if (part := stream_files.commit(records)) is not None]
