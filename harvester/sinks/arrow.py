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
_TIME_TEXT = pa.dictionary(pa.int32(), pa.string())

_TYPES: dict[str, pa.DataType] = {
    "since": TIMESTAMP, "until": TIMESTAMP, "end_time": TIMESTAMP, "harvested_at": TIMESTAMP,
    "timestamp": TIMESTAMP, "observed_on": pa.date32(), "day": pa.date32(),
    "dimension_keys": _TEXT, "dimension_values": _TEXT, "children_ids": _TEXT, "children_types": _TEXT,
    "value": pa.float64(), "like_count": pa.int64(), "comments_count": pa.int64(),
    "followers_count": pa.int64(), "follows_count": pa.int64(), "media_count": pa.int64(),
    "is_comment_enabled": pa.bool_(),
}
"""Every field not named here is a string."""
_TEXTUAL = frozenset((pa.string(), TIMESTAMP, pa.date32(), _TEXT))
"""The types whose values are text: equal values (``==``) convert alike."""


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
    by Arrow's kernels, each distinct timestamp parsed once, and a column holding one value
    throughout is converted once (see :func:`_typed`)."""
    names = SCHEMAS[stream]
    columns = zip(_COLUMNS[stream](records), names, strict=True)
    return pa.Table.from_arrays([_typed(values, field.type) for values, field in columns], schema=names)


def _typed(values: list, kind: pa.DataType) -> pa.Array:
    """A column as an array of ``kind``. A column of text (strings, timestamps, days, lists of
    strings) holding one value throughout (``run_id``, ``harvested_at``, a field no record has: most
    of an insight's columns over a commit) is that value converted once and repeated by Arrow: a
    scan by identity, about a nanosecond a record where pyarrow's conversion of each costs 30 to
    60. The repeated array's buffers are those the conversion of every value gives (the same bytes
    in the journal): ``pa.repeat`` of a value, a ``take`` of a list or a null (``repeat`` goes
    through a list's items one by one, and fills a null list's child). Not for numbers, where
    ``==`` equates values that convert differently (``0`` and ``-0.0``, ``1`` and ``True``)."""
    count = len(values)
    if count > 1 and kind in _TEXTUAL:
        first = values[0]
        if values[-1] == first and values.count(first) == count:     # == as in list.count: identity first
            one = _converted([first], kind)
            if first is None or kind == _TEXT:
                return one.take(pa.repeat(pa.scalar(0, pa.int32()), count))
            return pa.repeat(one[0], count)
    return _converted(values, kind)


def _converted(values: list, kind: pa.DataType) -> pa.Array:
    if kind == TIMESTAMP:
        text = pa.array(values, _TIME_TEXT)             # each distinct text once, as it comes
        parsed = pc.strptime(text.dictionary, format=API_TIME, unit="s", error_is_null=True)
        return pc.take(parsed.cast(TIMESTAMP), text.indices)
    if kind == pa.date32():
        return pa.array(values, pa.string()).cast(pa.date32())
    return pa.array(values, kind)


def prepare() -> None:
    """Convert an empty table of each stream: pyarrow's first conversion of a Python list imports
    pandas when it is installed (to look for its types; 0.2 s, most of it holding the GIL). A sink
    calls this as it opens, before the harvest's calls, so that its first commit, on a thread,
    does not hold up the event loop that long."""
    for stream in SCHEMAS:
        to_table(stream, [])


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
