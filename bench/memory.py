"""Memory: peak RSS of a harvest of 1,000,000 records against one of 100,000.

Each harvest runs in a fresh child process (``python -m bench.memory ACCOUNTS``), so that its
``ru_maxrss`` is its own: the simulator in memory (in-process transport, no rate limit), the
JSONL sink into a temporary directory. The child reports its RSS before the harvest too (imports
and world), which shows how much of the peak the harvest itself adds. Records stream to the
sink, so ten times the records should cost about the same memory.
"""

from __future__ import annotations

import asyncio
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from .measure import Outcome, Row

SMALL, LARGE = 100_000, 1_000_000
GOAL = 1.5
SEED, MEDIA, DAYS = 21, 50, 3
RECORDS_PER_ACCOUNT = 900
"""A first guess of records per account of this world; the large run is sized from the small one's."""


def maxrss_mb() -> float:
    """Peak RSS of this process image. ``VmHWM`` where there is /proc: Linux carries
    ``ru_maxrss`` over an exec from the forked copy of the parent (the decode benchmark's 50 MB
    corpus, say), while VmHWM starts afresh with the new image."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


async def harvest(accounts: int, output: Path) -> dict:
    from harvester import Harvester
    from harvester.commands.demo import world_config
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec

    world = World(WorldSpec(seed=SEED, accounts=accounts, media_per_account=MEDIA))
    config, env = world_config(world, output, days=DAYS, calls_per_window=10**9, path="<bench>")
    simulator = Simulator(world, SimulatorSettings(calls_per_window=10**9))
    before = maxrss_mb()
    started = time.perf_counter()
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    return {"accounts": accounts, "records": summary.records, "calls": simulator.counters.calls,
            "exit_code": summary.exit_code, "seconds": time.perf_counter() - started,
            "rss_before_mb": before, "peak_rss_mb": maxrss_mb()}


def child(accounts: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        print(orjson.dumps(asyncio.run(harvest(accounts, Path(tmp)))).decode())


def measure(accounts: int) -> dict:
    """One harvest in a fresh interpreter: what it reports on its last line."""
    done = subprocess.run([sys.executable, "-m", "bench.memory", str(accounts)], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False) -> Outcome:
    small_target, large_target = (SMALL // 10, LARGE // 10) if quick else (SMALL, LARGE)
    small = measure(math.ceil(small_target / RECORDS_PER_ACCOUNT))
    per_account = small["records"] / small["accounts"]
    large = measure(math.ceil(large_target / per_account * 1.1))  # bigger worlds have fewer records each
    for r in (small, large):
        print(f"memory: {r['records']:,} records ({r['accounts']} accounts, {r['calls']:,} calls) in "
              f"{r['seconds']:.1f} s: peak RSS {r['peak_rss_mb']:.1f} MB ({r['rss_before_mb']:.1f} MB before "
              f"the harvest)", file=sys.stderr)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    results = {"ratio_1m_vs_100k": ratio, "peak_rss_mb_1m": large["peak_rss_mb"],
               "peak_rss_mb_100k": small["peak_rss_mb"], "records_1m": large["records"],
               "records_100k": small["records"], "rss_before_harvest_mb_1m": large["rss_before_mb"],
               "rss_before_harvest_mb_100k": small["rss_before_mb"], "seconds_1m": large["seconds"],
               "seconds_100k": small["seconds"]}
    row = Row(f"memory: peak RSS, {large['records'] / 1e6:.2f} M records", f"{large['peak_rss_mb']:.0f} MB",
              f"{small['peak_rss_mb']:.0f} MB ({small['records'] / 1e3:.0f} k records)", ratio,
              f"<= {GOAL}x", ratio <= GOAL)
    return Outcome(results, [row])


if __name__ == "__main__":
    child(int(sys.argv[1]))
