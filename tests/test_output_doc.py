"""docs/output.md and the reading recipes against the records a harvest writes: every field of
every stream is in the field table (and nothing else is), and the pandas and DuckDB examples,
with what ``make install`` installs, read a real harvest's output."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from harvester import Harvester
from harvester.records import RECORD_TYPES, STREAMS
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import NOW, world_config

ROOT = Path(__file__).resolve().parents[1]


def documented_fields(text: str) -> dict[str, list[str]]:
    """Stream -> the field names of its table, in order: the rows ``| `name` | ...`` under a
    heading ``### `stream```, up to the next heading."""
    found: dict[str, list[str]] = {}
    stream = None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = re.fullmatch(r"#+ `(\w+)`", line)
            stream = heading.group(1) if heading else None
            if stream is not None:
                found[stream] = []
        elif stream is not None and (row := re.match(r"\| `(\w+)` \|", line)):
            found[stream].append(row.group(1))
    return found


def test_the_field_table_lists_every_field_of_every_stream_in_order():
    fields = {stream: [f.name for f in msgspec.structs.fields(RECORD_TYPES[stream])] for stream in STREAMS}
    assert documented_fields((ROOT / "docs" / "output.md").read_text()) == fields
    assert "source" in fields["insights"]


def test_the_streams_table_lists_every_field_of_every_stream_in_order():
    """The summary table (one row per stream, its fields in one cell) once lacked ``source``."""
    rows = {}
    for line in (ROOT / "docs" / "output.md").read_text().splitlines():
        if row := re.match(r"\| `(insights|media|accounts)` \|.*\| `([a-z_, ]+)` \|$", line):
            rows[row.group(1)] = row.group(2).split(", ")
    assert rows == {stream: [f.name for f in msgspec.structs.fields(RECORD_TYPES[stream])] for stream in STREAMS}


def test_the_duckdb_example_types_every_field():
    """read_json with ``columns`` drops what it does not name: the example names every field."""
    tree = ast.parse((ROOT / "docs" / "examples" / "read_duckdb.py").read_text())
    columns = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COLUMNS")
    assert {stream: list(types) for stream, types in columns.items()} == {
        stream: [f.name for f in msgspec.structs.fields(RECORD_TYPES[stream])] for stream in STREAMS}


@pytest.mark.looptime
@pytest.mark.parametrize("example", ["read_pandas.py", "read_duckdb.py"])
async def test_the_reading_examples_run_on_a_harvests_output(tmp_path, example):
    world = World(WorldSpec(seed=5, accounts=2, media_per_account=12, now=NOW))
    config, env = world_config(world, tmp_path / "out")
    transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        assert (await harvester.run()).exit_code == 0
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / example), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "engagement_rate" in done.stdout or "rate_per_reach" in done.stdout
