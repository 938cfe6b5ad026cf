"""Faults: every kind, its exact answer over loopback and in memory, and reproducibility from the
seed whatever the order of requests."""

import asyncio
import random

import aiohttp
import orjson
import pytest

from harvester.errors import TransportError
from harvester.simulator.faults import FAULTS, HTML_503, Faults
from harvester.simulator.server import Simulator, SimulatorSettings
from harvester.simulator.world import WorldSpec

SPEC = WorldSpec(seed=11, accounts=6)


def token_of(world):
    return next(t for t in world.tokens if not t.revoked)


def query_for(kind: str, seed: int, token_index: int, path: str = "/v25.0/me") -> dict[str, str]:
    """A query that the seed answers, on its first sight, with ``kind`` (found by asking a twin)."""
    twin = Faults(seed, share=1.0)
    for i in range(1000):
        query = {"probe": str(i)}
        if twin.decide(token_index, path, query).kind == kind:
            return query
    raise AssertionError(f"no request draws {kind}")


def decisions(faults: Faults, requests: list[tuple[int, str, dict]]) -> dict[str, str | None]:
    return {f"{i}{p}{q}": faults.decide(i, p, q).kind for i, p, q in requests}


def test_same_seed_same_faults_in_any_order():
    requests = [(i % 3, f"/v25.0/{n}/insights", {"metric": "reach", "n": str(n)}) for i in range(3) for n in range(200)]
    first = decisions(Faults(5, 0.3), requests)
    shuffled = requests[:]
    random.Random(1).shuffle(shuffled)
    assert decisions(Faults(5, 0.3), shuffled) == first
    assert decisions(Faults(6, 0.3), requests) != first
    faulted = sum(kind is not None for kind in first.values())
    assert 0.2 * len(first) < faulted < 0.4 * len(first)
    assert {kind for kind in first.values() if kind} == set(FAULTS)


def test_a_retry_draws_afresh_and_the_sequence_repeats():
    requests = [(0, "/v25.0/me", {"n": str(n)}) for n in range(50)]
    one, two = Faults(9, 0.5), Faults(9, 0.5)
    first_tries = [one.decide(*r).kind for r in requests]
    retries = [one.decide(*r).kind for r in requests]
    assert first_tries != retries                     # a retry is a new draw ...
    assert [two.decide(*r).kind for r in requests] == first_tries
    assert [two.decide(*r).kind for r in requests] == retries   # ... and the same one for the same seed
    assert any(a is not None and b is None for a, b in zip(first_tries, retries, strict=True))


def test_the_token_never_changes_the_draw():
    faults, twin = Faults(3, 0.5), Faults(3, 0.5)
    queries = [{"n": str(n)} for n in range(100)]
    with_token = [faults.decide(0, "/v25.0/me", {**q, "access_token": "secret"}).kind for q in queries]
    assert with_token == [twin.decide(0, "/v25.0/me", q).kind for q in queries]


def test_latency_is_seeded_exponential_around_the_mean():
    faults = Faults(4, 0.0, latency_ms=20)
    draws = [faults.decide(0, "/v25.0/me", {"n": str(n)}).latency for n in range(4000)]
    assert [Faults(4, 0.0, latency_ms=20).decide(0, "/v25.0/me", {"n": str(n)}).latency for n in range(5)] == draws[:5]
    assert 0.018 < sum(draws) / len(draws) < 0.022
    assert min(draws) >= 0 and max(draws) > 0.06      # a tail, as latencies have
    assert all(d.kind is None for d in [faults.decide(0, "/v25.0/me", {})])


async def get(session, server, token, query):
    return await session.get(server.url + "/v25.0/me", params=query, headers={"Authorization": f"Bearer {token.token}"})


@pytest.mark.parametrize("kind, status, code, subcode, message, transient", [
    ("code_1", 500, 1, 99, "An unknown error occurred", None),
    ("code_2", 500, 2, None, "An unexpected error has occurred. Please retry your request later.", True),
])
async def test_graph_error_faults_over_http(simulator_server, kind, status, code, subcode, message, transient):
    server = await simulator_server(SPEC, SimulatorSettings(faults=1.0))
    token = token_of(server.simulator.world)
    query = query_for(kind, SPEC.seed, token.index)
    async with aiohttp.ClientSession() as session, await get(session, server, token, query) as response:
        assert response.status == status
        error = orjson.loads(await response.read())["error"]
        assert "X-App-Usage" in response.headers or "X-Business-Use-Case-Usage" in response.headers
    assert (error["code"], error.get("error_subcode"), error["message"], error.get("is_transient")) == \
        (code, subcode, message, transient)
    assert error["type"] == "OAuthException"
    assert server.simulator.counters.snapshot()["faults"] == {kind: 1}


async def test_html_503_truncated_and_dropped_over_http(simulator_server):
    server = await simulator_server(SPEC, SimulatorSettings(faults=1.0))
    token = token_of(server.simulator.world)
    async with aiohttp.ClientSession() as session:
        async with await get(session, server, token, query_for("html_503", SPEC.seed, token.index)) as response:
            assert response.status == 503
            assert response.headers["Content-Type"].startswith("text/html")
            assert await response.read() == HTML_503
        async with await get(session, server, token, query_for("truncated", SPEC.seed, token.index)) as response:
            assert response.status == 200
            body = await response.read()
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)
    # aiohttp's client silently resends an idempotent request once after a disconnect (a fresh
    # draw, so mostly answered): look at the wire instead.
    probe = query_for("drop", SPEC.seed, token.index)["probe"]
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET /v25.0/me?probe={probe} HTTP/1.1\r\nHost: sim\r\n"
                 f"Authorization: Bearer {token.token}\r\n\r\n".encode())
    await writer.drain()
    assert await reader.read() == b""              # closed without a byte of answer
    writer.close()
    snap = server.simulator.counters.snapshot()
    assert snap["faults"] == {"html_503": 1, "truncated": 1, "drop": 1}
    assert snap["statuses"] == {"503": 1, "200": 1, "drop": 1}


async def test_truncated_body_is_a_prefix_of_the_real_answer(simulator_transport):
    transport = simulator_transport(SPEC, SimulatorSettings(faults=1.0))
    token = token_of(transport.simulator.world)
    query = query_for("truncated", SPEC.seed, token.index)
    url = "http://sim/v25.0/me?" + "&".join(f"{k}={v}" for k, v in query.items())
    cut = await transport.get(url, {"Authorization": f"Bearer {token.token}"})
    clean = Simulator(SPEC, SimulatorSettings(faults=0.0))
    whole = await clean.serve("GET", "/v25.0/me", query, {"Authorization": f"Bearer {token.token}"}, base_url="http://sim")
    assert cut.status == 200 and 0 < len(cut.body) < len(whole.body)
    assert whole.body.startswith(cut.body)


async def test_in_memory_drop_raises_transport_error_without_the_token(simulator_transport):
    transport = simulator_transport(SPEC, SimulatorSettings(faults=1.0))
    token = token_of(transport.simulator.world)
    query = query_for("drop", SPEC.seed, token.index)
    url = f"http://sim/v25.0/me?probe={query['probe']}&access_token={token.token}"
    with pytest.raises(TransportError) as caught:
        await transport.get(url, {})
    assert token.token not in str(caught.value) and token.token not in repr(caught.value)


async def test_no_faults_when_share_is_zero(simulator_transport):
    transport = simulator_transport(SPEC, SimulatorSettings(faults=0.0))
    token = token_of(transport.simulator.world)
    statuses = {(await transport.get(f"http://sim/v25.0/me?n={n}", {"Authorization": f"Bearer {token.token}"})).status
                for n in range(200)}
    assert statuses == {200}
    assert transport.simulator.counters.snapshot()["faults"] == {}
