"""Hedged calls in simulated time (looptime): when nothing queued may start, a call out much longer
than its token's typical latency gets one copy, the first answer is the call's and the other
request is cancelled; never past the token's window, never with hedging off; a harvest hedged
writes exactly the records of one that is not."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from harvester import Harvester
from harvester.errors import TransportError
from harvester.graph.client import GraphClient
from harvester.graph.hedge import Flight
from harvester.graph.transport import Response
from harvester.schedule.hedge import HEDGE_AFTER
from harvester.schedule.scheduler import Scheduler
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.summary import Stats

from support import NOW, run_records, world_config

pytestmark = pytest.mark.looptime


class Latencies:
    """A transport whose every GET of a URL takes the next latency listed for it (an exception
    listed is raised after it); it records what it was sent and what was cancelled."""

    def __init__(self, latencies: dict[str, list]):
        self.latencies = latencies
        self.sent: list[tuple[str, float]] = []
        self.cancelled: list[str] = []

    async def get(self, url, headers):
        loop = asyncio.get_running_loop()
        self.sent.append((url, loop.time()))
        step = self.latencies[url].pop(0)
        delay, failure = step if isinstance(step, tuple) else (step, None)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(url)
            raise
        if failure is not None:
            raise failure
        return Response(200, {}, f"{url} at {loop.time():.1f}".encode())

    async def close(self) -> None:
        pass


class Get:
    """A job making one GET the way the client does (through the flight the scheduler hands it)."""

    priority = 0

    def __init__(self, transport: Latencies, url: str):
        self.transport, self.url = transport, url
        self.key = self.label = self.account_id = "t"
        self.answer: bytes | None = None

    async def __call__(self, flight=None):
        response = await (self.transport.get(self.url, {}) if flight is None else
                          flight.get(self.transport, self.url, {}))
        self.answer = response.body

    def gave_up(self, decision) -> None:
        pass


async def run(last: list, *, hedge: bool = True, calls: int = 1000,
              typical: float = 0.1) -> tuple[Scheduler, Latencies, Get, float]:
    """Four calls of ``typical`` seconds (the token's latency), then one whose requests take ``last``."""
    transport = Latencies({**{f"u{i}": [typical] for i in range(4)}, "slow": list(last)})
    scheduler = Scheduler(calls, 3600, 64, 5, Stats(), on_give_up=lambda job, d: None,
                          on_token_dead=lambda key, d: None, hedge=hedge)
    jobs = [Get(transport, f"u{i}") for i in range(4)] + [Get(transport, "slow")]
    for job in jobs:
        scheduler.submit(job)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await scheduler.run()
    return scheduler, transport, jobs[-1], loop.time() - started


async def test_a_slow_last_call_gets_one_copy_and_the_copys_answer():
    scheduler, transport, slow, seconds = await run([10.0, 0.1])
    copy_at = 0.1 + HEDGE_AFTER * 0.1          # it started after the probe; the token's latency is 0.1 s
    assert [t for url, t in transport.sent if url == "slow"] == [pytest.approx(0.1), pytest.approx(copy_at, abs=1e-3)]
    assert seconds == pytest.approx(copy_at + 0.1, abs=1e-3)
    assert slow.answer == f"slow at {copy_at + 0.1:.1f}".encode()
    assert transport.cancelled == ["slow"]                   # the first request, once the copy answered
    assert scheduler.stats.get("calls/hedged") == 1 and scheduler.stats.get("calls/hedged_first") == 1
    assert scheduler.slots["t"].copies == 1 and scheduler.slots["t"].in_flight == 0


class ThenMore(Get):
    """A job that submits ``more`` jobs once answered."""

    def __init__(self, transport: Latencies, url: str, scheduler: Scheduler, more: list[Get]):
        super().__init__(transport, url)
        self.scheduler, self.more = scheduler, more

    async def __call__(self, flight=None):
        await super().__call__(flight)
        for job in self.more:
            self.scheduler.submit(job)


async def test_the_worker_whose_call_its_copy_answered_runs_the_next_calls_uncancelled():
    """The copy that answers first cancels the first request's worker, once: the calls the worker
    runs afterwards are not cancelled, and answer in their own time."""
    transport = Latencies({**{f"u{i}": [0.1] for i in range(4)}, "slow": [10.0, 0.1],
                           **{f"next{i}": [0.1] for i in range(3)}})
    scheduler = Scheduler(1000, 3600, 64, 5, Stats(), on_give_up=lambda job, d: None,
                          on_token_dead=lambda key, d: None, hedge=True)
    more = [Get(transport, f"next{i}") for i in range(3)]
    for i in range(4):
        scheduler.submit(Get(transport, f"u{i}"))
    scheduler.submit(ThenMore(transport, "slow", scheduler, more))
    loop = asyncio.get_running_loop()
    await scheduler.run()
    answered = 0.1 + HEDGE_AFTER * 0.1 + 0.1            # the copy's answer
    assert [job.answer for job in more] == [f"next{i} at {answered + 0.1:.1f}".encode() for i in range(3)]
    assert loop.time() == pytest.approx(answered + 0.1, abs=1e-3)
    assert transport.cancelled == ["slow"] and scheduler.stats.get("calls/hedged_first") == 1


async def test_when_the_first_request_answers_first_the_copy_is_cancelled():
    scheduler, transport, slow, seconds = await run([0.5, 10.0])
    assert seconds == pytest.approx(0.6)                     # not the copy's 10 s
    assert slow.answer == b"slow at 0.6"
    assert transport.cancelled == ["slow"]
    assert scheduler.stats.get("calls/hedged") == 1 and scheduler.stats.get("calls/hedged_first") == 0


async def test_a_copy_that_fails_changes_nothing():
    scheduler, _, slow, seconds = await run([1.0, (0.05, TransportError("reset"))])
    assert seconds == pytest.approx(1.1) and slow.answer == b"slow at 1.1"
    assert scheduler.stats.get("calls/error") == 0 and scheduler.stats.get("calls/hedged") == 1


async def test_no_copy_with_hedging_off():
    scheduler, transport, _, seconds = await run([10.0, 0.1], hedge=False)
    assert seconds == pytest.approx(10.1) and len(transport.sent) == 5
    assert scheduler.stats.get("calls/hedged") == 0


async def test_no_copy_of_a_call_out_less_than_the_floor():
    """A token answering in 10 ms (a local server): 90 ms is nine times its latency, no tail."""
    scheduler, transport, _, seconds = await run([0.09, 0.01], typical=0.01)
    assert seconds == pytest.approx(0.1) and len(transport.sent) == 5
    assert scheduler.stats.get("calls/hedged") == 0


async def test_no_copy_once_the_tokens_window_is_half_spent():
    """Five calls of a window of eight: the budget, not latency, is what may bind that token."""
    scheduler, transport, _, seconds = await run([10.0, 0.1], calls=8)
    assert seconds == pytest.approx(10.1) and len(transport.sent) == 5
    assert scheduler.stats.get("calls/hedged") == 0


async def harvest(tmp_path, name: str, *, hedge: bool):
    world = World(WorldSpec(now=NOW, seed=5, accounts=3, tokens=1, media_per_account=8))
    config, env = world_config(world, tmp_path / name, days=1, scheduler={"hedge": hedge})
    simulator = Simulator(world, SimulatorSettings(calls_per_window=1_000_000, window_seconds=3600, latency_ms=300))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
        run_id = harvester.run_id
    assert summary.exit_code == 0
    records = sorted(orjson.dumps({k: v for k, v in r.items() if k not in ("run_id", "harvested_at")})
                     for r in run_records(tmp_path / name, run_id))
    return summary, simulator.counters.snapshot(), records


async def test_a_hedged_harvest_writes_the_records_of_one_that_is_not(tmp_path):
    hedged, served, records = await harvest(tmp_path, "hedged", hedge=True)
    plain, served_plain, records_plain = await harvest(tmp_path, "plain", hedge=False)
    copies = hedged.counters.get("calls/hedged", 0)
    assert copies > 0 and plain.counters.get("calls/hedged", 0) == 0
    assert records == records_plain and records
    assert served["calls"] == served_plain["calls"] + copies       # each copy is a call the API saw
    assert served["throttled"] == 0
    assert "hedged" in hedged.render() and "hedged" not in plain.render()


async def test_hedged_calls_over_loopback_yield_exactly_the_ground_truth(tmp_path, simulator_server):
    """The real aiohttp transport on a socket (the server's latency in the same simulated time):
    a copy that answers first cancels the other request, and the harvest is the truth, record for
    record."""
    from support import assert_matches_truth, truth_of

    world = World(WorldSpec(now=NOW, seed=5, accounts=3, tokens=1, media_per_account=8))
    server = await simulator_server(world, SimulatorSettings(latency_ms=300))
    config, env = world_config(world, tmp_path / "out", days=1, base_url=server.url)
    async with Harvester.pinned(config, tokens=env, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0, summary.render()
    assert summary.counters.get("calls/hedged_first", 0) > 0        # some copies answered first
    assert_matches_truth(run_records(tmp_path / "out", harvester.run_id), truth_of(world, config))


class JsonLatencies(Latencies):
    async def get(self, url, headers):
        response = await super().get(url, headers)
        return Response(200, {}, b'{"answer": "%s"}' % response.body)


async def test_the_client_sends_a_get_through_the_flight_it_is_handed():
    """The flight is an argument of the call (scheduler -> job -> client), not ambient state: a
    copy sent through it races the GET the client sent, and the first answer is the call's."""
    url = "http://graph/v25.0/17841"
    transport = JsonLatencies({url: [10.0, 0.5]})
    client = GraphClient(transport, "http://graph", "v25.0")
    flight = Flight(0.0)
    call = asyncio.ensure_future(client.get("17841", {}, "token", flight=flight))
    await asyncio.sleep(1)
    assert flight.may_copy()                      # the client's GET is out through it
    await flight.copy()
    reply = await call
    assert reply.body == f'{{"answer": "{url} at 1.5"}}'.encode() and flight.copy_first
    assert transport.cancelled == [url]


class Waits(Get):
    """A job whose call answers, then waits for ``released`` (as a job waits on a commit)."""

    def __init__(self, transport: Latencies, url: str, released: asyncio.Event):
        super().__init__(transport, url)
        self.released = released
        self.key = "w"          # a token of its own: the others' go on

    async def __call__(self, flight=None):
        await super().__call__(flight)
        await self.released.wait()


async def test_calls_done_behind_one_that_waits_long_leave_nothing_behind():
    """Hedging keeps a call only while it may still get a copy: thousands of calls that end
    while an older one is still out (waiting on a commit, say) leave no flight and no task
    behind them. Before, every call started after the oldest one still out was kept, with its
    task, until that one ended: about 0.5 kB a call, the memory benchmark's growth."""
    import gc

    calls = 3000
    released = asyncio.Event()
    transport = Latencies({"first": [0.1], **{f"u{i}": [0.1] for i in range(calls)}})
    scheduler = Scheduler(10**6, 3600, 64, 5, Stats(), on_give_up=lambda job, d: None,
                          on_token_dead=lambda key, d: None, hedge=True)
    first = Waits(transport, "first", released)
    scheduler.submit(first)
    jobs = [Get(transport, f"u{i}") for i in range(calls)]
    for job in jobs:
        scheduler.submit(job)
    running = asyncio.ensure_future(scheduler.run())
    while not all(job.answer for job in jobs):
        await asyncio.sleep(1)
    await asyncio.sleep(1)
    gc.collect()
    flights = sum(1 for o in gc.get_objects() if type(o) is Flight)
    done_tasks = sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Task) and o.done())
    assert first.answer and not running.done()
    assert flights <= 1 and done_tasks < 10, (flights, done_tasks)
    released.set()
    await running
