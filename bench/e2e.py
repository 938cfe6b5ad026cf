"""End to end: requests per second of a harvest against the simulator on loopback, against a
bare aiohttp GET loop over the same URLs, same server, same concurrency, same run.

The simulator serves from a child process (``python -m harvester.simulator``), so that server and
client do not share one event loop on one core. A first harvest, not timed, records
every URL it fetched (with its Authorization header) and is checked against the ground truth;
the bare loop then GETs exactly those URLs with as many workers as the harvest's
``max_in_flight``, reading each body and nothing more. The timed harvests run as a user's do,
with the plain transport (no recording wrapper on their call path), and count their calls from
their own summary (``calls/ok`` and ``calls/error``), which must equal the first harvest's.
Rounds alternate harvest and bare loop. The ratio is the median of each round's own ratio (its
harvest against the bare loop right after it), so that a machine whose speed drifts between
rounds moves both sides of a ratio together; the req/s shown are the medians of each side.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import aiohttp
import orjson

from harvester import Harvester
from harvester import summary as stat
from harvester.commands.demo import demo_config
from harvester.config import Config, parse_config
from harvester.days import from_unix
from harvester.graph.aiohttp_transport import AiohttpTransport
from harvester.graph.transport import Response
from harvester.simulator.world import World, WorldSpec

from .measure import NOW, BenchFailure, Outcome, Row, check, check_truth, human

SEED, ACCOUNTS, MEDIA, DAYS = 31, 60, 60, 3
ROUNDS = 5
GOAL = 0.75
NO_LIMIT = 10**9


class Recording:
    """A transport that notes (url, Authorization, status answered) of every call."""

    def __init__(self, inner: AiohttpTransport):
        self.inner = inner
        self.calls: list[tuple[str, str, int]] = []

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        response = await self.inner.get(url, headers)
        self.calls.append((url, headers["Authorization"], response.status))
        return response

    async def close(self) -> None:
        await self.inner.close()


class Server:
    """``harvester simulate`` in a child process, with no rate limit, until closed."""

    def __init__(self, directory: Path, accounts: int, media: int, *options: str, seed: int = SEED,
                 now: float = NOW):
        self.world_file = directory / "world.json"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harvester.simulator", "--seed", str(seed), "--accounts", str(accounts),
             "--now", str(int(now)),
             "--media-per-account", str(media), "--calls-per-window", str(NO_LIMIT),
             "--world-file", str(self.world_file), *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.world = self._wait()

    def _wait(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while not self.world_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        return orjson.loads(self.world_file.read_bytes())

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Harvest(NamedTuple):
    """One whole harvest, no rate limit."""

    seconds: float
    calls: list[tuple[str, str, int]]
    """The calls made (when recorded; else none)."""
    answered: int
    """Calls answered, as the summary counts them."""
    records: int
    width: int
    """Calls in flight at most."""
    config: Config


async def harvest(world: dict, now: float, output: Path, *, record: bool = False) -> Harvest:
    env = {f"T{i}": t["token"] for i, t in enumerate(world["tokens"])}
    today = from_unix(int(now))
    raw = demo_config(world["base_url"], {f"T{i}": tuple(t["accounts"]) for i, t in enumerate(world["tokens"])},
                      output, today, days=DAYS, calls_per_window=NO_LIMIT,
                      logins={f"T{i}": t["kind"] for i, t in enumerate(world["tokens"]) if t["kind"] != "facebook"})
    config = parse_config(raw, path="<bench>", env=env, today=today)
    width = config.scheduler.in_flight_cap(len(config.token_keys()))
    plain = AiohttpTransport(limit=width)
    transport = Recording(plain) if record else plain
    started = time.perf_counter()
    try:
        async with Harvester.pinned(config, tokens=env, transport=transport, now=now) as harvester:
            summary = await harvester.run()
    finally:
        await transport.close()
    check(summary.exit_code == 0 and not summary.failed,
          f"e2e: the harvest exited {summary.exit_code} with {len(summary.failed)} units failed")
    seconds = time.perf_counter() - started
    answered = int(summary.counters.get(stat.CALLS_OK, 0) + summary.counters.get(stat.CALLS_ERROR, 0))
    calls = transport.calls if isinstance(transport, Recording) else []
    return Harvest(seconds, calls, answered, summary.records, width, config)


async def bare_loop(calls: list[tuple[str, str, int]], concurrency: int) -> float:
    """Seconds to GET every URL with ``concurrency`` workers over one session, reading each body
    (each must get the status the harvest got: the same work on the server)."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        pending = iter(calls)

        async def worker() -> None:
            for url, auth, status in pending:
                async with session.get(url, headers={"Authorization": auth}) as response:
                    await response.read()
                    if response.status != status:
                        raise BenchFailure(f"e2e: the bare loop got {response.status} where the harvest got "
                                           f"{status} for {url.split('?')[0]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def rounds(world: dict, truth: World, directory: Path, n: int) -> dict:
    """A recorded harvest, checked against the ground truth, then ``n`` rounds of harvest and bare
    loop in turn (each harvest the same as the first: as many calls answered)."""
    first = await harvest(world, truth.now, directory / "out", record=True)
    calls = first.calls
    check(first.answered == len(calls),
          f"e2e: the summary counts {first.answered} calls answered, the transport {len(calls)}")
    check_truth(truth, first.config, "e2e", output=directory / "out")
    shutil.rmtree(directory / "out", ignore_errors=True)
    harvest_rps, bare_rps, ratios = [], [], []
    for i in range(n):
        output = directory / f"out-{i}"
        timed = await harvest(world, truth.now, output)
        shutil.rmtree(output, ignore_errors=True)
        check(timed.answered == len(calls),
              f"e2e: round {i + 1}'s harvest answered {timed.answered} calls, the first {len(calls)}")
        harvest_rps.append(timed.answered / timed.seconds)
        bare_rps.append(len(calls) / await bare_loop(calls, first.width))
        ratios.append(harvest_rps[-1] / bare_rps[-1])
    return {"harvest_rps": statistics.median(harvest_rps), "bare_rps": statistics.median(bare_rps),
            "ratio": statistics.median(ratios), "ratios": ratios, "calls": len(calls), "records": first.records}


def run(*, quick: bool = False) -> Outcome:
    accounts, media, n = (10, 20, 1) if quick else (ACCOUNTS, MEDIA, ROUNDS)
    truth = World(WorldSpec(seed=SEED, accounts=accounts, media_per_account=media, now=NOW))  # the child's too
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        server = Server(Path(tmp), accounts, media)
        try:
            r = asyncio.run(rounds(server.world, truth, Path(tmp), n))
        finally:
            server.close()
    ratio = r["ratio"]
    print(f"e2e: {r['calls']:,} calls and {r['records']:,} records per harvest, {n} rounds, "
          f"{os.cpu_count()} cores; each round's ratio: {', '.join(f'{x:.3f}' for x in r['ratios'])}",
          file=sys.stderr)
    results = {"ratio_vs_bare_loop": ratio, "harvest_requests_per_second": r["harvest_rps"],
               "bare_loop_requests_per_second": r["bare_rps"], "calls": r["calls"], "records": r["records"]}
    row = Row("e2e: harvest req/s (loopback, no limit)", human(r["harvest_rps"], "req/s"),
              f"{human(r['bare_rps'], 'req/s')} (bare aiohttp loop)", ratio, f">= {GOAL:.0%}", ratio >= GOAL)
    return Outcome(results, [row])
