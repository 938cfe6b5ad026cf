"""A stream's current records as a CSV file, written by the server's ``COPY ... TO STDOUT``: the
report's bulk read (DuckDB then reads the file), through psycopg's sync connection."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...records import Stream
from .columns import COLUMNS, ident, table
from .read import TIMEOUT, dsn_of, failure, sync_driver

if TYPE_CHECKING:
    from ...config.model import Output


def export_csv(output: Output, stream: Stream, path: str | os.PathLike, names: Sequence[str], *,
               env: Mapping[str, str] | None = None) -> None:
    """A stream's current records written to ``path`` as CSV: the columns ``names``, arrays as
    JSON text, null unquoted. A failure is a SinkError naming the table, never the password."""
    dsn = dsn_of(output, env)
    psycopg = sync_driver()
    try:
        with psycopg.connect(dsn, connect_timeout=TIMEOUT, autocommit=True) as conn, \
                conn.cursor() as cursor, open(path, "wb") as file, \
                cursor.copy(f"COPY ({csv_query(output.schema, stream, names)}) TO STDOUT (FORMAT csv)") as copy:
            for data in copy:
                file.write(data)
    except Exception as exc:
        raise failure(exc, f"{output.schema}.{stream}", dsn) from None


def csv_query(schema: str, stream: Stream, names: Sequence[str]) -> str:
    """The columns ``names`` of a stream's table, arrays as JSON text (which CSV readers take)."""
    kinds = dict(COLUMNS[stream])
    select = ", ".join(f"array_to_json({ident(n)})" if kinds[n].endswith("[]") else ident(n) for n in names)
    return f"SELECT {select} FROM {table(schema, stream)}"
