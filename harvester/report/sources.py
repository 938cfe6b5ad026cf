"""Where the report's records come from: each sink format read in bulk by DuckDB itself.

:func:`attach` creates ``raw_insights``, ``raw_media`` and ``raw_accounts``, each with exactly
the :data:`TYPES` of its stream (times as TIMESTAMPTZ, days as DATE) and only the current records:

- JSONL: ``read_json`` over the manifest's current files (insights through a Parquet cache:
  parsing the JSON is most of a first report's time), times parsed as they are read;
- Parquet: ``read_parquet`` over the manifest's current parts, whose columns are already typed
  (an output that changed format may still list JSONL files: those are read as JSONL);
- a DuckDB file: attached read-only, its tables selected as they are;
- PostgreSQL: each table copied out by the server (``COPY ... TO STDOUT`` as CSV, arrays as
  JSON) into a temporary file that ``read_csv`` loads.

No record goes through Python: a row at a time, 47k records of a DuckDB file took 57 s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from ..config.model import Output
from ..errors import ConfigError
from ..records import STREAMS, Stream
from ..sinks import factory, manifest

COLUMNS: dict[Stream, dict[str, str]] = {
    "insights": {
        "account_id": "VARCHAR", "object_id": "VARCHAR", "object_type": "VARCHAR", "media_type": "VARCHAR",
        "media_product_type": "VARCHAR", "metric": "VARCHAR", "period": "VARCHAR", "metric_type": "VARCHAR",
        "timeframe": "VARCHAR", "since": "VARCHAR", "until": "VARCHAR", "end_time": "VARCHAR",
        "dimension_keys": "VARCHAR[]", "dimension_values": "VARCHAR[]", "value": "DOUBLE",
        "observed_on": "VARCHAR", "run_id": "VARCHAR", "harvested_at": "VARCHAR"},
    "media": {
        "media_id": "VARCHAR", "account_id": "VARCHAR", "media_type": "VARCHAR", "media_product_type": "VARCHAR",
        "timestamp": "VARCHAR", "permalink": "VARCHAR", "shortcode": "VARCHAR", "caption": "VARCHAR",
        "like_count": "BIGINT", "comments_count": "BIGINT", "is_comment_enabled": "BOOLEAN", "media_url": "VARCHAR",
        "thumbnail_url": "VARCHAR", "children_ids": "VARCHAR[]", "children_types": "VARCHAR[]",
        "run_id": "VARCHAR", "harvested_at": "VARCHAR"},
    "accounts": {
        "account_id": "VARCHAR", "day": "VARCHAR", "username": "VARCHAR", "name": "VARCHAR",
        "followers_count": "BIGINT", "follows_count": "BIGINT", "media_count": "BIGINT", "biography": "VARCHAR",
        "website": "VARCHAR", "profile_picture_url": "VARCHAR", "run_id": "VARCHAR", "harvested_at": "VARCHAR"},
}
"""Each stream's columns as the JSONL records write them (records.py), with their DuckDB types."""

TIMES = frozenset({"since", "until", "end_time", "timestamp", "harvested_at"})
DAYS = frozenset({"observed_on", "day"})
TYPES: dict[Stream, dict[str, str]] = {
    stream: {c: "TIMESTAMPTZ" if c in TIMES else "DATE" if c in DAYS else t for c, t in columns.items()}
    for stream, columns in COLUMNS.items()}
"""Each ``raw_<stream>``'s columns: those of the typed sinks (Parquet, DuckDB)."""

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
"""How the records write a time: ``2026-11-04T08:00:00+0000``."""

EXTRA = "report"
"""The optional extra that brings DuckDB: ``pip install 'harvester[report]'``."""


def duckdb_module() -> Any:
    """DuckDB, or a clear message naming the extra that installs it."""
    try:
        import duckdb
    except ImportError:
        raise ConfigError([f"the report needs DuckDB: pip install 'harvester[{EXTRA}]' (or pip install duckdb)"]) \
            from None
    return duckdb


def attach(con: Any, output: str | Path | Output, output_format: str = "jsonl") -> None:
    """``raw_<stream>`` for every stream of ``output`` (a directory of JSONL, or the ``[output]``
    settings of any format)."""
    if isinstance(output, Output):
        if output.format == "duckdb":
            return _duckdb(con, factory.database_file(output))
        if output.format == "postgres":
            return _postgres(con, output)
        output_format, output = output.format, output.path
    elif output_format != "jsonl":
        raise ConfigError([f"the report reads a {output_format!r} output through its [output] settings"])
    if output_format not in ("jsonl", "parquet"):
        raise ConfigError([f"the report cannot read [output] format = {output_format!r}"])
    _files(con, Path(output))


def _typed(stream: Stream, source: str) -> str:
    """A SELECT of :data:`TYPES` from a relation of :data:`COLUMNS` (times as the API's text)."""
    columns = []
    for c in COLUMNS[stream]:
        if c in TIMES:
            columns.append(f"try_strptime({c}, '{TIMESTAMP_FORMAT}') AS {c}")
        elif c in DAYS:
            columns.append(f"TRY_CAST({c} AS DATE) AS {c}")
        else:
            columns.append(c)
    return f"SELECT {', '.join(columns)} FROM ({source})"


def _stored(stream: Stream, source: str) -> str:
    """A SELECT of :data:`TYPES` from a typed sink's table or files."""
    return f"SELECT {', '.join(f'CAST({c} AS {t}) AS {c}' for c, t in TYPES[stream].items())} FROM {source}"


def _empty(stream: Stream) -> str:
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in TYPES[stream].items()) + " WHERE false"


# -- files: JSONL, Parquet ------------------------------------------------------------------------


def _files(con: Any, output: Path) -> None:
    current = manifest.load(output)
    for stream in STREAMS:
        names = current.files(stream)
        parquet = [str(output / n) for n in names if n.endswith(".parquet")]
        jsonl = [n for n in names if not n.endswith(".parquet")]
        selects = []
        if parquet:
            selects.append(_stored(stream, f"read_parquet({_list(parquet)})"))
        if jsonl:
            cached = _cached(con, output, jsonl) if stream == "insights" else None
            selects.append(_typed(stream, cached or _read_json([str(output / n) for n in jsonl], COLUMNS[stream])))
        select = " UNION ALL ".join(selects) if selects else _empty(stream)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{stream} AS {select}")


CACHE = ".report-cache"
"""``<output>/.report-cache/``: each current JSONL insights part as Parquet, made by the first
report that reads it. A published part never changes (a rewrite is a new file), so a part's
cache is keyed by its name, size and mtime; parts no longer current lose theirs. Parsing the
JSON is most of a report's time: the report after a nightly run parses only the new parts."""


def _cached(con: Any, output: Path, names: list[str]) -> str | None:
    """A SELECT over the Parquet copies of ``names`` (the JSON's text columns); None (read the
    JSON) where the output is not writable."""
    cache = output / CACHE
    try:
        cache.mkdir(exist_ok=True)
        paths = []
        for name in names:
            source = output / name
            st = source.stat()
            key = hashlib.blake2b(f"{name}\0{st.st_size}\0{st.st_mtime_ns}".encode(), digest_size=12).hexdigest()
            target = cache / f"{key}.parquet"
            if not target.exists():
                partial = cache / f"{key}.{os.getpid()}.tmp"
                con.execute(f"COPY ({_read_json([str(source)], COLUMNS['insights'])}) TO {_quote(str(partial))} "
                            "(FORMAT parquet)")
                os.replace(partial, target)
            paths.append(str(target))
        for old in cache.glob("*.parquet"):
            if str(old) not in paths:
                old.unlink(missing_ok=True)
    except (OSError, duckdb_module().Error):     # a read-only output: the JSON it is
        return None
    return f"SELECT {', '.join(COLUMNS['insights'])} FROM read_parquet({_list(paths)})"


def _read_json(paths: list[str], columns: dict[str, str]) -> str:
    """A SELECT over JSONL files with typed columns (ids as strings, whatever the first lines hold)."""
    struct = "{" + ", ".join(f"{_quote(c)}: {_quote(t)}" for c, t in columns.items()) + "}"
    return (f"SELECT {', '.join(columns)} FROM read_json({_list(paths)}, format = 'newline_delimited', "
            f"columns = {struct}, auto_detect = false, maximum_object_size = 16777216)")


# -- databases: DuckDB, PostgreSQL ------------------------------------------------------------------


def _duckdb(con: Any, path: Path) -> None:
    """The file attached read-only (none yet: no records); one a harvest is writing is refused
    with the reason (DuckDB allows a writer or readers)."""
    if not path.exists():
        for stream in STREAMS:
            con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{stream} AS {_empty(stream)}")
        return
    try:
        con.execute(f"ATTACH {_quote(str(path))} AS stored (READ_ONLY)")
    except duckdb_module().Error as exc:
        reason = str(exc).splitlines()[0]
        if "lock" in reason.lower():
            reason = "the file is in use by another process (a harvest writing it?); report when it has finished"
        raise ConfigError([f"{path}: cannot be read as a DuckDB database: {reason}"]) from None
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'stored'").fetchall()}
    for stream in STREAMS:
        select = _stored(stream, f"stored.{stream}") if stream in tables else _empty(stream)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{stream} AS {select}")


def _postgres(con: Any, output: Output) -> None:
    """Each table as CSV from the server's COPY (arrays as JSON), loaded by ``read_csv``."""
    from ..errors import SinkError
    from ..sinks import postgres
    with tempfile.TemporaryDirectory(prefix="harvester-report-") as tmp:
        for stream in STREAMS:
            path = Path(tmp) / f"{stream}.csv"
            try:
                postgres.export_csv(output, stream, path, list(COLUMNS[stream]))
            except SinkError as exc:        # the server down, the schema not there: said, not a traceback
                raise ConfigError([f"the report cannot read [output]: {exc}"]) from None
            con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{stream} AS {_typed(stream, _read_csv(stream, path))}")


def _read_csv(stream: Stream, path: Path) -> str:
    """A SELECT of :data:`COLUMNS` over PostgreSQL's CSV: arrays as JSON text, an empty quoted
    string a string (null is unquoted)."""
    columns = COLUMNS[stream]
    text = {c: "VARCHAR" if t == "VARCHAR[]" else t for c, t in columns.items()}
    struct = "{" + ", ".join(f"{_quote(c)}: {_quote(t)}" for c, t in text.items()) + "}"
    select = [f"""from_json({c}, '["VARCHAR"]') AS {c}""" if t == "VARCHAR[]" else c for c, t in columns.items()]
    return (f"SELECT {', '.join(select)} FROM read_csv({_quote(str(path))}, columns = {struct}, header = false, "
            "quote = '\"', escape = '\"', allow_quoted_nulls = false, auto_detect = false)")


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(_quote(p) for p in paths) + "]"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
