"""The typed columns of each stream, shared by the Parquet and DuckDB sinks (pyarrow required).

Records become Arrow tables column by column: ids and names as strings, the API's timestamps
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

from collections.abc import Iterator, Sequence
from operator import attrgetter
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


def to_table(stream: Stream, records: Sequence[Record]) -> pa.Table:
    """The records of one stream as a table of :data:`SCHEMAS`: each column taken out of the
    records at C speed (``map(attrgetter)``), then converted by pyarrow; a column of one value
    (a batch shares its run, and often its account, period, since and until) is converted once,
    and each distinct timestamp is parsed once."""
    names = SCHEMAS[stream]
    return pa.Table.from_arrays([_column(list(map(attrgetter(field.name), records)), field.type) for field in names],
                                schema=names)


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    if values and kind not in _NUMBERS and values.count(values[0]) == len(values):   # identity first: cheap
        return pc.take(_convert(values[:1], kind), pa.repeat(pa.scalar(0, pa.int32()), len(values)))
    return _convert(values, kind)


_NUMBERS = (pa.float64(), pa.int64(), pa.bool_())


def _convert(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
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
