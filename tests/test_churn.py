"""Metric churn (issue 24): a refusal costs one metric, never the unit; what is refused is
learned per kind of object, kept in the state, and asked again after the re-probe period.

Every world here drifts on demand (harvester.simulator.drift) and pins its ``now``."""

from __future__ import annotations

import re

import msgspec
import pytest

from harvester import Harvester
from harvester.days import DAY
from harvester.plan.refusals import LEARN_AFTER, REPROBE_SECONDS
from harvester.simulator.drift import Drift, without_refused
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.manifest import JSONL, Manifest, current_records, manifest_without_v1
from harvester.sinks.parquet import PARQUET
from harvester.state.store import StateStore

from support import assert_matches_truth, run_records, world_config

NOW = 1_793_000_000.0          # 2026-10-26T07:33:20Z
SHARES_ON_IMAGE = Drift(refuse=(("shares", "IMAGE"),))
LATENCY_MS = 150.0
IN_FLIGHT = {"per_token_in_flight": 2}
"""A handful of calls in flight per token: the refusals a kind costs before it is learned are
bounded by what was already asked when the third one came back."""


def spec(now: float = NOW) -> WorldSpec:
    return WorldSpec(seed=24, accounts=6, media_per_account=40, now=now)


async def harvest(tmp_path, world, drift, *, state, **tables):
    tables.setdefault("refresh", {"enabled": False})       # every media asked by every run
    config, env = world_config(world, tmp_path / "out", days=2, scheduler=IN_FLIGHT, **tables)
    simulator = Simulator(world, SimulatorSettings(drift=drift))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                         now=world.now) as harvester:
        summary = await harvester.run()
    records = run_records(tmp_path / "out", harvester.run_id)
    truth = expected_records(world, config.window.since, config.window.until)
    return summary, records, truth, harvester


async def default_harvest(tmp_path, world, drift, *, state, out="out"):
    """At the default concurrency, with a latency (calls overlap as they do against the API)."""
    config, env = world_config(world, tmp_path / out, days=2, refresh={"enabled": False})
    simulator = Simulator(world, SimulatorSettings(drift=drift, latency_ms=LATENCY_MS))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                                now=world.now) as harvester:
        summary = await harvester.run()
    records = run_records(tmp_path / out, harvester.run_id)
    return summary, records, expected_records(world, config.window.since, config.window.until)


def image_posts(world) -> int:
    return sum(1 for a in world.accounts_of_live_tokens() for n in range(world.listed_media(a))
               if world.media(a, n).media_type == "IMAGE" and not world.before_conversion(world.media(a, n)))


@pytest.mark.looptime
async def test_a_refused_metric_costs_that_metric_only_and_is_learned_per_kind(tmp_path):
    """shares refused on IMAGE posts: every other metric of every IMAGE post is there (the ground
    truth less shares of IMAGE posts, exactly), a handful of refusals per kind, then left out."""
    world = World(spec())
    state = StateStore(tmp_path / "state.db")
    summary, records, truth, harvester = await harvest(tmp_path, world, SHARES_ON_IMAGE, state=state)
    assert image_posts(world) > 50
    assert_matches_truth(records, without_refused(truth, world, SHARES_ON_IMAGE))
    assert summary.exit_code == 0 and not summary.failed, summary.render()
    kinds = {r.kind: r for r in summary.refused}
    assert "media FEED IMAGE (facebook, v25.0)" in kinds                       # stories of IMAGE are a kind too
    assert all(k.startswith(("media FEED IMAGE (", "media STORY IMAGE (")) for k in kinds), kinds
    for r in kinds.values():
        assert r.metric == "shares" and "does not support the shares metric" in (r.message or "")
        assert LEARN_AFTER <= r.refusals <= LEARN_AFTER + 2 * len(world.tokens), r     # a handful, not one per post
    assert sum(r.refusals + r.dropped for r in kinds.values()) >= image_posts(world)
    assert summary.units["refused"] == sum(r.refusals for r in kinds.values())
    assert "refused (" in summary.render() and "shares for media FEED IMAGE" in summary.render()
    written = msgspec.json.decode(msgspec.json.encode(summary))                                  # summary.json
    assert written["refused"][0]["metric"] == "shares" and written["api_version"] == "v25.0"
    asked = written["metrics_asked"]                  # which API said it: the metrics answered per kind
    assert "shares" not in asked["media FEED IMAGE (facebook, v25.0)"]
    assert {"reach", "views", "likes"} <= set(asked["media FEED IMAGE (facebook, v25.0)"])
    assert "shares" in asked["media FEED CAROUSEL_ALBUM (facebook, v25.0)"], sorted(asked)
    assert "follower_demographics" in asked["account (facebook, v25.0)"]
    outcomes = [msgspec.json.decode(line) for line in harvester.stats.outcome_lines().splitlines()]
    refused = [o for o in outcomes if o["outcome"] == "refused"]
    assert len(refused) == summary.units["refused"] and {o["metric"] for o in refused} == {"shares"}
    assert not [o for o in outcomes if o["outcome"] != "refused" and "shares" in (o["message"] or "")]
    learned = state.learned_refusals()
    assert ("media", "FEED", "IMAGE", "shares") in {(k[0], k[1], k[2], m) for k, m, *_ in learned}
    state.close()


@pytest.mark.looptime
async def test_at_the_default_concurrency_a_kind_costs_a_handful_of_refusals_and_the_next_run_none(tmp_path):
    """Calls of a kind go one at a time, all 19 tokens together, until the API has answered their
    metrics (probes): a metric refused for the kind costs about three refusals, not one per token
    or per call already in flight (6, 5, 5 and 4 for its four kinds with a probe per token; more
    without probes); nothing else is lost; the next run asks none."""
    world = World(WorldSpec(seed=24, accounts=24, media_per_account=40, now=NOW, tokens=19))
    state = StateStore(tmp_path / "state.db")
    summary, records, truth = await default_harvest(tmp_path, world, SHARES_ON_IMAGE, state=state)
    assert_matches_truth(records, without_refused(truth, world, SHARES_ON_IMAGE))
    assert summary.exit_code == 0 and len(summary.refused) == 4, summary.render()
    for r in summary.refused:
        assert LEARN_AFTER <= r.refusals <= 5, summary.render()
    world = World(WorldSpec(seed=24, accounts=24, media_per_account=40, now=NOW + DAY, tokens=19))
    summary, records, truth = await default_harvest(tmp_path, world, SHARES_ON_IMAGE, state=state, out="again")
    assert summary.refused and all(r.refusals == 0 for r in summary.refused) and summary.units["refused"] == 0
    assert_matches_truth(records, without_refused(truth, world, SHARES_ON_IMAGE))
    state.close()


@pytest.mark.looptime
async def test_a_metric_refused_for_some_objects_of_a_kind_is_never_learned_for_it(tmp_path):
    """reach refused for a fifth of IMAGE posts and served to the rest: the kind was served it,
    so each refusal costs that post's reach alone, every other IMAGE post keeps it, and nothing
    is learned (the next run asks it again)."""
    drift = Drift(refuse_some=(("reach", "IMAGE", 0.2),))
    world = World(spec())
    state = StateStore(tmp_path / "state.db")
    summary, records, truth = await default_harvest(tmp_path, world, drift, state=state)
    expected = without_refused(truth, world, drift)
    assert len(expected) < len(truth)
    assert_matches_truth(records, expected)
    assert summary.exit_code == 0 and {r.metric for r in summary.refused} == {"reach"}, summary.render()
    assert sum(r.refusals for r in summary.refused) > LEARN_AFTER * len(summary.refused)    # more than learning takes
    assert all(r.dropped == 0 for r in summary.refused) and state.learned_refusals() == []
    state.close()


@pytest.mark.looptime
async def test_a_second_run_asks_none_and_a_week_later_the_metric_is_asked_again(tmp_path):
    """What a run learned holds for the next one (no refusal at all); after the re-probe period
    the metric is asked again and, back in the API, harvested whole."""
    state = StateStore(tmp_path / "state.db")
    await harvest(tmp_path, World(spec()), SHARES_ON_IMAGE, state=state)

    world = World(spec(NOW + DAY))
    summary, records, truth, _ = await harvest(tmp_path, world, SHARES_ON_IMAGE, state=state)
    assert sum(r.refusals for r in summary.refused) == 0 and summary.units["refused"] == 0
    assert sum(r.dropped for r in summary.refused) >= image_posts(world)
    assert_matches_truth(records, without_refused(truth, world, SHARES_ON_IMAGE))

    # A week on, shares is back for IMAGE posts: it is asked again, and nothing is missing.
    world = World(spec(NOW + REPROBE_SECONDS + DAY))
    summary, records, truth, _ = await harvest(tmp_path, world, None, state=state)
    assert summary.refused == [] and summary.exit_code == 0
    assert_matches_truth(records, truth)
    state.close()


@pytest.mark.looptime
async def test_a_new_api_version_probes_afresh(tmp_path):
    state = StateStore(tmp_path / "state.db")
    await harvest(tmp_path, World(spec()), SHARES_ON_IMAGE, state=state)
    world = World(spec(NOW + DAY))
    summary, records, truth, _ = await harvest(tmp_path, world, None, state=state, graph={"api_version": "v26.0"})
    assert summary.refused == []
    assert_matches_truth(records, truth)
    state.close()


@pytest.mark.looptime
async def test_on_refused_fail_fails_the_unit_with_the_apis_words(tmp_path):
    world = World(spec())
    state = StateStore(tmp_path / "state.db")
    summary, _, _, _ = await harvest(tmp_path, world, SHARES_ON_IMAGE, state=state, metrics={"on_refused": "fail"})
    assert summary.exit_code == 3 and summary.refused == []
    assert summary.failed and all("does not support the shares metric" in (o.message or "") for o in summary.failed)
    assert state.learned_refusals() == []
    state.close()


def test_simulate_drift_serves_the_demo_drift_and_says_so():
    from harvester.simulator.cli import _parser, describe, settings_of
    from harvester.simulator.drift import DEMO

    settings = settings_of(_parser().parse_args(["--drift"]))
    assert settings.drift == DEMO and settings_of(_parser().parse_args([])).drift is None
    banner = describe(World(spec()), "http://127.0.0.1:1", settings)
    assert "drift: shares refused for IMAGE; watch_through_rate served (not in the catalog)" in banner


@pytest.mark.looptime
async def test_a_metric_retired_mid_run_costs_only_itself_and_the_api_list_tells_new_metrics(tmp_path):
    """views retired five simulated minutes into a paced run ("metric[i] must be one of", a list
    with metrics the catalog does not know in it): media asked before keep it, media after lose only it,
    each kind learns it within a handful, and the new metrics are told once."""
    world = World(spec())
    drift = Drift(retire=(("views", 300.0),), serve=("watch_through_rate",))
    config, env = world_config(world, tmp_path / "out", days=2, calls_per_window=30, window_seconds=60,
                               scheduler=IN_FLIGHT, refresh={"enabled": False})
    simulator = Simulator(world, SimulatorSettings(calls_per_window=30, window_seconds=60, drift=drift))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                         state=StateStore(tmp_path / "state.db"), now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0 and not summary.failed, summary.render()
    records = run_records(tmp_path / "out", harvester.run_id)
    truth = expected_records(world, config.window.since, config.window.until)
    found = {(r["object_id"], r["metric"]): r["value"] for r in records if r["object_type"] == "media"}
    others = [k for k in truth if k[1] != "views"]
    assert_matches_truth([r for r in records if r["metric"] != "views"], {k: truth[k] for k in others})
    views = [k for k in truth if k[1] == "views" and k[0] in {o for o, _ in found}]
    kept = sum(1 for k in views if (k[0], "views") in found)
    assert 0 < kept < len(views)                            # asked before the retirement, not after
    assert all(truth[k] == found[(k[0], "views")] for k in views if (k[0], "views") in found)
    assert {r.metric for r in summary.refused} == {"views"}
    assert all(r.refusals <= LEARN_AFTER + 2 * len(world.tokens) for r in summary.refused), summary.refused
    assert all("must be one of" in (r.message or "") for r in summary.refused)
    told = [w for w in summary.warnings if "catalog does not know" in w]
    assert len(told) == 1 and "watch_through_rate" in told[0]
    assert not {"reposts", "reels_skip_rate", "facebook_views", "link_clicks"} & set(re.findall(r"\w+", told[0]))
    assert not re.search(r"\bviews\b", told[0])               # retired: no longer listed


@pytest.mark.looptime
@pytest.mark.parametrize("stop_at", [90.0, 200.0])
async def test_a_run_stopped_among_refusals_resumes_exactly(tmp_path, stop_at):
    """Stopped while units asked again without a refused metric are checkpointed, the run resumes
    with nothing lost and nothing twice: the ground truth of the drifting world, exactly."""
    import asyncio

    world = World(spec())
    config, env = world_config(world, tmp_path / "out", days=2, calls_per_window=30, window_seconds=60,
                               scheduler=IN_FLIGHT, refresh={"enabled": False})
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_units=5))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=30, window_seconds=60, drift=SHARES_ON_IMAGE))
    state = StateStore(tmp_path / "state.db")
    summaries = []
    for attempt in range(2):
        async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                                    now=world.now) as harvester:
            task = asyncio.ensure_future(harvester.run())
            if attempt == 0:
                await asyncio.sleep(stop_at)
                harvester.stop()
            summaries.append(await task)
        assert harvester.resumed is (attempt == 1)
    assert summaries[1].exit_code == 0 and summaries[1].units["resumed"] > 0, summaries[1].render()
    assert summaries[0].units["refused"] > 0
    records = run_records(tmp_path / "out", harvester.run_id)
    truth = expected_records(world, config.window.since, config.window.until)
    assert_matches_truth(records, without_refused(truth, world, SHARES_ON_IMAGE))
    state.close()


@pytest.mark.looptime
async def test_status_shows_the_refused_units_and_the_learned_refusals(tmp_path):
    from harvester.commands.status import render

    state = StateStore(tmp_path / "state.db")
    await harvest(tmp_path, World(spec()), SHARES_ON_IMAGE, state=state)
    text = render(state)
    assert state.unit_counts(state.runs()[0].run_id).get("replaced", 0) > 0     # planned, asked without shares
    assert "- shares for media FEED IMAGE (facebook, v25.0): refused x3, learned 2026-10-26 07:33:20Z" in text
    assert "does not support the shares metric for this media product type" in text
    state.close()


@pytest.mark.looptime
async def test_the_december_2025_media_metrics_are_harvested(tmp_path):
    """reposts (FEED, REELS, STORY) and reels_skip_rate (REELS) are in the current reference: a
    default harvest asks them, and the records hold them exactly."""
    from harvester import catalog

    assert {"reposts", "reels_skip_rate"} <= {m.name for m in catalog.metrics_for_product("REELS")}
    assert "reposts" in {m.name for m in catalog.metrics_for_product("STORY")}
    world = World(spec())
    _, records, truth, _ = await harvest(tmp_path, world, None, state=StateStore(tmp_path / "state.db"))
    got = {(r["media_product_type"], r["metric"]) for r in records if r["object_type"] == "media"}
    assert {("FEED", "reposts"), ("REELS", "reposts"), ("REELS", "reels_skip_rate")} <= got
    assert ("FEED", "reels_skip_rate") not in got
    assert all(0 < r["value"] < 100 for r in records if r["metric"] == "reels_skip_rate")
    assert_matches_truth(records, truth)


def test_the_demo_drifts_on_demand_and_meets_its_ground_truth(tmp_path):
    """``harvester demo --drift``: shares refused on IMAGE posts, and still every record of the
    drifting world's ground truth (the rest of each refused media), exit 0."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harvester", "demo", "--drift", "--accounts", "3",
                           "--media-per-account", "30", "--faults", "0", "--format", "jsonl",
                           "--output", str(tmp_path / "demo")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "drift: shares refused for IMAGE" in done.stderr
    assert "- shares for media FEED IMAGE (facebook, v25.0): refused x" in done.stderr
    assert "demo: OK, every record of the ground truth" in done.stderr


@pytest.mark.looptime
@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
async def test_a_records_run_id_leads_to_its_api_version_and_metrics_in_the_manifest(tmp_path, output_format):
    """The manifest keeps, per run, the API version and the metrics asked per kind (as summary.json):
    a record's ``run_id`` leads to them, and a second run's entry sits beside the first's."""
    world = World(WorldSpec(seed=24, accounts=2, media_per_account=10, now=NOW))
    state = StateStore(tmp_path / "state.db")
    run_ids = []
    for version in ("v25.0", "v26.0"):
        config, env = world_config(world, tmp_path / "out", days=2, output_format=output_format,
                                   graph={"api_version": version}, refresh={"enabled": False})
        async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), state=state,
                                    now=world.now) as harvester:
            summary = await harvester.run()
        assert summary.exit_code == 0, summary.render()
        run_ids.append(harvester.run_id)
    state.close()
    written = msgspec.json.decode((tmp_path / "out" / "manifest.json").read_bytes())
    assert written["runs"] == run_ids
    records = list(current_records(tmp_path / "out", files_format=PARQUET if output_format == "parquet" else JSONL))
    assert records and {r["run_id"] for r in records} <= set(run_ids)
    for run_id, version in zip(run_ids, ("v25.0", "v26.0"), strict=True):
        info = written["run_info"][run_id]
        assert info["api_version"] == version
        assert {"reach", "views"} <= set(info["metrics_asked"][f"media FEED IMAGE (facebook, {version})"])
        assert "follower_demographics" in info["metrics_asked"][f"account (facebook, {version})"]
    assert "run_info" not in msgspec.json.encode(manifest_without_v1(Manifest(runs=["r"]))).decode()
