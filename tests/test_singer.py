"""harvester as a Singer tap: its catalog, and its messages piped into real Singer targets
installed from PyPI in throwaway virtual environments (``make install`` makes them), whose output
must equal the simulator's ground truth; a STATE resumes the run it names."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from harvester.simulator.pipeline import SimulatorSettings
from harvester.simulator.world import World, WorldSpec

from support import NOW, assert_each_stream_matches, config_toml, streams_truth, world_config

SPEC = dict(seed=12, accounts=4, media_per_account=12, stories_per_account=0.0)
"""No stories: a story lives 24 h by the tap's clock, and these worlds' clocks stand still."""
TARGETS = Path(__file__).resolve().parent.parent / ".venv-singer"
"""Where ``make singer-targets`` installs each target in a venv of its own (never our dependencies)."""


def target(name: str) -> Path:
    path = TARGETS / name / "bin" / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed in {path.parent.parent} (make install installs it)")
        pytest.skip(f"{name} is not installed (make singer-targets)")
    return path


async def tap(*args: str, env: dict[str, str]) -> tuple[int, bytes, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "harvester", "singer", *args,
                                                env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out, err.decode()


async def pipe(tap_args: list[str], target_cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    """``harvester singer ... | target ...``, as a shell pipes them; the target's stdout (its STATEs)."""
    read, write = os.pipe()
    producer = await asyncio.create_subprocess_exec(sys.executable, "-m", "harvester", "singer", *tap_args,
                                                    env={**os.environ, **env}, stdout=write,
                                                    stderr=asyncio.subprocess.PIPE)
    os.close(write)
    consumer = await asyncio.create_subprocess_exec(*target_cmd, stdin=read, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, cwd=cwd)
    os.close(read)
    (out, target_err), (_, tap_err) = await asyncio.gather(consumer.communicate(), producer.communicate())
    assert consumer.returncode == 0, target_err.decode()[-3000:]
    assert producer.returncode == 0, tap_err.decode()[-3000:]
    return out.decode()


def as_record(stream: str, row: dict) -> dict:
    """A target's row as harvester's record dict: times back to the records' form, the tap's ``key`` dropped."""
    record = {"stream": stream}
    for name, value in row.items():
        if name == "key" or name.startswith("_sdc"):
            continue
        if isinstance(value, datetime):                                      # naive: the target's UTC
            value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            value = value.strftime("%Y-%m-%dT%H:%M:%S+0000")
        elif isinstance(value, date):
            value = value.isoformat()
        if isinstance(value, str) and len(value) > 19 and value[10] == "T" and value[-3] == ":":
            value = value[:-3] + value[-2:]                                   # +00:00 -> +0000
        record[name] = value
    return record


def assert_equals_truth(rows: dict[str, list[dict]], world, config) -> None:
    (day,) = {r["day"] for r in rows["accounts"]}
    assert_each_stream_matches(rows, streams_truth(world, config, date.fromisoformat(day)))


async def world_and_config(simulator_server, tmp_path):
    world = World(WorldSpec(**SPEC, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, days=5)
    path = tmp_path / "harvest.toml"
    path.write_text(config_toml(config))
    return world, server, config, env, path


def messages(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


async def test_discover_prints_the_three_streams_and_nothing_else(tmp_path, simulator_server):
    _, server, _, env, path = await world_and_config(simulator_server, tmp_path)
    code, out, _ = await tap("--config", str(path), "--discover", env=env)
    assert code == 0
    catalog = json.loads(out)                                                 # stdout is the catalog alone
    streams = {s["stream"]: s for s in catalog["streams"]}
    assert [s["key_properties"] for s in streams.values()] == [["key"], ["media_id"], ["account_id", "day"]]
    insights = streams["insights"]["schema"]["properties"]
    assert insights["end_time"] == {"type": ["string", "null"], "format": "date-time"}
    assert insights["value"]["type"] == ["number", "null"] and insights["dimension_keys"]["items"] == {"type": "string"}
    assert streams["accounts"]["schema"]["properties"]["day"]["format"] == "date"
    assert server.simulator.counters.snapshot().get("calls", 0) == 0


async def test_piped_into_target_jsonl_the_files_equal_the_ground_truth(tmp_path, simulator_server):
    world, _, config, env, path = await world_and_config(simulator_server, tmp_path)
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "target.json").write_text(json.dumps({"destination_path": str(tmp_path / "jsonl")}))
    await pipe(["--config", str(path)], [str(target("target-jsonl")), "--config", str(tmp_path / "target.json")],
               env, tmp_path)
    rows = {stream: [as_record(stream, json.loads(line)) for f in (tmp_path / "jsonl").glob(f"{stream}-*.jsonl")
                     for line in f.read_text().splitlines()] for stream in ("insights", "media", "accounts")}
    assert_equals_truth(rows, world, config)


@pytest.mark.slow
async def test_piped_into_meltanolabs_target_postgres_the_tables_equal_the_ground_truth(tmp_path, simulator_server,
                                                                                        pg_server):
    import asyncpg
    world, _, config, env, path = await world_and_config(simulator_server, tmp_path)
    (tmp_path / "target.json").write_text(json.dumps({"sqlalchemy_url": pg_server.dsn.replace("postgresql://",
                                                                                              "postgresql+psycopg://"),
                                                      "default_target_schema": "ig", "add_record_metadata": False,
                                                      "activate_version": False}))
    await pipe(["--config", str(path)],
               [str(target("target-postgres")), "--config", str(tmp_path / "target.json")], env, tmp_path)
    db = await asyncpg.connect(pg_server.dsn)
    try:
        rows = {stream: [as_record(stream, dict(r)) for r in await db.fetch(f"SELECT * FROM ig.{stream}")]
                for stream in ("insights", "media", "accounts")}
    finally:
        await db.close()
    assert_equals_truth(rows, world, config)



async def test_a_state_resumes_the_run_and_nothing_is_lost_or_doubled(tmp_path, simulator_server):
    world, server, config, env, path = await world_and_config(simulator_server, tmp_path)
    (tmp_path / "small.toml").write_text(path.read_text().replace("[output]\n", "[output]\ncommit_units = 20\n"))
    code, out, err = await tap("--config", str(tmp_path / "small.toml"), env=env)
    assert code == 0, err
    first = messages(out)
    states = [i for i, m in enumerate(first) if m["type"] == "STATE"]
    assert len(states) > 5
    cut = states[len(states) // 2]                         # what a target had persisted when the tap was killed
    (tmp_path / "state.json").write_text(json.dumps(first[cut]["value"]))
    calls = server.simulator.counters.snapshot()["calls"]
    code, out, err = await tap("--config", str(tmp_path / "small.toml"), "--state", str(tmp_path / "state.json"),
                               env=env)
    assert code == 0, err
    second = messages(out)
    resumed_calls = server.simulator.counters.snapshot()["calls"] - calls
    assert 0 < resumed_calls < calls                        # the committed units are not called again
    kept = [m for m in first[:cut] + second if m["type"] == "RECORD"]
    rows = {s: [as_record(s, m["record"]) for m in kept if m["stream"] == s] for s in ("insights", "media", "accounts")}
    assert_equals_truth(rows, world, config)
    assert second[-1]["value"]["bookmarks"]["harvester"]["finished_run"] == first[cut]["value"]["bookmarks"][
        "harvester"]["run_id"]


async def test_a_catalog_selects_the_streams_written(tmp_path, simulator_server):
    _, _, _, env, path = await world_and_config(simulator_server, tmp_path)
    code, out, _ = await tap("--config", str(path), "--discover", env=env)
    catalog = json.loads(out)
    for stream in catalog["streams"]:
        stream["metadata"][0]["metadata"]["selected"] = stream["stream"] == "media"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    code, out, err = await tap("--config", str(path), "--catalog", str(tmp_path / "catalog.json"), env=env)
    assert code == 0, err
    kinds = {(m["type"], m.get("stream")) for m in messages(out)}
    assert kinds == {("SCHEMA", "media"), ("RECORD", "media"), ("STATE", None)}


@pytest.mark.parametrize("name, text, says", [
    ("catalog", {"streams": [{"tap_stream_id": "stories", "schema": {}, "metadata": []}]},
     "streams[0] is 'stories', not a stream of harvester; expected one of insights, media, accounts"),
    ("catalog", [1, 2], "not a Singer catalog"),
    ("state", {"bookmarks": {"tap-instagram": {"since": "2026-01-01"}}}, "not a state of harvester's tap"),
    ("state", {"bookmarks": {"harvester": {"run_id": "r", "fingerprint": "f", "done": "!!"}}}, "is damaged"),
])
async def test_bad_input_is_refused_before_any_call(tmp_path, simulator_server, name, text, says):
    _, server, _, env, path = await world_and_config(simulator_server, tmp_path)
    (tmp_path / f"{name}.json").write_text(json.dumps(text))
    code, out, err = await tap("--config", str(path), f"--{name}", str(tmp_path / f"{name}.json"), env=env)
    assert code == 2 and out == b"" and says in err and "Traceback" not in err
    assert server.simulator.counters.snapshot().get("calls", 0) == 0


@pytest.mark.parametrize("dimension", ["Berlin", "Rio +0000"])
async def test_a_record_message_is_the_record_with_rfc3339_times_whatever_its_text(dimension):
    """The fast path rewrites offsets in the encoded bytes: only a record's times are touched."""
    import io

    from harvester.records import InsightRecord, key_text
    from harvester.singer.sink import SingerSink
    record = InsightRecord(account_id="1", object_id="2", object_type="account", metric="reach", period="day",
                           metric_type="total_value", since="2026-11-01T00:00:00+0000",
                           until="2026-11-02T00:00:00+0000", dimension_keys=("city",), dimension_values=(dimension,),
                           value=3, harvested_at="2026-11-03T10:00:00+0000")
    out = io.BytesIO()
    sink = SingerSink(("insights",), run_id=lambda: "r", fingerprint="f", out=out)
    sink.write("u1", [record])
    await sink.commit()
    schema, message, state = (json.loads(line) for line in out.getvalue().splitlines())
    assert schema["type"] == "SCHEMA" and state["type"] == "STATE"
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in record.to_dict().items() if k != "stream"}
    assert message["record"] == {"key": key_text(record), **fields, "since": "2026-11-01T00:00:00+00:00",
                                 "until": "2026-11-02T00:00:00+00:00", "harvested_at": "2026-11-03T10:00:00+00:00"}
