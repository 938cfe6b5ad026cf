"""The tap's catalog: three streams, their key properties and JSON schemas, read from the record
Structs (so a field added to a record is in the catalog the day it is added).

Singer targets upsert on ``key_properties``. An insight's natural key has fields that may be null
or lists, which a target's primary key cannot hold, so insights carry one more property, ``key``:
the natural key as one string (:func:`harvester.records.key_text`), its key property.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ConfigError
from ..records import RECORD_TYPES, STREAMS, Stream

KEY_PROPERTIES: dict[Stream, list[str]] = {"insights": ["key"], "media": ["media_id"],
                                          "accounts": ["account_id", "day"]}
TIMES = frozenset({"since", "until", "end_time", "timestamp", "harvested_at"})
"""Written in RFC 3339 (``2026-10-01T00:00:00+00:00``), JSON Schema's ``date-time``."""
DATES = frozenset({"day", "observed_on"})


def schema(stream: Stream) -> dict[str, Any]:
    """The JSON schema of a stream's records, as Singer targets read it."""
    info = msgspec.inspect.type_info(RECORD_TYPES[stream])
    assert isinstance(info, msgspec.inspect.StructType)
    properties = {f.name: _property(f.name, f.type) for f in info.fields}
    if stream == "insights":
        properties = {"key": {"type": "string"}, **properties}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _property(name: str, kind: msgspec.inspect.Type) -> dict[str, Any]:
    kinds = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
    types: list[str] = []
    item: dict[str, Any] | None = None
    for k in kinds:
        if isinstance(k, msgspec.inspect.NoneType):
            types.append("null")
        elif isinstance(k, msgspec.inspect.BoolType):
            types.append("boolean")
        elif isinstance(k, msgspec.inspect.IntType):
            types.append("integer")
        elif isinstance(k, msgspec.inspect.FloatType):
            types.append("number")
        elif isinstance(k, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
            types.append("array")
            item = {"type": "string"}
        else:                                          # str, Literal[...] of strings
            types.append("string")
    if "integer" in types and "number" in types:       # a value: int or float
        types.remove("integer")
    prop: dict[str, Any] = {"type": sorted(set(types), key=types.index)}
    if item is not None:
        prop["items"] = item
    if name in TIMES:
        prop["format"] = "date-time"
    elif name in DATES:
        prop["format"] = "date"
    return prop


def catalog() -> dict[str, Any]:
    """What ``harvester singer --discover`` prints: every stream, selected."""
    return {"streams": [{
        "tap_stream_id": stream, "stream": stream, "key_properties": KEY_PROPERTIES[stream], "schema": schema(stream),
        "metadata": [{"breadcrumb": [], "metadata": {"selected": True, "table-key-properties": KEY_PROPERTIES[stream],
                                                     "forced-replication-method": "INCREMENTAL"}}],
    } for stream in STREAMS]}


def selected(catalog_doc: Any, path: str) -> tuple[Stream, ...]:
    """The streams a catalog selects (Singer's ``selected`` metadata, else the legacy top-level
    ``selected``); ConfigError for a catalog that is not one or names a stream harvester has not."""
    streams = catalog_doc.get("streams") if isinstance(catalog_doc, dict) else None
    if not isinstance(streams, list):
        raise ConfigError(f"{path}: not a Singer catalog (expected an object with a list \"streams\")")
    chosen: list[Stream] = []
    for i, entry in enumerate(streams):
        name = entry.get("tap_stream_id") or entry.get("stream") if isinstance(entry, dict) else None
        if name not in STREAMS:
            raise ConfigError(f"{path}: streams[{i}] is {name!r}, not a stream of harvester; "
                              f"expected one of {', '.join(STREAMS)}")
        top: dict[str, Any] = next((m.get("metadata", {}) for m in entry.get("metadata", [])
                                    if m.get("breadcrumb") == []), {})
        if top.get("selected", entry.get("selected", False)):
            chosen.append(name)
    return tuple(s for s in STREAMS if s in chosen)
