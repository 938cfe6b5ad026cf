"""One run at a time per state file: a second run (CLI or library) refuses at once, naming who
holds the state; a lock left by a killed process is taken over."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from datetime import timedelta

import msgspec
import pytest

from harvester import Harvester
from harvester.days import from_unix
from harvester.errors import StateError
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.lock import Holder, RunLock, lock_path
from harvester.state.store import StateStore

from support import (
    NOW,
    assert_matches_truth,
    freeze_at_call,
    harvester,
    run_records,
    token_env,
    world_config,
    write_config,
)


@pytest.mark.slow
async def test_a_second_cli_run_on_the_same_state_refuses_at_once_and_the_first_finishes(tmp_path, simulator_server):
    world = World(WorldSpec(seed=5, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=150, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    env = token_env(world)
    state = tmp_path / "state.sqlite"
    first = await harvester("run", "--config", str(config), env=env)
    await asyncio.wait_for(freeze_at_call(server, first, 120).wait(), 120)   # held mid-harvest, its lock held
    parts_before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    calls_before = server.simulator.counters.snapshot().get("calls", 0)
    second = await harvester("run", "--config", str(config), env=env)
    stderr = (await second.stderr.read()).decode()
    assert await asyncio.wait_for(second.wait(), 60) == 2, stderr   # it cannot wait for the frozen first
    assert "another harvester run uses this state file" in stderr
    assert f"pid {first.pid} on {socket.gethostname()}, running since " in stderr and str(state) in stderr
    assert "Traceback" not in stderr
    # the first one's files are untouched by the second (its temporary part included)
    assert set(parts_before) <= {p.name for p in (tmp_path / "out").rglob("*")} | {
        n for n in parts_before if n.endswith(".tmp")}
    first.send_signal(signal.SIGCONT)
    first_err = (await first.stderr.read()).decode()
    assert await first.wait() == 0, first_err
    until = from_unix(int(world.now))
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")),
                         expected_records(world, until - timedelta(days=3), until))
    store = StateStore(state)
    runs = store.runs()
    store.close()
    assert len(runs) == 1 and runs[0].status == "finished"
    assert calls_before > 0


@pytest.mark.looptime
async def test_a_second_harvester_on_the_same_state_is_refused_and_the_library_uses_the_config_state(tmp_path):
    world = World(WorldSpec(now=NOW, seed=9, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "out")
    simulator = Simulator(world)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as first:
        task = asyncio.ensure_future(first.run())
        await asyncio.sleep(0)                     # the first run holds the state now
        async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                    now=world.now) as second:
            with pytest.raises(StateError, match="another harvester run uses this state file: pid "):
                await second.run()
        summary = await task
    assert summary.exit_code == 0
    assert_matches_truth(run_records(tmp_path / "out", first.run_id),
                         expected_records(world, config.window.since, config.window.until))
    store = StateStore(config.state.path)          # the config's [state], opened by the library itself
    (run,) = store.runs()
    store.close()
    assert run.run_id == first.run_id and run.status == "finished"

    # released at exit; a new run of the same config sees the first in the state: refresh tiers apply
    calls = simulator.counters.snapshot()["calls"]
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as again:
        await again.run()
    assert simulator.counters.snapshot()["calls"] - calls < calls      # without a state: as many again


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    state = tmp_path / "state.sqlite"
    holder = f"""
import fcntl, os, sys
fd = os.open({str(lock_path(state))!r}, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b'{{"pid": ' + str(os.getpid()).encode() + b', "host": "h", "since": 1.0}}')
print("held", flush=True)
sys.stdin.read()
"""
    import subprocess
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"held\n"
    with pytest.raises(StateError, match=f"pid {proc.pid} on h, running since 1970-01-01 00:00:01Z"):
        RunLock(state).acquire()
    assert RunLock(state).holder() == Holder(proc.pid, "h", 1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = RunLock(state)
    lock.acquire()                                 # the kernel released the dead process's flock
    mine = msgspec.json.decode(lock_path(state).read_bytes(), type=Holder)
    assert mine.pid == os.getpid() and mine.host == socket.gethostname()
    lock.release()
    assert RunLock(state).holder() is None


def test_status_says_which_process_runs_now(tmp_path):
    from harvester.commands.status import render
    state = StateStore(tmp_path / "state.sqlite")
    state.open_run("r1", kind="run", fingerprint="f", config_path=None, since=None, until=None)
    assert "unfinished: `harvester run` with the same config resumes it" in render(state)
    with RunLock(tmp_path / "state.sqlite"):
        text = render(state)
    state.close()
    assert f"in progress now: pid {os.getpid()} on {socket.gethostname()}, running since " in text
