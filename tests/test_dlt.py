"""harvester as a dlt source, loaded by dlt itself into its duckdb, postgres and filesystem
destinations, and compared with the simulator's ground truth."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

dlt = pytest.importorskip("dlt") if os.environ.get("CI") != "true" else __import__("dlt")

from harvester.dlt import harvester_source  # noqa: E402
from harvester.simulator.pipeline import SimulatorSettings  # noqa: E402
from harvester.simulator.world import World, WorldSpec  # noqa: E402

from support import NOW, assert_each_stream_matches, config_toml, streams_truth, world_config  # noqa: E402

DAY = 86_400
SPEC = dict(seed=11, accounts=4, media_per_account=12, stories_per_account=0.0)
"""No stories: a story lives 24 h by the harvest's clock, and these worlds' clocks stand still."""


def harvest_day(rows: dict[str, list[dict]], run: str | None = None) -> date:
    """The one UTC day a harvest ran (its accounts records' ``day``), of its run ``run`` or the only one."""
    (day,) = {r["day"] for r in rows["accounts"] if run is None or r["run_id"] == run}
    return date.fromisoformat(day)


def _iso(value) -> str | None:
    """A timestamp read back as the records write it (``2026-10-01T00:00:00+0000``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


TIMES = {"since", "until", "end_time", "timestamp", "harvested_at"}
LISTS = {"dimension_keys", "dimension_values", "children_ids", "children_types"}


def as_record(stream: str, row: dict) -> dict:
    """A loaded row as harvester's own record dict: dlt's columns dropped, types as the records have them."""
    record = {"stream": stream}
    for name, value in row.items():
        if name.startswith("_dlt") or name == "key":
            continue
        if name in TIMES:
            value = _iso(value)
        elif name in LISTS and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, date):
            value = value.isoformat()
        record[name] = value
    return record


def loaded(pipeline) -> dict[str, list[dict]]:
    """Every row of the three tables, through dlt's own SQL client of the destination."""
    rows = {}
    with pipeline.sql_client() as client:
        for stream in ("insights", "media", "accounts"):
            with client.execute_query(f"SELECT * FROM {client.make_qualified_table_name(stream)}") as cursor:
                names = [d[0] for d in cursor.description]
                rows[stream] = [as_record(stream, dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
    return rows


def pipeline_for(tmp_path: Path, destination, name: str = "instagram"):
    return dlt.pipeline(name, destination=destination, pipelines_dir=str(tmp_path / "pipelines"),
                        dataset_name="instagram")


async def harvest_world(simulator_server, tmp_path, now: float = NOW):
    world = World(WorldSpec(**SPEC, now=now))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, days=5)
    return world, config, env


def run_pipeline(pipeline, config, env):
    """dlt runs the source (and the harvest's event loop) in a thread of its own: the test's
    loop, which serves the simulator, keeps running meanwhile."""
    return asyncio.to_thread(pipeline.run, harvester_source(config, tokens=env))


async def test_a_load_into_duckdb_equals_the_ground_truth_and_a_later_harvest_merges(tmp_path, simulator_server):
    world, config, env = await harvest_world(simulator_server, tmp_path)
    pipeline = pipeline_for(tmp_path, dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")))
    info = await run_pipeline(pipeline, config, env)
    assert not info.has_failed_jobs
    rows = loaded(pipeline)
    first = streams_truth(world, config, harvest_day(rows))
    assert_each_stream_matches(rows, first)

    later, config2, env2 = await harvest_world(simulator_server, tmp_path, NOW + 2 * DAY)   # new days, new values
    info = await run_pipeline(pipeline, config2, env2)
    assert not info.has_failed_jobs
    rows = loaded(pipeline)
    run2 = max(rows["accounts"], key=lambda r: r["harvested_at"])["run_id"]
    second = streams_truth(later, config2, harvest_day(rows, run2))
    merged = {stream: {**first[stream], **second[stream]} for stream in first}        # each key once, latest value
    assert len(merged["insights"]) > len(second["insights"])
    assert_each_stream_matches(rows, merged)
    schema = pipeline.default_schema.tables
    assert schema["insights"]["columns"]["key"]["primary_key"] and schema["media"]["columns"]["media_id"]["primary_key"]
    assert [c for c, h in schema["accounts"]["columns"].items() if h.get("primary_key")] == ["account_id", "day"]
    assert {schema[t]["write_disposition"] for t in ("insights", "media", "accounts")} == {"merge"}
    assert schema["insights"]["columns"]["value"]["data_type"] == "double"
    assert schema["insights"]["columns"]["end_time"]["data_type"] == "timestamp"
    assert schema["insights"]["columns"]["object_id"]["data_type"] == "text"


@pytest.mark.slow
async def test_a_load_into_postgres_equals_the_ground_truth(tmp_path, simulator_server, pg_server):
    world, config, env = await harvest_world(simulator_server, tmp_path)
    pipeline = pipeline_for(tmp_path, dlt.destinations.postgres(credentials=pg_server.dsn), name="instagram_pg")
    info = await run_pipeline(pipeline, config, env)
    assert not info.has_failed_jobs
    rows = loaded(pipeline)
    assert_each_stream_matches(rows, streams_truth(world, config, harvest_day(rows)))


async def test_a_load_into_parquet_files_equals_the_ground_truth(tmp_path, simulator_server):
    world, config, env = await harvest_world(simulator_server, tmp_path)
    pipeline = pipeline_for(tmp_path, dlt.destinations.filesystem(bucket_url=str(tmp_path / "lake")), name="lake")
    info = await asyncio.to_thread(pipeline.run, harvester_source(config, tokens=env), loader_file_format="parquet")
    assert not info.has_failed_jobs
    assert list((tmp_path / "lake" / "instagram" / "insights").glob("*.parquet"))
    rows = loaded(pipeline)
    assert_each_stream_matches(rows, streams_truth(world, config, harvest_day(rows)))


KILLED = textwrap.dedent("""
    import sys, dlt
    from harvester.config import load_config
    from harvester.dlt import harvester_source
    pipeline = dlt.pipeline("instagram", destination=dlt.destinations.duckdb(sys.argv[2]),
                            pipelines_dir=sys.argv[3], dataset_name="instagram")
    print(pipeline.run(harvester_source(load_config(sys.argv[1]))), flush=True)
""")


@pytest.mark.slow
async def test_a_load_killed_and_run_again_loses_nothing_and_doubles_nothing(tmp_path, simulator_server):
    world = World(WorldSpec(**SPEC, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9, latency_ms=5))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, days=5)
    path = tmp_path / "harvest.toml"
    path.write_text(config_toml(config))
    script = tmp_path / "load.py"
    script.write_text(KILLED)
    args = [sys.executable, str(script), str(path), str(tmp_path / "warehouse.duckdb"), str(tmp_path / "pipelines")]
    environ = {**os.environ, **env}
    proc = subprocess.Popen(args, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counters = server.simulator.counters
    while counters.snapshot().get("calls", 0) < 100:              # killed mid-harvest, by what it has done
        assert proc.poll() is None, proc.communicate()
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = await asyncio.create_subprocess_exec(*args, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await done.communicate()
    assert done.returncode == 0, err.decode()[-3000:]
    pipeline = pipeline_for(tmp_path, dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")))
    rows = loaded(pipeline)
    assert_each_stream_matches(rows, streams_truth(world, config, harvest_day(rows)))


def test_without_dlt_the_extra_is_named(monkeypatch):
    from harvester.dlt import source
    from harvester.errors import ConfigError
    monkeypatch.setattr(source, "dlt", None)
    with pytest.raises(ConfigError, match=r"pip install 'harvester\[dlt\]'"):
        harvester_source("any.toml")

