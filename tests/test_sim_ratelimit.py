"""The simulator's rolling windows: exact on a fake clock, throttle bodies of every kind, usage
headers, and hours of simulated time through the in-memory transport under looptime."""

import asyncio

import orjson
import pytest

from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.ratelimit import RateLimits, RollingWindow
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import NOW


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_of(world: World, kind: str):
    return next(t for t in world.tokens if t.kind == kind and not t.revoked)


def error_of(reply) -> dict:
    return orjson.loads(reply.body)["error"]


def test_window_admits_exactly_limit_calls_per_rolling_window():
    window = RollingWindow(limit=3, seconds=100)
    assert [window.record(t) for t in (0, 10, 20)] == [1, 2, 3]
    assert window.record(99.9) == 4            # 0 is still inside (0 > 99.9 - 100)
    assert window.count(100.0) == 3            # at 100 the call made at 0 has left
    assert window.count(110.0) == 2


def test_calls_while_throttled_extend_the_penalty():
    window = RollingWindow(limit=2, seconds=100)
    for t in (0, 1, 50, 99):
        window.record(t)
    assert window.regain_seconds(99) == pytest.approx(51)   # the call made at 50 must leave
    # Had the throttled calls at 50 and 99 not counted, a call at 100.5 would be admitted.
    assert window.record(100.5) == 4 > window.limit


def test_percent_and_regain_when_not_throttled():
    window = RollingWindow(limit=4, seconds=60)
    window.record(0)
    assert window.percent(1) == 25
    assert window.regain_seconds(1) == 0.0


async def test_user_token_throttle_is_17_with_app_usage_header():
    clock = FakeClock()
    sim = Simulator(WorldSpec(now=NOW, seed=3, accounts=20), SimulatorSettings(calls_per_window=2, window_seconds=60),
                    clock=clock)
    token = token_of(sim.world, "facebook")
    auth = {"Authorization": f"Bearer {token.token}"}
    first, second = [await sim.serve("GET", "/v25.0/me", {}, auth) for _ in range(2)]
    assert first.status == second.status == 200
    assert orjson.loads(second.headers["X-App-Usage"]) == {"call_count": 100, "total_time": 50, "total_cputime": 50}
    clock.now += 30
    third = await sim.serve("GET", "/v25.0/me", {}, auth)
    assert third.status == 400
    error = error_of(third)
    assert (error["code"], error["message"], error["type"]) == (17, "(#17) User request limit reached",
                                                                "OAuthException")
    assert "error_subcode" not in error
    assert orjson.loads(third.headers["X-App-Usage"])["call_count"] == 150
    clock.now += 10
    assert (await sim.serve("GET", "/v25.0/me", {}, auth)).status == 400
    clock.now += 20                 # the two accepted calls have left the window, the throttled ones not
    assert (await sim.serve("GET", "/v25.0/me", {}, auth)).status == 400
    clock.now += 41                 # now only the last throttled call is in the window
    assert (await sim.serve("GET", "/v25.0/me", {}, auth)).status == 200
    snap = sim.counters.snapshot()
    assert snap["throttled_by_token"] == {str(token.index): 3}
    assert snap["max_in_window"][str(token.index)] == 4


async def test_instagram_token_throttle_is_80002_with_business_usage_header():
    clock = FakeClock()
    sim = Simulator(WorldSpec(now=NOW, seed=3, accounts=20), SimulatorSettings(calls_per_window=2, window_seconds=600),
                    clock=clock)
    token = token_of(sim.world, "instagram")
    auth = {"authorization": f"Bearer {token.token}"}
    ok = await sim.serve("GET", "/v25.0/me", {}, auth)
    usage = orjson.loads(ok.headers["X-Business-Use-Case-Usage"])
    assert usage == {account: [{"type": "instagram", "call_count": 50, "total_cputime": 25, "total_time": 25,
                                "estimated_time_to_regain_access": 0}] for account in token.account_ids}
    clock.now += 30
    await sim.serve("GET", "/v25.0/me", {}, auth)
    clock.now += 30
    throttled = await sim.serve("GET", "/v25.0/me", {}, auth)
    assert throttled.status == 400
    error = error_of(throttled)
    assert error["code"] == 80002
    assert error["message"] == ("(#80002) There have been too many calls to this Instagram account. "
                                "Wait a bit and try again.")
    [entry] = orjson.loads(throttled.headers["X-Business-Use-Case-Usage"])[token.account_ids[0]]
    assert entry["call_count"] == 150
    assert entry["estimated_time_to_regain_access"] == 10   # the second call (t=30) leaves at 630: 570 s
    assert "X-App-Usage" not in throttled.headers


async def test_app_limit_throttles_every_token_with_code_4():
    sim = Simulator(WorldSpec(now=NOW, seed=3, accounts=20),
                    SimulatorSettings(calls_per_window=100, app_calls_per_window=3),
                    clock=FakeClock())
    tokens = [t for t in sim.world.tokens if not t.revoked][:2]
    replies = [await sim.serve("GET", "/v25.0/me", {"access_token": tokens[i % 2].token}, {}) for i in range(5)]
    assert [r.status for r in replies] == [200, 200, 200, 400, 400]
    for reply in replies[3:]:
        assert (error_of(reply)["code"], error_of(reply)["message"]) == (4, "(#4) Application request limit reached")
    assert sim.counters.snapshot()["throttled_by_scope"] == {"app": 2}


def test_rate_limits_keep_one_window_per_token():
    limits = RateLimits(calls_per_window=1, window_seconds=10)
    assert limits.check(0, "facebook", ("a",), 0.0).throttle is None
    assert limits.check(1, "facebook", ("b",), 0.0).throttle is None
    assert limits.check(0, "facebook", ("a",), 1.0).throttle == "token"


@pytest.mark.looptime
async def test_hours_of_rolling_window_in_simulated_time():
    """Ten simulated hours against a 10-per-hour limit: the window decides every answer."""
    sim = Simulator(WorldSpec(now=NOW, seed=5, accounts=20), SimulatorSettings(calls_per_window=10, window_seconds=3600,
                                                                       latency_ms=50))
    transport = SimulatorTransport(sim)
    token = token_of(sim.world, "facebook")
    auth = {"Authorization": f"Bearer {token.token}"}
    url = f"https://graph.example/v25.0/{token.account_ids[0]}"
    loop = asyncio.get_running_loop()
    start = loop.time()

    burst = [(await transport.get(url, auth)).status for _ in range(12)]
    assert burst == [200] * 10 + [400, 400]
    await asyncio.sleep(start + 3600 + 60 - loop.time())     # every call of the burst has left the window
    steady = []
    for _ in range(100):                                      # one call per 360 s: 10 per window, never more
        steady.append((await transport.get(url, auth)).status)
        await asyncio.sleep(360)                              # plus latency: gaps of 360 s or more
    assert set(steady) == {200}
    extra = [(await transport.get(url, auth)).status, (await transport.get(url, auth)).status]
    assert extra == [200, 400]                                # 9 steady calls in the window, then 10, then 11

    assert loop.time() - start > 10 * 3600
    snap = sim.counters.snapshot()
    assert snap["calls_by_token"][str(token.index)] == 114
    assert snap["max_in_window"][str(token.index)] == 12
