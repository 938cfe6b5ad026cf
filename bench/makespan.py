"""Rate limits in simulated time: how close a rate-limited harvest comes to what the limits allow.

1,000 accounts over 300 tokens (the world's even grouping: half the tokens Instagram-Login with
one account each, half Facebook-Login sharing the rest, about six each), media counts with the
world's long (exponential) tail, 200 calls per token per rolling hour, 2 % faults of every kind.
The simulator is the in-memory transport on a fast-forwarding loop (looptime): hours of waiting
on the limits pass in seconds of wall time, and the simulator judges every call by that loop's
clock. Records go to a sink that counts them (this benchmark is about the scheduler, not files).

The lower bound: a token that makes ``calls`` calls needs at least ``(ceil(calls / 200) - 1)``
full windows before its last burst can start, so the harvest cannot end before
``max over tokens of (ceil(calls / 200) - 1) * 3600``, counting the calls each token really made
(faults and retries included) from the simulator's counters. Violations: calls the simulator
throttled, plus tokens whose busiest rolling window held more than 200 calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import looptime

from harvester import Harvester
from harvester.commands.demo import world_config
from harvester.plan.estimate import window_bound
from harvester.records import Record
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.base import Commit

from .measure import Outcome, Row

SEED, ACCOUNTS, TOKENS, MEDIA, DAYS = 41, 1000, 300, 40, 1
CALLS, WINDOW, FAULTS = 200, 3600.0, 0.02
GOALS = {"ratio": 1.02, "violations": 0, "wall_seconds": 120}


class CountingSink:
    """Keeps nothing but counts: commits are instant, so no thread ever runs beside the loop."""

    def __init__(self) -> None:
        self.records = 0
        self._units: list[str] = []

    def write(self, unit_id: str, records: Sequence[Record]) -> None:
        self.records += len(records)
        self._units.append(unit_id)

    def should_commit(self) -> bool:
        return len(self._units) >= 1000

    async def commit(self) -> Commit | None:
        units, self._units = tuple(self._units), []
        return Commit(units) if units else None

    async def close(self) -> Commit | None:
        return await self.commit()

    def recover(self, committed_parts: Mapping[str, int | None]) -> list[str]:
        return []

    def publish(self) -> None:
        pass


async def harvest(world: World, simulator: Simulator, calls_per_window: int = CALLS) -> dict:
    """One first harvest of ``world``: its own output and state directory, so that no earlier
    harvest's checkpoints or media refresh times make it skip anything."""
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        return await _harvest(world, simulator, calls_per_window, Path(directory))


async def _harvest(world: World, simulator: Simulator, calls_per_window: int, directory: Path) -> dict:
    config, env = world_config(world, directory, days=DAYS, calls_per_window=calls_per_window,
                               window_seconds=WINDOW, path="<bench>",
                               rate_limit={"margin_seconds": 0})   # simulated time: no clock skew, no network
    sink = CountingSink()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), sink=sink,
                         now=world.now) as harvester:
        summary = await harvester.run()
    return {"makespan": loop.time() - started, "records": sink.records, "exit_code": summary.exit_code,
            "failed": len(summary.failed)}


def run(*, quick: bool = False) -> Outcome:
    accounts, tokens, media = (100, 30, 20) if quick else (ACCOUNTS, TOKENS, MEDIA)
    world = World(WorldSpec(seed=SEED, accounts=accounts, tokens=tokens, media_per_account=media))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=CALLS, window_seconds=WINDOW, faults=FAULTS))
    loop = looptime.new_event_loop()
    started = time.perf_counter()
    try:
        r = loop.run_until_complete(harvest(world, simulator))
    finally:
        loop.close()
    wall = time.perf_counter() - started
    served = simulator.counters.snapshot()
    bound = max(window_bound(calls, CALLS, WINDOW) for calls in served["calls_by_token"].values())
    over = sum(1 for n in served["max_in_window"].values() if n > CALLS)
    violations = served["throttled"] + over
    ratio = r["makespan"] / bound if bound else float("inf")
    calls = sorted(served["calls_by_token"].values())
    print(f"makespan: {served['calls']:,} calls over {len(calls)} tokens (median {calls[len(calls) // 2]}, "
          f"max {calls[-1]}), faults {sum(served['faults'].values()):,}, {r['records']:,} records, "
          f"exit {r['exit_code']} ({r['failed']} failed)", file=sys.stderr)
    results = {"ratio_vs_lower_bound": ratio, "violations": violations, "wall_seconds": wall,
               "makespan_seconds": r["makespan"], "lower_bound_seconds": bound, "calls": served["calls"],
               "throttled": served["throttled"], "tokens_over_limit": over,
               "faults": sum(served["faults"].values()), "records": r["records"]}
    rows = [
        Row("makespan vs lower bound (simulated)", f"{r['makespan'] / 3600:.3f} h", f"{bound / 3600:.3f} h",
            ratio, f"<= {GOALS['ratio']}", ratio <= GOALS["ratio"]),
        Row("makespan: rolling-window violations", str(violations), "0", None, "0", violations == 0),
        Row("makespan: wall time", f"{wall:.1f} s", "", None, f"< {GOALS['wall_seconds']} s",
            wall < GOALS["wall_seconds"]),
    ]
    return Outcome(results, rows)
