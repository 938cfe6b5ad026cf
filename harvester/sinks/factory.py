"""Which sink ``[output] format`` names, and how to read back what it wrote.

:data:`FORMATS` is the table: per format, the extra it needs (a module to import, the ``pip
install`` that provides it), how to open its sink for a run and how to read a stream's current
records. Adding a format is one entry. :func:`require` checks the extra before anything is opened
or called, so a missing pyarrow or duckdb is a ConfigError (exit 2) naming the install, never an
ImportError in the middle of a run.

``[output] path`` is a directory for the file formats (``jsonl``, ``parquet``: a directory per
run, the manifest beside them) and the database file for ``duckdb`` (a path without a suffix is
taken as a directory holding ``insights.duckdb``).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ConfigError
from ..records import Stream
from .base import Sink

if TYPE_CHECKING:
    from ..config.model import Output


class Format(NamedTuple):
    extra: tuple[str, ...]
    """Modules the format imports (from its optional extra)."""
    install: str
    """What provides them."""
    open: Callable[[Output, str, str], Sink]
    """``(output settings, run_id, config path for messages) -> sink``."""
    read: Callable[[Output, Stream], Iterator[dict]]
    """``(output settings, stream) -> current records``."""
    fetch: Callable[[Output, Stream], Awaitable[list[dict]]] | None = None
    """The same for a caller on a running loop, where the format has a driver of its own for it
    (PostgreSQL: asyncpg); None: ``read`` serves both (files and DuckDB are read in the process)."""


def _jsonl(output: Output, run_id: str, config_path: str) -> Sink:
    from .jsonl import JsonlSink
    return JsonlSink(Path(output.path) / run_id, part_records=output.part_records,
                     commit_seconds=output.commit_seconds, commit_units=output.commit_units)


def _jsonl_records(output: Output, stream: Stream) -> Iterator[dict]:
    from . import manifest
    return manifest.current_records(output.path, stream)


def _parquet(output: Output, run_id: str, config_path: str) -> Sink:
    from .parquet import ParquetSink
    return ParquetSink(Path(output.path) / run_id, part_records=output.part_records,
                       commit_seconds=output.commit_seconds)


def _parquet_records(output: Output, stream: Stream) -> Iterator[dict]:
    from . import manifest
    from .parquet import PARQUET
    return manifest.current_records(output.path, stream, PARQUET)


def _duckdb(output: Output, run_id: str, config_path: str) -> Sink:
    from .duckdb import DuckdbSink
    return DuckdbSink(database_file(output), run_id, commit_seconds=output.commit_seconds,
                      batch_records=output.part_records)


def _duckdb_records(output: Output, stream: Stream) -> Iterator[dict]:
    from .duckdb import current_records
    return current_records(database_file(output), stream)


def _postgres(output: Output, run_id: str, config_path: str) -> Sink:
    """The database is reached only at the run's start (``PostgresSink.open``), never here."""
    from .postgres import PostgresSink
    return PostgresSink.from_config(output, path=config_path)


def _postgres_records(output: Output, stream: Stream) -> Iterator[dict]:
    from .postgres import current_records
    return current_records(output, stream)


async def _postgres_fetch(output: Output, stream: Stream) -> list[dict]:
    from .postgres import fetch_current_records
    return await fetch_current_records(output, stream)


FORMATS: dict[str, Format] = {
    "jsonl": Format((), "", _jsonl, _jsonl_records),
    "parquet": Format(("pyarrow",), "pip install 'harvester[parquet]'", _parquet, _parquet_records),
    "duckdb": Format(("duckdb", "pyarrow"), "pip install 'harvester[duckdb]'", _duckdb, _duckdb_records),
    "postgres": Format(("asyncpg",), "pip install 'harvester[postgres]'", _postgres, _postgres_records,
                       _postgres_fetch),
}


def database_file(output: Output) -> Path:
    """The DuckDB file of ``[output] path``: the path itself, or ``insights.duckdb`` in it when
    it has no suffix (the default ``out``)."""
    path = Path(output.path)
    return path if path.suffix else path / "insights.duckdb"


def output_directory(output: Output) -> Path:
    """Where a run's own files go (the summary, the outcomes; a file format's parts)."""
    return database_file(output).parent if output.format == "duckdb" else Path(output.path)


def format_of(output: Output) -> Format:
    try:
        return FORMATS[output.format]
    except KeyError:
        raise ConfigError(f"[output] format = {output.format!r}: unknown; allowed: "
                          f"{', '.join(FORMATS)}") from None


def missing_extra(output: Output) -> str | None:
    """Why the format's optional modules cannot be used (named with the install), or None."""
    fmt = format_of(output)
    for module in fmt.extra:
        try:
            importlib.import_module(module)
        except ImportError:
            return (f"[output] format = {output.format!r} needs the Python package {module!r}, "
                    f"which is not installed: {fmt.install}")
    return None


def require(output: Output) -> Format:
    """The format, its extra checked: a ConfigError (exit 2) otherwise."""
    fmt = format_of(output)
    if why := missing_extra(output):
        raise ConfigError(why)
    return fmt


def open_sink(output: Output, run_id: str, *, config_path: str = "<config>") -> Sink:
    """The sink ``[output] format`` names, for one run (``config_path``: what its messages start with)."""
    return require(output).open(output, run_id, config_path)


def current_records(output: Output, stream: Stream = "insights") -> Iterator[dict]:
    """Every current record of a stream, each natural key once, whatever the format."""
    return require(output).read(output, stream)


async def fetch_current_records(output: Output, stream: Stream = "insights") -> list[dict]:
    """:func:`current_records` for a caller on a running loop: through the format's async driver
    where it has one (PostgreSQL), else read as :func:`current_records` reads it."""
    fmt = require(output)
    if fmt.fetch is not None:
        return await fmt.fetch(output, stream)
    return list(fmt.read(output, stream))
