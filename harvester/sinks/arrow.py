"""The typed columns of each stream, shared by the Parquet and DuckDB sinks (pyarrow required).

Records become Arrow tables of typed columns: ids and names as strings, the API's timestamps
(``2026-10-02T07:00:00+0000``) as UTC timestamps (seconds; Parquet stores them in milliseconds),
days (``observed_on``, ``day``) as dates, dimensions and an album's children as lists of strings,
counts as int64, and an insight's ``value`` as float64. Why not a decimal: the API sends integers
(counts) and a few fractions (rates); float64 holds every integer below 2**53 exactly and every
reader (DuckDB, pandas, polars, Spark) takes it without a cast, where a decimal needs a scale
fixed in advance that a future metric may not fit. :func:`to_dicts` turns a table back into the
dicts the JSONL files hold (timestamps and days as the API's strings), so every format is read
back the same way (and keyed by :func:`~harvester.records.natural_key`). A timestamp not in the
API's format is stored as null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ..records import RECORD_TYPES, Record, Stream

TIMESTAMP = pa.timestamp("s", tz="UTC")
API_TIME = "%Y-%m-%dT%H:%M:%S%z"
_WRITTEN_TIME = "%Y-%m-%dT%H:%M:%S+0000"
_TEXT = pa.list_(pa.string())

_TYPES: dict[str, pa.DataType] = {
    "since": TIMESTAMP, "until": TIMESTAMP, "end_time": TIMESTAMP, "harvested_at": TIMESTAMP,
    "timestamp": TIMESTAMP, "observed_on": pa.date32(), "day": pa.date32(),
    "dimension_keys": _TEXT, "dimension_values": _TEXT, "children_ids": _TEXT, "children_types": _TEXT,
    "value": pa.float64(), "like_count": pa.int64(), "comments_count": pa.int64(),
    "followers_count": pa.int64(), "follows_count": pa.int64(), "media_count": pa.int64(),
    "is_comment_enabled": pa.bool_(),
}
"""Every field not named here is a string."""


def schema(stream: Stream) -> pa.Schema:
    """The columns of a stream, in the record's field order (``stream`` itself is not stored)."""
    kind = cast(type[msgspec.Struct], RECORD_TYPES[stream])
    return pa.schema([pa.field(f.name, _TYPES.get(f.name, pa.string())) for f in msgspec.structs.fields(kind)])


SCHEMAS: dict[Stream, pa.Schema] = {stream: schema(stream) for stream in RECORD_TYPES}


def _column_getter(stream: Stream) -> Callable[[Sequence[Record]], list[list]]:
    """A function giving the columns of a stream's records as lists, one comprehension per field
    (``[r.account_id for r in records]``, the interpreter's specialised attribute access: less
    than half the cost of ``map(attrgetter(...))``, as cheap as ``msgspec.structs.astuple``, and
    pyarrow converts a list per column faster than tuples into a struct array, about 1.1 against
    1.5 us a record). Generated from the record's field names, as dataclasses generates
    ``__init__``."""
    body = ", ".join(f"[r.{field.name} for r in records]" for field in SCHEMAS[stream])
    namespace: dict[str, Any] = {}
    exec(f"def columns(records):\n    return [{body}]\n", namespace)      # our own field names only
    return cast(Callable[[Sequence[Record]], list[list]], namespace["columns"])


_COLUMNS = {stream: _column_getter(stream) for stream in SCHEMAS}


def to_table(stream: Stream, records: Sequence[Record]) -> pa.Table:
    """The records of one stream as a table of :data:`SCHEMAS`: each column taken out of the
    records as a list, converted by pyarrow; timestamps and days are converted from the API's text
    by Arrow's kernels, each distinct timestamp parsed once."""
    names = SCHEMAS[stream]
    columns = zip(_COLUMNS[stream](records), names, strict=True)
    return pa.Table.from_arrays([_typed(values, field.type) for values, field in columns], schema=names)


def _typed(values: list, kind: pa.DataType) -> pa.Array:
    if kind == TIMESTAMP:
        text = pa.array(values, pa.string()).dictionary_encode()
        parsed = pc.strptime(text.dictionary, format=API_TIME, unit="s", error_is_null=True)
        return pc.take(parsed.cast(TIMESTAMP), text.indices)
    if kind == pa.date32():
        return pa.array(values, pa.string()).cast(pa.date32())
    return pa.array(values, kind)


def to_dicts(table: pa.Table | pa.RecordBatch, stream: Stream) -> Iterator[dict]:
    """Rows as the dicts a JSONL file holds: ``stream`` first, timestamps and days as strings."""
    columns = {}
    for name in table.schema.names:
        column = table.column(name)
        kind = column.type
        if kind == TIMESTAMP or isinstance(kind, pa.TimestampType):
            column = pc.strftime(column.cast(TIMESTAMP), format=_WRITTEN_TIME)
        elif kind == pa.date32():
            column = column.cast(pa.string())
        columns[name] = column.to_pylist()
    names = list(columns)
    for row in zip(*columns.values(), strict=True):
        yield {"stream": stream, **dict(zip(names, row, strict=True))}
