"""Media insights nested in the ``/media`` pages (``[graph] expand_insights``), harvested from the
simulator in simulated time: the same records as a call per media, ``auto``'s choice under both
accountings, a page too large halved, a page whose nested insights fail asked again without
them, and no nesting where the usage headers say nothing."""

from collections import Counter

import msgspec
import pytest

from harvester import Harvester
from harvester.commands.demo import fact
from harvester.plan.expand import PAGE_METRICS
from harvester.records import key_of
from harvester.simulator.drift import Drift
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest

from support import NOW, Recording, assert_streams_match, stopped_after, world_config

pytestmark = pytest.mark.looptime

ONLY_PAGE_METRICS = {"account": [], "demographics": [], "media": list(PAGE_METRICS)}


def world(media: int = 300, **spec) -> World:
    return World(WorldSpec(**{"seed": 2, "accounts": 1, "media_per_account": media, "now": NOW,
                              "stories_per_account": 0, "converted_share": 0.0, **spec}))


async def harvest(tmp_path, world, mode: str, *, cost: str = "one", calls: int = 200, metrics=None, **settings):
    """A first harvest of ``world`` at ``calls`` per hour: its harvester, summary, transport and config."""
    tables = {"graph": {"expand_insights": mode}}
    if metrics is not None:
        tables["metrics"] = metrics
    out = tmp_path / f"{mode}-{cost}"
    config, env = world_config(world, out / "out", days=1, calls_per_window=calls, **tables)
    transport = Recording(Simulator(world, SimulatorSettings(calls_per_window=calls, expansion_cost=cost,
                                                             **settings)))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    return harvester, transport, config


def records(config) -> dict:
    return {key_of(r): fact(r) for r in manifest.current_records(config.output.path, "insights")}


def whole_records(config) -> dict:
    """Each insights record, every field but the run's own (run_id, harvested_at)."""
    return {key_of(r): {k: v for k, v in r.items() if k not in ("run_id", "harvested_at")}
            for r in manifest.current_records(config.output.path, "insights")}


def nested_pages(transport) -> list[tuple[str, int]]:
    """(limit, status) of each ``/media`` call that nested insights."""
    return [(dict(p.split("=", 1) for p in query.split("&"))["limit"], status)
            for path, query, status in transport.calls if path.endswith("/media") and "insights.metric" in query]


@pytest.mark.parametrize("cost", ["one", "per-object"])
async def test_every_metric_harvested_nested_equals_the_truth(tmp_path, cost):
    """Every metric of the catalog: the page brings the common ones, each media's own (follows,
    watch time, skip rate) and its breakdowns are asked alone; the records are the truth, once."""
    w = world(media=150)
    harvester, _transport, config = await harvest(tmp_path, w, "always", cost=cost, calls=10**6)
    assert_streams_match(config.output.path, w, config)
    _, _, plain = await harvest(tmp_path, w, "never", cost=cost, calls=10**6)
    assert whole_records(config) == whole_records(plain)                      # field for field
    assert harvester.stats.get("media/nested") == w.account(0).media_count
    account = w.account(0)
    shared = sum(w.shared_to_facebook(w.media(account, i)) for i in range(account.media_count))
    # every unit done, but each media not shared to Facebook: its facebook_views call is skipped
    assert harvester.stats.get("units/skipped") == account.media_count - shared
    assert harvester.stats.get("units/done") + harvester.stats.get("units/skipped") == \
        harvester.stats.get("units/planned")


async def test_auto_nests_where_a_page_counts_one_call(tmp_path):
    """A page counted as one call: after the probe (and the page found too large), every page
    nests; a tenth of the calls, the same records as a call per media."""
    w = world()
    media = w.account(0).media_count
    _never, plain, config_never = await harvest(tmp_path, w, "never", metrics=ONLY_PAGE_METRICS)
    auto, nested, config_auto = await harvest(tmp_path, w, "auto", metrics=ONLY_PAGE_METRICS)
    assert records(config_auto) == records(config_never) and len(records(config_never)) == media * len(PAGE_METRICS)
    assert whole_records(config_auto) == whole_records(config_never)          # field for field
    assert auto.stats.get("media/nested") == media
    assert len(nested.calls) * 10 <= len(plain.calls)
    assert nested_pages(plain) == []


async def test_auto_keeps_calls_one_by_one_where_a_page_counts_per_media(tmp_path):
    """A page counted one call per media nested: the probe prices a media nested at about one
    call, so the rest are asked one by one; no more calls than without expansion, plus one."""
    w = world()
    _, plain, config_never = await harvest(tmp_path, w, "never", cost="per-object", metrics=ONLY_PAGE_METRICS)
    _auto, nested, config_auto = await harvest(tmp_path, w, "auto", cost="per-object", metrics=ONLY_PAGE_METRICS)
    assert records(config_auto) == records(config_never)
    assert nested_pages(nested) == [("100", 500), ("50", 200)]          # the probe, halved once
    charged = nested.simulator.counters.snapshot()["charged"]
    assert charged <= plain.simulator.counters.snapshot()["charged"] + 1


async def test_a_page_too_large_is_halved_and_the_token_keeps_the_smaller_size(tmp_path):
    w = world(media=400)
    harvester, transport, _config = await harvest(tmp_path, w, "always", metrics=ONLY_PAGE_METRICS)
    pages = nested_pages(transport)
    assert pages[0] == ("100", 500)                                      # code 1: reduce the amount of data
    assert set(pages[1:]) == {("50", 200)} and len(pages) == 1 + -(-w.listed_media(w.account(0)) // 50)
    assert harvester.stats.get("paging/smaller") == 1
    assert harvester.stats.get("media/nested") == w.account(0).media_count


async def test_a_page_whose_nested_insights_fail_is_asked_again_without_them_and_nothing_is_lost(tmp_path):
    """The drift refuses shares on IMAGE posts: the first page nesting shares fails whole, is asked
    again without them, and its media go one by one (their refusals learned); later pages nest
    without shares, and every record the API gives is harvested."""
    drift = Drift(refuse=(("shares", "IMAGE"),))
    w = world()
    harvester, transport, config = await harvest(tmp_path, w, "always", calls=10**6, drift=drift)
    assert_streams_match(config.output.path, w, config, drift=drift)
    assert harvester.stats.get("paging/nested_failed") == 1
    pages = nested_pages(transport)
    failed = [q for p, q, s in transport.calls if p.endswith("/media") and "insights.metric" in q and s == 400]
    assert len(failed) == 1 and "shares" in failed[0]
    later = [q for p, q, s in transport.calls if p.endswith("/media") and "insights.metric" in q and s == 200]
    assert later and all("shares" not in q for q in later)
    assert 0 < harvester.stats.get("media/nested") < w.account(0).media_count and len(pages) > 2


async def test_where_the_usage_headers_say_nothing_auto_nests_nothing(tmp_path):
    """Usage headers no one can read (``deep_usage``): auto asks a call per media; always nests."""
    w = world(media=120)
    _, transport, _ = await harvest(tmp_path, w, "auto", hostile=("deep_usage",), metrics=ONLY_PAGE_METRICS)
    assert nested_pages(transport) == []
    _, transport, _ = await harvest(tmp_path, w, "always", hostile=("deep_usage",), metrics=ONLY_PAGE_METRICS)
    assert Counter(status for _, status in nested_pages(transport))[200] >= 3


@pytest.mark.parametrize("first, then", [("always", "always"), ("always", "never"), ("never", "always")])
async def test_a_stopped_run_resumed_nested_or_not_writes_every_record_once(tmp_path, first, then):
    """What a page answered is checkpointed as the call it stands for: a run stopped midway and
    resumed, nesting or not, asks nothing twice that it wrote, and loses nothing."""
    w = World(WorldSpec(seed=16, accounts=3, media_per_account=150, now=NOW, stories_per_account=0))
    config, env = world_config(w, tmp_path / "out", graph={"expand_insights": first})
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, commit_seconds=0.5,
                                                                             commit_units=5))
    simulator = Simulator(w, SimulatorSettings(calls_per_window=10**9, latency_ms=200))
    async with Harvester.pinned(config, tokens=env, transport=Recording(simulator), now=w.now) as harvester:
        stopped = await stopped_after(harvester, 60)
    assert stopped.status.startswith("stopped")
    config = msgspec.structs.replace(config, graph=msgspec.structs.replace(config.graph, expand_insights=then))
    async with Harvester.pinned(config, tokens=env, transport=Recording(simulator), now=w.now) as harvester:
        assert (await harvester.run()).exit_code == 0
    assert_streams_match(config.output.path, w, config)


async def test_auto_nests_nothing_where_no_media_call_would_ride_whole(tmp_path):
    """Every metric selected: FEED's follows and REELS' watch time keep a call per media, so a
    page nesting the others would save nothing; auto asks as never does, call for call."""
    w = world(media=120)
    _, plain, _ = await harvest(tmp_path, w, "never")
    _, auto, _ = await harvest(tmp_path, w, "auto")
    assert nested_pages(auto) == [] and len(auto.calls) == len(plain.calls)


def test_auto_probes_once_then_follows_the_estimate_and_checks_again_an_hour_later():
    """The choice alone, on a fake clock: a probe, then calls one by one while a media nested is
    measured at a call; an hour on, a page probes again; and a page priced at nothing nests."""
    from harvester.config.model import Selection
    from harvester.run.expansion import RECHECK_SECONDS, Expansion
    from harvester.schedule.cost import CallCosts

    clock = [0.0]
    costs = CallCosts(200, 3600, lambda: clock[0])
    selection = msgspec.structs.replace(Selection(), media=tuple(c for c in Selection().media
                                                                 if c.metric.name in PAGE_METRICS))
    choice = Expansion("auto", costs, selection, dict, "v25.0")
    assert choice.ask("t", "facebook") is None                  # no usage header seen yet
    costs.read("t", 0)
    probe = choice.ask("t", "facebook")
    assert probe is not None and probe.metrics == PAGE_METRICS and choice.ask("t", "facebook") is None
    page = costs.sent("t")
    costs.nested("t", page, 50)
    costs.read("t", 25)                                          # 51 counted: a media nested is a call
    choice.answered("t")
    assert choice.ask("t", "facebook") is None
    clock[0] += RECHECK_SECONDS * 2                              # the probe left the window, its price aged
    again = choice.ask("t", "facebook")
    assert again is not None
    page = costs.sent("t")
    costs.nested("t", page, 50)
    costs.read("t", 0)                                           # counted as one call now
    choice.answered("t")
    assert choice.ask("t", "facebook") == again
