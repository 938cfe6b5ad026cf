"""The dlt source: one harvest, three resources.

A hidden resource runs the harvest (:meth:`Harvester.records`: the same pacing and error policy as
``harvester run``) and yields its records in batches; three transformers, ``insights``, ``media``
and ``accounts``, each take their stream's records from it as a typed Arrow table (the Parquet
and DuckDB sinks' columns, :mod:`harvester.sinks.arrow`), so the API is called once for all three
and dlt loads typed columns instead of parsing every value of every row. Each declares its
natural key as ``primary_key`` and ``write_disposition="merge"``: a later harvest's record
replaces an earlier one with the same key, and a load that was killed and run again doubles
nothing. An insight's key has fields that may be null or lists, which no SQL
primary key holds, so it is loaded as one text column, ``key`` (:func:`harvester.records.key_text`).

Column hints give each field its type as the destinations take it: ids as text (never numbers:
they would lose digits), times as timestamps, ``value`` as a double, days as dates, and the
breakdowns' dimension lists and an album's children as JSON.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, cast

import msgspec

from ..config import Config, load_config
from ..errors import ConfigError
from ..records import RECORD_TYPES, STREAMS, Record, Stream, key_text

try:
    import dlt
    import pyarrow as pa
    from dlt.common.schema.typing import TTableSchemaColumns

    from ..sinks import arrow
except ImportError:                         # named by require(): the extra
    dlt = None  # type: ignore[assignment]

EXTRA = "pip install 'harvester[dlt]'"
JSON_COLUMNS = frozenset({"dimension_keys", "dimension_values", "children_ids", "children_types"})
"""Lists of strings, handed to dlt as JSON text: some destinations load through CSV, which holds no list."""
_encode = msgspec.json.Encoder().encode
BATCH = 2_000
"""Records a batch carries from the harvest to the resources (dlt's cost is per item it is handed)."""

_TEXT, _TIME, _DATE, _JSON = ({"data_type": t} for t in ("text", "timestamp", "date", "json"))
_COMMON = {"run_id": _TEXT, "harvested_at": _TIME}
COLUMNS: dict[Stream, dict[str, dict[str, Any]]] = {
    "insights": {"key": {"data_type": "text", "nullable": False}, "account_id": _TEXT, "object_id": _TEXT,
                 "object_type": _TEXT, "media_type": _TEXT, "media_product_type": _TEXT, "metric": _TEXT,
                 "period": _TEXT, "metric_type": _TEXT, "timeframe": _TEXT, "since": _TIME, "until": _TIME,
                 "end_time": _TIME, "dimension_keys": _JSON, "dimension_values": _JSON,
                 "value": {"data_type": "double"}, "observed_on": _DATE, "source": _TEXT, **_COMMON},
    "media": {"media_id": {"data_type": "text", "nullable": False}, "account_id": _TEXT, "media_type": _TEXT,
              "media_product_type": _TEXT, "timestamp": _TIME, "permalink": _TEXT, "shortcode": _TEXT,
              "caption": _TEXT, "like_count": {"data_type": "bigint"}, "comments_count": {"data_type": "bigint"},
              "is_comment_enabled": {"data_type": "bool"}, "media_url": _TEXT, "thumbnail_url": _TEXT,
              "children_ids": _JSON, "children_types": _JSON, **_COMMON},
    "accounts": {"account_id": {"data_type": "text", "nullable": False},
                 "day": {"data_type": "date", "nullable": False},
                 "username": _TEXT, "name": _TEXT, "followers_count": {"data_type": "bigint"},
                 "follows_count": {"data_type": "bigint"}, "media_count": {"data_type": "bigint"},
                 "biography": _TEXT, "website": _TEXT, "profile_picture_url": _TEXT, **_COMMON},
}
PRIMARY_KEYS: dict[Stream, tuple[str, ...]] = {"insights": ("key",), "media": ("media_id",),
                                               "accounts": ("account_id", "day")}


def require() -> None:
    if dlt is None:
        raise ConfigError(f"the dlt source needs the Python package 'dlt', which is not installed: {EXTRA}")


def harvester_source(config: Config | str | os.PathLike, tokens: Mapping[str, str] | Any = None) -> Any:
    """A dlt source of the harvest ``config`` asks for (a path, or a loaded Config), its tokens as
    :class:`harvester.Harvester` takes them (default: the environment variables the config names)."""
    require()
    if not isinstance(config, Config):
        config = load_config(config, check_tokens=tokens is None)

    return records_source(_harvest(config, tokens))


def records_source(batches: Any) -> Any:
    """The three resources over ``batches`` of records (an iterator, sync or async): the harvest's,
    or any other (the benchmark feeds records straight in)."""
    @dlt.source(name="instagram", max_table_nesting=0)
    def instagram() -> Iterator[Any]:
        harvest = dlt.resource(cast(Any, batches), name="harvest", selected=False)
        for stream in STREAMS:
            yield dlt.transformer(_of(stream), data_from=harvest, name=stream, primary_key=PRIMARY_KEYS[stream],
                                  write_disposition="merge", columns=_columns(stream))

    return instagram()


def _columns(stream: Stream) -> TTableSchemaColumns:
    return cast("TTableSchemaColumns", {name: {"name": name, **hint} for name, hint in COLUMNS[stream].items()})


async def _harvest(config: Config, tokens: Any) -> AsyncIterator[list[Record]]:
    from ..run.harvester import Harvester
    batch: list[Record] = []
    async with Harvester(config, tokens=tokens) as harvester:
        async for record in harvester.records():
            batch.append(record)
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _of(stream: Stream) -> Callable[[list[Record]], Iterator[Any]]:
    kind = RECORD_TYPES[stream]

    def take(batch: list[Record]) -> Iterator[Any]:
        records = [r for r in batch if type(r) is kind]
        if records:
            table = arrow.to_table(stream, records)
            for name in JSON_COLUMNS.intersection(table.column_names):   # a list is JSON in every destination
                values = [getattr(r, name) for r in records]
                table = table.set_column(table.column_names.index(name), name, pa.array(
                    [None if v is None else _encode(v).decode() for v in values], pa.string()))
            if stream == "insights":
                table = table.add_column(0, "key", pa.array([key_text(r) for r in records], pa.string()))
            yield table
    take.__name__ = stream
    return take
