"""Pacing after throttles, on simulated time (looptime): evidence that ages with its window, a lone
throttle that costs one call, and a waited-out one that still sees one probe call.

The whole harvests here run against a small fake Graph API of this file's own (:class:`FakeApi`, a
transport), independent of harvester's simulator: what is tested is how harvester reads the
answers, not how the simulator writes them."""

import asyncio
import itertools
import random
from datetime import date, timedelta
from urllib.parse import urlsplit

import orjson
import pytest

from harvester import Harvester
from harvester.config.load import parse_config
from harvester.errors import GraphError
from harvester.graph.transport import Response

from support import NOW

pytestmark = pytest.mark.looptime

TODAY = date(2026, 12, 1)
JSON = {"content-type": "application/json"}
A, B = "EAAGsecret0", "EAAGsecret1"     # the tokens of the first two accounts (config's T0, T1)
MESSAGES = {4: "(#4) Application request limit reached", 17: "(#17) User request limit reached"}


class FakeApi:
    """A Graph API of a few lines: every account has no media, every insights call answers an empty
    list, after ``latency`` seconds, with ``X-App-Usage`` at ``usage`` percent when it is given.
    ``throttle(token, answer)`` makes that token's next insights call answer a throttle instead;
    ``throttling(token, since, until, answer)`` every call it starts in ``[since, until)``. Each
    call is logged as ``(started, token, path, status)``."""

    def __init__(self, latency: float = 0.1, usage: int | None = None):
        self.latency, self.usage = latency, usage
        self.log: list[tuple[float, str, str, int]] = []
        self.throttles: dict[str, list[Response]] = {}
        self.periods: dict[str, tuple[float, float, Response]] = {}

    def throttle(self, token: str, answer: Response) -> None:
        self.throttles.setdefault(token, []).append(answer)

    def throttling(self, token: str, since: float, until: float, answer: Response) -> None:
        self.periods[token] = (since, until, answer)

    async def get(self, url, headers):
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(self.latency)
        parts = urlsplit(url)
        token = headers["Authorization"].removeprefix("Bearer ")
        answer = self._answer(token, parts.path.strip("/").split("/")[1:], started)     # after the version
        self.log.append((started, token, parts.path, answer.status))
        return answer

    def _answer(self, token: str, path: list[str], started: float) -> Response:
        since, until, throttled = self.periods.get(token, (0.0, 0.0, None))
        if throttled is not None and since <= started < until:
            return throttled
        if path[-1] == "insights" and self.throttles.get(token):
            return self.throttles[token].pop(0)
        headers = dict(JSON)
        if self.usage is not None:
            headers["x-app-usage"] = orjson.dumps(usage(self.usage)).decode()
        if len(path) == 1:
            return Response(200, headers, orjson.dumps({"id": path[0], "username": f"user{path[0]}",
                                                        "followers_count": 1000, "media_count": 0}))
        return Response(200, headers, orjson.dumps({"data": []}))

    async def close(self):
        return None

    def calls(self, token: str) -> list[float]:
        return [started for started, t, _, _ in self.log if t == token]

    def throttled(self, token: str) -> list[float]:
        return [started for started, t, _, status in self.log if t == token and status == 400]


def usage(percent: int, regain_minutes: float = 0) -> dict:
    return {"call_count": percent, "total_time": percent, "total_cputime": percent,
            "estimated_time_to_regain_access": regain_minutes}


def throttle(code: int, usage: dict | None = None) -> Response:
    """A throttle answer as the API gives it: HTTP 400, the code's words, usage headers or none."""
    headers = dict(JSON)
    if usage is not None:
        headers["x-app-usage"] = orjson.dumps(usage).decode()
    body = {"error": {"message": MESSAGES[code], "type": "OAuthException", "code": code, "fbtrace_id": "Afake"}}
    return Response(400, headers, orjson.dumps(body))


def config(tmp_path, tokens: int = 2, *, window: float = 60, calls: int = 200):
    raw = {"graph": {"base_url": "http://fake", "api_version": "v25.0"},
           "rate_limit": {"calls_per_window": calls, "window_seconds": window, "margin_seconds": 0},
           "window": {"since": str(TODAY - timedelta(days=3)), "until": str(TODAY)},
           "output": {"format": "jsonl", "path": str(tmp_path / "out")},
           "state": {"path": str(tmp_path / "state.sqlite")},
           "accounts": [{"id": str(1001 + i), "token_env": f"T{i}"} for i in range(tokens)]}
    env = {f"T{i}": f"EAAGsecret{i}" for i in range(tokens)}      # A, B, ...
    return parse_config(raw, path="<test>", env=env, today=TODAY), env


async def harvest(tmp_path, api: FakeApi, **options):
    cfg, env = config(tmp_path, **options)
    async with Harvester.pinned(cfg, tokens=env, transport=api, now=NOW) as harvester:
        summary = await harvester.run()
    return summary, harvester.stats


async def makespan(tmp_path, api: FakeApi, **options) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    summary, _ = await harvest(tmp_path, api, **options)
    assert summary.exit_code == 0
    return loop.time() - started


# -- 21.3: evidence ages with its window; a capped wait is waited once ---------------------------

async def test_a_capped_app_throttle_is_waited_once_and_its_stale_usage_holds_nothing_back(tmp_path):
    """One answer of code 4 with every usage figure at 100 % and a wait of 10^9 minutes, every
    later answer normal and without usage headers: both tokens pause one window (the wait capped
    at it), then each finishes within a few round trips. Before, the 100 % figure kept lowering
    the throttled token's limit to what it had called before the throttle, for every window after."""
    api = FakeApi()
    api.throttle(A, throttle(4, usage(100, regain_minutes=10**9)))
    summary, stats = await harvest(tmp_path, api)
    assert summary.exit_code == 0
    [throttled_at] = api.throttled(A)
    for token in (A, B):
        calls = api.calls(token)
        assert not [t for t in calls if throttled_at < t < throttled_at + 60]        # paused one window
        assert max(calls) < throttled_at + 60 + 2                                 # then a few round trips
    assert stats.get("waits/capped") == 1 and stats.get("throttles/waited_out") == 1
    assert stats.get("wait/limit_seconds") == 0                # nothing waited on a limiter after the pause


def test_usage_evidence_is_forgotten_a_window_after_it_was_reported_with_what_it_did():
    from harvester.graph.wire import Usage
    from harvester.schedule.limiter import RollingWindowLimiter
    from harvester.schedule.slot import Slot

    now = [0.0]
    slot = Slot("a", RollingWindowLimiter(100, 60, clock=lambda: now[0]))
    for _ in range(10):
        slot.limiter.try_acquire()
    slot.observe(Usage(100), 0.0)
    assert slot.limiter.limit == 10 and slot.pace.depth == 1 and not slot.pace.ramping
    now[0] = 59.9
    assert not slot.pace.age(now[0]) and slot.limiter.limit == 10              # still the window it describes
    now[0] = 60.0
    assert slot.pace.age(now[0])
    assert slot.pace.usage_percent is None and slot.limiter.limit == 100 and slot.pace.ramping
    assert slot.pace.stale_at() is None and not slot.pace.age(now[0])


# -- 21.4: a lone throttle costs about one call; one with evidence is waited out; never a burst -----

async def test_a_lone_throttle_costs_its_call_a_short_retry_not_its_token_a_pause(tmp_path):
    """Usage reported at 5 %, one code 17 without an estimate: that call is retried within
    LONE_RETRY, the token keeps its pace (no pause, no probe, no cut), and the harvest ends about
    one call later than without it. Before, the token paused 2 s and its depth was halved."""
    from harvester.schedule.outcomes import LONE_RETRY

    clean = await makespan(tmp_path / "clean", FakeApi(usage=5))
    api = FakeApi(usage=5)
    api.throttle(A, throttle(17, usage(5)))
    blipped = await makespan(tmp_path / "blip", api)
    assert blipped <= clean + LONE_RETRY + 2 * api.latency
    [throttled_at] = api.throttled(A)
    retried = [t for t in api.calls(A) if t > throttled_at + api.latency]
    assert retried[0] < throttled_at + api.latency + LONE_RETRY                 # a short retry
    assert len(api.calls(A)) == len(api.calls(B)) + 1           # one call more, no more


@pytest.mark.parametrize("answer, pause", [
    (throttle(17, usage(95)), 60),                               # usage at the high mark: 60 s
    (throttle(17, usage(5, regain_minutes=0.5)), 30),           # the server's estimate
])
async def test_a_throttle_with_evidence_is_waited_out_then_one_probe_call(tmp_path, answer, pause):
    api = FakeApi(usage=5)
    api.throttle(A, answer)
    summary, stats = await harvest(tmp_path, api)
    assert summary.exit_code == 0 and stats.get("throttles/waited_out") == 1 and stats.get("throttles/lone") == 0
    [throttled_at] = api.throttled(A)
    after = [t for t in api.calls(A) if t > throttled_at]
    assert after[0] == pytest.approx(throttled_at + api.latency + pause)      # paused, once
    assert after[1] - after[0] >= api.latency - 1e-9                            # the probe alone, then the rest
    assert max(api.calls(B)) < 2                                        # code 17: that token only


async def test_a_real_throttle_far_from_spent_costs_the_calls_in_flight_and_is_never_answered_by_a_burst(tmp_path):
    """Every call of token A throttled for 100 s after its first answer, each throttle reporting
    usage at 5 % and no estimate (no evidence but the throttles themselves): the calls in flight
    when it began are throttled, the first two are lone ones, the third in a row is waited out
    (the window, 60 s); after that, one probe alone per pause until one is answered. Before, two
    more probes went out into the throttle, after 2 s and 4 s lone pauses."""
    api = FakeApi(usage=5)
    api.throttling(A, 0.05, 100.0, throttle(17, usage(5)))
    summary, stats = await harvest(tmp_path, api)
    assert summary.exit_code == 0
    first, *probes = sorted(set(api.throttled(A)))
    assert api.throttled(A).count(first) > 1                          # those in flight, at once
    assert stats.get("throttles/lone") == 2
    for before, probe in itertools.pairwise([first, *probes]):
        assert probe - before >= 60                                           # one call per pause
    later = sorted(t for t in api.calls(A) if t > first)
    answered = later[len(probes)]
    assert answered >= 100 and later[len(probes) + 1] - answered >= api.latency - 1e-9   # alone


# -- 22.4: a new process knows what its token already spent ----------------------------------------

@pytest.mark.parametrize("second", ["repeated", "resumed"])
async def test_two_runs_in_a_row_on_one_state_are_never_throttled(tmp_path, second):
    """Against the simulator's rolling window of 20 calls per 10 minutes, configured alike: the
    second run on the same state (a new run of the same work, or the first resumed after a stop)
    starts each token's window with the calls the first made, so neither is ever throttled.
    Before, the second started every window empty and its first calls were throttled."""
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec

    from support import world_config

    world = World(WorldSpec(seed=7, accounts=3, tokens=2, media_per_account=6, now=NOW))
    simulator = Simulator(world, SimulatorSettings(calls_per_window=20, window_seconds=600, latency_ms=50))
    transport = SimulatorTransport(simulator)
    cfg, env = world_config(world, tmp_path / "out", days=2, calls_per_window=20, window_seconds=600)
    summaries = []
    for run in range(2):
        harvester = Harvester.pinned(cfg, tokens=env, transport=transport, now=simulator.wall())
        async with harvester:
            task = asyncio.ensure_future(harvester.run())
            if run == 0 and second == "resumed":
                await asyncio.sleep(700)                     # into the second window, then Ctrl-C
                harvester.stop()
            summaries.append(await task)
        assert harvester.stats.get("throttles") == 0, run
        assert harvester.resumed is (run == 1 and second == "resumed")
    assert summaries[0].exit_code == 0 and summaries[1].exit_code == 0
    assert simulator.counters.snapshot()["throttled"] == 0
    assert simulator.counters.snapshot()["calls"] > 2 * 20 * 2              # more than a window per token


async def test_what_a_token_spent_is_kept_by_its_digest_never_the_token_and_only_while_it_counts(tmp_path):
    from harvester.run.harvester import token_key
    from harvester.state.spent import Spent
    from harvester.state.store import StateStore

    api = FakeApi(usage=5)
    api.throttle(B, throttle(17, usage(95)))             # waited out: paused until ~60 s
    await harvest(tmp_path, api, window=600)
    store = StateStore(tmp_path / "state.sqlite")
    keys = [token_key(A), token_key(B)]
    kept = store.spent.load([*keys, "token-unknown"], now=NOW + 1)
    assert set(kept) == set(keys)
    # on the wall clock: NOW as the harvest started (give or take the real time it took to start)
    assert sorted(kept[keys[0]].starts) == pytest.approx([NOW + t for t in sorted(api.calls(A))], abs=1)
    assert kept[keys[1]].paused_until == pytest.approx(NOW + api.throttled(B)[0] + api.latency + 60, abs=1)
    store.spent.save({"token-old": Spent((NOW - 700,), 0.0)}, window_seconds=600, now=NOW + 1)
    assert store.spent.load(["token-old"], now=NOW + 1) == {}                   # out of the window: dropped
    last = max(started for started, *_ in api.log)
    assert store.spent.load(keys, now=NOW + last + 600 + 1) == {}                # every start has left the window
    store.close()
    for path in tmp_path.glob("state.sqlite*"):
        assert A.encode() not in path.read_bytes() and B.encode() not in path.read_bytes()


class Call:
    """A scheduler job of token "a" whose attempts answer ``outcomes`` in turn (an exception is raised)."""

    def __init__(self, log: list, label: str, outcomes: list):
        self.key, self.priority, self.label, self.account_id = "a", 0, label, "acct-a"
        self.log, self.outcomes = log, outcomes

    async def __call__(self, flight=None):
        await asyncio.sleep(0.1)
        outcome = self.outcomes.pop(0)
        self.log.append((self.label, isinstance(outcome, GraphError)))
        if isinstance(outcome, GraphError):
            raise outcome
        return outcome


async def test_throttles_in_every_other_answer_are_no_blips_even_never_in_a_row():
    """Usage at 5 %, a throttle in every other answer: none comes in a row, but at the fourth
    throttles make a fifth of the token's recent answers and it is waited out."""
    from harvester.graph.wire import Usage
    from harvester.schedule.scheduler import Scheduler
    from harvester.summary import Stats

    stats, log = Stats(), []
    scheduler = Scheduler(1000, 3600, 10, 5, stats, on_give_up=lambda *_: None, on_token_dead=lambda *_: None,
                          per_token_in_flight=1, rng=random.Random(3))
    blip = GraphError(status=400, code=17, subcode=None, message="(#17) User request limit reached", usage=Usage(5))
    for i in range(8):
        scheduler.submit(Call(log, f"c{i}", [blip, Usage(5)] if i % 2 == 0 else [Usage(5)]))
    await scheduler.run()
    throttled = [i for i, (_, was) in enumerate(log) if was]
    assert len(throttled) == 4 and all(b - a > 1 for a, b in itertools.pairwise(throttled))   # never in a row
    assert stats.get("throttles/lone") == 3 and stats.get("throttles/waited_out") == 1
