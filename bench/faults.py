"""Throttle blips in simulated time: what 1 % of throttle answers without evidence cost a harvest.

A "blip" is a throttle answer (code 4, 17, 32, 613 or 80002, the API's words) with no wait
estimate while the usage headers report the budget far from spent. The same harvest runs twice
on a fast-forwarding loop (looptime) against the in-memory simulator: without faults, and with
1 % of answers such blips (the kinds drawn with equal chances). The figure is the makespan with
blips over the makespan without: waiting out every blip as a real throttle (60 s doubling, code
4 pausing every token) turns a harvest of seconds into one of many minutes.

The harvest: 100 accounts over 30 tokens, 20 media each, 250 ms mean latency (an insights call
takes a few hundred ms), the rolling window raised to 10,000 calls per token: time goes on
latency and the caps on calls in flight, as in a small daily harvest, so that what a pause costs
shows in the makespan instead of hiding behind the rate limit.
"""

from __future__ import annotations

import sys
import time

import looptime

from harvester.simulator.faults import BLIP_KINDS
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import World, WorldSpec

from .makespan import harvest
from .measure import Outcome, Row

SEED, ACCOUNTS, TOKENS, MEDIA = 43, 100, 30, 20
CALLS, WINDOW, LATENCY_MS, BLIPS = 10_000, 3600.0, 250.0, 0.01
GOALS = {"ratio": 1.5}


def _run(faults: float, accounts: int, tokens: int, media: int) -> tuple[dict, dict]:
    world = World(WorldSpec(seed=SEED, accounts=accounts, tokens=tokens, media_per_account=media))
    settings = SimulatorSettings(calls_per_window=CALLS, window_seconds=WINDOW, faults=faults,
                                 latency_ms=LATENCY_MS, fault_kinds=BLIP_KINDS)
    simulator = Simulator(world, settings)
    loop = looptime.new_event_loop()
    try:
        outcome = loop.run_until_complete(harvest(world, simulator, calls_per_window=CALLS))
    finally:
        loop.close()
    return outcome, simulator.counters.snapshot()


def run(*, quick: bool = False) -> Outcome:
    size = (30, 10, 10) if quick else (ACCOUNTS, TOKENS, MEDIA)
    started = time.perf_counter()
    clean, clean_served = _run(0.0, *size)
    blips, blip_served = _run(BLIPS, *size)
    wall = time.perf_counter() - started
    ratio = blips["makespan"] / clean["makespan"]
    blipped = sum(blip_served["faults"].values())
    print(f"faults: without {clean['makespan']:.1f} s ({clean_served['calls']:,} calls, {clean['records']:,} "
          f"records, exit {clean['exit_code']}); with 1 % blips {blips['makespan']:.1f} s "
          f"({blip_served['calls']:,} calls, {blipped} blips, {blips['records']:,} records, "
          f"exit {blips['exit_code']}, {blips['failed']} failed)", file=sys.stderr)
    results = {"throttle_blip_ratio": ratio, "makespan_seconds_clean": clean["makespan"],
               "makespan_seconds_blips": blips["makespan"], "calls_clean": clean_served["calls"],
               "calls_blips": blip_served["calls"], "blips": blipped, "records_clean": clean["records"],
               "records_blips": blips["records"], "failed_blips": blips["failed"], "wall_seconds": wall}
    rows = [Row("faults: makespan with 1 % throttle blips (simulated)", f"{blips['makespan']:.1f} s",
                f"{clean['makespan']:.1f} s", ratio, f"<= {GOALS['ratio']}", ratio <= GOALS["ratio"]),
            Row("faults: records with blips = without", f"{blips['records']:,}", f"{clean['records']:,}", None,
                "equal", blips["records"] == clean["records"])]
    return Outcome(results, rows)
