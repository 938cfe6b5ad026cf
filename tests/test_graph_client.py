"""The Graph client over the real aiohttp transport (aioresponses, or a raw loopback socket for
bodies cut short): URLs, the Bearer header, follow(), error answers, usage, and no token anywhere."""

import asyncio
import gzip
import random
import traceback

import aiohttp
import orjson
import pytest
from aioresponses import aioresponses
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from harvester.errors import DecodeError, GraphError, HarvesterError, TransportError
from harvester.graph.aiohttp_transport import AiohttpTransport
from harvester.graph.client import GraphClient, Reply
from harvester.graph.policy import Action, decide
from harvester.graph.wire import Usage, decode_account, decode_insights, decode_media_page
from harvester.simulator.pipeline import SimulatorSettings
from harvester.simulator.world import WorldSpec

from support import NOW

TOKEN = "EAAGsecretTOKEN123xyz"
BASE = "https://graph.facebook.com"
INSIGHTS = {"metric": "reach,likes", "period": "day", "metric_type": "total_value", "since": "1790000000",
            "until": "1790086400"}
DATA = b'{"data": [{"name": "reach", "period": "day", "total_value": {"value": 5}}]}'


@pytest.fixture
async def transport():
    t = AiohttpTransport(limit=4, timeout=5)
    yield t
    await t.close()


class Recording:
    """Wraps the real transport to see the exact URL and headers the client hands it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    async def get(self, url, headers):
        self.calls.append((url, dict(headers)))
        return await self.inner.get(url, headers)

    async def close(self):
        await self.inner.close()


@pytest.fixture
def client(transport):
    return GraphClient(transport, BASE + "/", "v25.0")


class _StreamWriter:
    output_size = 0


class _MockResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates aiohttp 3.14's ``stream_writer`` argument: supply one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("stream_writer", _StreamWriter())
        super().__init__(*args, **kwargs)


class _Mocked(aioresponses):
    def add(self, *args, **kwargs):
        kwargs.setdefault("response_class", _MockResponse)
        super().add(*args, **kwargs)


@pytest.fixture
def mocked():
    with _Mocked() as m:
        yield m


def sent(mocked: aioresponses) -> list[tuple[str, dict]]:
    return [(str(url), call.kwargs.get("headers") or {}) for (_, url), calls in mocked.requests.items()
            for call in calls]


def error_body(code, message, subcode=None, **extra) -> bytes:
    error = {"message": message, "type": "OAuthException", "code": code, **extra, "fbtrace_id": "Fz54k3GZrio"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return orjson.dumps({"error": error})


def leaks(exc: BaseException, secret: str = TOKEN) -> list[str]:
    """Every text an exception exposes (str, repr, args, the whole cause/context chain, the
    formatted traceback) that contains the secret."""
    found, seen, link = [], set(), exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        texts = [str(link), repr(link), *map(repr, link.args), repr(vars(link)) if hasattr(link, "__dict__") else ""]
        found += [t for t in texts if secret in t]
        link = link.__cause__ or link.__context__
    found += [t for t in traceback.format_exception(exc) if secret in t]
    return found


async def test_get_builds_the_url_and_sends_the_token_only_in_the_header(transport, mocked):
    url = f"{BASE}/v25.0/1784/insights?metric=reach%2Clikes&period=day&metric_type=total_value" \
          f"&since=1790000000&until=1790086400"
    mocked.get(url, status=200, body=DATA, headers={"X-App-Usage": '{"call_count": 7}'})
    recording = Recording(transport)
    reply = await GraphClient(recording, BASE, "v25.0").get("1784/insights", INSIGHTS, TOKEN)
    assert reply == Reply(200, DATA, Usage(percent=7, regain_seconds=0.0, call_count=7))
    assert recording.calls == [(url, {"Authorization": f"Bearer {TOKEN}"})]
    [(sent_url, headers)] = sent(mocked)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in sent_url and "access_token" not in sent_url


def test_url_has_no_query_without_params(client):
    assert client.url("me", {}) == f"{BASE}/v25.0/me"
    assert client.url("/1784", {"fields": "id,username"}) == f"{BASE}/v25.0/1784?fields=id%2Cusername"


async def test_follow_strips_the_token_and_rehosts(transport, mocked):
    recording = Recording(transport)
    client = GraphClient(recording, "http://127.0.0.1:8411", "v25.0")
    nxt = (f"https://graph.facebook.com/v25.0/1784/media?access_token={TOKEN}&fields=id%2Cmedia_type"
           f"&limit=100&after=QVFIUmx1")
    expected = "http://127.0.0.1:8411/v25.0/1784/media?fields=id%2Cmedia_type&limit=100&after=QVFIUmx1"
    mocked.get(expected, status=200, body=b'{"data": []}')
    reply = await client.follow(nxt, TOKEN, path="1784/media")
    assert reply.body == b'{"data": []}'
    assert recording.calls == [(expected, {"Authorization": f"Bearer {TOKEN}"})]
    [(sent_url, headers)] = sent(mocked)
    assert TOKEN not in sent_url and headers["Authorization"] == f"Bearer {TOKEN}"


def test_rehost_keeps_a_base_path_prefix_and_drops_only_the_token(transport):
    client = GraphClient(transport, "https://proxy.internal/fb/", "v25.0")
    url = f"https://graph.instagram.com/v25.0/1/stories?limit=25&access_token={TOKEN}&after=a%3D%3D"
    assert client.rehost(url) == "https://proxy.internal/fb/v25.0/1/stories?limit=25&after=a%3D%3D"
    assert client.rehost(f"https://graph.facebook.com/v25.0/1/media?access_token={TOKEN}") == \
        "https://proxy.internal/fb/v25.0/1/media"


async def test_error_body_becomes_graph_error_with_every_field(client, mocked):
    body = error_body(100, "Invalid parameter", 2108006, is_transient=False,
                      error_user_title="Media posted before business account conversion",
                      error_data={"blame_field_specs": [[""]]})
    mocked.get(f"{BASE}/v25.0/18000000000000001/insights?metric=reach", status=400, body=body,
               headers={"X-Business-Use-Case-Usage": '{"1784":[{"type":"instagram","call_count":40,'
                                                     '"total_cputime":2,"total_time":3,'
                                                     '"estimated_time_to_regain_access":0}]}'})
    with pytest.raises(GraphError) as info:
        await client.get("18000000000000001/insights", {"metric": "reach"}, TOKEN)
    e = info.value
    assert (e.status, e.code, e.subcode, e.message, e.type, e.is_transient) == \
        (400, 100, 2108006, "Invalid parameter", "OAuthException", False)
    assert (e.user_title, e.fbtrace_id, e.usage) == ("Media posted before business account conversion",
                                                     "Fz54k3GZrio", Usage(40, 0.0, call_count=40))


async def test_error_data_as_a_json_string(client, mocked):
    body = error_body(2, "An unexpected error has occurred. Please retry your request later.",
                      is_transient=True, error_data='{"blame_field_specs": [["metric"]]}')
    mocked.get(f"{BASE}/v25.0/me", status=500, body=body)
    with pytest.raises(GraphError) as info:
        await client.get("me", {}, TOKEN)
    assert (info.value.status, info.value.code, info.value.is_transient) == (500, 2, True)


async def test_throttle_error_carries_regain_time(client, mocked):
    mocked.get(f"{BASE}/v25.0/me", status=400, body=error_body(80002, "(#80002) There have been too many calls"),
               headers={"X-Business-Use-Case-Usage": '{"1":[{"type":"instagram","call_count":100,'
                                                     '"estimated_time_to_regain_access":7}]}'})
    with pytest.raises(GraphError) as info:
        await client.get("me", {}, TOKEN)
    assert info.value.usage == Usage(percent=100, regain_seconds=420.0, call_count=100)


async def test_error_object_in_a_200_answer(client, mocked):
    mocked.get(f"{BASE}/v25.0/me", status=200, body=error_body(1, "An unknown error occurred", 99))
    with pytest.raises(GraphError) as info:
        await client.get("me", {}, TOKEN)
    assert (info.value.status, info.value.code, info.value.subcode) == (200, 1, 99)


HTML_503 = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
            b"<body><h1>Service Unavailable</h1></body></html>")


@pytest.mark.parametrize("status,body", [
    (503, HTML_503),
    (200, HTML_503),
    (502, b""),
    (200, b""),
    (200, b"   \n"),
    (400, error_body(190, "Error validating access token")[:30]),
    (500, b'{"message": "no error object"}'),
])
async def test_html_empty_and_truncated_answers_are_decode_errors(client, mocked, status, body):
    mocked.get(f"{BASE}/v25.0/me", status=status, body=body, content_type="text/html")
    with pytest.raises(DecodeError) as info:
        await client.get("me", {}, TOKEN)
    assert info.value.status == status


@pytest.mark.parametrize("exc", [
    aiohttp.ClientConnectionError("Cannot connect"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("Response payload is not completed"),
    TimeoutError(),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError(113, "No route to host"),
])
async def test_connection_errors_become_transport_errors(client, mocked, exc):
    mocked.get(f"{BASE}/v25.0/me?fields=id", exception=exc)
    with pytest.raises(TransportError) as info:
        await client.get("me", {"fields": "id"}, TOKEN)
    assert not isinstance(info.value, DecodeError)
    assert "graph.facebook.com/v25.0/me" in str(info.value) and "fields" not in str(info.value)
    assert info.value.__cause__ is exc


async def test_no_token_in_a_190_error_even_when_the_api_quotes_it(client, mocked):
    body = error_body(190, f"Malformed access token {TOKEN}", 467, error_user_title=f"Bad token {TOKEN}")
    mocked.get(f"{BASE}/v25.0/me", status=400, body=body)
    with pytest.raises(GraphError) as info:
        await client.get("me", {}, TOKEN)
    assert info.value.code == 190 and "[redacted]" in info.value.message
    assert leaks(info.value) == []


async def test_no_token_in_a_transport_failure_whose_library_error_quotes_headers_and_url(client, mocked):
    request_info = aiohttp.RequestInfo(URL(f"{BASE}/v25.0/me?access_token={TOKEN}"), "GET",
                                       CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {TOKEN}"})),
                                       URL(f"{BASE}/v25.0/me?access_token={TOKEN}"))
    failure = aiohttp.ClientResponseError(request_info, (), status=400, message=f"bad {TOKEN}")
    assert leaks(failure)  # the library's own error does hold the token
    mocked.get(f"{BASE}/v25.0/me", exception=failure)
    with pytest.raises(TransportError) as info:
        await client.get("me", {}, TOKEN)
    assert leaks(info.value) == []


async def test_no_token_when_following_a_url_that_embeds_it(client, mocked):
    mocked.get(f"{BASE}/v25.0/1/media?after=x", exception=aiohttp.ServerDisconnectedError())
    with pytest.raises(TransportError) as info:
        await client.follow(f"{BASE}/v25.0/1/media?access_token={TOKEN}&after=x", TOKEN, path="1/media")
    assert leaks(info.value) == []
    assert TOKEN not in repr(client) and TOKEN not in repr(client.transport)


async def raw_server(answer: bytes):
    """A loopback socket that answers every request with ``answer`` and closes."""
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_body_cut_short_on_the_wire_is_a_transport_error(transport):
    server, url = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 500\r\n\r\n" + DATA[:20])
    async with server:
        client = GraphClient(transport, url, "v25.0")
        with pytest.raises(TransportError) as info:
            await client.get("1784/insights", INSIGHTS, TOKEN)
    assert "cut short" in str(info.value) and leaks(info.value) == []


async def test_refused_connection_is_a_transport_error(transport):
    server, url = await raw_server(b"")
    server.close()
    await server.wait_closed()
    with pytest.raises(TransportError) as info:
        await GraphClient(transport, url, "v25.0").get("me", {}, TOKEN)
    assert "cannot connect" in str(info.value)


async def test_session_is_lazy_limited_and_closed(transport):
    server, url = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"X-App-Usage: not json\r\nContent-Length: %d\r\n\r\n" % len(DATA) + DATA)
    assert transport._session is None
    async with server:
        reply = await GraphClient(transport, url, "v25.0").get("me", {}, TOKEN)
    assert (reply.status, reply.body, reply.usage) == (200, DATA, None)
    session = transport._session
    assert session.connector.limit == 4
    await transport.close()
    assert session.closed and transport._session is None


async def test_an_encoded_url_goes_on_the_wire_as_it_is_and_anything_else_is_quoted(transport):
    """The client's URLs are encoded already and go as they are (yarl does not parse and quote
    them again); a URL with a space or a control character (from a ``paging.next``, say) is
    quoted, never sent raw into the request line."""
    lines: list[bytes] = []

    async def handle(reader, writer):
        lines.append((await reader.readline()).rstrip(b"\r\n"))
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(DATA) + DATA)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        await GraphClient(transport, base, "v25.0").get("1784/insights", {"metric": "reach,likes", "x": "a b"}, TOKEN)
        await transport.get(f"{base}/v25.0/1784/media?after=a b&x=%2C", {"Authorization": "Bearer t"})
        await transport.get(f"{base}/v25.0/1784/media?after=a\r\nX-Injected: 1", {"Authorization": "Bearer t"})
    assert lines == [b"GET /v25.0/1784/insights?metric=reach%2Clikes&x=a+b HTTP/1.1",
                     b"GET /v25.0/1784/media?after=a+b&x=, HTTP/1.1",       # yarl's quoting, as before
                     b"GET /v25.0/1784/media?after=aX-Injected:+1 HTTP/1.1"]   # no line break reaches the wire


# --- against the simulator over loopback ------------------------------------------------------

async def test_every_simulated_fault_is_a_retryable_harvester_error(simulator_server, transport):
    server = await simulator_server(WorldSpec(now=NOW, accounts=2), SimulatorSettings(faults=0.6, fault_seed=7))
    token = server.simulator.world.tokens[0]
    client = GraphClient(transport, server.url, "v25.0")
    kinds = set()
    for _ in range(40):
        try:
            reply = await client.get(token.account_ids[0], {"fields": "id,followers_count"}, token.token)
            node = decode_account(reply.body)  # a 200 body cut short fails here, as DecodeError
            kinds.add("ok")
            assert node.id == token.account_ids[0]
        except HarvesterError as exc:
            kinds.add(type(exc).__name__)
            assert decide(exc).action is Action.RETRY
            assert token.token not in f"{exc!s} {exc!r}"
    assert server.simulator.counters.snapshot()["calls"] == 40  # no call re-sent behind our back
    assert kinds == {"ok", "GraphError", "DecodeError", "TransportError"}


async def test_follow_walks_simulated_media_pages_without_the_token_in_any_url(simulator_server, transport):
    server = await simulator_server(WorldSpec(now=NOW, accounts=2))
    token = server.simulator.world.tokens[0]
    recording = Recording(transport)
    client = GraphClient(recording, server.url, "v25.0")
    reply = await client.get(f"{token.account_ids[0]}/media", {"fields": "id", "limit": "10"}, token.token)
    pages = [decode_media_page(reply.body)]
    while pages[-1].paging and pages[-1].paging.next and pages[-1].data and len(pages) < 50:
        pages.append(decode_media_page((await client.follow(pages[-1].paging.next, token.token,
                                                            path=f"{token.account_ids[0]}/media")).body))
    ids = [m.id for p in pages for m in p.data]
    assert len(ids) == len(set(ids)) > 0
    assert all(token.token not in url and "access_token" not in url for url, _ in recording.calls)


async def test_simulated_unknown_token_is_a_190_that_fails_the_token(simulator_server, transport):
    server = await simulator_server(WorldSpec(now=NOW, accounts=2))
    with pytest.raises(GraphError) as info:
        await GraphClient(transport, server.url, "v25.0").get("me", {}, TOKEN)
    assert info.value.code == 190 and decide(info.value).action is Action.FAIL_TOKEN
    assert leaks(info.value) == []


# --- ids into URLs, paging.next, body size (issue 10, point 7) --------------------------------

import tracemalloc  # noqa: E402

from aiohttp import web  # noqa: E402

from harvester.config import parse_config  # noqa: E402
from harvester.errors import ConfigError  # noqa: E402
from harvester.simulator.pipeline import Simulator  # noqa: E402
from harvester.simulator.transport import SimulatorTransport  # noqa: E402
from harvester.simulator.world import World  # noqa: E402


@pytest.mark.parametrize("path", ["../../me/accounts/insights", "123?access_token=x/insights", "9a" * 5000,
                                  "1784//insights", "1784/insights/../../me", "%2e%2e/insights", "١٢٣/insights"])
async def test_a_path_segment_that_is_no_graph_id_nor_edge_is_refused_before_any_call(client, mocked, path):
    with pytest.raises(DecodeError) as info:
        await client.get(path, {"metric": "reach"}, TOKEN)
    assert info.value.complete and "is neither a Graph id (digits) nor one of accounts, children" in str(info.value)
    assert len(str(info.value)) < 400 and sent(mocked) == []


def test_path_segments_are_quoted_and_known_edges_allowed(client):
    assert client.url("17841400000000001/media", {"limit": "1"}) == f"{BASE}/v25.0/17841400000000001/media?limit=1"
    assert client.url("me/accounts", {}) == f"{BASE}/v25.0/me/accounts"
    for edge in ("insights", "media", "stories", "children"):
        assert client.url(f"1/{edge}", {}) == f"{BASE}/v25.0/1/{edge}"


@pytest.mark.parametrize("nxt, leads", [
    (f"{BASE}/v25.0/me/accounts?after=x", "/v25.0/me/accounts"),
    (f"{BASE}/v25.0/1785/media?after=x", "/v25.0/1785/media"),
    (f"{BASE}/v25.0/1784/stories?after=x", "/v25.0/1784/stories"),
    (f"{BASE}/v25.0/1784/media/../../me?after=x", "/v25.0/1784/media/../../me"),
    (f"{BASE}/1784/media?after=x", "an unreadable path"),
])
async def test_follow_refuses_a_next_that_leaves_the_edge_it_pages(client, mocked, nxt, leads):
    with pytest.raises(DecodeError) as info:
        await client.follow(nxt, TOKEN, path="1784/media")
    assert str(info.value) == f"paging.next leads to {leads}, not /1784/media"
    assert info.value.complete and sent(mocked) == []


async def test_follow_through_a_base_path_prefix_checks_the_path_after_the_version(transport, mocked):
    client = GraphClient(transport, "https://proxy.internal/fb", "v25.0")
    mocked.get("https://proxy.internal/fb/v25.0/1784/media?after=x", status=200, body=b'{"data": []}', repeat=True)
    for nxt in ("https://graph.facebook.com/v25.0/1784/media?after=x",
                "https://proxy.internal/fb/v25.0/1784/media?after=x"):
        assert (await client.follow(nxt, TOKEN, path="1784/media")).body == b'{"data": []}'


async def web_server(handle) -> tuple[web.AppRunner, str]:
    """An aiohttp.web server on a free loopback port answering every GET with ``handle``."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


async def zeros_server(size: int, *, declared: bool):
    """An aiohttp.web server answering every GET with ``size`` zero bytes, streamed in 1 MiB
    chunks (with or without a Content-Length)."""
    chunk = bytes(1 << 20)

    async def handle(request):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = size
        await response.prepare(request)
        try:
            for _ in range(size // len(chunk)):
                await response.write(chunk)
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass
        return response

    return await web_server(handle)


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
async def test_a_300_mb_answer_fails_past_the_cap_without_being_held(declared):
    cap = 16 << 20
    runner, url = await zeros_server(300 << 20, declared=declared)
    transport = AiohttpTransport(limit=2, timeout=30, max_response_bytes=cap)
    client = GraphClient(transport, url, "v25.0", max_response_bytes=cap)
    try:
        tracemalloc.start()
        with pytest.raises(DecodeError) as info:
            await client.get("1784/insights", INSIGHTS, TOKEN)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await transport.close()
        await runner.cleanup()
    assert str(info.value) == "answer larger than 16 MiB ([graph] max_response_bytes)"
    assert info.value.complete and info.value.status == 200
    print(f"peak {peak / 2**20:.1f} MiB")
    assert peak < 2 * cap, f"peak {peak / 2**20:.1f} MiB"


async def test_a_small_gzip_body_that_inflates_past_the_cap_fails_without_being_held():
    """The cap counts the bytes as they inflate: a 64 kB gzip body with a Content-Length that
    inflates to 64 MiB fails at the cap, not after the whole of it is held."""
    cap = 1 << 20
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)

    async def handle(request):
        return web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    runner, url = await web_server(handle)
    transport = AiohttpTransport(limit=2, timeout=30, max_response_bytes=cap)
    try:
        tracemalloc.start()
        with pytest.raises(DecodeError) as info:
            await GraphClient(transport, url, "v25.0", max_response_bytes=cap).get("1784/insights", INSIGHTS, TOKEN)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await transport.close()
        await runner.cleanup()
    assert len(bomb) < cap and str(info.value) == "answer larger than 1 MiB ([graph] max_response_bytes)"
    assert peak < 16 * cap, f"peak {peak / 2**20:.1f} MiB"


async def test_the_client_caps_a_body_whatever_the_transport():
    world = World(WorldSpec(now=NOW, seed=7, accounts=1, media_per_account=20))
    simulator = Simulator(world, SimulatorSettings(hostile=("huge_body",)))
    simulator.hostile.huge_bytes = 4096
    client = GraphClient(SimulatorTransport(simulator), "http://simulator", "v25.0", max_response_bytes=2048)
    token = world.tokens[0]
    page = decode_media_page((await client.get(f"{token.account_ids[0]}/media", {"fields": "id"}, token.token)).body)
    outcomes = []
    for item in page.data:
        try:
            outcomes.append(len((await client.get(f"{item.id}/insights", {"metric": "reach"}, token.token)).body))
        except DecodeError as exc:
            outcomes.append(str(exc))
    assert "answer larger than 2 KiB ([graph] max_response_bytes)" in outcomes
    assert any(isinstance(o, int) for o in outcomes)


def graph_table(**graph) -> dict:
    return {"graph": graph, "window": {"days": 3},
            "accounts": [{"id": "17841400000000001", "token_env": "T"}]}


def test_max_response_bytes_defaults_to_64_mib_and_is_at_least_1_kib():
    assert parse_config(graph_table(), path="h.toml", env={"T": "x"}).graph.max_response_bytes == 64 << 20
    config = parse_config(graph_table(max_response_bytes=1024), path="h.toml", env={"T": "x"})
    assert config.graph.max_response_bytes == 1024
    for bad in (1023, 0, -1, "64MiB", 1.5e6, True):
        with pytest.raises(ConfigError) as info:
            parse_config(graph_table(max_response_bytes=bad), path="h.toml", env={"T": "x"})
        assert "[graph] max_response_bytes" in str(info.value)
        assert "a whole number of bytes >= 1024 (1 KiB)" in str(info.value)


async def test_no_token_in_an_error_object_after_32_bytes_of_a_200(client, mocked):
    body = orjson.dumps({"data": [], "paging": {"previous": f"{BASE}/v25.0/1784/insights"},
                         "error": {"message": f"Malformed access token {TOKEN}", "code": 190}})
    assert b'"error"' not in body[:32]
    mocked.get(f"{BASE}/v25.0/1784/insights?metric=reach", status=200, body=body)
    reply = await client.get("1784/insights", {"metric": "reach"}, TOKEN)
    with pytest.raises(GraphError) as info:
        decode_insights(reply.body)
    assert info.value.code == 190 and "[redacted]" in info.value.message
    assert leaks(info.value) == []


async def test_no_token_in_the_refusal_of_a_path_or_next_that_quotes_it(client, mocked):
    with pytest.raises(DecodeError) as info:
        await client.get(f"123?access_token={TOKEN}/insights", {}, TOKEN)
    assert leaks(info.value) == [] and "[redacted]" in str(info.value)
    with pytest.raises(DecodeError) as info:          # cut after the token's first characters
        await client.get("9" * 70 + f"?{TOKEN}/insights", {}, TOKEN)
    assert leaks(info.value) == [] and TOKEN[:5] not in str(info.value)
    with pytest.raises(DecodeError) as info:
        await client.follow(f"{BASE}/v25.0/{TOKEN}/media?after=x", TOKEN, path="1784/media")
    assert leaks(info.value) == [] and "[redacted]" in str(info.value)
    assert sent(mocked) == []


# --- a body its Content-Encoding does not decode ----------------------------------------------

async def bad_gzip_server():
    """An aiohttp.web server answering every GET 200 with a JSON body that says ``Content-Encoding:
    gzip`` but is not gzip; it counts the requests it answered."""
    answered: list[str] = []

    async def handle(request):
        answered.append(request.path)
        return web.Response(body=DATA, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    runner, url = await web_server(handle)
    return runner, url, answered


async def test_a_body_that_is_not_the_gzip_its_header_says_is_a_decode_error_naming_gzip(transport):
    runner, url, answered = await bad_gzip_server()
    try:
        with pytest.raises(DecodeError) as info:
            await GraphClient(transport, url, "v25.0").get("1784/insights", INSIGHTS, TOKEN)
    finally:
        await runner.cleanup()
    error = info.value
    assert str(error) == "the body cannot be decoded as gzip, the Content-Encoding its header names"
    assert (error.status, error.complete, answered) == (200, True, ["/v25.0/1784/insights"])
    assert leaks(error) == []
    decision = decide(error)
    assert decision.action is Action.RETRY and decision.attempts == 2
    assert decision.reason == ("unreadable answer (HTTP 200): the body cannot be decoded as gzip, "
                               "the Content-Encoding its header names")


class OneGet:
    """A scheduler job making one client GET (its failure is the scheduler's to decide)."""

    priority = 0
    key = label = account_id = "t"

    def __init__(self, client: GraphClient):
        self.client = client

    async def __call__(self, flight=None):
        await self.client.get("1784/insights", INSIGHTS, TOKEN, flight=flight)


async def test_a_unit_answered_with_bad_gzip_gives_up_after_one_retry_saying_so(transport):
    """Over a real socket, through the scheduler and the policy: the unit's final reason names the
    encoding (never "connection failed after 5 attempts"), after the one retry a whole answer of
    the wrong shape deserves."""
    from harvester.schedule.scheduler import Scheduler
    from harvester.summary import Stats

    runner, url, answered = await bad_gzip_server()
    given_up = []
    scheduler = Scheduler(1000, 3600, 4, 5, Stats(), on_give_up=lambda job, d: given_up.append(d),
                          on_token_dead=lambda key, d: None, backoff_base=0.001, rng=random.Random(3))
    scheduler.submit(OneGet(GraphClient(transport, url, "v25.0")))
    try:
        await scheduler.run()
    finally:
        await runner.cleanup()
    assert [d.reason for d in given_up] == ["unreadable answer (HTTP 200): the body cannot be decoded as gzip, "
                                           "the Content-Encoding its header names after 2 attempts"]
    assert len(answered) == 2 and scheduler.stats.get("retries") == 1
