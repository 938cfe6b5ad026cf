"""The DuckDB sink's key and upserts: a key twice in one batch keeps its last value, the key text
tells every natural key apart, and a file of schema version 1 is migrated in place."""

from __future__ import annotations

from pathlib import Path

import duckdb
import msgspec

from harvester.records import STREAMS, natural_key
from harvester.sinks import arrow
from harvester.sinks.duckdb import SCHEMA_VERSION, DuckdbSink, _columns, key_text

from support import ACCOUNT_RECORD as ACCOUNT
from support import MEDIA_RECORD as MEDIA
from support import insight

replace = msgspec.structs.replace


def rows(path: Path, sql: str) -> list[tuple]:
    db = duckdb.connect(str(path), read_only=True)
    try:
        return db.sql(sql).fetchall()
    finally:
        db.close()


async def test_a_key_twice_in_one_batch_keeps_its_last_value(tmp_path):
    sink = DuckdbSink(tmp_path / "x.duckdb", "r1")
    sink.write("u1", [insight(1, 1), insight(2, 1), MEDIA, ACCOUNT])
    sink.write("u2", [insight(1, 5), replace(MEDIA, like_count=7), replace(ACCOUNT, followers_count=11)])
    await sink.close()
    db = tmp_path / "x.duckdb"
    assert rows(db, "select object_id, value from insights order by object_id") == [("m1", 5.0), ("m2", 1.0)]
    assert rows(db, "select like_count from media") == [(7,)]
    assert rows(db, "select followers_count from accounts") == [(11,)]


TRICKY = [insight(1), insight(1, observed_on="2026-10-02"), insight(1, timeframe=""), insight(1, timeframe="x"),
          replace(insight(1), dimension_keys=("follow_type", "x"), dimension_values=("FOLLOWER", "y")),
          replace(insight(1), dimension_keys=("follow_typex",), dimension_values=("FOLLOWERy",)),
          replace(insight(1), dimension_keys=("follow_type:x",), dimension_values=("FOLLOWER",)),
          replace(insight(1), dimension_keys=(), dimension_values=()),
          replace(insight(1), dimension_keys=("",), dimension_values=("",)),
          replace(insight(1), end_time=None),
          replace(insight(1), end_time=None, until=None),
          replace(insight(1), end_time=None, since="2026-09-30T00:00:00+0000"),
          replace(insight(1), object_id="m1reach", metric="day"),
          replace(insight(1), object_id="2:m1", metric="reach"),
          replace(insight(1), object_id="m", metric="1reach")]


async def test_the_key_text_tells_every_natural_key_apart(tmp_path):
    """Keys that differ in a null, an empty string or where one field ends: each is its own row,
    and written again, each is replaced, not doubled."""
    assert len({natural_key(r) for r in TRICKY}) == len(TRICKY)
    sink = DuckdbSink(tmp_path / "x.duckdb", "r1")
    sink.write("u1", TRICKY)
    await sink.commit()
    sink.write("u2", [replace(r, value=9) for r in TRICKY])
    await sink.close()
    assert rows(tmp_path / "x.duckdb", "select count(*), count(distinct key_text), min(value) from insights") \
        == [(len(TRICKY), len(TRICKY), 9.0)]


V1_KEY = ("CASE WHEN end_time IS NOT NULL "
          "THEN to_json([object_id, metric, period, timeframe, to_json(dimension_keys)::VARCHAR, "
          "to_json(dimension_values)::VARCHAR, epoch(end_time)::VARCHAR, observed_on::VARCHAR]) "
          "ELSE to_json([object_id, metric, period, timeframe, to_json(dimension_keys)::VARCHAR, "
          "to_json(dimension_values)::VARCHAR, epoch(since)::VARCHAR, epoch(until)::VARCHAR, "
          "observed_on::VARCHAR]) END::VARCHAR")
"""How harvester 1's files keyed insights (schema version 1)."""

def write_version_1(path: Path, records: list) -> None:
    """A file as harvester 1 left it: its tables, its keys, version 1."""
    db = duckdb.connect(str(path))
    db.execute("SET TimeZone = 'UTC'")
    db.execute("CREATE TABLE harvester_schema (version INTEGER NOT NULL); INSERT INTO harvester_schema VALUES (1)")
    for stream in STREAMS:                      # the same columns and keys: only key_text's text changed
        db.execute(f"CREATE TABLE {stream} ({_columns(stream)})")
    staged = arrow.to_table("insights", records)  # noqa: F841 (read by name in the SQL)
    db.execute(f"INSERT INTO insights SELECT {V1_KEY} AS key_text, * FROM staged")
    db.close()


async def test_a_version_1_file_is_migrated_in_place(tmp_path):
    """The old keys are replaced by the new ones in one transaction: a later upsert of the same
    facts replaces them (it would double every row if the old keys stayed)."""
    database = tmp_path / "x.duckdb"
    old = TRICKY + [insight(i) for i in range(2, 50)]
    write_version_1(database, old)
    sink = DuckdbSink(database, "r2")
    sink.write("u1", [replace(r, value=7) for r in old])
    await sink.close()
    assert rows(database, "select version from harvester_schema") == [(SCHEMA_VERSION,)]
    assert rows(database, "select count(*), min(value), max(value) from insights") == [(len(old), 7.0, 7.0)]
    stored = duckdb.connect(str(database), read_only=True)
    table = stored.sql("select * from insights").to_arrow_table()
    stored.close()
    assert table.column("key_text").to_pylist() == key_text(table).to_pylist()
    assert rows(database, "select count(*) from media") == [(0,)]
