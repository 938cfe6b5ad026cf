"""Faults: every kind, its exact answer over loopback and in memory, and reproducibility from the
seed whatever the order of requests."""

import asyncio
import random

import aiohttp
import orjson
import pytest

from harvester.errors import TransportError
from harvester.simulator.faults import BLIP_KINDS, DEFAULT_KINDS, FAULTS, HTML_503, THROTTLE_MESSAGES, Faults
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import WorldSpec

from support import NOW

SPEC = WorldSpec(now=NOW, seed=11, accounts=6)


def token_of(world):
    return next(t for t in world.tokens if not t.revoked)


def query_for(kind: str, seed: int, token_index: int, path: str = "/v25.0/me",
              kinds: tuple[str, ...] = DEFAULT_KINDS) -> dict[str, str]:
    """A query that the seed answers, on its first sight, with ``kind`` (found by asking a twin)."""
    twin = Faults(seed, share=1.0, kinds=kinds)
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
    assert {kind for kind in first.values() if kind} == set(DEFAULT_KINDS)


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


# -- throttle blips -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BLIP_KINDS)
async def test_throttle_blips_have_the_api_words_no_estimate_and_low_usage(simulator_transport, kind):
    transport = simulator_transport(SPEC, SimulatorSettings(faults=1.0, fault_kinds=BLIP_KINDS))
    world = transport.simulator.world
    token = next(t for t in world.tokens if not t.revoked and t.kind == "instagram")
    query = query_for(kind, SPEC.seed, token.index, kinds=BLIP_KINDS)
    url = "http://sim/v25.0/me?" + "&".join(f"{k}={v}" for k, v in query.items())
    reply = await transport.get(url, {"Authorization": f"Bearer {token.token}"})
    code = int(kind.removeprefix("throttle_"))
    error = orjson.loads(reply.body)["error"]
    assert reply.status == 400
    assert (error["code"], error["message"], error["type"]) == (code, THROTTLE_MESSAGES[code], "OAuthException")
    assert "error_subcode" not in error
    usage = orjson.loads(reply.headers["x-business-use-case-usage"])
    figures = [f for per_account in usage.values() for f in per_account]
    assert figures and all(f["call_count"] < 10 and f["estimated_time_to_regain_access"] == 0 for f in figures)
    assert transport.simulator.counters.snapshot()["faults"] == {kind: 1}


def test_fault_kinds_choose_what_is_drawn_and_the_default_is_unchanged():
    assert SimulatorSettings().fault_kinds == DEFAULT_KINDS == ("code_1", "code_2", "html_503", "truncated", "drop")
    requests = [(0, "/v25.0/me", {"n": str(n)}) for n in range(300)]
    assert decisions(Faults(5, 0.3), requests) == decisions(Faults(5, 0.3, kinds=DEFAULT_KINDS), requests)
    drawn = {k for k in decisions(Faults(5, 1.0, kinds=("throttle_4", "drop")), requests).values()}
    assert drawn == {"throttle_4", "drop"}
    assert set(BLIP_KINDS) <= set(FAULTS)
    with pytest.raises(ValueError, match="unknown fault kind 'nope'; choose from code_1"):
        Faults(5, 0.1, kinds=("nope",))


def test_simulate_rejects_unknown_fault_kinds_with_the_allowed_ones(capsys):
    from harvester.simulator.cli import main
    assert main(["--fault-kinds", "code_1,throttle_5"]) == 2
    err = capsys.readouterr().err
    assert "--fault-kinds: unknown fault kind 'throttle_5'; choose from" in err and "throttle_80002" in err
    assert main(["--fault-kinds", ","]) == 2
    assert "no fault kind given" in capsys.readouterr().err
