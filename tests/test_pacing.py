"""Pacing after throttles, on simulated time (looptime): evidence that ages with its window, a lone
throttle that costs one call, and a waited-out one that still sees one probe call.

The whole harvests here run against a small fake Graph API of this file's own (:class:`FakeApi`, a
transport), independent of harvester's simulator: what is tested is how harvester reads the
answers, not how the simulator writes them."""

import asyncio
import random
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from harvester import Harvester
from harvester.config.load import parse_config
from harvester.graph.transport import Response

pytestmark = pytest.mark.looptime

TODAY = date(2026, 12, 1)
NOW = 1764547200.0                      # 2026-12-01T00:00:00Z
JSON = {"content-type": "application/json"}
APP_LIMIT = orjson.dumps({"error": {"message": "(#4) Application request limit reached",
                                    "type": "OAuthException", "code": 4, "fbtrace_id": "Afake"}})


class FakeApi:
    """A Graph API of a few lines: every account has no media, every insights call answers an empty
    list, after ``latency`` seconds; ``throttle(token, answer)`` makes that token's next insights
    call answer a throttle instead. Each call is logged as ``(time, token, path, query)``."""

    def __init__(self, latency: float = 0.1):
        self.latency = latency
        self.log: list[tuple[float, str, str, dict]] = []
        self.throttles: dict[str, list[Response]] = {}

    def throttle(self, token: str, answer: Response) -> None:
        self.throttles.setdefault(token, []).append(answer)

    async def get(self, url, headers):
        await asyncio.sleep(self.latency)
        parts = urlsplit(url)
        token = headers["Authorization"].removeprefix("Bearer ")
        self.log.append((asyncio.get_running_loop().time(), token, parts.path, parse_qs(parts.query)))
        path = parts.path.strip("/").split("/")[1:]              # after the version
        if path[-1] == "insights" and self.throttles.get(token):
            return self.throttles[token].pop(0)
        if len(path) == 1:
            return Response(200, JSON, orjson.dumps({"id": path[0], "username": f"user{path[0]}",
                                                     "followers_count": 1000, "media_count": 0}))
        return Response(200, JSON, orjson.dumps({"data": []}))

    async def close(self):
        return None

    def calls(self, token: str) -> list[float]:
        return [when for when, t, _, _ in self.log if t == token]


def app_throttle(usage: dict | None = None) -> Response:
    headers = dict(JSON)
    if usage is not None:
        headers["x-app-usage"] = orjson.dumps(usage).decode()
    return Response(400, headers, APP_LIMIT)


def config(tmp_path, tokens: int = 2, *, window: float = 60, calls: int = 200):
    raw = {"graph": {"base_url": "http://fake", "api_version": "v25.0"},
           "rate_limit": {"calls_per_window": calls, "window_seconds": window, "margin_seconds": 0},
           "window": {"since": str(TODAY - timedelta(days=3)), "until": str(TODAY)},
           "output": {"format": "jsonl", "path": str(tmp_path / "out")},
           "state": {"path": str(tmp_path / "state.sqlite")},
           "accounts": [{"id": str(1001 + i), "token_env": f"T{i}"} for i in range(tokens)]}
    env = {f"T{i}": f"token-{i}" for i in range(tokens)}
    return parse_config(raw, path="<test>", env=env, today=TODAY), env


async def harvest(tmp_path, api: FakeApi, **options):
    cfg, env = config(tmp_path, **options)
    async with Harvester(cfg, tokens=env, transport=api, now=NOW) as harvester:
        summary = await harvester.run()
    return summary, harvester.stats


# -- 21.3: evidence ages with its window; a capped wait is waited once ---------------------------

async def test_a_capped_app_throttle_is_waited_once_and_its_stale_usage_holds_nothing_back(tmp_path):
    """One answer of code 4 with every usage figure at 100 % and a wait of 10^9 minutes, every
    later answer normal and without usage headers: both tokens pause one window (the wait capped
    at it), then each finishes within a few round trips. Before, the 100 % figure kept lowering
    the throttled token's limit to what it had called before the throttle, for every window after."""
    api = FakeApi()
    api.throttle("token-0", app_throttle({"call_count": 100, "total_time": 100, "total_cputime": 100,
                                          "estimated_time_to_regain_access": 10**9}))
    summary, stats = await harvest(tmp_path, api)
    assert summary.exit_code == 0
    [throttled_at] = [when for when, token, path, _ in api.log
                      if token == "token-0" and path.endswith("/insights")][:1]
    for token in ("token-0", "token-1"):
        calls = api.calls(token)
        assert not [t for t in calls if throttled_at < t < throttled_at + 60]        # paused one window
        assert max(calls) < throttled_at + 60 + 2                                  # then a few round trips
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
    assert slot.limiter.limit == 10 and slot.depth == 1 and not slot.ramping
    now[0] = 59.9
    assert not slot.age(now[0]) and slot.limiter.limit == 10              # still the window it describes
    now[0] = 60.0
    assert slot.age(now[0])
    assert slot.usage_percent is None and slot.limiter.limit == 100 and slot.ramping
    assert slot.stale_at() is None and not slot.age(now[0])
