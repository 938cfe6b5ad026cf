"""Call economy by field expansion: the first backfill of about 1,000 media, with and without
their insights nested in the ``/media`` pages, under both ways the API may count such a page.

One account with 1,033 media over two years (posts, carousels, reels; no stories, none posted
before the business conversion), one token at 200 calls per rolling hour, in simulated time
(looptime, the simulator's in-memory transport). The media metrics asked are those a page can
nest (every metric FEED and REELS both take: ``plan.expand.PAGE_METRICS``): a product type's own
metrics and breakdowns are a call per media with or without expansion, so they would only add
the same calls to both sides. No account insights: they are the same calls either way.

Four harvests: the simulator counting an expanded page as one call (``one``) or as one plus one
per media nested (``per-object``), each harvested with ``[graph] expand_insights = "never"`` and
``"auto"``. Calls are what the API counts (``charged``: requests, plus the media nested under
``per-object``). Figures: ``expansion.calls_ratio_one`` (auto / never under ``one``, goal <= 0.1)
and ``expansion.calls_ratio_per_object`` (goal <= 1.02: auto never makes it worse).
Checks: each harvest exits 0 with nothing failed, its records equal the simulator's ground truth
(the metrics asked), and the four harvests' records are the same.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import looptime

from harvester import Harvester
from harvester.commands.demo import fact, world_config
from harvester.days import from_unix
from harvester.plan.expand import PAGE_METRICS
from harvester.records import key_of
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_accounts, expected_media, expected_records
from harvester.simulator.world import World, WorldSpec

from .makespan import CountingSink
from .measure import NOW, Outcome, Row, check

SEED, MEDIA, CALLS, WINDOW = 2, 1000, 200, 3600.0
GOALS = {"one": 0.1, "per-object": 1.02}
ACCOUNTINGS = ("one", "per-object")
MODES = ("never", "auto")


def world_of(media: int) -> World:
    return World(WorldSpec(seed=SEED, accounts=1, media_per_account=media, stories_per_account=0,
                           converted_share=0.0, now=NOW))


async def _harvest(world: World, accounting: str, mode: str, directory: Path) -> dict:
    config, env = world_config(world, directory, days=1, calls_per_window=CALLS, window_seconds=WINDOW,
                               path="<bench>", rate_limit={"margin_seconds": 0},
                               metrics={"account": [], "demographics": [], "media": list(PAGE_METRICS)},
                               graph={"expand_insights": mode})
    simulator = Simulator(world, SimulatorSettings(calls_per_window=CALLS, window_seconds=WINDOW,
                                                   expansion_cost=accounting))   # type: ignore[arg-type]
    sink = CountingSink(keep=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), sink=sink,
                                now=world.now) as harvester:
        summary = await harvester.run()
    what = f"expansion ({accounting}, {mode})"
    check(summary.exit_code == 0 and not summary.failed,
          f"{what}: the harvest exited {summary.exit_code} with {len(summary.failed)} units failed")
    served = simulator.counters.snapshot()
    streams = {stream: {key_of(r): fact(r) for r in sink.records_of(stream)}
               for stream in ("insights", "media", "accounts")}
    _check_truth(world, config, what, streams)
    return {"charged": served["charged"], "requests": served["calls"], "throttled": served["throttled"],
            "hours": (loop.time() - started) / 3600, "records": streams,
            "pages_nested": harvester.stats.get("paging/nested"), "media_nested": harvester.stats.get("media/nested")}


def _check_truth(world: World, config, what: str, streams: dict[str, dict]) -> None:
    """Each stream equals the simulator's ground truth: the insights of the metrics asked."""
    accounts = [a.id for a in config.accounts]
    asked = set(PAGE_METRICS)
    insights = {k: v for k, v in expected_records(world, config.window.since, config.window.until).items()
                if k[0] not in accounts and k[1] in asked}
    truth = {"insights": insights, "media": expected_media(world, accounts=accounts),
             "accounts": expected_accounts(world, from_unix(int(world.now)), accounts=accounts)}
    for stream, expected in truth.items():
        found = streams[stream]
        result = {"expected": len(expected), "found": len(found),
                  "missing": len(expected.keys() - found.keys()), "extra": len(found.keys() - expected.keys()),
                  "wrong": sum(1 for k, v in found.items() if k in expected and expected[k] != v)}
        n = result["expected"]
        check(n > 0 and result == {"expected": n, "found": n, "missing": 0, "extra": 0, "wrong": 0},
              f"{what}: the {stream} records are not the ground truth: {result}")


def harvest(world: World, accounting: str, mode: str) -> dict:
    loop = looptime.new_event_loop()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            return loop.run_until_complete(_harvest(world, accounting, mode, Path(directory)))
    finally:
        loop.close()


def run(*, quick: bool = False) -> Outcome:
    world = world_of(200 if quick else MEDIA)
    media = world.account_by_id(world.tokens[0].account_ids[0]).media_count
    runs = {(a, m): harvest(world, a, m) for a in ACCOUNTINGS for m in MODES}
    first = runs["one", "never"]["records"]
    for (accounting, mode), r in runs.items():
        check(r["records"] == first, f"expansion: the records of ({accounting}, {mode}) differ from those of "
                                     f"(one, never)")
    results: dict[str, float] = {"media": media}
    rows = []
    for accounting in ACCOUNTINGS:
        never, auto = runs[accounting, "never"], runs[accounting, "auto"]
        ratio = auto["charged"] / never["charged"]
        name = accounting.replace("-", "_")
        results |= {f"calls_ratio_{name}": ratio, f"calls_{name}_never": never["charged"],
                    f"calls_{name}_auto": auto["charged"], f"requests_{name}_auto": auto["requests"],
                    f"hours_{name}_never": never["hours"], f"hours_{name}_auto": auto["hours"],
                    f"throttled_{name}_auto": auto["throttled"], f"pages_nested_{name}_auto": auto["pages_nested"]}
        rows.append(Row(f"expansion: first backfill calls, {media:,} media, a page counted {accounting}",
                        f"{auto['charged']:,} auto", f"{never['charged']:,} never", ratio,
                        f"<= {GOALS[accounting]}", ratio <= GOALS[accounting]))
        print(f"expansion ({accounting}): never {never['charged']:,} calls in {never['hours']:.2f} h; auto "
              f"{auto['charged']:,} calls ({auto['requests']:,} requests, {auto['pages_nested']:.0f} pages nested, "
              f"{auto['media_nested']:.0f} media nested, {auto['throttled']} throttled) in {auto['hours']:.2f} h",
              file=sys.stderr)
    results["records"] = sum(len(v) for v in first.values())
    rows.append(Row("expansion: records, all four harvests", f"{results['records']:,.0f}", "the ground truth",
                    None, "equal", True))
    return Outcome(results, rows)
