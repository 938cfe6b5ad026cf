"""The simulator over real loopback sockets: token errors, usage headers, counters and the
introspection endpoints; and the same pipeline through the in-memory transport."""

import asyncio
import time

import aiohttp
import orjson
import pytest

from harvester.errors import TransportError
from harvester.simulator.counters import Counters
from harvester.simulator.pipeline import Simulator, SimulatorSettings, pacific
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import WorldSpec

from support import NOW

SPEC = WorldSpec(now=NOW, seed=21, accounts=20, revoked_tokens=1, expiring_tokens=((0, 3),))


def live(world, kind=None):
    return [t for t in world.tokens if not t.revoked and t.expires_after_calls is None and kind in (None, t.kind)]


async def fetch(session, url, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, params=params, headers=headers) as response:
        return response.status, dict(response.headers), orjson.loads(await response.read())


def untraced(body: bytes):
    """The body, minus the error's fbtrace_id (which may be random per answer)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data["error"].pop("fbtrace_id", None)
    return data


def assert_error(status_body, status, code, subcode, message):
    got_status, _, body = status_body
    error = body["error"]
    assert (got_status, error["code"], error.get("error_subcode"), error["message"], error["type"]) == \
        (status, code, subcode, message, "OAuthException")


async def test_token_errors_have_the_graph_api_bodies(simulator_server):
    server = await simulator_server(SPEC)
    world = server.simulator.world
    me = server.url + "/v25.0/me"
    revoked = next(t for t in world.tokens if t.revoked)
    expiring = world.tokens[0]
    async with aiohttp.ClientSession() as session:
        assert_error(await fetch(session, me), 400, 190, None,
                     "An active access token must be used to query information about the current user.")
        assert_error(await fetch(session, me, "EAAnot-a-token"), 400, 190, None,
                     "Invalid OAuth access token - Cannot parse access token")
        assert_error(await fetch(session, me, revoked.token), 400, 190, 460,
                     "Error validating access token: The session has been invalidated because the user changed "
                     "their password or Facebook has changed the session for security reasons.")
        answers = [await fetch(session, me, expiring.token) for _ in range(5)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 400, 400]
    now = world.now
    assert_error(answers[3], 400, 190, 463, f"Error validating access token: Session has expired on "
                 f"{pacific(now - now % 3600)}. The current time is {pacific(now)}.")
    snap = server.simulator.counters.snapshot()
    assert snap["token_errors"] == {"missing": 1, "unknown": 1, "revoked": 1, "expired": 2}
    assert snap["calls"] == 8 and snap["calls_by_token"][str(expiring.index)] == 5


def test_pacific_times_read_like_the_graph_api():
    assert pacific(1_790_000_000) == "Monday, 21-Sep-26 07:13:20 PDT"  # 14:13:20 UTC
    assert pacific(1_800_000_000) == "Friday, 15-Jan-27 00:00:00 PST"  # 08:00 UTC


async def test_token_in_query_or_header_and_usage_headers(simulator_server):
    server = await simulator_server(SPEC, SimulatorSettings(calls_per_window=4))
    world = server.simulator.world
    facebook, instagram = live(world, "facebook")[0], live(world, "instagram")[0]
    async with aiohttp.ClientSession() as session:
        status, headers, _ = await fetch(session, server.url + "/v25.0/me", access_token=facebook.token)
        assert status == 200
        assert orjson.loads(headers["X-App-Usage"]) == {"call_count": 25, "total_time": 12, "total_cputime": 12}
        assert "X-Business-Use-Case-Usage" not in headers
        status, headers, _ = await fetch(session, server.url + "/v25.0/me", instagram.token)
        assert status == 200 and "X-App-Usage" not in headers
        usage = orjson.loads(headers["X-Business-Use-Case-Usage"])
        assert set(usage) == set(instagram.account_ids)
        assert usage[instagram.account_ids[0]][0]["call_count"] == 25


async def test_counters_and_introspection_endpoints(simulator_server):
    server = await simulator_server(SPEC, SimulatorSettings(calls_per_window=3, window_seconds=3600))
    world = server.simulator.world
    token = live(world, "facebook")[0]
    account = token.account_ids[0]
    paths = [f"/v25.0/{account}", f"/v25.0/{account}/media", f"/v25.0/{account}/insights",
             f"/v25.0/{account}/stories", "/v25.0/me/accounts"]
    async with aiohttp.ClientSession() as session:
        for path in paths:
            await fetch(session, server.url + path, token.token)
        async with session.get(server.url + "/__simulator__/counters") as response:
            counters = orjson.loads(await response.read())
        async with session.get(server.url + "/__simulator__/world") as response:
            world_json = orjson.loads(await response.read())
        async with session.get(server.url + "/__simulator__/nothing") as response:
            assert response.status == 404
    assert counters == server.simulator.counters.snapshot()
    assert counters["calls"] == 5 and counters["calls_by_token"] == {str(token.index): 5}
    assert counters["endpoints"] == {"account": 1, "media": 1, "insights/account": 1, "stories": 1, "accounts": 1}
    assert counters["throttled"] == 2 and counters["max_in_window"] == {str(token.index): 5}
    assert sum(counters["statuses"].values()) == 5
    assert token.token not in orjson.dumps(counters).decode()
    assert world_json == world.to_json(server.url)


def test_endpoint_names():
    counters = Counters(["17841400000000001"])
    names = {path: counters.endpoint(path) for path in [
        "/v25.0/me", "/v25.0/me/accounts", "/v25.0/17841400000000001", "/v25.0/17841400000000001/insights",
        "/v25.0/17890000000000042/insights", "/v25.0/17890000000000042", "/v25.0/17890000000000042/children",
        "/v25.0/17841400000000001/media", "/v25.0/17841400000000001/stories", "/v25.0/abc", "/"]}
    assert list(names.values()) == ["me", "accounts", "account", "insights/account", "insights/media", "node",
                                    "children", "media", "stories", "other", "root"]


async def test_max_in_window_is_exact_under_a_fake_clock():
    times = iter([0, 10, 20, 3599, 3600, 3601, 3610, 3620, 9000])
    now = {"t": 0.0}
    sim = Simulator(SPEC, SimulatorSettings(calls_per_window=100, window_seconds=3600), clock=lambda: now["t"])
    token = live(sim.world)[0]
    for t in times:
        now["t"] = float(t)
        await sim.serve("GET", "/v25.0/me", {}, {"Authorization": f"Bearer {token.token}"})
    # (20, 3620] holds 3599, 3600, 3601, 3610, 3620; no window of 3600 s holds more than 5 calls
    assert sim.counters.snapshot()["max_in_window"] == {str(token.index): 5}


async def test_transport_and_app_share_the_pipeline(simulator_server):
    """Same seed, same requests: the same answers over HTTP and in memory (drops aside: aiohttp's
    client re-sends a dropped GET, which the simulator treats as a retry, a fresh draw)."""
    server = await simulator_server(SPEC, SimulatorSettings(faults=0.3))
    twin = Simulator(SPEC, SimulatorSettings(faults=0.3))
    transport = SimulatorTransport(twin)
    token = live(server.simulator.world)[0]
    headers = {"Authorization": f"Bearer {token.token}"}
    compared = 0
    async with aiohttp.ClientSession() as session:
        for n in range(60):
            url = f"{server.url}/v25.0/me?n={n}"
            try:
                in_memory = await transport.get(url, headers)
            except TransportError:
                continue
            async with session.get(url, headers=headers) as response:
                served = (response.status, untraced(await response.read()))
                assert served == (in_memory.status, untraced(in_memory.body))
            compared += 1
    assert compared > 40
    assert {k: v for k, v in twin.counters.snapshot()["faults"].items() if k != "drop"} == \
        {k: v for k, v in server.simulator.counters.snapshot()["faults"].items() if k != "drop"}
    await transport.close()
    with pytest.raises(TransportError):
        await transport.get(url, headers)


async def test_non_get_is_refused(simulator_server):
    server = await simulator_server(SPEC)
    token = live(server.simulator.world)[0]
    headers = {"Authorization": f"Bearer {token.token}"}
    async with aiohttp.ClientSession() as session, session.post(server.url + "/v25.0/me", headers=headers) as r:
        assert r.status == 400
        assert orjson.loads(await r.read())["error"]["code"] == 100


@pytest.mark.slow
async def test_loopback_requests_per_second(simulator_server):
    """Throughput on loopback, printed (never asserted: tests assert behaviour, not speed)."""
    server = await simulator_server(WorldSpec(now=NOW, seed=2, accounts=20), SimulatorSettings(calls_per_window=10**9))
    token = live(server.simulator.world)[0]
    url = f"{server.url}/v25.0/{token.account_ids[0]}"
    headers = {"Authorization": f"Bearer {token.token}"}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker(n: int) -> list[int]:
            statuses = []
            for _ in range(n):
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)
            return statuses
        started = time.perf_counter()
        results = await asyncio.gather(*(worker(100) for _ in range(16)))
        elapsed = time.perf_counter() - started
    statuses = [s for r in results for s in r]
    assert statuses == [200] * 1600
    print(f"\nsimulator on loopback: {len(statuses) / elapsed:,.0f} requests/s (16 workers, 1,600 GETs)")
