"""The PostgreSQL sink against a real server the suite starts itself (initdb + pg_ctl on a free
loopback port, see harvester.sinks.pgserver): three streams equal to the ground truth, nightly
re-runs and concurrent runs replacing keys, kill -9, a lost connection, and every bad start
(exit 2 before any call, nothing half-written, the DSN's password nowhere)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from harvester import Harvester
from harvester.commands.demo import compare
from harvester.config import Config
from harvester.config.model import Output
from harvester.days import from_unix
from harvester.errors import ConfigError, SinkError
from harvester.ports import free_port
from harvester.records import STREAM_OF, STREAMS, AccountRecord, InsightRecord, MediaRecord, key_text
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_accounts, expected_media, expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.base import SinkFailure
from harvester.state.store import StateStore

from support import NOW, PG, run_with_kills, token_env, world_config, write_config
from support import harvester as harvester_cli

asyncpg = pytest.importorskip("asyncpg") if os.environ.get("CI") != "true" else __import__("asyncpg")
from harvester.sinks import pgserver, postgres  # noqa: E402  (after the extra is known to be there)


def pg_config(world, tmp: Path, pg: PG, *, days: int = 3, **output) -> tuple[Config, dict[str, str]]:
    config, env = world_config(world, tmp / "out", days=days)
    out = msgspec.structs.replace(config.output, format="postgres", schema=pg.schema, **output)
    return msgspec.structs.replace(config, output=out), env


def truth_of(world, config: Config) -> dict[str, dict]:
    accounts = [a.id for a in config.accounts]
    return {"insights": expected_records(world, config.window.since, config.window.until, totals=config.window.totals),
            "media": expected_media(world, accounts=accounts),
            "accounts": expected_accounts(world, from_unix(int(world.now)), accounts=accounts)}


def assert_tables_match(config: Config, truth: dict[str, dict]) -> None:
    """Every table equals its stream's ground truth: nothing lost, nothing twice, each exact value."""
    for stream, expected in truth.items():
        result = compare(postgres.current_records(config.output, stream), expected)  # type: ignore[arg-type]
        assert expected and result == {"expected": len(expected), "found": len(expected), "missing": 0, "extra": 0,
                                       "wrong": 0, "duplicates": 0}, (stream, result)


def transport(world, **settings) -> SimulatorTransport:
    return SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9, **settings)))


async def harvest(config: Config, env, world, *, state: StateStore | None = None, **kwargs):
    async with Harvester.pinned(config, tokens=env, transport=transport(world), state=state, now=world.now,
                         **kwargs) as harvester:
        summary = await harvester.run()
    return harvester, summary


# -- the streams, the schema ---------------------------------------------------------------------


async def test_a_harvest_writes_the_three_streams_equal_to_the_truth(tmp_path, pg):
    world = World(WorldSpec(now=NOW, seed=31, accounts=3, media_per_account=40))
    config, env = pg_config(world, tmp_path, pg)
    harvester, summary = await harvest(config, env, world)
    assert summary.exit_code == 0
    assert_tables_match(config, truth_of(world, config))
    assert pg.sql(f"SELECT version FROM {pg.schema}.harvester_schema") == str(postgres.SCHEMA_VERSION)
    kinds = pg.sql(f"SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE "
                   f"table_schema = '{pg.schema}' AND table_name = 'insights' ORDER BY ordinal_position").split("\n")
    assert kinds[:3] == ["key text", "account_id text", "object_id text"]
    assert "value double precision" in kinds and "dimension_keys ARRAY" in kinds
    media = pg.sql(f"SELECT count(*) FROM {pg.schema}.media WHERE like_count IS NULL")
    assert int(media) > 0                                            # a hidden like count is a null
    assert pg.server.password not in repr(harvester.sink()) and pg.dsn not in repr(harvester.sink())


async def test_a_table_missing_a_field_gets_its_column_and_a_newer_schema_is_refused(tmp_path, pg):
    """Migration: an older table lacking a column gains it; a schema version above ours is refused."""
    pg.sql(f"CREATE SCHEMA {pg.schema}; CREATE TABLE {pg.schema}.media (key text PRIMARY KEY, media_id text);"
           f"CREATE TABLE {pg.schema}.harvester_schema (version integer NOT NULL);"
           f"INSERT INTO {pg.schema}.harvester_schema VALUES (1)")
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    await sink.close()
    assert "caption" in pg.sql(f"SELECT string_agg(column_name, ',') FROM information_schema.columns "
                               f"WHERE table_schema = '{pg.schema}' AND table_name = 'media'").split(",")
    pg.sql(f"UPDATE {pg.schema}.harvester_schema SET version = {postgres.SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="written by a newer harvester"):
        await postgres.PostgresSink(pg.dsn, schema=pg.schema).open()


# -- the rows the sink encodes itself -----------------------------------------------------------------


def _odd_records() -> list:
    """Records with every kind of value a column holds: text beyond ASCII, nulls in each nullable
    field, empty and longer arrays, counts past 32 bits, booleans, fractions, a unit of mixed
    streams and one whose columns vary record to record."""
    run, at = "r-1", "2026-03-01T00:00:00+0000"
    return [
        InsightRecord(account_id="1", object_id="m1", object_type="media", media_type="CAROUSEL_ALBUM",
                      metric="reach", period="lifetime", dimension_keys=("breakdown", "åge"),
                      dimension_values=("Zürich ☃", "日本語 \\ \"quoted\"\ttab\nline"), value=1.5,
                      run_id=run, harvested_at=at, source="webhook"),
        InsightRecord(account_id="1", object_id="m1", object_type="media", metric="views", period="lifetime",
                      value=None, run_id=None, harvested_at=None),
        InsightRecord(account_id="2", object_id="2", object_type="account", metric="follower_count", period="day",
                      end_time="2026-02-28T08:00:00+0000", value=2**40, run_id=run, harvested_at=at),
        InsightRecord(account_id="2", object_id="2", object_type="account", metric="views", period="day",
                      since="2026-02-01", until="2026-02-28", timeframe="this_month", value=-3,
                      observed_on="2026-02-28", run_id=run, harvested_at=at),
        MediaRecord(media_id="m1", account_id="1", caption="Ünïcødé 😀 Ελληνικά\n", like_count=2**62, comments_count=0,
                    is_comment_enabled=False, children_ids=("c1", "c2"), children_types=("IMAGE", "VIDEO"),
                    run_id=run, harvested_at=at),
        MediaRecord(media_id="m2", account_id="1", like_count=None, is_comment_enabled=True, children_ids=None,
                    children_types=None, run_id=run, harvested_at=at),
        MediaRecord(media_id="m3", account_id="1", run_id=run, harvested_at=at),
        AccountRecord(account_id="1", day="2026-03-01", username="ünïcode", followers_count=12, biography="",
                      run_id=run, harvested_at=at),
        MediaRecord(media_id="m4", account_id="1", children_ids=["c3"], children_types=["IMAGE"],  # type: ignore[arg-type]
                    run_id=run, harvested_at=at),                              # lists where tuples are typed
    ]


def _as_read(record) -> dict:
    out = {"stream": STREAM_OF[type(record)], **msgspec.to_builtins(record)}
    return {k: list(v) if isinstance(v, tuple | list) else v for k, v in out.items()}


async def test_the_rows_the_sink_encodes_read_back_exactly(pg):
    """The sink encodes binary COPY rows itself: every field of every stream comes back as it was
    written, whether a unit mixes streams or not, through the direct copy and through the merge."""
    records = _odd_records()
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    sink.write("mixed", records)                            # one unit of three streams
    await sink.commit()
    for n, record in enumerate(records):                    # again, one unit a record: now the merge
        sink.write(f"u{n}", [record])
    await sink.commit()
    await sink.close()
    assert sink.loaded == {"copied": len(records), "merged": len(records)}
    for stream in STREAMS:
        expected = sorted((_as_read(r) for r in records if STREAM_OF[type(r)] == stream),
                          key=key_text)
        assert postgres.read_records(pg.dsn, stream, pg.schema) == expected, stream      # psycopg, sync
        assert await postgres.fetch_records(pg.dsn, stream, pg.schema) == expected, stream   # asyncpg, on this loop
    keys = pg.sql(f"SELECT key FROM {pg.schema}.insights ORDER BY key").split("\n")
    assert keys == sorted(key_text(r) for r in records if isinstance(r, InsightRecord))


def test_the_sync_readers_start_no_event_loop_and_no_thread(pg, tmp_path, monkeypatch):
    """read_records, current_records and export_csv (the report's and the tests' path) read through
    psycopg's synchronous connection: no asyncio.run, no loop of their own, no thread."""
    import threading

    records = _records(3, "r", "2026-01-01T00:00:00+0000")

    async def write() -> None:
        sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
        await sink.open()
        sink.write("u", records)
        await sink.close()

    asyncio.run(write())

    def refused(*args, **kwargs):
        raise AssertionError("a sync reader started an event loop or a thread")

    for owner, name in ((asyncio, "run"), (asyncio, "new_event_loop"), (threading.Thread, "start")):
        monkeypatch.setattr(owner, name, refused)
    output = Output(format="postgres", schema=pg.schema)      # its DSN in HARVESTER_PG_DSN (the pg fixture's)
    read = postgres.read_records(pg.dsn, "insights", pg.schema)
    assert [(r["object_id"], r["value"]) for r in read] == [(f"m{i:05d}", i) for i in range(3)]
    assert list(postgres.current_records(output, "insights")) == read
    postgres.export_csv(output, "insights", tmp_path / "insights.csv", ["object_id", "value", "dimension_keys"])
    assert (tmp_path / "insights.csv").read_text().splitlines() == [f"m{i:05d},{i},[]" for i in range(3)]


async def test_a_negative_zero_and_an_integral_value_keep_their_column_values(pg):
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    sink.write("u", [InsightRecord(account_id="1", object_id=f"m{i}", object_type="media", metric="reach",
                                   period="lifetime", value=v) for i, v in enumerate((-0.0, 0.0, 7, 2.5e-300))])
    await sink.close()
    assert pg.sql(f"SELECT string_agg(value::text, ',' ORDER BY object_id) FROM {pg.schema}.insights") \
        == "-0,0,7,2.5e-300"


async def test_a_value_its_column_cannot_hold_is_refused_naming_the_field_and_its_unit_is_never_committed(pg):
    """A unit of several records is refused at write (nothing of it buffered); a one-record unit
    (encoded with the next ones of its stream) when it is encoded: that commit and every later
    one fail, so no commit marks the unit done without its record."""
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    try:
        big = InsightRecord(account_id="1", object_id="m1", object_type="media", metric="reach", period="lifetime",
                            value=10**400)
        with pytest.raises(SinkFailure, match=r"insights record .*value = 1000.* does not fit its column "
                                              r"\(double precision\)"):
            sink.write("u0", [*_records(3, "r", "2026-01-01T00:00:00+0000"), big])
        sink.write("u1", [MediaRecord(media_id="m1", account_id="1", like_count=2**70)])
        with pytest.raises(SinkFailure, match=r"media record \[\"m1\"\].*like_count = 1180591620717411303424 "
                                              r"does not fit its column \(bigint\)"):
            await sink.commit()
        sink.write("u2", _records(2, "r", "2026-01-01T00:00:00+0000"))
        with pytest.raises(SinkFailure, match="an earlier commit failed: cannot write media record"):
            await sink.commit()
        with pytest.raises(SinkFailure, match="an earlier commit failed"):
            await sink.close()                              # still closes its connection
    finally:
        sink.terminate()
    assert pg.sql(f"SELECT count(*) FROM {pg.schema}.insights") + pg.sql(f"SELECT count(*) FROM {pg.schema}.media") \
        == "00"


async def test_one_record_units_encoded_together_keep_the_last_written_of_a_key(pg):
    """Media and accounts come a record a unit and are encoded a batch at a time: a key written
    alone and then again in a unit of several (or alone again) keeps the last written."""
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    media = lambda mid, likes: MediaRecord(media_id=mid, account_id="1", like_count=likes)  # noqa: E731
    for n in range(postgres.SINGLES + 5):
        sink.write(f"s{n}", [media(f"m{n % 7}", n)])
    sink.write("pair", [media("m1", 1000), media("m9", 9)])
    sink.write("alone", [media("m2", 2000)])
    sink.write("mixed", [media("m3", 3000), InsightRecord(account_id="1", object_id="m3", object_type="media",
                                                          metric="reach", period="lifetime", value=1)])
    sink.write("last", [media("m4", 4000)])
    await sink.close()
    likes = dict(line.split("|") for line in pg.sql(f"SELECT media_id, like_count FROM {pg.schema}.media").split("\n"))
    last = {f"m{n % 7}": str(n) for n in range(postgres.SINGLES + 5)}
    assert likes == {**last, "m1": "1000", "m9": "9", "m2": "2000", "m3": "3000", "m4": "4000"}


async def test_a_batch_with_a_key_already_there_is_merged_and_the_direct_copy_comes_back_later(pg):
    """New keys go straight into the table; a batch holding one known key among new ones is
    merged whole (nothing lost, the known key replaced), the next MERGE_AFTER_CONFLICT commits
    merge, and then a batch of new keys is copied directly again."""
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema)
    await sink.open()
    first = _records(100, "first", "2026-01-01T00:00:00+0000")
    sink.write("u0", first)
    await sink.commit()
    assert sink.loaded == {"copied": 100, "merged": 0}
    second = [*_records(300, "second", "2026-01-02T00:00:00+0000")[99:]]       # m00099 again, 200 new
    sink.write("u1", second)
    await sink.commit()
    assert sink.loaded == {"copied": 100, "merged": 201}
    for n in range(postgres.MERGE_AFTER_CONFLICT):
        sink.write(f"m{n}", [InsightRecord(account_id="1", object_id=f"x{n}", object_type="media", metric="reach",
                                           period="lifetime", value=n)])
        await sink.commit()
    assert sink.loaded == {"copied": 100, "merged": 201 + postgres.MERGE_AFTER_CONFLICT}
    sink.write("u2", [InsightRecord(account_id="1", object_id="y", object_type="media", metric="reach",
                                    period="lifetime", value=1)])
    await sink.close()
    assert sink.loaded == {"copied": 101, "merged": 201 + postgres.MERGE_AFTER_CONFLICT}
    assert pg.sql(f"SELECT count(*), count(DISTINCT key) FROM {pg.schema}.insights") == \
        f"{300 + postgres.MERGE_AFTER_CONFLICT + 1}|{300 + postgres.MERGE_AFTER_CONFLICT + 1}"
    assert pg.sql(f"SELECT run_id, count(*) FROM {pg.schema}.insights WHERE object_id LIKE 'm%' GROUP BY 1 "
                  "ORDER BY 1") == "first|99\nsecond|201"


# -- replacing keys ------------------------------------------------------------------------------


async def test_a_nightly_rerun_replaces_the_keys_it_fetches_again(tmp_path, pg):
    """Two nightlies over overlapping windows into one schema: each key once, the days fetched
    again carry the later run, and the tables equal the truth of the later window."""
    world = World(WorldSpec(now=NOW, seed=32, accounts=3, media_per_account=20, stories_per_account=0))
    state = StateStore(tmp_path / "state.sqlite")
    for days in (3, 5):
        config, env = pg_config(world, tmp_path, pg, days=days)
        _, summary = await harvest(config, env, world, state=state, run_id=f"night-{days}")
        assert summary.exit_code == 0
    state.close()
    assert_tables_match(config, truth_of(world, config))
    runs = dict(line.split("|") for line in pg.sql(
        f"SELECT run_id, count(*) FROM {pg.schema}.insights WHERE object_type = 'account' GROUP BY run_id").split("\n"))
    assert set(runs) == {"night-5"}                     # every account day fetched again: the later run's
    assert pg.sql(f"SELECT count(DISTINCT run_id) FROM {pg.schema}.accounts") == "1"


async def test_two_harvests_at_once_on_overlapping_accounts_lose_and_double_nothing(tmp_path, pg):
    """Shards of one nightly writing one schema at once: the union equals the truth, each key
    once, and where both wrote a key the later run's (harvested later) value is the one kept."""
    world = World(WorldSpec(now=NOW, seed=33, accounts=4, media_per_account=30))
    config, env = pg_config(world, tmp_path, pg, commit_units=5)
    ids = [a.id for a in config.accounts]
    shard = {name: msgspec.structs.replace(config, accounts=tuple(a for a in config.accounts if a.id in chosen),
                                           state=msgspec.structs.replace(config.state, path=str(tmp_path / name)))
             for name, chosen in (("early", ids[:3]), ("late", ids[1:]))}

    async def one(name: str, now: float):
        async with Harvester.pinned(shard[name], tokens=env, transport=transport(world, latency_ms=2), now=now,
                             run_id=name) as harvester:
            return await harvester.run()

    early, late = await asyncio.gather(one("early", world.now), one("late", world.now + 60))
    assert early.exit_code == late.exit_code == 0
    assert_tables_match(config, truth_of(world, config))
    owners = dict(line.split("|") for line in pg.sql(
        f"SELECT account_id, string_agg(DISTINCT run_id, ',') FROM {pg.schema}.insights "
        "GROUP BY account_id").split("\n"))
    assert owners == {ids[0]: "early", ids[1]: "late", ids[2]: "late", ids[3]: "late"}


def _records(n: int, run: str, harvested_at: str) -> list[InsightRecord]:
    return [InsightRecord(account_id="1", object_id=f"m{i:05d}", object_type="media", metric="reach",
                          period="lifetime", value=i, run_id=run, harvested_at=harvested_at) for i in range(n)]


async def test_concurrent_commits_on_the_same_keys_in_opposite_orders_do_not_deadlock(pg):
    """Two sinks merging the same 2,000 keys, written in opposite orders, ten times at once: no
    deadlock, no error, 2,000 rows, the later harvest's values, whichever commits last."""
    sinks = [postgres.PostgresSink(pg.dsn, schema=pg.schema, retry_seconds=0) for _ in range(2)]
    for sink in sinks:
        await sink.open()
    later = _records(2000, "later", "2026-01-02T00:00:00+0000")
    earlier = _records(2000, "earlier", "2026-01-01T00:00:00+0000")[::-1]
    for round_ in range(10):
        for sink, records in zip(sinks, (later, earlier), strict=True):
            sink.write(f"u{round_}", records)
        await asyncio.gather(*(sink.commit() for sink in sinks))
    for sink in sinks:
        await sink.close()
    assert pg.sql(f"SELECT count(*), count(DISTINCT key), min(run_id), max(run_id) FROM {pg.schema}.insights") \
        == "2000|2000|later|later"
    # the first round's two direct copies of the same new keys: one waits for the other, fails on
    # its keys and merges; every later round merges (the keys are there)
    assert sum(s.loaded["copied"] for s in sinks) == 2000 and sum(s.loaded["merged"] for s in sinks) == 38000


# -- connection loss -----------------------------------------------------------------------------


async def _lose_connection_mid_run(tmp_path, pg: PG, how) -> int:
    world = World(WorldSpec(now=NOW, seed=34, accounts=3, media_per_account=40))
    config, env = pg_config(world, tmp_path, pg, commit_units=5)
    state = StateStore(tmp_path / "state.sqlite")
    async with Harvester.pinned(config, tokens=env, transport=transport(world, latency_ms=20), state=state,
                         now=world.now) as harvester:
        task = asyncio.ensure_future(harvester.run())
        while harvester.stats.get("sink/commits") < 3:
            assert not task.done()
            await asyncio.sleep(0.01)
        await asyncio.to_thread(how)
        summary = await task
        reconnects = harvester.sink().reconnects  # type: ignore[attr-defined]
    state.close()
    assert summary.exit_code == 0, summary.render()
    assert_tables_match(config, truth_of(world, config))
    return reconnects


@pytest.mark.slow
async def test_a_terminated_backend_mid_run_is_reconnected_and_nothing_is_lost(tmp_path, pg):
    def terminate() -> None:
        killed = pg.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'harvester'")
        assert killed == "1"
    assert await _lose_connection_mid_run(tmp_path, pg, terminate) >= 1


@pytest.mark.slow
async def test_a_server_restart_mid_run_is_waited_for_and_nothing_is_lost(tmp_path, pg):
    assert await _lose_connection_mid_run(tmp_path, pg, lambda: pg.server.pg_ctl("restart")) >= 1


@pytest.mark.slow
async def test_a_database_gone_for_longer_than_the_retries_aborts_the_run_and_the_next_resumes(tmp_path, pg):
    """Down past ``retry_seconds``: the run aborts with a SinkError naming the server (not the
    DSN), nothing is marked done beyond the last commit, and the next run completes the tables."""
    world = World(WorldSpec(now=NOW, seed=37, accounts=3, media_per_account=40))
    config, env = pg_config(world, tmp_path, pg, commit_units=5)
    state = StateStore(tmp_path / "state.sqlite")
    sink = postgres.PostgresSink(pg.dsn, schema=pg.schema, commit_units=5, retry_seconds=1)
    try:
        async with Harvester.pinned(config, tokens=env, transport=transport(world, latency_ms=20), state=state,
                             now=world.now, sink=sink) as harvester:
            task = asyncio.ensure_future(harvester.run())
            while harvester.stats.get("sink/commits") < 3:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(pg.server.pg_ctl, "stop")
            with pytest.raises(SinkError, match=r"lost the connection to PostgreSQL at host 127\.0\.0\.1") as caught:
                await task
        assert pg.server.password not in str(caught.value)
    finally:
        await asyncio.to_thread(pg.server.pg_ctl, "start")
    _, summary = await harvest(config, env, world, state=state)
    state.close()
    assert summary.exit_code == 0
    assert_tables_match(config, truth_of(world, config))


# -- kill -9 ---------------------------------------------------------------------------------------


def pg_config_file(path: Path, world, base_url: str, pg: PG) -> Path:
    write_config(path, world, base_url)
    path.write_text(path.read_text().replace('format = "jsonl"', f'format = "postgres"\nschema = "{pg.schema}"'))
    return path


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path, simulator_server, pg):
    world = World(WorldSpec(seed=35, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, faults=0.02, calls_per_window=10**9))
    config_file = pg_config_file(tmp_path / "harvest.toml", world, server.url, pg)
    env = {**token_env(world), "HARVESTER_PG_DSN": pg.dsn}
    code, killed = await run_with_kills(config_file, env, server, random.Random(35), kills=3)
    assert code == 0 and killed >= 1
    state = StateStore(tmp_path / "state.sqlite")
    (run,) = state.runs()
    state.close()
    assert run.status == "finished"
    from harvester.config import load_config
    config = load_config(config_file, env=env, today=from_unix(int(world.now)))
    until = from_unix(int(world.now))
    assert config.window.since == until - timedelta(days=3)
    assert_tables_match(config, truth_of(world, config))


# -- bad starts: exit 2 before any call, nothing half-written, no secret shown ------------------------


async def _run_cli(tmp_path, simulator_server, pg: PG, dsn: str | None) -> tuple[int, str, int]:
    """``harvester run`` with this DSN (None: the variable unset): exit code, stderr, calls served."""
    world = World(WorldSpec(seed=36, accounts=2, media_per_account=5, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config_file = pg_config_file(tmp_path / "harvest.toml", world, server.url, pg)
    env = token_env(world)
    env = {**env, "HARVESTER_PG_DSN": dsn} if dsn is not None else env
    proc = await harvester_cli("run", "--config", str(config_file), env=env, capture=True)
    stdout, stderr = await proc.communicate()
    return proc.returncode or 0, (stdout + stderr).decode(), server.simulator.counters.snapshot().get("calls", 0)


def _everything_written(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


async def test_a_database_down_at_the_start_exits_2_before_any_call(tmp_path, simulator_server, pg):
    port = free_port()
    code, output, calls = await _run_cli(tmp_path, simulator_server, pg,
                                         f"postgresql://harvester_admin:pw@127.0.0.1:{port}/harvester")
    assert code == 2, output
    assert f"cannot connect to PostgreSQL at host 127.0.0.1, port {port}, database harvester" in output
    assert "Traceback" not in output and calls == 0


async def test_a_wrong_password_exits_2_and_the_password_is_nowhere(tmp_path, simulator_server, pg):
    secret = "Wr0ng-Pa55word-xyzzy"
    code, output, calls = await _run_cli(tmp_path, simulator_server, pg, pg.server.dsn_for("harvester_admin", secret))
    assert code == 2, output
    assert "refused the login" in output and "password authentication failed" in output
    assert calls == 0 and "Traceback" not in output
    assert secret not in output and secret.encode() not in _everything_written(tmp_path)
    sink = postgres.PostgresSink(pg.server.dsn_for("harvester_admin", secret), schema=pg.schema)
    with pytest.raises(ConfigError) as caught:
        await sink.open()
    shown = repr(sink) + str(caught.value) + repr(caught.value)
    assert secret not in shown and caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_a_user_without_the_right_to_create_tables_exits_2_and_nothing_is_created(tmp_path, simulator_server,
                                                                                          pg):
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reader') THEN "
           "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; END IF; END $$")
    code, output, calls = await _run_cli(tmp_path, simulator_server, pg, pg.server.dsn_for("reader", "reader-pw"))
    assert code == 2, output
    assert f"may not create harvester's tables in schema '{pg.schema}'" in output and "permission denied" in output
    assert calls == 0 and "reader-pw" not in output
    assert pg.sql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{pg.schema}'") == "0"


async def test_an_unset_dsn_variable_exits_2_naming_it(tmp_path, simulator_server, pg, monkeypatch):
    monkeypatch.delenv("HARVESTER_PG_DSN")
    code, output, calls = await _run_cli(tmp_path, simulator_server, pg, None)
    assert code == 2, output
    assert 'dsn_env = "HARVESTER_PG_DSN": the environment variable is not set' in output and calls == 0


async def test_a_dsn_that_is_not_one_exits_2(pg):
    with pytest.raises(ConfigError, match="not a PostgreSQL DSN") as caught:
        await postgres.PostgresSink("http://user:hunter2@host/db", schema=pg.schema).open()
    assert "hunter2" not in str(caught.value)


def test_the_missing_extra_names_the_pip_install(tmp_path):
    """Without asyncpg, a postgres output is an exit 2 naming ``pip install 'harvester[postgres]'``."""
    import subprocess
    code = ("import sys; sys.modules['asyncpg'] = None\n"
            "from harvester.sinks import postgres\n"
            "try:\n    postgres.driver()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ConfigError") and "pip install 'harvester[postgres]'" in out


def test_a_dsn_is_described_without_its_password():
    assert postgres.describe("postgresql://bob:s3cr%40t@db.example:6543/warehouse") == \
        "host db.example, port 6543, database warehouse, user bob"
    assert postgres.describe("host=db port=5433 dbname=w user=bob password='x y'") == \
        "host db, port 5433, database w, user bob"
    assert postgres.reason(RuntimeError("bad s3cr@t here"), "postgresql://bob:s3cr%40t@h/d") == "bad *** here"


def test_bad_output_keys_for_postgres_are_named_with_what_is_allowed(tmp_path):
    from harvester.commands.demo import demo_config
    from harvester.config import parse_config
    world = World(WorldSpec(now=NOW, seed=38, accounts=1, media_per_account=1))
    today = from_unix(int(world.now))
    raw = demo_config("http://simulator", {"TOKEN_0": world.tokens[0].account_ids}, tmp_path, today)
    raw["output"].update(format="postgres", schema="My-Schema", dsn_env="not a name")
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, path="bad.toml", env=token_env(world), today=today)
    text = str(caught.value)
    assert 'schema = "My-Schema"' in text and "a PostgreSQL schema name" in text
    assert "dsn_env" in text and "the name of an environment variable" in text
    raw["output"].update(schema="nightly_2", dsn_env="WAREHOUSE_DSN")
    config = parse_config(raw, path="ok.toml", env=token_env(world), today=today)
    assert (config.output.format, config.output.schema, config.output.dsn_env) == ("postgres", "nightly_2",
                                                                                   "WAREHOUSE_DSN")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres user")
def test_as_root_the_server_starts_when_the_temporary_directory_is_closed_to_other_users(tmp_path, monkeypatch):
    """A root's TMPDIR under /root (mode 0700): the postgres user cannot reach it, so the server's
    directory goes under /tmp instead (initdb failed with "Permission denied" before)."""
    if pgserver.binaries() is None:
        pytest.skip("PostgreSQL is not installed (no initdb)")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    tmp_path.chmod(0o700)
    monkeypatch.setattr("tempfile.tempdir", str(closed))
    server = pgserver.TempServer()
    try:
        server.start()
        assert server.psql("harvester", "SELECT 40 + 2").strip() == "42"
        assert not server.dir.is_relative_to(closed)
    finally:
        server.stop()
    assert not server.dir.exists()
