"""Honest accounting: a resumed run's summary covers all its attempts; the API's words reach the
summary; expected skips are not errors."""

from __future__ import annotations

import msgspec
import pytest

from harvester import Harvester
from harvester.errors import GraphError
from harvester.graph.policy import Action, decide
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore
from harvester.summary import Outcome, RunSummary, Stats, error_counts

from support import NOW, stopped_after, truth_of, world_config


@pytest.mark.slow
@pytest.mark.looptime
async def test_a_resumed_run_sums_records_calls_and_time_over_its_attempts(tmp_path):
    world = World(WorldSpec(now=NOW, seed=14, accounts=4, media_per_account=30))
    config, env = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_seconds=0.5,
                                                                             commit_units=5))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9, latency_ms=500))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as first:
        stopped = await stopped_after(first, 60)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as second:
        summary = await second.run()
    assert stopped.status.startswith("stopped"), stopped.render()
    assert second.run_id == first.run_id and second.resumed and summary.exit_code == 0
    truth = truth_of(world, config)
    assert 0 < stopped.records < len(truth)
    assert summary.attempts == 2 and "attempts: 2" in summary.render()
    assert summary.records == len(truth) == len(list(manifest.current_records(tmp_path / "out")))
    made = summary.counters["calls/ok"] + summary.counters["calls/error"] + summary.counters.get("calls/hedged", 0)
    assert made == simulator.counters.snapshot()["calls"]              # both attempts' calls (and copies)
    assert summary.seconds >= stopped.seconds
    assert summary.units["done"] + summary.units["skipped"] == summary.units["planned"]


@pytest.mark.looptime
async def test_a_library_run_writes_summary_json_and_its_outcomes_beside_its_output(tmp_path):
    """``Harvester.run()`` writes what the CLI's run does: ``summary.json`` (the summary it returns)
    and ``outcomes.jsonl`` (every skipped and failed unit) in ``<output>/<run id>/``."""
    world = World(WorldSpec(seed=14, accounts=3, media_per_account=30, now=1_795_132_800.0))   # 2026-11-20
    config, env = world_config(world, tmp_path / "out")
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)),
                                now=world.now) as harvester:
        summary = await harvester.run()
    run_dir = tmp_path / "out" / summary.run_id
    assert msgspec.json.decode((run_dir / "summary.json").read_bytes(), type=RunSummary) == summary
    assert summary.units["skipped"] > 0 and summary.outcomes_file == "outcomes.jsonl"
    outcomes = [msgspec.json.decode(line) for line in (run_dir / "outcomes.jsonl").read_bytes().splitlines()]
    assert len(outcomes) == summary.units["skipped"] + summary.units["failed"]
    assert {o["outcome"] for o in outcomes} <= {"skipped", "failed"}


@pytest.mark.looptime
async def test_a_run_stopped_with_an_exit_code_says_it_in_its_summary_and_state(tmp_path):
    """``stop(exit_code=143)`` (the CLI passes its signal's): the summary returned, summary.json and
    the state's run all say 143 and stopped; the next run resumes it."""
    world = World(WorldSpec(seed=14, accounts=3, media_per_account=30, now=1_795_132_800.0))
    config, env = world_config(world, tmp_path / "out")
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9, latency_ms=200))
    state = StateStore(config.state.path)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                                now=world.now) as harvester:
        summary = await stopped_after(harvester, 20, exit_code=143)
    written = msgspec.json.decode((tmp_path / "out" / summary.run_id / "summary.json").read_bytes(), type=RunSummary)
    (run,) = state.runs()
    state.close()
    assert summary.exit_code == written.exit_code == run.exit_code == 143
    assert summary.status.startswith("stopped") and run.status == "stopped"


def test_expected_skips_are_not_counted_as_errors():
    stats = Stats()
    skip = decide(GraphError(status=400, code=10, subcode=None, message="(#10) Not enough viewers for the media"))
    fail = decide(GraphError(status=400, code=100, subcode=None, message="(#100) Invalid parameter"))
    assert skip.action is Action.SKIP and fail.action is Action.FAIL
    for decision in (skip, skip, fail):             # what the scheduler counts for each error answer
        stats.inc("calls/error")
        stats.inc(f"errors/code/{decision.code}")
    stats.skipped_answer(skip), stats.skipped_answer(skip)
    assert error_counts(stats.counters) == (1, 2, {"code/100": 1})


def test_the_outcomes_file_is_copied_a_chunk_at_a_time_never_read_whole(tmp_path):
    """Past 1 MiB the outcomes wait on disk; writing the outcomes file copies them from there
    without holding them all in memory (a harvest of a million records skips tens of thousands
    of units: 10 MB read back at the end was its peak)."""
    import tracemalloc

    stats = Stats()
    decision = decide(GraphError(status=400, code=10, subcode=None, message="(#10) Not enough viewers for the media"))
    for n in range(20_000):
        stats.skip(Outcome.of(str(n), f"media {n} lifetime", decision))
    assert stats._outcomes._rolled                  # on disk, not in memory
    whole = stats.outcome_lines()
    assert len(whole) > 4 << 20 and whole.count(b"\n") == stats.outcome_count == 20_000
    tracemalloc.start()
    try:
        with open(tmp_path / "outcomes.jsonl", "wb") as out:
            stats.copy_outcomes(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "outcomes.jsonl").read_bytes() == whole
    assert peak < len(whole) // 8
    stats.skip(Outcome.of("more", "media more lifetime", decision))    # the spool goes on after a copy
    assert stats.outcome_lines().startswith(whole) and stats.outcome_count == 20_001


def test_an_outcome_line_is_its_kind_then_every_field_of_the_outcome_in_order():
    """The outcomes file's lines, written from the struct's own encoding (a skip costs one), are
    exactly ``{"outcome": kind, **outcome}``: the kind first, then every field, defaults too."""
    stats = Stats()
    refused = Outcome("1", "media 2 (FEED)", "metric refused", 100, None, "OAuthException", "no", metric="reach",
                      kind="media FEED IMAGE (facebook, v25.0)")
    bare = Outcome("1", "account 1", "not enough viewers")
    stats.refuse(refused)
    stats.skip(bare)
    stats.fail(bare)
    assert stats.outcome_lines().splitlines() == [
        msgspec.json.encode({"outcome": kind, **msgspec.structs.asdict(outcome)})
        for kind, outcome in (("refused", refused), ("skipped", bare), ("failed", bare))]


def test_the_api_words_of_a_failure_reach_summary_json():
    decision = decide(GraphError(status=400, code=100, subcode=33, type="GraphMethodException",
                                 message="Unsupported get request. Object with ID '1' does not exist"))
    outcome = Outcome.of("1", "account 1", decision)
    assert (outcome.code, outcome.subcode, outcome.reason) == (100, 33, decision.reason)
    words = Outcome("1", "account 1", "object missing or not permitted (100/33)", 100, 33, "GraphMethodException",
                    "Unsupported get request. Object with ID '1' does not exist")
    shown = msgspec.json.decode(msgspec.json.encode(words))
    assert shown["type"] == "GraphMethodException" and shown["message"].startswith("Unsupported get request")
    assert words.api_words() == ("code 100/33, GraphMethodException: Unsupported get request. "
                                 "Object with ID '1' does not exist")


def test_the_api_message_is_cut_and_never_carries_a_token(tmp_path):
    from harvester.state.store import StateStore
    from harvester.summary import MESSAGE_LIMIT, clean_message
    token = "EAAB" + "x" * 40
    said = f"Invalid  OAuth\n access token {token} for ?access_token={token}&x=1 " + "y" * 1000
    cleaned = clean_message(said)
    assert token not in cleaned and len(cleaned) == MESSAGE_LIMIT and "\n" not in cleaned
    state = StateStore(tmp_path / "state.sqlite")
    state.unit_failed("r", "u", account_id="1", label="account 1", reason="invalid token", message=said)
    (row,) = state.failed_outcomes("r")
    state.close()
    assert token not in row[-1] and token not in (tmp_path / "state.sqlite").read_bytes().decode("latin-1")


@pytest.mark.looptime
async def test_a_resumed_runs_summary_json_counts_the_units_the_printed_summary_shows(tmp_path):
    """Each attempt plans the whole run again: summary.json's units/planned and units/resumed are
    the last attempt's plan (what the printed summary says), not the attempts' sum (21,497 printed
    as 11,643 before), and planned = done + skipped over the run."""
    world = World(WorldSpec(seed=15, accounts=3, media_per_account=20, now=1_796_000_000.0))
    config, env = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_seconds=0.5,
                                                                             commit_units=5))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9, latency_ms=200))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as first:
        stopped = await stopped_after(first, 30)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now) as second:
        summary = await second.run()
    assert stopped.status.startswith("stopped") and summary.attempts == 2 and summary.exit_code == 0
    written = msgspec.json.decode(msgspec.json.encode(summary))          # what summary.json holds
    counters, units = written["counters"], written["units"]
    assert counters["units/planned"] == units["planned"] == stopped.units["planned"]
    assert counters["units/resumed"] == units["resumed"] > 0
    assert counters["units/done"] == units["done"]
    assert units["done"] + units["skipped"] == units["planned"]
    assert f"planned {units['planned']:,}, done {units['done']:,}" in summary.render()
