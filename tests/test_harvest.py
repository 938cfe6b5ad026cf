"""Whole harvests against the simulator, compared record by record with its ground truth."""

from __future__ import annotations

import asyncio
import json
import logging

import msgspec
import pytest

from harvester import Harvester
from harvester.records import AccountRecord, InsightRecord, MediaRecord, Record
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_media
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore

from support import NOW, assert_matches_truth, assert_no_token_anywhere, run_records, truth_of, world_config


def live_accounts(world) -> list[str]:
    return [a for t in world.tokens if not t.revoked for a in t.account_ids]


@pytest.mark.slow
@pytest.mark.looptime
async def test_faults_and_a_revoked_token_yield_exactly_the_ground_truth(tmp_path, caplog):
    """5 % faults of every kind, one revoked token: every record of the truth with its exact
    value, none twice, none for the revoked token's accounts, exit code 3, no token anywhere."""
    caplog.set_level(logging.DEBUG)
    world = World(WorldSpec(now=NOW, seed=3, accounts=10, media_per_account=30, revoked_tokens=1))
    revoked = [t for t in world.tokens if t.revoked]
    assert len(revoked) == 1
    config, env = world_config(world, tmp_path / "out")
    simulator = Simulator(world, SimulatorSettings(faults=0.05))
    state = StateStore(config.state.path)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                         now=world.now) as harvester:
        summary = await harvester.run()
    state.close()

    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, truth_of(world, config, live_accounts(world)))
    assert not {r["account_id"] for r in records} & set(revoked[0].account_ids)
    assert summary.exit_code == 3
    failed_accounts = {o.account_id for o in summary.failed}
    assert failed_accounts == set(revoked[0].account_ids)
    served = simulator.counters.snapshot()
    assert sum(served["faults"].values()) > 0
    assert served["token_errors"].get("revoked", 0) == 1     # reported once, never retried in a loop
    assert_no_token_anywhere(env.values(), tmp_path, caplog, summary)


@pytest.mark.looptime
async def test_several_tokens_under_a_tight_limit_never_exceed_it_and_waste_none(tmp_path):
    """Six tokens at 20 calls per simulated minute: zero violations, and the harvest takes what
    the limit allows, no more (each token's calls in full-window bursts)."""
    world = World(WorldSpec(now=NOW, seed=5, accounts=6, media_per_account=15))
    config, env = world_config(world, tmp_path / "out", days=2, calls_per_window=20, window_seconds=60)
    simulator = Simulator(world, SimulatorSettings(calls_per_window=20, window_seconds=60))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    elapsed = loop.time() - started
    served = simulator.counters.snapshot()
    assert summary.exit_code == 0
    assert served["throttled"] == 0
    assert max(served["max_in_window"].values()) <= 20
    bound = max(((calls - 1) // 20) * 60 for calls in served["calls_by_token"].values())
    assert bound >= 120                               # the limit really bound the harvest
    assert bound <= elapsed <= bound * 1.02 + 1, (elapsed, bound)
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, truth_of(world, config))


@pytest.mark.slow
async def test_harvest_over_loopback_with_faults(tmp_path, simulator_server):
    """The real aiohttp transport against the simulator on a socket, with faults."""
    world = World(WorldSpec(now=NOW, seed=8, accounts=4, media_per_account=10))
    server = await simulator_server(world, SimulatorSettings(faults=0.05))
    config, env = world_config(world, tmp_path / "out", base_url=server.url)
    async with Harvester.pinned(config, tokens=env, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    assert_matches_truth(run_records(tmp_path / "out", harvester.run_id), truth_of(world, config))


@pytest.mark.looptime
async def test_library_use_streams_records_inside_a_running_loop(tmp_path):
    """``async for`` inside the caller's loop, tokens from an async callable; breaking out of the
    loop cancels the harvest cleanly and leaves no task behind."""
    world = World(WorldSpec(now=NOW, seed=9, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "out")
    asked: list[str] = []

    async def lookup(name: str) -> str:
        asked.append(name)
        return env[name]

    transport = SimulatorTransport(Simulator(world))
    records = []
    async with Harvester.pinned(config, tokens=lookup, transport=transport, now=world.now) as harvester:
        async for record in harvester.records():
            records.append(record)
    truth = truth_of(world, config)
    by_kind = {"insights": [], "media": [], "accounts": []}
    for record in records:
        match record:                                   # a tagged union: match tells the kinds apart
            case InsightRecord():
                by_kind["insights"].append(record)
            case MediaRecord(media_id=media_id) if media_id:
                by_kind["media"].append(record)
            case AccountRecord():
                by_kind["accounts"].append(record)
    assert len(by_kind["insights"]) == len(truth)
    assert len(by_kind["media"]) == len(expected_media(world)) and len(by_kind["accounts"]) == 3
    assert json.loads(json.dumps(records[0].to_dict()))["stream"] in ("insights", "media", "accounts")
    assert msgspec.json.decode(msgspec.json.encode(records), type=list[Record]) == records
    assert sorted(set(asked)) == sorted(env)           # each token looked up once, lazily
    assert len(asked) == len(set(asked))

    before = asyncio.all_tasks()
    async with Harvester.pinned(config, tokens=lookup, transport=SimulatorTransport(Simulator(world)),
                         now=world.now) as harvester:
        async for _ in harvester.records():
            break
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before
    assert not (tmp_path / "out").exists()            # records() writes nothing


@pytest.mark.looptime
async def test_a_later_run_replaces_the_records_it_fetches_again(tmp_path):
    """Nightly runs over overlapping windows, one output and one state store: the manifest's
    current files hold every key once; the days fetched again come from the later run, the media
    the refresh tiers did not ask again keep the earlier run's records."""
    world = World(WorldSpec(now=NOW, seed=12, accounts=4, media_per_account=20, stories_per_account=0))
    output = tmp_path / "out"
    state = StateStore(tmp_path / "state.sqlite")
    runs = []
    for days in (3, 5):
        config, env = world_config(world, output, days=days)
        transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now,
                             run_id=f"night-{days}") as harvester:
            assert (await harvester.run()).exit_code == 0
        runs.append(harvester.run_id)
        if days == 3:                                              # before the next run rewrites its files
            first_window = {(r["since"], r["until"]) for r in run_records(output, harvester.run_id) if r["since"]}
    state.close()
    current = list(manifest.current_records(output))
    assert_matches_truth(current, truth_of(world, config))           # the 5-day window, each key once
    by_run = {(r["object_type"], (r["since"], r["until"]) in first_window, r["run_id"]) for r in current
              if r["object_type"] == "media" or (r["metric_type"] == "total_value" and r["since"])}
    assert ("account", True, "night-3") not in by_run                # re-fetched days: the later run's
    assert ("account", True, "night-5") in by_run
    assert ("media", False, "night-5") not in by_run                  # media were not due again


class HeldTransport(SimulatorTransport):
    """The simulator's transport, but every copy of the first insights call is held unanswered until
    the caller gives it up: a call still in flight after any grace, whatever latency a draw gives."""

    def __init__(self, simulator: Simulator):
        super().__init__(simulator)
        self.held_url: str | None = None
        self.holding = 0

    async def get(self, url, headers):
        if self.held_url is None and "/insights" in url:
            self.held_url = url
        if url == self.held_url:
            self.holding += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.holding -= 1
        return await super().get(url, headers)


@pytest.mark.looptime
async def test_calls_still_in_flight_after_a_stop_are_given_up_and_the_next_run_resumes(tmp_path):
    """stop(), then cancel_in_flight() (the CLI calls it STOP_GRACE_SECONDS after a signal):
    run() waits for calls in flight, returns at once with what was committed when they are given
    up; the next run fetches the rest."""
    world = World(WorldSpec(seed=14, accounts=4, media_per_account=20, now=NOW))
    config, env = world_config(world, tmp_path / "out")
    state = StateStore(config.state.path)
    loop = asyncio.get_running_loop()
    transport = HeldTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9, latency_ms=2_000)))
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        task = asyncio.ensure_future(harvester.run())
        await asyncio.sleep(120)
        assert transport.holding > 0 and not task.done()
        harvester.stop()
        await asyncio.sleep(30)
        assert transport.holding > 0 and not task.done()     # a stopped run waits for its calls in flight
        stopped_at = loop.time()
        harvester.cancel_in_flight()
        summary = await task
    assert loop.time() == stopped_at and transport.holding == 0     # given up at once, not waited for
    (run,) = state.runs()
    assert run.status == "stopped" and state.unit_counts(run.run_id).get("done", 0) > 0
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world, SimulatorSettings(
            calls_per_window=10**9))), state=state, now=world.now) as harvester:
        resumed = await harvester.run()
    state.close()
    assert resumed.exit_code == 0 and resumed.units["resumed"] > 0 and summary.records > 0
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth_of(world, config))
