"""Media refresh by age: the nightly calls of an account with about 1,000 media, with and without
refresh tiers, over 60 simulated nights (real harvests of the simulator, in memory, with a state
store; the account's media stay the same, the harvest's clock moves a day a night).

Without tiers every night re-reads every media (less the call of the metrics that need a share
to Facebook of the media that answered "not shared" within a week); with the default tiers (daily under 7 days,
weekly under 90, monthly after) a night re-reads the young media and the older ones whose turn
has come. Only media calls count here: account insights are the same either way.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from .measure import NOW, Outcome, Row, check

SEED, MEDIA, NIGHTS = 2, 1000, 60
DAY = 86400


async def nights(tiers: bool, directory: Path, count: int, mean_media: int = MEDIA) -> tuple[list[int], list[int]]:
    """Media insights calls per night, and the calls left out as the media was remembered not
    shared to Facebook (``media/not_shared``)."""
    from harvester import Harvester
    from harvester.commands.demo import world_config
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec
    from harvester.state.store import StateStore

    world = World(WorldSpec(seed=SEED, accounts=1, media_per_account=mean_media, stories_per_account=0, now=NOW))
    calls, unshared = [], []
    state = StateStore(directory / "state.sqlite")
    for night in range(count):
        now = world.now + night * DAY
        config, env = world_config(world, directory / "out", calls_per_window=10**9, path="<bench>",
                                   metrics={"account": [], "demographics": []}, refresh={"enabled": tiers})
        simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9))
        async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                             now=now, run_id=f"night-{night}") as harvester:
            summary = await harvester.run()
        check(summary.exit_code == 0 and not summary.failed, f"nightly ({'with' if tiers else 'without'} tiers): "
              f"night {night} exited {summary.exit_code} with {len(summary.failed)} units failed")
        calls.append(simulator.counters.endpoints.get("insights/media", 0))
        unshared.append(int(summary.counters.get("media/not_shared", 0)))
    state.close()
    return calls, unshared


def run(*, quick: bool = False) -> Outcome:
    count, mean_media = (9, 200) if quick else (NIGHTS, MEDIA)     # quick: a week's turn of the weekly tier
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        untiered, unshared = asyncio.run(nights(False, Path(a), count, mean_media))
        tiered, _ = asyncio.run(nights(True, Path(b), count, mean_media))
    check(tiered[0] == untiered[0] > 0, f"nightly: the first night must read every media with tiers as without: "
                                        f"{tiered[0]} calls with tiers, {untiered[0]} without")
    read = [calls + left_out for calls, left_out in zip(untiered, unshared, strict=True)]
    check(len(set(read)) == 1 and unshared[0] == 0,
          f"nightly: without tiers every night reads every media (less those remembered not shared to "
          f"Facebook): {untiered}, {unshared} left out")
    # A night's ceiling is every media read: the night without tiers leaves out the media it
    # remembers not shared to Facebook (re-asked weekly), which a tiered night, asking a media
    # only when its tier is due, may find forgotten (a week old) and ask again.
    check(all(t <= r for t, r in zip(tiered, read, strict=True)),
          f"nightly: a night with tiers made more calls than reading every media: {tiered} against {read}")
    from harvester.simulator.world import World, WorldSpec
    world = World(WorldSpec(seed=SEED, accounts=1, media_per_account=mean_media, stories_per_account=0, now=NOW))
    media = world.account_by_id(world.tokens[0].account_ids[0]).media_count
    steady = slice(30, None) if count > 30 else slice(1, None)
    mean_untiered, mean_tiered = statistics.mean(untiered[steady]), statistics.mean(tiered[steady])
    print(f"nightly: an account with {media:,} media; media insights calls per night, without tiers "
          f"{untiered[:8]}..., with tiers {tiered[:8]}...", file=sys.stderr)
    results = {"media": media, "nights": count, "calls_per_night_untiered": mean_untiered,
               "calls_per_night_tiered": mean_tiered, "first_night": tiered[0],
               "ratio_tiered_vs_untiered": mean_tiered / mean_untiered}
    row = Row(f"nightly media calls, {media:,} media (nights {steady.start}+)", f"{mean_tiered:,.0f} with tiers",
              f"{mean_untiered:,.0f} without", mean_tiered / mean_untiered, "fewer", mean_tiered < mean_untiered)
    return Outcome(results, [row])
