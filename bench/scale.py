"""Scale: nightly harvests of 1,000, 10,000 and 100,000 accounts, each behind its own token.

Simulated time (looptime) and the in-memory simulator, 300 ms mean latency with an exponential
jitter, media counts with the world's long (exponential) tail, the default configuration
(``[scheduler]`` and ``[rate_limit]`` untouched) and a sink that counts records: this is about
the scheduler, the client and the jobs, not files. Each size runs in a fresh child process
(``python -m bench.scale ACCOUNTS``) so that its peak RSS is its own.

The lower bound of the makespan is the most of:

- each token's rate-limit bound: ``(ceil(calls / 200) - 1)`` full windows;
- each token's latency bound: its calls depend on one another (the account node, then the first
  page of ``/media``, then each media's calls one after the other), so the longest such chain of
  the latencies its calls really had, and the sum of its latencies over its cap on calls in flight;
- the global in-flight bound: the sum of every call's latency over ``max_in_flight``.

A hedged call (``[scheduler] hedge``: a copy sent at the end of the harvest) counts once in the
bound, with its latency from its first request to its first answer; the copy's own time is left
out (it used capacity that sat idle), so hedging can only lower the bound. The copies are
reported (``hedged_N``; ``calls`` are the calls the simulator served, copies included). The
simulator draws a copy's latency afresh (another server's time); its first request's latency is
what it always was, so the world and every figure without copies are unchanged.

Figures: calls, simulated makespan over that bound, wall (and CPU: on a shared machine the
steadier of the two) seconds per 1,000 calls, peak RSS
(VmHWM: the simulator's world, windows and counters, and this benchmark's own timing, included).
``make bench`` runs 1,000 and 10,000 accounts; ``make bench-scale`` (``python -m bench.scale
--sizes 1000,10000,100000``) adds 100,000, about 40 minutes of wall time on one core.

Depth: one token of four accounts (400 media each on average, three days), a budget far above
the harvest (100,000 calls an hour), 100 ms mean latency: calls per simulated second with the
default ``[scheduler]`` against the old fixed caps (8 per token, 32 in all), which the issue
measured at 76 calls/s against Airbyte's 68; the goal is 5 x 68 = 340 calls/s, with the window
never exceeded (the simulator throttles nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec
import orjson

from .measure import Outcome, Row
from .memory import maxrss_mb

SIZES = (1_000, 10_000)
LARGE = 100_000
SEED, MEDIA, DAYS, LATENCY_MS = 61, 5, 1, 300.0
CALLS, WINDOW = 200, 3600.0
"""The default rate limit (the simulator enforces it too)."""
GOALS = {"ratio": 1.05, "growth": 1.25, "rss_mb": 1024, "one_token_calls_per_s": 5 * 68}
DEPTH_SEED, DEPTH_ACCOUNTS, DEPTH_MEDIA, DEPTH_DAYS, DEPTH_LATENCY_MS, DEPTH_BUDGET = 9, 4, 400, 3, 100.0, 100_000
OLD_CAPS = {"max_in_flight": 32, "per_token_in_flight": 8}

ACCOUNT_PREFIX, MEDIA_PREFIXES = "178414", ("1790", "1791")


class TokenChains(msgspec.Struct):
    """One token's (here: one account's) latencies, folded as they come."""

    node: float = 0.0
    """The account node: every other call waits for it."""
    first_page: float = 0.0
    pages: float = 0.0
    account_insights: float = 0.0
    """The slowest account insights call (each waits only for the node)."""
    media: float = 0.0
    """The longest media chain (its calls one after the other) behind the first page."""
    total: float = 0.0
    calls: int = 0


class Timing:
    """A transport around the simulator's that times every call and folds it into its token's
    chains. A media's calls follow one another: their latencies add up, per media, until the
    account's last media is folded at the end.

    A hedged call (two requests of one URL out at once) is one call here: its latency runs from
    its first request to its first answer, and the copy's own time is not folded (the copy used
    capacity that sat idle; counting it would raise the bound)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.tokens: dict[int, TokenChains] = {}
        self._media: dict[int, float] = {}
        self._out: dict[str, list[float]] = {}
        """URL -> [its first request's start, requests of it out]."""
        self.latency = 0.0
        self.calls = 0

    async def get(self, url: str, headers: Mapping[str, str]):
        loop = asyncio.get_running_loop()
        out = self._out.get(url)
        if out is None:
            out = self._out[url] = [loop.time(), 0]
        out[1] += 1
        answered = False
        try:
            response = await self.inner.get(url, headers)
            answered = True
            return response
        except asyncio.CancelledError:
            answered = None         # the other request answered (it folded the call), or the harvest stops
            raise
        finally:
            out[1] -= 1
            if self._out.get(url) is out and (answered or (answered is False and out[1] == 0)):
                del self._out[url]
                self._fold(url, loop.time() - out[0])
            elif out[1] == 0 and self._out.get(url) is out:
                del self._out[url]

    async def close(self) -> None:
        await self.inner.close()

    def _fold(self, url: str, seconds: float) -> None:
        self.latency += seconds
        self.calls += 1
        path = url.split("?", 1)[0].split("/")
        node = path[4]
        parts = path[5:]
        if node.startswith(ACCOUNT_PREFIX):
            chains = self._token(int(node[6:]))
            edge = parts[0] if parts else None
            if edge is None:
                chains.node = max(chains.node, seconds)
            elif edge == "insights":
                chains.account_insights = max(chains.account_insights, seconds)
            else:
                chains.first_page = max(chains.first_page, seconds) if chains.pages == 0 else chains.first_page
                chains.pages += seconds
        else:
            number = int(node)
            self._media[number] = self._media.get(number, 0.0) + seconds
            chains = self._token(int(node[4:10]))
        chains.total += seconds
        chains.calls += 1

    def _token(self, account: int) -> TokenChains:
        chains = self.tokens.get(account)
        if chains is None:
            chains = self.tokens[account] = TokenChains()
        return chains

    def bounds(self, max_in_flight: int, per_token: int) -> dict[str, float]:
        for number, seconds in self._media.items():
            chains = self.tokens[int(str(number)[4:10])]
            chains.media = max(chains.media, seconds)
        chain = max((t.node + max(t.account_insights, t.pages, t.first_page + t.media) for t in self.tokens.values()),
                    default=0.0)
        depth = max((t.total / per_token for t in self.tokens.values()), default=0.0)
        rate = max((window_bound(t.calls) for t in self.tokens.values()), default=0.0)
        return {"chain": chain, "token_depth": depth, "rate": rate, "global": self.latency / max_in_flight}


def window_bound(calls: int) -> float:
    return max(0, math.ceil(calls / CALLS) - 1) * WINDOW


async def harvest(accounts: int, directory: Path) -> dict:
    from harvester import Harvester
    from harvester.commands.demo import world_config
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec

    from .makespan import CountingSink

    world = World(WorldSpec(seed=SEED, accounts=accounts, tokens=accounts, media_per_account=MEDIA))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=CALLS, window_seconds=WINDOW,
                                                   latency_ms=LATENCY_MS))
    config, env = world_config(world, directory, days=DAYS, path="<bench>")
    transport = Timing(SimulatorTransport(simulator))
    sink = CountingSink()
    before = maxrss_mb()
    loop = asyncio.get_running_loop()
    started, wall, cpu = loop.time(), time.perf_counter(), time.process_time()
    async with Harvester.pinned(config, tokens=env, transport=transport, sink=sink, now=world.now) as harvester:
        summary = await harvester.run()
        scheduler = harvester.pacing(0)
    makespan, wall, cpu = loop.time() - started, time.perf_counter() - wall, time.process_time() - cpu
    assert scheduler is not None
    served = simulator.counters.snapshot()
    over = sum(1 for n in served["max_in_window"].values() if n > CALLS)
    bounds = transport.bounds(scheduler.max_in_flight, scheduler.per_token_in_flight)
    return {"accounts": accounts, "calls": served["calls"], "hedged": int(summary.counters.get("calls/hedged", 0)),
            "hedged_first": int(summary.counters.get("calls/hedged_first", 0)),
            "records": sink.records, "exit_code": summary.exit_code,
            "failed": len(summary.failed), "makespan": makespan, "bound": max(bounds.values()), "bounds": bounds,
            "binding": max(bounds, key=lambda k: bounds[k]), "max_in_flight": scheduler.max_in_flight,
            "violations": served["throttled"] + over, "wall_seconds": wall,
            "wall_per_1000_calls": wall / served["calls"] * 1000, "cpu_per_1000_calls": cpu / served["calls"] * 1000,
            "rss_before_mb": before, "peak_rss_mb": maxrss_mb()}


async def one_token(directory: Path, scheduler: dict, media: int = DEPTH_MEDIA) -> dict:
    """Calls per simulated second of one token with a big budget (see the module's docstring)."""
    from harvester import Harvester
    from harvester.commands.demo import world_config
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec

    from .makespan import CountingSink

    world = World(WorldSpec(seed=DEPTH_SEED, accounts=DEPTH_ACCOUNTS, tokens=1, media_per_account=media))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=DEPTH_BUDGET, window_seconds=WINDOW,
                                                   latency_ms=DEPTH_LATENCY_MS))
    config, env = world_config(world, directory, days=DEPTH_DAYS, calls_per_window=DEPTH_BUDGET,
                               path="<bench>", scheduler=scheduler)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), sink=CountingSink(),
                         now=world.now) as harvester:
        summary = await harvester.run()
    seconds = loop.time() - started
    served = simulator.counters.snapshot()
    return {"calls": served["calls"], "seconds": seconds, "calls_per_s": served["calls"] / seconds,
            "violations": served["throttled"] + sum(1 for n in served["max_in_window"].values() if n > DEPTH_BUDGET),
            "exit_code": summary.exit_code}


def depth(*, quick: bool = False) -> tuple[dict, dict]:
    """One token, the default [scheduler] and the old caps, each in its own looptime loop."""
    import looptime

    outcomes = []
    for scheduler in ({}, OLD_CAPS):
        loop = looptime.new_event_loop(noop_cycles=0)
        try:
            with tempfile.TemporaryDirectory(prefix="bench-depth-") as tmp:
                outcomes.append(loop.run_until_complete(one_token(Path(tmp), scheduler, 40 if quick else DEPTH_MEDIA)))
        finally:
            loop.close()
    return outcomes[0], outcomes[1]


def child(accounts: int) -> None:
    import looptime

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        loop = looptime.new_event_loop(noop_cycles=0)   # no idle cycles before a jump: same figures, less wall
        try:
            outcome = loop.run_until_complete(harvest(accounts, Path(tmp)))
        finally:
            loop.close()
    print(orjson.dumps(outcome).decode())


def measure(accounts: int) -> dict:
    """One size in a fresh interpreter: what it reports on its last line."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "bench.scale", "--child", str(accounts)], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False, sizes: tuple[int, ...] = SIZES) -> Outcome:
    sizes = (100, 1_000) if quick else sizes
    deep, old = depth(quick=quick)
    print(f"scale: one token, default [scheduler]: {deep['calls']:,} calls in {deep['seconds']:.2f} s "
          f"({deep['calls_per_s']:.0f} calls/s, {deep['violations']} violations); the old caps: "
          f"{old['calls_per_s']:.0f} calls/s", file=sys.stderr)
    return summarize(deep, old, [measure(n) for n in sizes])


def summarize(deep: dict, old: dict, measured: list[dict]) -> Outcome:
    """The figures and rows of a run: the depth pair, then each size's child report."""
    for r in measured:
        print(f"scale: {r['accounts']:,} accounts, {r['calls']:,} calls ({r.get('hedged', 0):,} hedged copies, "
              f"{r.get('hedged_first', 0):,} answered first), makespan {r['makespan']:.1f} s against "
              f"{r['bound']:.1f} s ({r['binding']}; max_in_flight {r['max_in_flight']}), {r['violations']} "
              f"violations, exit {r['exit_code']}, {r['wall_seconds']:.1f} s wall "
              f"({r['wall_per_1000_calls']:.3f} s per 1,000 calls), peak RSS {r['peak_rss_mb']:.0f} MB",
              file=sys.stderr)
    small, largest = measured[0], measured[-1]
    worst = max(r["makespan"] / r["bound"] for r in measured)
    growth = largest["wall_per_1000_calls"] / small["wall_per_1000_calls"]
    cpu_growth = largest["cpu_per_1000_calls"] / small["cpu_per_1000_calls"]
    results: dict[str, float] = {
        "makespan_ratio_worst": worst, "cost_per_call_growth": growth,
        "peak_rss_mb_largest": largest["peak_rss_mb"], "largest_accounts": largest["accounts"],
        "violations": sum(r["violations"] for r in measured) + deep["violations"],
        "one_token_calls_per_s": deep["calls_per_s"], "one_token_calls_per_s_old_caps": old["calls_per_s"],
        "one_token_calls": deep["calls"], "cpu_per_call_growth": cpu_growth}
    for r in measured:
        n = r["accounts"]
        results |= {f"calls_{n}": r["calls"], f"makespan_seconds_{n}": r["makespan"],
                    f"bound_seconds_{n}": r["bound"], f"makespan_ratio_{n}": r["makespan"] / r["bound"],
                    f"wall_per_1000_calls_{n}": r["wall_per_1000_calls"], f"wall_seconds_{n}": r["wall_seconds"],
                    f"peak_rss_mb_{n}": r["peak_rss_mb"], f"max_in_flight_{n}": r["max_in_flight"],
                    f"hedged_{n}": r.get("hedged", 0), f"hedged_first_{n}": r.get("hedged_first", 0),
                    f"cpu_per_1000_calls_{n}": r["cpu_per_1000_calls"]}
    rows = [Row("scale: one token, 100 ms, big budget (simulated)", f"{deep['calls_per_s']:.0f} calls/s",
                f"{old['calls_per_s']:.0f} calls/s (old caps 8/32)", deep["calls_per_s"] / old["calls_per_s"],
                f">= {GOALS['one_token_calls_per_s']} calls/s", deep["calls_per_s"] >= GOALS["one_token_calls_per_s"])]
    rows += [Row(f"scale: makespan, {r['accounts']:,} accounts (simulated)", f"{r['makespan']:.1f} s",
                f"{r['bound']:.1f} s ({r['binding']})", r["makespan"] / r["bound"], f"<= {GOALS['ratio']}",
                r["makespan"] / r["bound"] <= GOALS["ratio"]) for r in measured]
    rows += [
        Row(f"scale: wall s per 1,000 calls, {largest['accounts']:,} vs {small['accounts']:,}",
            f"{largest['wall_per_1000_calls']:.3f} s", f"{small['wall_per_1000_calls']:.3f} s", growth,
            f"<= {GOALS['growth']}", growth <= GOALS["growth"]),
        Row(f"scale: CPU s per 1,000 calls, {largest['accounts']:,} vs {small['accounts']:,}",
            f"{largest['cpu_per_1000_calls']:.3f} s", f"{small['cpu_per_1000_calls']:.3f} s", cpu_growth,
            "(the same, on a shared machine)", None),
        Row(f"scale: peak RSS, {largest['accounts']:,} accounts", f"{largest['peak_rss_mb']:.0f} MB", "", None,
            f"< {GOALS['rss_mb']} MB", largest["peak_rss_mb"] < GOALS["rss_mb"]),
        Row("scale: rolling-window violations", str(results["violations"]), "0", None, "0",
            results["violations"] == 0),
    ]
    return Outcome(results, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description="the scale benchmark at given sizes")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="accounts per harvest, comma-separated")
    parser.add_argument("--child", type=int, metavar="ACCOUNTS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    from .__main__ import table
    from .measure import merge_results

    started = time.monotonic()
    outcome = run(sizes=tuple(int(n) for n in args.sizes.split(",")))
    print(table(outcome.rows))
    section = {**outcome.results, "bench_seconds": round(time.monotonic() - started, 1), "unix_time": int(time.time())}
    print(f"wrote {merge_results({'scale': section})}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
