"""A token's depth (its calls in flight) adapts to its answers, in simulated time (looptime): it
grows while latency holds the token back and its usage is low, never above the cap, and shrinks
as usage rises, on errors and throttles and when answers turn slow; the window is never exceeded."""

from __future__ import annotations

import asyncio

import pytest

from harvester import Harvester
from harvester.errors import GraphError, TransportError
from harvester.graph.wire import Usage
from harvester.schedule.pace import LOW_MARK, START_DEPTH
from harvester.schedule.scheduler import Scheduler
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.summary import Stats

from support import NOW, world_config

pytestmark = pytest.mark.looptime

LOW = Usage(percent=1, regain_seconds=0)


class Calls:
    """Fake calls of one token: each sleeps its duration and plays an outcome (a usage to return,
    an exception to raise); counts the calls in flight and their peak."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.peaks: list[int] = []
        """The calls in flight when each call started."""

    def job(self, *, duration: float = 0.1, outcome: object = LOW, key: str = "t") -> Job:
        return Job(self, key, duration, outcome)


class Job:
    priority = 0

    def __init__(self, calls: Calls, key: str, duration: float, outcome: object):
        self.calls, self.key, self.duration, self.outcome = calls, key, duration, outcome
        self.label = self.account_id = key

    async def __call__(self, flight=None):
        calls = self.calls
        calls.in_flight += 1
        calls.peak = max(calls.peak, calls.in_flight)
        calls.peaks.append(calls.in_flight)
        try:
            await asyncio.sleep(self.duration() if callable(self.duration) else self.duration)
        finally:
            calls.in_flight -= 1
        outcome = self.outcome() if callable(self.outcome) else self.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def gave_up(self, decision) -> None:
        pass


def scheduler(*, per_token: int = 64, max_in_flight: int = 1000, calls: int = 10**6, attempts: int = 5) -> Scheduler:
    return Scheduler(calls, 3600, max_in_flight, attempts, Stats(), on_give_up=lambda job, d: None,
                     on_token_dead=lambda key, d: None, per_token_in_flight=per_token)


async def test_depth_grows_to_the_cap_while_latency_holds_a_token_back():
    calls, s = Calls(), scheduler(per_token=64)
    for _ in range(2000):
        s.submit(calls.job())
    await s.run()
    assert calls.peaks[0] == 1                         # the first call probes the token
    assert max(calls.peaks[:START_DEPTH + 1]) <= START_DEPTH
    assert calls.peak == 64
    assert s.slots["t"].pace.depth == 64


async def test_depth_never_passes_the_users_cap():
    calls, s = Calls(), scheduler(per_token=12)
    for _ in range(1000):
        s.submit(calls.job())
    await s.run()
    assert calls.peak == 12


async def test_depth_never_passes_the_global_cap_and_does_not_grow_against_it():
    calls, s = Calls(), scheduler(per_token=64, max_in_flight=5)
    for _ in range(500):
        s.submit(calls.job())
    await s.run()
    assert calls.peak == 5
    assert s.slots["t"].pace.depth == START_DEPTH          # the global cap held it back, not its depth


async def test_depth_does_not_grow_without_waiting_work():
    calls, s = Calls(), scheduler(per_token=64)
    for _ in range(6):
        s.submit(calls.job())
    await s.run()
    assert s.slots["t"].pace.depth == START_DEPTH


@pytest.mark.parametrize("percent", [LOW_MARK, 75, 90, 100])
async def test_depth_shrinks_as_usage_rises(percent):
    calls, s = Calls(), scheduler(per_token=64)
    high = Usage(percent=percent, regain_seconds=0)
    for i in range(400):
        s.submit(calls.job(outcome=LOW if i < 200 else high))
    await s.run()
    slot = s.slots["t"]
    allowed = max(1, int(64 * (100 - percent) / (100 - LOW_MARK)))
    assert int(slot.pace.depth) <= allowed
    assert max(calls.peaks[-50:]) <= allowed           # the last calls ran under it
    assert max(calls.peaks[:200]) == 64


async def test_depth_does_not_grow_while_usage_is_at_the_low_mark():
    calls, s = Calls(), scheduler(per_token=64)
    for _ in range(400):
        s.submit(calls.job(outcome=Usage(percent=LOW_MARK, regain_seconds=0)))
    await s.run()
    assert calls.peak <= START_DEPTH


async def test_a_burst_of_transient_errors_halves_the_depth_once():
    calls, s = Calls(), scheduler(per_token=64)
    state = {"answered": 0}

    def outcome():
        state["answered"] += 1
        return TransportError("reset") if 300 <= state["answered"] < 340 else LOW
    for _ in range(600):
        s.submit(calls.job(outcome=outcome))
    await s.run()
    slot = s.slots["t"]
    assert slot.errors == 40
    assert 32 <= slot.pace.depth < 64                      # one cut of 64 for the whole burst, then slow growth
    assert not slot.pace.ramping


async def test_a_trickle_of_faults_does_not_cut_the_depth():
    calls, s = Calls(), scheduler(per_token=64)
    state = {"answered": 0}

    def outcome():
        state["answered"] += 1
        return TransportError("reset") if state["answered"] % 20 == 0 else LOW     # 5 %
    for _ in range(2000):
        s.submit(calls.job(outcome=outcome))
    await s.run()
    slot = s.slots["t"]
    assert slot.errors >= 100
    assert slot.pace.depth == 64


async def test_every_round_of_errors_cuts_again_down_to_one():
    calls, s = Calls(), scheduler(per_token=64)
    state = {"answered": 0}

    def outcome():
        state["answered"] += 1
        return GraphError(status=500, code=2, subcode=None, message="Service temporarily unavailable") \
            if state["answered"] > 300 else LOW
    for _ in range(400):
        s.submit(calls.job(outcome=outcome))
    await s.run()
    assert max(calls.peaks[:300]) == 64
    assert s.slots["t"].pace.depth == 1


@pytest.mark.parametrize("usage, cut", [(Usage(percent=1, regain_seconds=30), True), (LOW, False)])
async def test_a_throttle_waited_out_cuts_the_depth_and_a_lone_one_does_not(usage, cut):
    """With the server's estimate the throttle is waited out and halves the depth; without one, at
    1 % usage, it is a lone one: it costs its call a retry, not the token its depth."""
    calls, s = Calls(), scheduler(per_token=64)
    state = {"answered": 0}

    def outcome():
        state["answered"] += 1
        return GraphError(status=400, code=17, subcode=None, message="User request limit reached", usage=usage) \
            if state["answered"] == 300 else LOW
    for _ in range(400):
        s.submit(calls.job(outcome=outcome))
    await s.run()
    slot = s.slots["t"]
    assert slot.throttles == 1
    assert (slot.pace.depth < 40) is cut and (slot.pace.depth == 64) is not cut


async def test_slow_answers_cut_the_depth():
    calls, s = Calls(), scheduler(per_token=64)
    state = {"started": 0}

    def duration():
        state["started"] += 1
        return 0.1 if state["started"] < 400 else 1.0   # the server slows down ten times
    for _ in range(600):
        s.submit(calls.job(duration=duration))
    await s.run()
    slot = s.slots["t"]
    assert max(calls.peaks[:400]) == 64
    assert slot.pace.depth < 40 and not slot.pace.ramping
    assert slot.pace.latency > 0.5


class Peak:
    """The simulator's transport, counting the calls in flight at their peak."""

    def __init__(self, inner: SimulatorTransport):
        self.inner, self.in_flight, self.peak = inner, 0, 0

    async def get(self, url, headers):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self.inner.get(url, headers)
        finally:
            self.in_flight -= 1

    async def close(self):
        await self.inner.close()


async def harvest_one_token(tmp_path, *, calls_per_window: int, window_seconds: float):
    """Four accounts on one token at 100 ms mean latency (exponential), the default [scheduler]."""
    world = World(WorldSpec(now=NOW, seed=9, accounts=4, tokens=1, media_per_account=60))
    config, env = world_config(world, tmp_path / "out", days=1, calls_per_window=calls_per_window,
                               window_seconds=window_seconds)
    simulator = Simulator(world, SimulatorSettings(calls_per_window=calls_per_window, window_seconds=window_seconds,
                                                   latency_ms=100))
    transport = Peak(SimulatorTransport(simulator))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    return simulator.counters.snapshot(), transport.peak


async def test_one_token_with_a_big_budget_goes_deep(tmp_path):
    served, peak = await harvest_one_token(tmp_path, calls_per_window=100_000, window_seconds=3600)
    assert served["throttled"] == 0
    assert peak > 4 * START_DEPTH


async def test_one_token_under_a_tight_window_never_exceeds_it(tmp_path):
    served, _ = await harvest_one_token(tmp_path, calls_per_window=50, window_seconds=10)
    assert served["calls"] > 200                        # the window bound the harvest
    assert served["throttled"] == 0
    assert max(served["max_in_window"].values()) <= 50
