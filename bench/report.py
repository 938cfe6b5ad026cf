"""``harvester report`` over 100 accounts and 90 days of harvested data, from each sink format: seconds to the page.

The data: a world of 100 accounts (100 media each on average, long-tailed) harvested in memory
over its last 90 days (daily totals with every breakdown, series, demographics, every media's
lifetime values), once into each of JSONL, Parquet and a DuckDB file, as any run writes them;
not timed. Timed: the report of those 90 days (against the 90 before) per account and for all,
from opening the output to the HTML file written, the median of 3 rounds per format
(``report.seconds_jsonl``, ``report.seconds_parquet``, ``report.seconds_duckdb``). JSONL's are
first reports (its Parquet cache of the parts removed before each: every part's JSON parsed);
its reports that find the cache (as after a nightly run, which adds a few parts) and the JSON
figures alone beside. Goal: under 5 s each. The machine is shared: the load average at the
end is kept with the figures.
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

from harvester import Harvester
from harvester.commands.demo import world_config
from harvester.config import Config
from harvester.report import write
from harvester.report.sources import CACHE
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import factory

from .measure import Outcome, Row

SEED, ACCOUNTS, MEDIA, DAYS = 51, 100, 100, 90
FORMATS = ("jsonl", "parquet", "duckdb")
GOAL_SECONDS = 5.0


def harvest(output: Path, accounts: int, days: int, output_format: str) -> Config:
    """The world harvested into ``output`` in the format named: its configuration."""
    world = World(WorldSpec(seed=SEED, accounts=accounts, media_per_account=MEDIA))
    config, env = world_config(world, output, days=days, calls_per_window=10**9, path="<bench>",
                               output_format=output_format)

    async def run() -> None:
        transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
            summary = await harvester.run()
        assert summary.exit_code == 0, summary.render()

    asyncio.run(run())
    return config


def run(quick: bool = False) -> Outcome:
    accounts, days = (10, 14) if quick else (ACCOUNTS, DAYS)
    rounds = 1 if quick else 3
    seconds: dict[str, float] = {}
    results: dict[str, object] = {"accounts": accounts, "days": days}
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for fmt in FORMATS:
            started = time.perf_counter()
            config = harvest(Path(tmp) / fmt, accounts, days, fmt)
            results[f"harvest_seconds_{fmt}"] = time.perf_counter() - started
            output = factory.output_directory(config.output)
            until = config.window.until
            since = until - timedelta(days=days)

            def report(kind: str, cold: bool = False, config: Config = config, output: Path = output,
                       since=since, until=until) -> float:
                if cold:
                    shutil.rmtree(output / CACHE, ignore_errors=True)
                t = time.perf_counter()
                write(config, since=since, until=until, tz="Europe/Berlin", output_format=kind,
                      out=output / f"report.{kind}")
                return time.perf_counter() - t

            seconds[fmt] = statistics.median([report("html", cold=True) for _ in range(rounds)])
            results[f"seconds_{fmt}"] = seconds[fmt]
            if fmt == "jsonl":
                results["insight_records"] = sum(1 for _ in factory.current_records(config.output, "insights"))
                results["media_records"] = sum(1 for _ in factory.current_records(config.output, "media"))
                results["warm_seconds_jsonl"] = statistics.median([report("html") for _ in range(rounds)])
                results["json_warm_seconds_jsonl"] = statistics.median([report("json") for _ in range(rounds)])
                results["html_bytes"] = (output / "report.html").stat().st_size
    results["load_average"] = round(os.getloadavg()[0], 1)
    rows = [Row(f"report of {accounts} accounts x {days} days from {fmt} (HTML{', first' if fmt == 'jsonl' else ''})",
                f"{seconds[fmt]:.2f} s", f"{results['insight_records']:,} insight records" if fmt == "jsonl"
                else f"load average {results['load_average']}", None, f"< {GOAL_SECONDS:.0f} s",
                seconds[fmt] < GOAL_SECONDS) for fmt in FORMATS]
    rows.append(Row(f"report of {accounts} accounts x {days} days from jsonl (HTML, cached)",
                    f"{results['warm_seconds_jsonl']:.2f} s", "", None, f"< {GOAL_SECONDS:.0f} s",
                    float(results["warm_seconds_jsonl"]) < GOAL_SECONDS))      # type: ignore[arg-type]
    return Outcome(results=results, rows=rows)
