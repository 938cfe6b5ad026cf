"""The Parquet and DuckDB sinks and the sink factory, against real files: the three streams equal
the simulator's truth, a later run replaces keys, crashes lose nothing and double nothing, and bad
input (an unknown format, a missing extra, an unwritable path, a DuckDB file in use) is exit 2
before any call."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harvester import Harvester
from harvester.commands.demo import compare, demo_config
from harvester.config import parse_config
from harvester.config.model import Output
from harvester.days import from_unix
from harvester.errors import ConfigError
from harvester.records import RECORD_TYPES
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_accounts, expected_media, expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import arrow, factory
from harvester.sinks.duckdb import SCHEMA_VERSION, DuckdbSink
from harvester.sinks.parquet import ParquetSink
from harvester.state.store import StateStore

from support import ACCOUNT_RECORD as ACCOUNT
from support import MEDIA_RECORD as MEDIA
from support import NOW, assert_streams_match, insight, run_with_kills, token_env, write_config

FORMATS = ("parquet", "duckdb")


def output(fmt: str, path: Path, **fields) -> Output:
    return Output(format=fmt, path=str(path), **fields)


# -- the factory --------------------------------------------------------------------------------

def test_an_unknown_format_names_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"format = 'csv': unknown; allowed: jsonl, parquet, duckdb"):
        factory.open_sink(output("csv", tmp_path), "r1")


@pytest.mark.parametrize("fmt", ("jsonl", *FORMATS))
async def test_each_format_gives_back_every_record_of_the_three_streams(tmp_path, fmt):
    """What a run wrote is read back (factory.current_records) as the dicts JSONL holds:
    timestamps and days as the API's strings, lists as lists, absent fields as None."""
    settings = output(fmt, tmp_path / "out")
    sink = factory.open_sink(settings, "r1")
    records = [insight(1, 3), insight(2, 0.25, timeframe=None), MEDIA, ACCOUNT]
    sink.recover({})
    sink.write("u1", records)
    await sink.close()
    sink.publish()
    for stream in ("insights", "media", "accounts"):
        expected = [msgspec.json.decode(msgspec.json.encode(r)) for r in records if r.to_dict()["stream"] == stream]
        assert list(factory.current_records(settings, stream)) == expected


async def test_parquet_columns_are_typed(tmp_path):
    sink = ParquetSink(tmp_path / "r1")
    sink.write("u1", [insight(1, 3), MEDIA, ACCOUNT])
    await sink.close()
    sink.publish()
    (insights,) = (tmp_path / "r1" / "insights").glob("part-*.parquet")
    schema = pq.read_schema(insights)
    assert schema.field("end_time").type == pa.timestamp("ms", tz="UTC")     # Parquet has no seconds
    assert schema.field("value").type == pa.float64() and schema.field("object_id").type == pa.string()
    assert schema.field("dimension_keys").type == pa.list_(pa.string())
    media = pq.read_schema(next((tmp_path / "r1" / "media").glob("part-*.parquet")))
    assert media.field("children_ids").type == pa.list_(pa.string())
    assert media.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert media.field("like_count").type == pa.int64()
    assert pq.read_schema(next((tmp_path / "r1" / "accounts").glob("part-*.parquet"))).field("day").type == pa.date32()
    # DuckDB reads the dataset without an option, with the types
    dataset = f"read_parquet('{tmp_path}/r1/insights/*.parquet')"
    rows = duckdb.sql(f"select typeof(end_time), value from {dataset}").fetchall()
    assert rows == [("TIMESTAMP WITH TIME ZONE", 3.0)]


@pytest.mark.parametrize("stream", ("insights", "media", "accounts"))
def test_a_column_of_one_value_is_converted_as_value_by_value_to_the_same_journal_bytes(stream):
    """arrow.to_table converts a text column holding one value throughout once and repeats it:
    the same arrays, and the same bytes in a journal, as each value converted (nulls, empty and
    full lists, a timestamp not in the API's format, equal strings that are distinct objects, a
    column that differs only in its middle)."""
    kind = RECORD_TYPES[stream]
    rng = random.Random(stream)
    samples = {pa.string(): ["x", "é", "", None], arrow.TIMESTAMP: ["2026-10-01T07:00:00+0000", "garbage", None],
               pa.date32(): ["2026-10-02", None], arrow._TEXT: [(), ("a", "b"), None],
               pa.float64(): [0, -0.0, 2.5, None], pa.int64(): [0, 7, None], pa.bool_(): [True, None]}
    for _ in range(40):
        n = rng.choice((2, 3, 50))
        columns = {}
        for field in arrow.SCHEMAS[stream]:
            value = rng.choice(samples[field.type])
            shape = rng.choice(("one", "copies", "middle", "mixed"))
            if shape == "one" or value is None:
                columns[field.name] = [value] * n
            elif shape == "copies":                # equal, not the same object
                columns[field.name] = [msgspec.json.decode(msgspec.json.encode(value), type=type(value))
                                       for _ in range(n)]
            elif shape == "middle":
                columns[field.name] = [value] * n
                columns[field.name][n // 2] = rng.choice(samples[field.type])
            else:
                columns[field.name] = [rng.choice(samples[field.type]) for _ in range(n)]
        records = [kind(**{name: values[i] for name, values in columns.items()}) for i in range(n)]
        table = arrow.to_table(stream, records)
        reference = pa.Table.from_arrays([arrow._converted(columns[f.name], f.type) for f in arrow.SCHEMAS[stream]],
                                         schema=arrow.SCHEMAS[stream])
        assert [table.column(name).to_pylist() for name in table.schema.names] == \
            [reference.column(name).to_pylist() for name in table.schema.names]
        assert _journal_bytes(table) == _journal_bytes(reference)


def _journal_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


async def test_parquet_commits_append_to_journals_converted_into_parts_of_part_records(tmp_path):
    """Each commit appends to the stream's journal (the state records its length); a journal
    closes once it holds ``part_records`` and becomes a part file; publish converts the rest:
    only ``part-*`` files remain."""
    sink = ParquetSink(tmp_path / "r1", part_records=10)
    commits = []
    for n in range(7):
        sink.write(f"u{n}", [insight(n * 4 + i) for i in range(4)])
        commits += [(p.part, p.records) for p in (await sink.commit()).parts]
    journals = [f"insights/journal-{n:06d}.arrows" for n in (1, 1, 1, 2, 2, 2, 3)]
    assert commits == list(zip(journals, [4, 8, 12, 4, 8, 12, 4], strict=True))
    sink.publish()
    names = sorted(p.name for p in (tmp_path / "r1" / "insights").iterdir())
    assert names == ["part-000001.parquet", "part-000002.parquet", "part-000003.parquet"]
    assert [pq.ParquetFile(tmp_path / "r1" / "insights" / n).metadata.num_rows for n in names] == [12, 12, 4]
    assert len(list(factory.current_records(output("parquet", tmp_path), "insights"))) == 28


def test_parquet_commits_by_records_and_seconds_not_by_units(tmp_path):
    """A Parquet commit costs an fsync and a conversion: not one per ``commit_units`` units, but
    every ``batch_records`` records (or ``commit_seconds``)."""
    sink = ParquetSink(tmp_path / "r1", batch_records=50, commit_seconds=3600)
    for n in range(200):
        sink.write(f"e{n}", ())
    assert not sink.should_commit()
    sink.write("u1", [insight(i) for i in range(49)])
    assert not sink.should_commit()
    sink.write("u2", [insight(49)])
    assert sink.should_commit()
    assert ParquetSink(tmp_path / "r2", commit_seconds=0).should_commit() is False     # nothing written yet
    late = ParquetSink(tmp_path / "r3", commit_seconds=0)
    late.write("u1", ())
    assert late.should_commit()


async def test_parquet_recover_keeps_committed_work_and_removes_the_rest(tmp_path):
    """After a crash: a journal is cut back to its committed length, or removed when nothing of it
    was committed; a journal whose part was written is removed; temporaries go. The journals kept
    become parts, and the run goes on in a new journal."""
    sink = ParquetSink(tmp_path / "r1", part_records=8)
    directory = tmp_path / "r1" / "insights"
    committed: dict[str, int | None] = {}
    for n in range(4):
        sink.write(f"u{n}", [insight(n * 4 + i) for i in range(4)])
        committed |= {p.part: p.length for p in (await sink.commit()).parts}
        if n == 1:      # journal 1 is closed: keep a copy, as a crash between its part's rename and its removal would
            first_journal = (directory / "journal-000001.arrows").read_bytes()
    if (converting := sink._streams["insights"].converting) is not None:
        converting.result()     # journal 1's part, written in the background from the 3rd commit on
    assert sorted(p.name for p in directory.iterdir()) == ["journal-000002.arrows", "part-000001.parquet"]
    (directory / "journal-000001.arrows").write_bytes(first_journal)
    with open(directory / "journal-000002.arrows", "ab") as torn:       # half a batch of an uncommitted commit
        torn.write(first_journal[-100:])
    (directory / "journal-000003.arrows").write_bytes(first_journal)    # never committed
    (directory / ".part-000002.parquet.tmp").write_bytes(b"half")
    again = ParquetSink(tmp_path / "r1", part_records=8)
    removed = again.recover(committed)
    cut = committed["insights/journal-000002.arrows"]
    assert sorted(removed) == ["insights/.part-000002.parquet.tmp", "insights/journal-000001.arrows (converted)",
                               f"insights/journal-000002.arrows (from byte {cut:,})",
                               "insights/journal-000003.arrows"]
    again.write("u9", [insight(100)])
    assert [p.part for p in (await again.commit()).parts] == ["insights/journal-000004.arrows"]
    again.publish()
    assert sorted(p.name for p in directory.iterdir()) == ["part-000001.parquet", "part-000002.parquet",
                                                          "part-000004.parquet"]
    values = sorted(r["object_id"] for r in factory.current_records(output("parquet", tmp_path), "insights"))
    assert values == sorted([f"m{i}" for i in range(16)] + ["m100"])


async def test_duckdb_upserts_keep_each_key_once_with_its_latest_value(tmp_path):
    sink = DuckdbSink(tmp_path / "x.duckdb", "r1")
    sink.write("u1", [insight(1, 1), insight(2, 1), MEDIA, ACCOUNT])
    await sink.commit()
    sink.write("u2", [insight(1, 5), msgspec.structs.replace(MEDIA, like_count=7)])
    await sink.close()
    db = duckdb.connect(str(tmp_path / "x.duckdb"), read_only=True)
    rows = db.sql("select object_id, value, key_text from insights order by object_id").fetchall()
    assert [(o, v) for o, v, _ in rows] == [("m1", 5.0), ("m2", 1.0)]
    assert db.sql("select like_count from media").fetchall() == [(7,)]
    assert db.sql("select version from harvester_schema").fetchall() == [(SCHEMA_VERSION,)]
    db.close()


async def test_duckdb_loses_only_the_uncommitted_batch(tmp_path):
    """A process killed after a commit and with a batch written but not committed: the file holds
    the committed records only."""
    script = f"""
import asyncio, os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from support import insight
from harvester.sinks.duckdb import DuckdbSink
async def main():
    sink = DuckdbSink({str(tmp_path / 'x.duckdb')!r}, "r1")
    sink.write("u1", [insight(i) for i in range(1000)])
    await sink.commit()
    sink.write("u2", [insight(i, 9) for i in range(1000, 2000)])
    os._exit(9)                 # as kill -9: no close, no rollback
asyncio.run(main())
"""
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9
    db = duckdb.connect(str(tmp_path / "x.duckdb"), read_only=True)
    assert db.sql("select count(*), max(value) from insights").fetchall() == [(1000, 1.0)]
    db.close()


def test_a_duckdb_file_of_a_newer_harvester_is_refused(tmp_path):
    db = duckdb.connect(str(tmp_path / "x.duckdb"))
    db.execute("CREATE TABLE harvester_schema (version INTEGER NOT NULL); INSERT INTO harvester_schema VALUES (99)")
    db.close()
    with pytest.raises(ConfigError, match="newer harvester"):
        DuckdbSink(tmp_path / "x.duckdb", "r1")


def test_a_file_that_is_not_a_duckdb_database_is_a_message(tmp_path):
    (tmp_path / "x.duckdb").write_text("hello")
    with pytest.raises(ConfigError, match="cannot be opened as a DuckDB database"):
        DuckdbSink(tmp_path / "x.duckdb", "r1")


# -- harvests of the simulator -----------------------------------------------------------------

async def harvest(world, output_dir: Path, state: StateStore, fmt: str, days: int = 3):
    raw = demo_config("http://simulator", {f"TOKEN_{t.index}": t.account_ids for t in world.tokens}, output_dir,
                      from_unix(int(world.now)), days=days, calls_per_window=10**6, output_format=fmt,
                      logins={f"TOKEN_{t.index}": t.kind for t in world.tokens if t.kind != "facebook"})
    raw["refresh"] = {"enabled": False}
    env = token_env(world)
    config = parse_config(raw, path="<test>", env=env, today=from_unix(int(world.now)))
    transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    return config, summary


@pytest.mark.looptime
@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_harvest_writes_the_three_streams_equal_to_the_truth(tmp_path, fmt):
    world = World(WorldSpec(now=NOW, seed=31, accounts=3, media_per_account=40))
    state = StateStore(tmp_path / "state.sqlite")
    config, summary = await harvest(world, tmp_path / "out", state, fmt)
    state.close()
    results = assert_streams_match(tmp_path / "out", world, config)
    assert summary.records == results["insights"]["expected"]        # the summary counts what was written


@pytest.mark.looptime
@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_nightly_run_a_day_later_replaces_the_keys_it_fetches_again(tmp_path, fmt):
    """Two runs on consecutive days into one output: each key once; a key both fetched has the
    later run's value (the world moved on a day: lifetime values grew); accounts keep a record a day."""
    now = time.time()
    truth: dict = {"insights": {}, "media": {}, "accounts": {}}
    state = StateStore(tmp_path / "state.sqlite")
    for day in (0, 1):
        world = World(WorldSpec(seed=32, accounts=3, media_per_account=30, now=now + day * 86400))
        config, _ = await harvest(world, tmp_path / "out", state, fmt, days=3)
        until = from_unix(int(world.now))
        truth["insights"] |= expected_records(world, until - timedelta(days=3), until)
        truth["media"] = expected_media(world)
        truth["accounts"] |= expected_accounts(world, until)
    runs = [run.run_id for run in state.runs()]
    state.close()
    current_runs = set()
    for stream, expected in truth.items():
        records = list(factory.current_records(config.output, stream))
        result = compare(records, expected)
        assert result == {"expected": len(expected), "found": len(expected), "missing": 0, "extra": 0,
                          "wrong": 0, "duplicates": 0}, (stream, result)
        current_runs |= {r["run_id"] for r in records}
    assert len(runs) == 2 and current_runs == set(runs)     # the first run's days not fetched again stay


# -- kill -9 ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
async def test_sigkill_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path, simulator_server, fmt):
    world = World(WorldSpec(seed=4, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, faults=0.02, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url, output_format=fmt)
    code, killed = await run_with_kills(config, token_env(world), server, random.Random(4), kills=3)
    assert code == 0 and killed >= 1
    state = StateStore(tmp_path / "state.sqlite")
    runs = state.runs()
    state.close()
    assert len(runs) == 1 and runs[0].status == "finished"
    assert_streams_match(tmp_path / "out", world, config, token_env(world))     # nothing lost, nothing twice
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp") or p.name.startswith("c-")]


# -- bad input: exit 2 before any call ---------------------------------------------------------

def cli(*args: str, env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess:
    """``harvester`` in a subprocess with its clock at NOW (tests/present.py); ``prelude`` runs first
    (to hide a module, say)."""
    code = (f"{prelude}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from present import main\nsys.exit(main())")
    return subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def bad_config(tmp_path: Path, fmt: str, path: str) -> Path:
    world = World(WorldSpec(now=NOW, seed=5, accounts=1, media_per_account=3))
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9", output_format=fmt)
    text = config.read_text().replace(f'path = "{tmp_path / "out"}"', f'path = "{path}"')
    config.write_text(text)
    return config


def no_run_started(tmp_path: Path) -> bool:
    if not (tmp_path / "state.sqlite").exists():
        return True
    state = StateStore(tmp_path / "state.sqlite")
    try:
        return state.runs() == []
    finally:
        state.close()


@pytest.mark.parametrize(("fmt", "module", "extra"), [("parquet", "pyarrow", "parquet"), ("duckdb", "duckdb", "duckdb"),
                                                      ("duckdb", "pyarrow", "duckdb")])
def test_a_missing_extra_is_exit_2_naming_the_install(tmp_path, fmt, module, extra):
    config = bad_config(tmp_path, fmt, str(tmp_path / "out"))
    hide = f"import sys; sys.modules[{module!r}] = None"
    for command in ("validate", "run"):
        done = cli(command, "--config", str(config), env={"TOKEN_0": "t"}, prelude=hide)
        assert done.returncode == 2, done.stderr
        assert f"needs the Python package {module!r}" in done.stderr, done.stderr
        assert f"pip install 'harvester[{extra}]'" in done.stderr and "Traceback" not in done.stderr
    assert no_run_started(tmp_path) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unwritable_output_path_is_exit_2(tmp_path, fmt):
    (tmp_path / "file").write_text("x")
    path = str(tmp_path / "file" / ("db.duckdb" if fmt == "duckdb" else "out"))
    config = bad_config(tmp_path, fmt, path)
    for command in ("validate", "run"):
        done = cli(command, "--config", str(config), env={"TOKEN_0": "t"})
        assert done.returncode == 2 and f"[output] path = {path!r}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert no_run_started(tmp_path)


def test_a_duckdb_file_in_use_by_another_process_is_exit_2_before_any_call(tmp_path):
    database = tmp_path / "insights.duckdb"
    hold = f"import duckdb, time; db = duckdb.connect({str(database)!r}); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        config = bad_config(tmp_path, "duckdb", str(database))
        done = cli("run", "--config", str(config), env={"TOKEN_0": "t"})
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    assert "in use by another process" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert no_run_started(tmp_path)


@pytest.mark.slow
def test_the_demo_leaves_a_duckdb_file_and_a_query_to_run(tmp_path):
    done = cli("demo", "--accounts", "2", "--media-per-account", "5", "--faults", "0",
               "--output", str(tmp_path / "demo"), env={})
    assert done.returncode == 0, done.stderr
    line = next(line.strip() for line in done.stderr.splitlines() if line.strip().startswith(sys.executable))
    ran = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "media_type" in ran.stdout and "avg_likes" in ran.stdout, ran.stderr
