"""The report's query engine: three DuckDB views, ``insights``, ``media`` and ``accounts``, over an output.

Every figure of the report is SQL over these views (figures.py), so the report reads any sink the
same way. sources.py makes each stream's ``raw_<stream>`` from whatever the sink stored, typed
(times as TIMESTAMPTZ, days as DATE); the views name the times as the figures use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.model import Output
from ..records import STREAMS, Stream
from .sources import attach, duckdb_module

_VIEWS: dict[Stream, str] = {
    "insights": "*, since AS since_ts, until AS until_ts, end_time AS end_ts",
    "media": "*, timestamp AS ts",
    "accounts": "*",
}
"""What each view adds to its raw stream: the times under the names the figures use."""


def connect(output: str | Path | Output, output_format: str = "jsonl") -> Any:
    """An in-memory DuckDB connection (UTC session) with the three views over ``output`` (a
    directory of JSONL, or the ``[output]`` settings of any format)."""
    duckdb = duckdb_module()
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        attach(con, output, output_format)
        for stream in STREAMS:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {stream} AS SELECT {_VIEWS[stream]} FROM raw_{stream}")
    except BaseException:
        con.close()
        raise
    return con
