"""Each stream's table, derived from its record Struct: a column per field, ``key`` first.

Ids and times are text exactly as the API wrote them, counts ``bigint``, ``value`` ``double
precision``, dimensions and children ``text[]``; every column is nullable. ``key`` is the natural
key as text (:func:`harvester.records.key_text`), in the "C" collation so that the order of its
UTF-8 bytes is the table's order.
"""

from __future__ import annotations

import msgspec.inspect as mi

from ...records import RECORD_TYPES, STREAMS, Stream


def sql_type(t: mi.Type) -> str:
    """The column type of a record field's type (its ``None`` dropped: every column is nullable)."""
    if isinstance(t, mi.UnionType):
        kinds = [k for k in t.types if not isinstance(k, mi.NoneType)]
        if len(kinds) == 1:
            return sql_type(kinds[0])
        if all(isinstance(k, mi.IntType | mi.FloatType) for k in kinds):
            return "double precision"
        raise TypeError(f"no column type for {t}")
    if isinstance(t, mi.StrType | mi.LiteralType):
        return "text"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.IntType):
        return "bigint"
    if isinstance(t, mi.FloatType):
        return "double precision"
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return f"{sql_type(t.item_type)}[]"
    raise TypeError(f"no column type for {t}")


def columns(stream: Stream) -> tuple[tuple[str, str], ...]:
    """``(name, SQL type)`` of a stream's table, ``key`` first, then the record's fields in order
    (the order of ``msgspec.structs.astuple``, which builds the rows)."""
    info = mi.type_info(RECORD_TYPES[stream])
    assert isinstance(info, mi.StructType)
    return (("key", 'text COLLATE "C"'), *((f.name, sql_type(f.type)) for f in info.fields))


COLUMNS: dict[Stream, tuple[tuple[str, str], ...]] = {stream: columns(stream) for stream in STREAMS}
FLOATS = {stream: tuple(i for i, (_, kind) in enumerate(cols) if kind == "double precision")
          for stream, cols in COLUMNS.items()}
"""Each stream's ``double precision`` columns, by position in :data:`COLUMNS`."""


def field_names(stream: Stream) -> list[str]:
    """The record's fields in column order (every column but ``key``)."""
    return [name for name, _ in COLUMNS[stream][1:]]


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table(schema: str, stream: Stream) -> str:
    """A stream's table, schema-qualified and quoted."""
    return f"{ident(schema)}.{ident(stream)}"
