"""Resumable, exactly-once harvests: ``harvester run`` killed with SIGKILL at random moments,
run again until it finishes, must leave exactly the records of an uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from harvester import Harvester
from harvester.days import from_unix
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.sinks.base import PartCommit
from harvester.state import schema as state_schema
from harvester.state.store import StateStore

from support import (
    NOW,
    assert_matches_truth,
    assert_streams_match,
    freeze_at_call,
    harvester,
    run_records,
    run_with_kills,
    token_env,
    world_config,
    write_config,
)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path, simulator_server, seed):
    world = World(WorldSpec(seed=seed, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, faults=0.02, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    code, killed = await run_with_kills(config, token_env(world), server, random.Random(seed), kills=3)
    assert code == 0
    state = StateStore(tmp_path / "state.sqlite")
    runs = state.runs()
    state.close()
    assert len(runs) == 1 and runs[0].status == "finished"      # one run, resumed after every kill
    until = from_unix(int(world.now))
    truth = expected_records(world, until - timedelta(days=3), until)
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth)
    assert_streams_match(tmp_path / "out", world, config, token_env(world))   # media and accounts too
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.suffix == ".tmp"]
    assert not leftovers
    summary = msgspec.json.decode((tmp_path / "out" / runs[0].run_id / "summary.json").read_bytes())
    print(f"\nseed {seed}: killed {killed} times; the last run resumed {summary['units']['resumed']} units, "
          f"{len(truth):,} records match the ground truth")
    assert killed >= 1 and summary["units"]["resumed"] > 0    # the killed runs had checkpointed work


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_a_signal_stops_gracefully_and_the_next_run_resumes(tmp_path, simulator_server, signum, code):
    world = World(WorldSpec(seed=4, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    env = token_env(world)
    proc = await harvester("run", "--config", str(config), env=env)
    await asyncio.wait_for(freeze_at_call(server, proc, 120).wait(), 120)     # in the middle of the harvest
    proc.send_signal(signum)
    proc.send_signal(signal.SIGCONT)
    stderr = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
    assert await proc.wait() == code, stderr
    assert "finishing calls in flight" in stderr
    assert "stopped (the next run resumes) in " in stderr and f"(exit {code})" in stderr
    state = StateStore(tmp_path / "state.sqlite")
    (stopped,) = state.runs()
    done_before = state.unit_counts(stopped.run_id).get("done", 0)
    state.close()
    assert stopped.status == "stopped" and done_before > 0
    assert not (tmp_path / "out" / "manifest.json").exists()       # nothing published half-way

    proc = await harvester("run", "--config", str(config), env=env)
    assert await proc.wait() == 0, (await proc.stderr.read()).decode()
    until = from_unix(int(world.now))
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")),
                         expected_records(world, until - timedelta(days=3), until))
    summary = msgspec.json.decode((tmp_path / "out" / stopped.run_id / "summary.json").read_bytes())
    assert summary["units"]["resumed"] >= done_before


KILLED_MID_PART = f"""
import asyncio, os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from present import pin
from support import NOW
pin(NOW)                  # the process's clock at the world's present
from harvester import Harvester
from harvester.config import load_config
from harvester.records import InsightRecord
from harvester.sinks.jsonl import JsonlSink
from harvester.state.store import StateStore


class KilledMidPart(JsonlSink):
    \"\"\"A real JSONL sink whose process is SIGKILLed once insights units written after its
    third checkpoint of the insights part have reached the part file (every write does:
    buffer_bytes=1). Commits of media and account records alone do not count: which of those
    come first depends on how the calls race.\"\"\"

    commits = written = 0

    async def commit(self):
        commit = await super().commit()
        if commit is not None and any(p.part.startswith("insights/") for p in commit.parts):
            self.commits, self.written = self.commits + 1, 0
        return commit

    def write(self, unit_id, records):
        super().write(unit_id, records)
        self.written += any(isinstance(r, InsightRecord) for r in records)
        if self.commits >= 3 and self.written >= 5:
            os.kill(os.getpid(), signal.SIGKILL)


async def main():
    config = load_config(sys.argv[1])
    state = StateStore(config.state.path)
    sink = KilledMidPart(Path(config.output.path) / "r1", buffer_bytes=1, commit_units=20)
    async with Harvester.pinned(config, state=state, sink=sink, run_id="r1") as harvester:
        await harvester.run()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_kill_mid_part_is_cut_back_to_the_checkpoint_and_resumed_exactly(tmp_path, simulator_server):
    """SIGKILL while the part file holds records past its last checkpoint: the next run cuts the
    part back to the committed length, fetches those units again, and the output is the truth."""
    world = World(WorldSpec(seed=5, accounts=3, media_per_account=40, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=5, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    env = token_env(world)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", KILLED_MID_PART, str(config),
                                                env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE)
    stderr = (await proc.stderr.read()).decode()
    assert await proc.wait() == -signal.SIGKILL, stderr
    part = tmp_path / "out" / "r1" / "insights" / "part-00001.jsonl"
    with closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        (committed,) = db.execute("SELECT bytes FROM parts WHERE run_id = 'r1' AND part = ?",
                                  (f"insights/{part.name}",)).fetchone()
        done = db.execute("SELECT COUNT(*) FROM units WHERE run_id = 'r1' AND status != 'object'").fetchone()[0]
    assert done > 0 and part.stat().st_size > committed      # an uncommitted tail after the checkpoint

    proc = await harvester("run", "--config", str(config), env=env)
    assert await proc.wait() == 0, (await proc.stderr.read()).decode()
    assert part.stat().st_size == committed                   # cut back, then appending went on elsewhere
    until = from_unix(int(world.now))
    truth = expected_records(world, until - timedelta(days=3), until)
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth)
    summary = msgspec.json.decode((tmp_path / "out" / "r1" / "summary.json").read_bytes())
    assert summary["units"]["resumed"] == done


@pytest.mark.looptime
async def test_checkpoints_every_commit_units_units_into_one_part(tmp_path):
    """The work a crash repeats is bounded in calls too: a commit every ``commit_units`` units
    (whatever commit_seconds says), each appending to the same part file."""
    world = World(WorldSpec(now=NOW, seed=6, accounts=4, media_per_account=30))
    config, env = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_units=50,
                                                                             commit_seconds=3600.0))
    state = StateStore(config.state.path)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), state=state,
                         now=world.now) as harvester:
        summary = await harvester.run()
    units = state.unit_counts(harvester.run_id)
    parts = state.committed_parts(harvester.run_id)
    state.close()
    assert summary.exit_code == 0
    finished = units.get("done", 0) + units.get("skipped", 0)
    assert finished > 200 and harvester.stats.get("sink/commits") >= finished // 50
    files = sorted((tmp_path / "out" / harvester.run_id).glob("*/part-*.jsonl"))
    names = ["accounts/part-00001.jsonl", "insights/part-00001.jsonl", "media/part-00001.jsonl"]
    assert [str(p.relative_to(p.parent.parent)) for p in files] == sorted(parts) == names
    assert [parts[name] for name in names] == [p.stat().st_size for p in files]
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
    assert summary.records == len(records)           # a part's commits are not counted again and again


def test_a_version_1_state_file_keeps_its_parts_whole(tmp_path):
    """State version 1 recorded parts without a length: after the upgrade they count as whole."""
    path = tmp_path / "state.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(state_schema.SCHEMA.replace("bytes INTEGER, ", "") + "PRAGMA user_version = 1;")
        db.execute("INSERT INTO parts VALUES ('r1', 'part-00001.jsonl', 10, 0)")
        db.commit()
    store = StateStore(path)
    assert store.committed_parts("r1") == {"part-00001.jsonl": None}
    store.commit("r1", [PartCommit("insights/part-00002.jsonl", 5, 1234)], {})
    assert store.committed_parts("r1") == {"part-00001.jsonl": None, "insights/part-00002.jsonl": 1234}
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == state_schema.SCHEMA_VERSION
    store.close()
