"""The report's query engine: three DuckDB views, ``insights``, ``media`` and ``accounts``, over an output.

Every figure of the report is SQL over these views (figures.py), so the report reads any sink the
same way. JSONL is read with ``read_json`` over the manifest's current files, each column typed
explicitly (ids as strings, whatever the first lines hold); timestamps are parsed in the views.
:func:`attach_streams` is the one place another sink format plugs in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..config.model import Output
from ..errors import ConfigError
from ..records import STREAMS, Stream
from ..sinks import factory, manifest

EXTRA = "report"
"""The optional extra that brings DuckDB: ``pip install 'harvester[report]'``."""

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
"""Each stream's columns as the records write them (records.py), with their DuckDB types."""

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
"""How the records write a time: ``2026-11-04T08:00:00+0000``."""

_TYPED: dict[Stream, str] = {
    "insights": "* REPLACE (CAST(value AS DOUBLE) AS value), {ts}(since) AS since_ts, {ts}(until) AS until_ts, "
                "{ts}(end_time) AS end_ts",
    "media": "*, {ts}(timestamp) AS ts",
    "accounts": "* REPLACE (CAST(day AS DATE) AS day)",
}
"""What each view adds to its raw stream: the times parsed (``*_ts`` columns, TIMESTAMPTZ)."""


def duckdb_module() -> Any:
    """DuckDB, or a clear message naming the extra that installs it."""
    try:
        import duckdb
    except ImportError:
        raise ConfigError([f"the report needs DuckDB: pip install 'harvester[{EXTRA}]' (or pip install duckdb)"]) \
            from None
    return duckdb


def connect(output: str | Path | Output, output_format: str = "jsonl") -> Any:
    """An in-memory DuckDB connection (UTC session) with the three views over ``output`` (a
    directory of JSONL, or the ``[output]`` settings of any format)."""
    duckdb = duckdb_module()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE OR REPLACE TEMP MACRO _ts(x) AS strptime(x, '{TIMESTAMP_FORMAT}')")
    attach_streams(con, output, output_format)
    for stream in STREAMS:
        select = _TYPED[stream].format(ts="_ts")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {stream} AS SELECT {select} FROM raw_{stream}")
    return con


def attach_streams(con: Any, output: str | Path | Output, output_format: str = "jsonl") -> None:
    """The plug point of sink formats: create ``raw_insights``, ``raw_media``, ``raw_accounts``,
    each with exactly the :data:`COLUMNS` of its stream and only the current records.

    - ``jsonl``: ``read_json`` over the manifest's current files (insights through a Parquet cache).
    - Parquet, a DuckDB file, PostgreSQL: the sink's own ``current_records`` (the dicts the JSONL
      lines hold, through :mod:`harvester.sinks.factory`) loaded into a table (:func:`load_records`).
    """
    if isinstance(output, Output):
        if output.format != "jsonl":
            for stream in STREAMS:
                load_records(con, stream, factory.current_records(output, stream))
            return
        output = output.path
    elif output_format != "jsonl":
        raise ConfigError([f"the report reads a {output_format!r} output through its [output] settings"])
    output = Path(output)
    current = manifest.load(output)
    for stream in STREAMS:
        names = current.files(stream)
        select = _cached(con, output, names) if stream == "insights" and names else None
        if select is None:
            select = _read_json([str(output / name) for name in names], COLUMNS[stream])
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{stream} AS {select}")


CACHE = ".report-cache"
"""``<output>/.report-cache/``: each current insights part as Parquet, made by the first report
that reads it. A published part never changes (a rewrite is a new file), so a part's cache is
keyed by its name, size and mtime; parts no longer current lose theirs. Parsing the JSON is
most of a report's time: the report after a nightly run parses only the new parts."""


def _cached(con: Any, output: Path, names: list[str]) -> str | None:
    """A SELECT over the Parquet copies of ``names``; None (read the JSON) where the output is
    not writable."""
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
            paths.append(target)
        for old in cache.glob("*.parquet"):
            if old not in paths:
                old.unlink(missing_ok=True)
    except (OSError, duckdb_module().Error):     # a read-only output: the JSON it is
        return None
    files = "[" + ", ".join(_quote(str(p)) for p in paths) + "]"
    return f"SELECT {', '.join(COLUMNS['insights'])} FROM read_parquet({files})"


def _read_json(paths: list[str], columns: dict[str, str]) -> str:
    """A SELECT over JSONL files with typed columns; an empty relation of those columns without files."""
    if not paths:
        return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items()) + " WHERE false"
    files = "[" + ", ".join(_quote(p) for p in paths) + "]"
    struct = "{" + ", ".join(f"{_quote(c)}: {_quote(t)}" for c, t in columns.items()) + "}"
    return (f"SELECT {', '.join(columns)} FROM read_json({files}, format = 'newline_delimited', "
            f"columns = {struct}, auto_detect = false, maximum_object_size = 16777216)")


def load_records(con: Any, stream: Stream, records: Any) -> None:
    """``raw_<stream>`` as a table filled from dicts (a sink's ``current_records``): the fallback for
    a store DuckDB cannot read directly."""
    columns = COLUMNS[stream]
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{stream} ("
                + ", ".join(f"{c} {t}" for c, t in columns.items()) + ")")
    names = list(columns)
    batch: list[tuple] = []
    for record in records:
        batch.append(tuple(record.get(c) for c in names))
        if len(batch) >= 10_000:
            con.executemany(f"INSERT INTO raw_{stream} VALUES ({', '.join('?' for _ in names)})", batch)
            batch.clear()
    if batch:
        con.executemany(f"INSERT INTO raw_{stream} VALUES ({', '.join('?' for _ in names)})", batch)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
