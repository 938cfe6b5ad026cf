"""``harvester report`` over 100 accounts and 90 days of harvested data: seconds to the page.

The data: a world of 100 accounts (100 media each on average, long-tailed) harvested in memory
over its last 90 days (daily totals with every breakdown, series, demographics, every media's
lifetime values), written as JSONL like any run; not timed. Timed: the report of those 90 days
(against the 90 before) per account and for all, from opening the output to the HTML file
written, the median of 3 rounds: first reports (the Parquet cache of the parts removed before
each: every part's JSON parsed), then reports that find the cache (as after a nightly run, which
adds a few parts); the JSON figures alone beside. Goal: under 5 s. The machine is shared: the
load average at the end is kept with the figures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import msgspec

from harvester import Harvester
from harvester.commands.demo import world_config
from harvester.report import write
from harvester.report.views import CACHE
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest

from .measure import Outcome, Row

SEED, ACCOUNTS, MEDIA, DAYS = 51, 100, 100, 90
GOAL_SECONDS = 5.0


def harvest(output: Path, accounts: int, days: int) -> object:
    world = World(WorldSpec(seed=SEED, accounts=accounts, media_per_account=MEDIA))
    config, env = world_config(world, output, days=days, calls_per_window=10**9, path="<bench>")

    async def run() -> None:
        transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester(config, tokens=env, transport=transport, now=world.now) as harvester:
            summary = await harvester.run()
        assert summary.exit_code == 0, summary.render()

    asyncio.run(run())
    return msgspec.structs.replace(config), config.window.until


def run(quick: bool = False) -> Outcome:
    accounts, days = (10, 14) if quick else (ACCOUNTS, DAYS)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        started = time.perf_counter()
        config, today = harvest(Path(tmp) / "out", accounts, days)
        harvest_seconds = time.perf_counter() - started
        records = {s: sum(1 for _ in manifest.current_records(Path(tmp) / "out", s))     # type: ignore[arg-type]
                   for s in ("insights", "media", "accounts")}
        since, until = today - timedelta(days=days), today

        def report(fmt: str, cold: bool = False) -> float:
            if cold:
                shutil.rmtree(Path(tmp) / "out" / CACHE, ignore_errors=True)
            t = time.perf_counter()
            write(config, since=since, until=until, tz="Europe/Berlin", output_format=fmt,
                  out=Path(tmp) / f"report.{fmt}")
            return time.perf_counter() - t

        rounds = 1 if quick else 3
        cold = [report("html", cold=True) for _ in range(rounds)]
        warm = [report("html") for _ in range(rounds)]
        figures = [report("json") for _ in range(rounds)]
        size = (Path(tmp) / "report.html").stat().st_size
    seconds, warm_seconds = statistics.median(cold), statistics.median(warm)
    results = {"seconds_100_accounts_90_days": seconds, "warm_seconds": warm_seconds,
               "json_warm_seconds": statistics.median(figures), "accounts": accounts, "days": days,
               "insight_records": records["insights"], "media_records": records["media"], "html_bytes": size,
               "harvest_seconds": harvest_seconds, "sink_format": "jsonl",
               "load_average": round(os.getloadavg()[0], 1)}
    rows = [Row(f"report of {accounts} accounts x {days} days (HTML, first)", f"{seconds:.2f} s",
                f"{records['insights']:,} insight records", None, f"< {GOAL_SECONDS:.0f} s", seconds < GOAL_SECONDS),
            Row(f"report of {accounts} accounts x {days} days (HTML, cached)", f"{warm_seconds:.2f} s",
                f"load average {results['load_average']}", None, f"< {GOAL_SECONDS:.0f} s",
                warm_seconds < GOAL_SECONDS)]
    return Outcome(results=results, rows=rows)
