"""A stream's records as binary ``COPY`` rows, encoded by harvester itself, and the stream the
server is sent: each key once, sorted by key, a message at a time.

asyncpg's copy_records_to_table spent 7-8 us a record encoding these rows (a codec call per
field, arrays the slowest); most field values repeat from record to record (the account, the
media, the metric, the run), so each column keeps the encoding of the values it has seen and a
row is mostly dictionary look-ups joined into bytes: 3-4 us a record, key included, measured.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import msgspec

from ...records import Record, Stream, key_text, natural_key
from ..base import SinkFailure
from .columns import COLUMNS

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""A binary COPY stream's signature, flags (none) and header extension (none)."""
COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_int32 = struct.Struct(">i").pack
_int8_field = struct.Struct(">iq").pack
_float8_field = struct.Struct(">id").pack
_array_head = struct.Struct(">iiiiii").pack
_ELEMENT_OID = {"text": 25, "bigint": 20, "double precision": 701, "boolean": 16}
_CACHED = 4096
"""Distinct values a column remembers the encoding of (then it forgets them and starts again)."""


def _text(value: str) -> bytes:
    # surrogatepass: a lone surrogate reaches the server as invalid UTF-8, which refuses the commit
    # with its own message, as asyncpg's encoding error did; it does not break write()
    data = value.encode("utf-8", "surrogatepass")
    return _int32(len(data)) + data


def _bigint(value: int) -> bytes:
    return _int8_field(8, value)


def _double(value: float) -> bytes:
    return _float8_field(8, value)


def _boolean(value: bool) -> bytes:
    return b"\x00\x00\x00\x01\x01" if value else b"\x00\x00\x00\x01\x00"


_SCALAR: dict[str, Callable[[Any], bytes]] = {"text": _text, "bigint": _bigint, "double precision": _double,
                                               "boolean": _boolean}


def _array(kind: str) -> Callable[[Sequence[Any]], bytes]:
    """The encoder of a one-dimensional array of ``kind`` (PostgreSQL's array_send layout)."""
    item, oid = _SCALAR[kind], _ELEMENT_OID[kind]
    empty = struct.pack(">iiii", 12, 0, 0, oid)

    def encode(values: Sequence[Any]) -> bytes:
        if not values:
            return empty
        body = b"".join([_NULL if v is None else item(v) for v in values])
        return _array_head(20 + len(body), 1, None in values, oid, len(values), 1) + body
    return encode


class _Seen(dict):
    """A column's encodings by value, encoding (and remembering, up to a bound) what it has not seen."""

    def __init__(self, encode: Callable[[Any], bytes]):
        super().__init__()
        self.encode = encode

    def __missing__(self, value: Any) -> bytes:
        data = _NULL if value is None else self.encode(value)
        if len(self) >= _CACHED:                # values of an earlier stretch of the run: forget them
            self.clear()
        self[value] = data
        return data


def _column_encoder(kind: str) -> Callable[[Any], bytes]:
    """``value -> field bytes`` (length and data, or the null marker) for a column type."""
    kind = kind.removesuffix(' COLLATE "C"')
    if kind == "double precision":              # not remembered: -0.0 == 0.0 but they differ
        return lambda value: _NULL if value is None else _double(value)
    if not kind.endswith("[]"):
        return _Seen(_SCALAR[kind]).__getitem__
    array = _array(kind[:-2])
    seen = _Seen(array).__getitem__

    def encode(values: Sequence[Any] | None) -> bytes:
        try:
            return seen(values)
        except TypeError:                       # a list, not a tuple: not hashable, so not remembered
            return array(values) if values is not None else _NULL
    return encode


_json = msgspec.json.Encoder().encode
_astuple = msgspec.structs.astuple


class RowEncoder:
    """A stream's records as binary COPY rows (its table's columns: the key, then the fields)."""

    def __init__(self, stream: Stream):
        cols = COLUMNS[stream]
        self.stream = stream
        self._names = [name for name, _ in cols[1:]]
        self._head = struct.pack(">h", len(cols))
        self._kinds = [kind for _, kind in cols[1:]]
        self._encoders = [_column_encoder(kind) for kind in self._kinds]
        self._folds = [kind != "double precision" for kind in self._kinds]
        """Columns whose equal values encode alike (not floats: ``-0.0 == 0.0``)."""

    def __call__(self, records: Sequence[Record]) -> tuple[list[bytes], list[bytes]]:
        """The records' keys (the UTF-8 of :func:`key_text`) and their rows, built column by
        column. The records of a unit (one call's) mostly share a value in most columns (the
        account, the media, the period, the run): such a column is encoded once and joined with
        its neighbours of the same kind, so a row is a join of a few parts, not one per field."""
        if not records:
            return [], []
        keys = [_json(natural_key(r)) for r in records]
        n = len(keys)
        parts: list[Sequence[bytes]] = [[self._head + _int32(len(k)) + k for k in keys]]
        same: list[bytes] = []
        columns = zip(*map(_astuple, records), strict=True)       # a tuple of values per field
        try:
            for encode, folds, values in zip(self._encoders, self._folds, columns, strict=True):
                if folds and values.count(values[0]) == n:
                    same.append(encode(values[0]))
                    continue
                if same:
                    parts.append([b"".join(same)] * n)
                    same = []
                parts.append(list(map(encode, values)))
        except (struct.error, OverflowError, TypeError, ValueError) as exc:
            raise SinkFailure(self._refusal(records, exc)) from None
        if same:
            parts.append([b"".join(same)] * n)
        return keys, list(map(b"".join, zip(*parts, strict=True)))

    def _refusal(self, records: Sequence[Record], exc: BaseException) -> str:
        """Which field of which record PostgreSQL cannot hold, and why (a count past bigint, say)."""
        for record in records:
            for name, kind, encode in zip(self._names, self._kinds, self._encoders, strict=True):
                try:
                    encode(getattr(record, name))
                except (struct.error, OverflowError, TypeError, ValueError) as error:
                    return (f"cannot write {self.stream} record {key_text(record)} to PostgreSQL: {name} = "
                            f"{getattr(record, name)!r} does not fit its column ({kind}): {error}")
        return f"cannot write {self.stream} records to PostgreSQL: {exc}"


CHUNK = 2048
"""Rows a COPY message holds (about 700 KiB of insights)."""


def in_key_order(rows: Mapping[bytes, bytes]) -> list[bytes]:
    """A stream's rows (each key once, the last written) sorted by key: the bytes order of the
    keys' UTF-8 is the "C" collation's order, so the server inserts or merges in key order and
    takes its row locks in that order (two runs on overlapping keys wait instead of
    deadlocking; were one ever reached, it is retried like a lost connection). Sorting here
    saves the server a sort and a DISTINCT ON (10-15 % of its merge, measured)."""
    return list(map(rows.__getitem__, sorted(rows)))


async def chunks(rows: list[bytes]) -> AsyncIterator[bytes]:
    """The binary COPY stream of sorted rows, joined a message at a time: the server starts on
    the first while the next is joined (asyncpg waits for the socket between them)."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        if start == 0:
            chunk.insert(0, COPY_HEADER)
        if start + CHUNK >= len(rows):
            chunk.append(COPY_TRAILER)
        yield b"".join(chunk)

