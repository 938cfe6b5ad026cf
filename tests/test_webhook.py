"""The story_insights webhook receiver: verification, signatures before parsing, 413 without
reading, all-or-nothing deliveries, durable before 200, each story stored once (twice delivered,
10,000 at once, across a restart), published so that it replaces polled values, and every bad
input refused with the right status while the server keeps serving."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from harvester.config import Config, parse_config
from harvester.config.model import Output, WebhookSettings
from harvester.days import iso
from harvester.errors import ConfigError
from harvester.records import InsightRecord, natural_key
from harvester.simulator import webhooks as sim
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import factory
from harvester.sinks.manifest import current_records
from harvester.state.webhook import counters, delivered_stories
from harvester.webhook import payload
from harvester.webhook import settings as settings_mod
from harvester.webhook.app import make_app
from harvester.webhook.settings import Secrets
from harvester.webhook.signature import HEADER, sign, valid
from harvester.webhook.store import WebhookStore

from support import NOW, SINKS

SECRET = b"app-secret-for-tests"
VERIFY = "verify-me"
ACCOUNT = "17841400000000001"
STORY = "17910000000000001"


def raw_config(**tables) -> dict:
    """A config's TOML as parsed: the least a harvest needs, and ``tables``."""
    return {"window": {"days": 1}, "accounts": [{"id": ACCOUNT, "token_env": "UNUSED"}], **tables}


def config_of(**webhook) -> Config:
    return parse_config(raw_config(webhook={"verify_token_env": "V", **webhook}, app={"secret_env": "S"}),
                        path="c.toml", check_tokens=False)


def settings(**webhook) -> settings_mod.WebhookSettings:
    return settings_mod.of(config_of(**webhook))


def body_of(*changes: dict, account: str = ACCOUNT) -> bytes:
    return msgspec.json.encode({"object": "instagram", "entry": [
        {"id": account, "time": 1_700_000_000, "changes": list(changes)}]})


def story(media_id: str = STORY, **metrics) -> dict:
    return {"field": "story_insights", "value": {"media_id": media_id, **(metrics or {"reach": 17, "replies": 0})}}


def signed(body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    return {HEADER: sign(secret, body), "Content-Type": "application/json"}


_schemas = itertools.count()


class Receiver:
    """A receiver on loopback (aiohttp's test server) with its store, restartable; ``fmt`` is
    its ``[output] format`` (``out`` a directory, or ``out/insights.duckdb``)."""

    def __init__(self, tmp: Path, fmt: str = "jsonl", **webhook):
        self.output = Output(format=fmt, path=str(tmp / "out"), schema=f"webhook_{os.getpid()}_{next(_schemas)}")
        self.state = tmp / "state.sqlite"
        self.directory = tmp / "out"
        self.settings = settings(**webhook)
        self.client: TestClient | None = None

    async def start(self, sink=None) -> TestClient:
        """Serve (again); ``sink``: the store's sink opener, for a sink made to fail."""
        self.store = WebhookStore(self.output, self.state, publish_seconds=3600, **({"sink": sink} if sink else {}))
        app = make_app(self.settings, Secrets(SECRET, VERIFY), self.store)
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    def current(self) -> list[dict]:
        return list(factory.current_records(self.output, "insights"))


@pytest.fixture
async def receiver(tmp_path):
    r = Receiver(tmp_path)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture(params=SINKS)
async def any_receiver(tmp_path, request):
    """The receiver with each sink of :data:`SINKS`."""
    r = Receiver(tmp_path, request.param)
    await r.start()
    yield r
    await r.stop()


async def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with client.post("/webhook", data=body, headers=signed(body) if headers is None else headers) as r:
        return r.status, await r.text()


# --- signature ---------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body():
    body = b'{"a": 1}'
    assert sign(b"k", body) == "sha256=" + __import__("hmac").new(b"k", body, "sha256").hexdigest()
    assert valid(b"k", body, sign(b"k", body))
    assert valid(b"k", body, sign(b"k", body).upper().replace("SHA256=", "sha256="))
    assert not valid(b"k", body + b" ", sign(b"k", body))
    assert not valid(b"other", body, sign(b"k", body))
    assert not valid(b"k", body, None) and not valid(b"k", body, "") and not valid(b"k", body, "sha1=00")


# --- verification ------------------------------------------------------------------------


async def test_verification_echoes_the_challenge_only_for_the_verify_token(receiver):
    client = receiver.client
    ok = await client.get("/webhook", params={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                              "hub.verify_token": VERIFY})
    assert ok.status == 200 and await ok.text() == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
                   {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY},
                   {"hub.mode": "subscribe", "hub.verify_token": VERIFY}, {}):
        refused = await client.get("/webhook", params=params)
        assert refused.status == 403, params
        assert VERIFY not in await refused.text()


async def test_healthz(receiver):
    r = await receiver.client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"


# --- deliveries --------------------------------------------------------------------------


async def test_a_signed_delivery_is_stored_as_story_lifetime_records_and_published(any_receiver):
    receiver = any_receiver
    status, text = await post(receiver.client, body_of(story(reach=17, replies=0, taps_forward=12)))
    assert status == 200 and msgspec.json.decode(text) == {"stored": 1, "duplicates": 0, "records": 3}
    assert delivered_stories(receiver.store.tables.db, [STORY, "17910000000000002"]) == {STORY}
    await receiver.stop()                                     # closing publishes the segment
    got = {r["metric"]: r for r in receiver.current()}
    assert {m: r["value"] for m, r in got.items()} == {"reach": 17, "replies": 0, "taps_forward": 12}
    reach = got["reach"]
    assert (reach["object_type"], reach["media_product_type"], reach["period"], reach["source"],
            reach["account_id"]) == ("media", "STORY", "lifetime", "webhook", ACCOUNT)
    # the natural key of a polled story lifetime value: the same fact, however it arrived
    polled = InsightRecord(account_id=ACCOUNT, object_id=STORY, object_type="media", media_type="IMAGE",
                           media_product_type="STORY", metric="reach", period="lifetime", value=17)
    assert natural_key(reach) == natural_key(polled)


async def test_other_fields_and_entries_without_changes_are_acknowledged_counted_and_ignored(receiver):
    body = msgspec.json.encode({"object": "instagram", "entry": [
        {"id": ACCOUNT, "time": 1, "changes": [{"field": "comments", "value": {"id": "1", "text": "hi"}},
                                              {"field": "mentions", "value": {"media_id": "2"}}]},
        {"id": ACCOUNT, "time": 1, "messaging": [{"sender": {"id": "3"}}]}]})
    status, text = await post(receiver.client, body)
    assert status == 200 and msgspec.json.decode(text)["stored"] == 0
    assert receiver.store.counts["ignored/comments"] == 1
    assert receiver.store.counts["ignored/mentions"] == 1
    assert receiver.store.counts["ignored/(no changes)"] == 1
    await receiver.stop()
    assert receiver.current() == []


async def test_a_delivery_twice_is_stored_once_even_across_a_restart(any_receiver):
    receiver = any_receiver
    body = body_of(story(reach=5, replies=1))
    assert (await post(receiver.client, body))[0] == 200
    status, text = await post(receiver.client, body)
    assert status == 200 and msgspec.json.decode(text) == {"stored": 0, "duplicates": 1, "records": 0}
    await receiver.stop()
    client = await receiver.start()
    status, text = await post(client, body)
    assert status == 200 and msgspec.json.decode(text)["duplicates"] == 1
    await receiver.stop()
    assert sorted((r["metric"], r["value"]) for r in receiver.current()) == [("reach", 5), ("replies", 1)]
    assert counters_of(receiver)["stories/duplicate"] == 2


async def test_new_values_for_a_delivered_story_replace_the_old_ones(any_receiver):
    receiver = any_receiver
    assert (await post(receiver.client, body_of(story(reach=5))))[0] == 200
    assert (await post(receiver.client, body_of(story(reach=9))))[0] == 200    # added to a highlight, say
    await receiver.stop()
    assert [(r["metric"], r["value"]) for r in receiver.current()] == [("reach", 9)]


async def test_new_values_in_the_same_group_are_stored_after_the_old_ones(any_receiver):
    """Two deliveries of one story queued together: one commit cannot hold a key twice, so the
    second goes to the next commit (a file sink: the next segment) and its values win."""
    store = any_receiver.store
    old, new = (payload.parse(body_of(story(reach=n))).stories for n in (5, 9))
    first, second = await asyncio.gather(store.deliver(old), store.deliver(new))
    assert (first.stories, second.stories) == (1, 1)
    assert store.counts["stories/updated"] == 1
    await any_receiver.stop()
    assert [(r["metric"], r["value"]) for r in any_receiver.current()] == [("reach", 9)]


def counters_of(receiver: Receiver) -> dict[str, int]:
    from harvester.state.store import StateStore
    state = StateStore(receiver.state)
    try:
        return counters(state.db)
    finally:
        state.close()


# --- bad input: each refused with its status, nothing stored, the server keeps serving ------


async def assert_still_serving(receiver: Receiver, media_id: str = "17910000000000099") -> None:
    status, _ = await post(receiver.client, body_of(story(media_id, reach=7)))
    assert status == 200
    assert (await receiver.client.get("/healthz")).status == 200


BAD_SIGNATURES = {
    "missing": {"Content-Type": "application/json"},
    "wrong secret": signed(body_of(story()), b"another secret"),
    "over another body": signed(body_of(story(reach=999))),
    "not sha256": {HEADER: "sha1=" + "0" * 40},
    "garbage": {HEADER: "sha256=\u00e9\u00e9"},
}


@pytest.mark.parametrize("case", BAD_SIGNATURES)
async def test_a_wrong_or_missing_signature_is_403_and_nothing_is_stored(receiver, case):
    status, text = await post(receiver.client, body_of(story()), BAD_SIGNATURES[case])
    assert status == 403 and HEADER in text
    assert receiver.store.counts["refused/signature"] == 1
    await assert_still_serving(receiver)
    await receiver.stop()
    assert {r["object_id"] for r in receiver.current()} == {"17910000000000099"}


MALFORMED = {
    "not json": (b"{not json", "not a webhook delivery"),
    "not an object": (b'["entry"]', "expected a JSON object"),
    "a number": (b"42", "expected a JSON object"),
    "entry not a list": (b'{"object": "instagram", "entry": {}}', "not a webhook delivery"),
    "no entry": (b'{"object": "instagram"}', "not a webhook delivery"),
    "story id not an id": (body_of(story("story-1")),
                           'entry[0].changes[0].value.media_id = "story-1" is not a story id'),
    "story id a number": (body_of(story(17910000000000001)), "is not a story id"),  # type: ignore[arg-type]
    "no story id": (body_of({"field": "story_insights", "value": {"reach": 1}}), "media_id = null is not a story id"),
    "account id not an id": (body_of(story(), account="me"), 'entry[0].id = "me" is not an account id'),
    "value a string": (body_of(story(reach="17")), 'value.reach = "17" is not a number'),
    "value a bool": (body_of(story(reach=True)), "value.reach = true is not a number"),
    "value an object": (body_of(story(reach={"a": 1})), "value.reach = a dict is not a number"),
    "change value a list": (body_of({"field": "story_insights", "value": [1]}), "value = [1] is not an object"),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_delivery_is_400_with_what_is_wrong_and_nothing_is_stored(receiver, case):
    body, message = MALFORMED[case]
    status, text = await post(receiver.client, body)
    assert status == 400, text
    assert message in text
    await assert_still_serving(receiver)
    await receiver.stop()
    assert {r["object_id"] for r in receiver.current()} == {"17910000000000099"}


async def test_one_bad_change_refuses_the_whole_delivery(receiver):
    status, _ = await post(receiver.client, body_of(story("17910000000000005", reach=1), story(reach="x")))
    assert status == 400
    await receiver.stop()
    assert receiver.current() == []


async def test_a_100_mb_body_is_413_without_being_read(receiver):
    host, port = receiver.client.server.host, receiver.client.server.port
    size = 100 * 1024 * 1024
    head = (f"POST /webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{HEADER}: sha256=00\r\nContent-Length: {size}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head + b"{" * 65536)                       # a little of the body, never the rest
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    assert status_line.split()[1] == b"413"
    writer.close()
    assert receiver.store.counts["refused/too_large"] == 1
    await assert_still_serving(receiver)


async def test_a_chunked_body_past_the_limit_is_413_after_reading_only_the_limit(tmp_path):
    r = Receiver(tmp_path, max_body_bytes=64 * 1024)
    client = await r.start()
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(100 * 16):                          # 100 MB, 64 KiB at a time
            sent += 65536
            yield b" " * 65536

    try:
        async with client.post("/webhook", data=chunks(), headers={HEADER: "sha256=00"}) as response:
            status = response.status
    except Exception:                                      # the server closed while we were still sending
        status = 413
    assert status == 413 and sent < 100 * 1024 * 1024
    await assert_still_serving(r)
    await r.stop()


@pytest.mark.slow
async def test_10000_deliveries_at_once_are_each_stored_once(receiver):
    bodies = [body_of(story(f"1795{i:013d}", reach=i, replies=1)) for i in range(10_000)]
    bodies += bodies[:500]                                 # and 500 of them twice, concurrently
    results = await asyncio.gather(*(post(receiver.client, b) for b in bodies))
    assert {status for status, _ in results} == {200}
    assert sum(msgspec.json.decode(t)["stored"] for _, t in results) == 10_000
    await assert_still_serving(receiver)
    await receiver.stop()
    current = receiver.current()
    keys = [natural_key(r) for r in current]
    assert len(keys) == len(set(keys)) == 2 * 10_000 + 1


# --- durability --------------------------------------------------------------------------


async def test_records_written_but_not_recorded_are_cut_back_on_start(tmp_path, any_format):
    fmt = any_format
    """A receiver killed after writing (and fsyncing) a group but before its transaction never
    sent those 200s: on start a file sink's part is cut back, a database holds them already
    (committed: the redelivery upserts them over themselves), and the redelivery stores them once."""
    r = Receiver(tmp_path, fmt)
    client = await r.start()
    assert (await post(client, body_of(story("17910000000000001", reach=1))))[0] == 200
    store = r.store
    # what a kill between fsync and transaction leaves: bytes on disk the state does not know
    change = payload.parse(body_of(story("17910000000000002", reach=2))).stories[0]
    lost = payload.records(change, run_id=store.run_id, received_at=iso(time.time() - 60))
    store.sink.write("lost", lost)
    await store.sink.commit()
    segment = store.run_id
    store.abandon()                                        # "killed"
    await client.close()
    client = await r.start()                               # recovers and publishes the killed segment
    assert (await post(client, body_of(story("17910000000000002", reach=2))))[0] == 200
    await r.stop()
    got = sorted((x["object_id"], x["value"]) for x in r.current())
    assert got == [("17910000000000001", 1), ("17910000000000002", 2)]
    if fmt == "jsonl":
        assert not (r.directory / segment).exists() or any((r.directory / segment).rglob("part-*"))


def test_webhook_settings_are_a_table_of_the_config_checked_by_its_parser():
    with pytest.raises(ConfigError) as exc:
        parse_config(raw_config(webhook={"port": "80", "path": "webhook", "prot": 80}), path="c.toml",
                     check_tokens=False)
    text = "\n".join(exc.value.problems)
    assert "c.toml: [webhook] port" in text and "[webhook] path" in text
    assert '[webhook] has an unknown key "prot"' in text
    assert "allowed: host, port, path, verify_token_env, max_body_bytes, publish_seconds" in text
    assert "verify_token_env is missing" in text and "[app] secret_env is missing" in text
    # the defaults are the model's; no [webhook]: None, and the receiver says it is missing
    assert settings() == WebhookSettings(verify_token_env="V", host="127.0.0.1", port=8787, path="/webhook",
                                         max_body_bytes=1 << 20, publish_seconds=300.0)
    bare = parse_config(raw_config(), path="c.toml", check_tokens=False)
    assert bare.webhook is None
    with pytest.raises(ConfigError, match=r"c.toml: \[webhook\] is missing"):
        settings_mod.of(bare)


def test_validate_finds_a_typo_in_webhook_exit_2_with_the_allowed_keys(tmp_path, capsys, monkeypatch):
    from harvester.cli import main
    monkeypatch.setenv("UNUSED", "t")
    path = tmp_path / "c.toml"
    path.write_text(f'[window]\ndays = 1\n[[accounts]]\nid = "{ACCOUNT}"\ntoken_env = "UNUSED"\n'
                    '[webhook]\nverify_token_env = "V"\nmax_body_byte = 2048\n[app]\nsecret_env = "S"\n')
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert '[webhook] has an unknown key "max_body_byte"' in err and "allowed: host, port, path" in err, err
    assert "Traceback" not in err


def test_secrets_name_the_variable_never_the_value():
    with pytest.raises(ConfigError) as exc:
        settings_mod.secrets(config_of(), env={"S": "secret-value"})
    assert "c.toml: [webhook] verify_token_env = 'V'" in str(exc.value) and "secret-value" not in str(exc.value)
    assert "secret" not in repr(settings_mod.secrets(config_of(), env={"S": "s3", "V": "v3"})).lower().replace(
        "secrets(", "")


# --- the simulator's deliveries ------------------------------------------------------------


async def test_the_simulators_deliveries_end_up_stored_exactly_once_despite_hostile_requests(tmp_path, any_format):
    fmt = any_format
    world = World(WorldSpec(now=NOW, seed=3, accounts=6, media_per_account=2, stories_per_account=3))
    r = Receiver(tmp_path, fmt)
    client = await r.start()
    url = str(client.make_url("/webhook"))
    items = sim.deliveries(world, batch=2)
    sender = sim.Sender(url, SECRET, concurrency=8, backoff=sim.Backoff(first=0.01, attempts=3))
    results = await sender.send(items, hostile=sim.HOSTILE_KINDS, oversized_bytes=2 << 20, seed=5)
    assert all(a.delivered for a in results)
    statuses = {kind: {s for k, s in sender.hostile if k == kind} for kind in sim.HOSTILE_KINDS}
    assert statuses["malformed"] == {400} and statuses["oversized"] == {413}
    assert statuses["bad_signature"] <= {403} and statuses["replay"] <= {200}
    await r.stop()
    truth = sim.expected(world)
    got = {natural_key(x): x["value"] for x in r.current()}
    assert len(r.current()) == len(got) == len(truth) > 0
    assert got == truth


# --- with the harvest ----------------------------------------------------------------------


def story_world() -> World:
    return World(WorldSpec(now=NOW, seed=5, accounts=3, media_per_account=2, stories_per_account=3, few_viewers=0.0))


async def deliver_stories(config, world: World, accounts) -> set[str]:
    """The simulator's deliveries of these accounts' stories, stored by a receiver of ``config``."""
    changes = [c for d in sim.deliveries(world, accounts=accounts) for c in payload.parse(d.body).stories]
    async with WebhookStore(config.output.path, config.state.path) as store:
        await store.deliver(changes)
    return {c.media_id for c in changes}


async def harvest(config, env, world: World):
    from harvester import Harvester
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    return harvester


async def test_a_harvest_does_not_ask_again_for_stories_the_webhook_delivered(tmp_path):
    from support import run_records, world_config
    world = story_world()
    config, env = world_config(world, tmp_path / "out")
    delivered = await deliver_stories(config, world, accounts=[0])
    assert delivered
    harvester = await harvest(config, env, world)
    assert harvester.stats.get("media/webhook_delivered") == len(delivered)
    polled = {r["object_id"] for r in run_records(tmp_path / "out", harvester.run_id)}
    assert not polled & delivered
    assert {s.id for i in (1, 2) for s in world.live_stories(world.account(i)) if s.viewers >= 5} <= polled
    current = list(current_records(tmp_path / "out", "insights"))
    keys = [natural_key(r) for r in current]
    assert len(keys) == len(set(keys))
    assert {r["source"] for r in current if r["object_id"] in delivered} == {"webhook"}


async def test_a_story_seen_by_a_harvest_and_by_the_webhook_is_stored_once(tmp_path):
    from harvester.commands.status import render
    from harvester.state.store import StateStore

    from support import world_config
    world = story_world()
    config, env = world_config(world, tmp_path / "out")
    await harvest(config, env, world)                       # polls the live stories
    delivered = await deliver_stories(config, world, accounts=[0, 1, 2])   # then they expire
    current = list(current_records(tmp_path / "out", "insights"))
    keys = [natural_key(r) for r in current]
    assert len(keys) == len(set(keys))
    by_key = {natural_key(r): r for r in current}
    for key, value in sim.expected(world).items():
        assert by_key[key]["value"] == value and by_key[key]["source"] == "webhook"
    # the stories' breakdown values (navigation by action type) only a poll reads: kept
    assert any(r["object_id"] in delivered and r["dimension_keys"] for r in current)
    state = StateStore(config.state.path)
    try:
        text = render(state)
    finally:
        state.close()
    assert f"stories captured: {len(delivered)} by the webhook, " in text
    assert f"{len(delivered)} by both" in text


@pytest.mark.parametrize("fmt", SINKS)
async def test_webhook_app_mounts_in_a_service_that_harvests_into_the_same_output(tmp_path, fmt):
    """Inside the process that harvests, the receiver and the harvest share the sink's output
    (for DuckDB: the one file, which only one process may open)."""
    from aiohttp import web

    from harvester import Harvester
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport

    from support import world_config
    world = story_world()
    config, env = world_config(world, tmp_path / "out", webhook={"verify_token_env": "V", "path": "/ig"},
                               app={"secret_env": "S"})
    config = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, format=fmt))
    transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
    later = "17910000000000002"
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        service = web.Application()
        service.add_subapp("/hooks", harvester.webhook_app(env={"S": SECRET.decode(), "V": VERIFY}))
        client = TestClient(TestServer(service))
        await client.start_server()
        try:
            for media_id in (STORY, later):
                body = body_of(story(media_id))
                async with client.post("/hooks/ig", data=body, headers=signed(body)) as r:
                    assert r.status == 200, await r.text()
                if media_id == STORY:
                    assert (await harvester.run()).exit_code == 0     # the harvest writes meanwhile
        finally:
            await client.close()
    current = list(factory.current_records(config.output, "insights"))
    keys = [natural_key(r) for r in current]
    assert len(keys) == len(set(keys))
    assert {r["object_id"] for r in current if r["source"] == "webhook"} == {STORY, later}
    assert sum(r["source"] is None for r in current) > 0                  # and the harvest's records


async def test_a_sink_that_fails_makes_a_503_and_the_restarted_receiver_stores_the_redelivery_once(tmp_path):
    from harvester.sinks.jsonl import JsonlSink

    class Failing(JsonlSink):
        fail = True

        async def commit(self):
            if Failing.fail:
                self.spill_all()
                raise OSError(28, "No space left on device")
            return await super().commit()

        def spill_all(self) -> None:                       # the bytes reach the file, the commit does not
            for parts in self._streams.values():
                parts.spill()

    r = Receiver(tmp_path)
    await r.start(sink=lambda out, run: Failing(r.directory / run))
    body = body_of(story(reach=3))
    status, text = await post(r.client, body)
    assert status == 503 and "No space left on device" in text
    assert (await r.client.get("/healthz")).status == 503
    assert (await post(r.client, body_of(story("17910000000000002"))))[0] == 503
    await r.stop()
    Failing.fail = False
    client = await r.start()                                 # recovers: the unacknowledged bytes are cut off
    assert (await post(client, body))[0] == 200              # Meta's redelivery
    await r.stop()
    assert [(x["object_id"], x["metric"], x["value"]) for x in r.current()] == [(STORY, "reach", 3)]


async def test_a_failed_database_transaction_refuses_its_group_only_and_the_redelivery_is_stored_once(tmp_path):
    """DuckDB rolls a failed group back (a harvest in the same process upserting the same key
    conflicts with it, say): that delivery is a 503, Meta sends it again, and the receiver goes
    on serving without a restart."""
    import duckdb

    from harvester.sinks.duckdb import DuckdbSink
    from harvester.sinks.factory import database_file

    class Conflicting(DuckdbSink):
        fail = True

        def _upsert(self, batches):
            if Conflicting.fail:
                Conflicting.fail = False
                raise duckdb.TransactionException("TransactionContext Error: Conflict on update!")
            return super()._upsert(batches)

    r = Receiver(tmp_path, "duckdb")
    await r.start(sink=lambda out, run: Conflicting(database_file(out), run))
    body = body_of(story(reach=3))
    status, text = await post(r.client, body)
    assert status == 503 and "Conflict on update" in text
    assert (await r.client.get("/healthz")).status == 200
    assert (await post(r.client, body_of(story("17910000000000002", reach=4))))[0] == 200
    status, text = await post(r.client, body)                  # Meta's redelivery
    assert status == 200 and msgspec.json.decode(text)["stored"] == 1
    assert r.store.counts["groups/failed"] == 1
    await r.stop()
    assert sorted((x["object_id"], x["value"]) for x in r.current()) == [(STORY, 3), ("17910000000000002", 4)]


async def test_one_json_log_line_per_delivery_never_a_secret_or_signature(receiver, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="harvester.webhook")
    body = body_of(story(reach=4))
    headers = signed(body)
    assert (await post(receiver.client, body, headers))[0] == 200
    assert (await post(receiver.client, body, signed(body, b"wrong")))[0] == 403
    lines = log_lines(caplog)
    assert [line["status"] for line in lines] == [200, 403]
    ok = lines[0]
    assert ok["accounts"] == [ACCOUNT] and ok["media"] == [STORY] and ok["metrics"] == ["reach"]
    assert ok["stored"] == 1 and ok["latency_ms"] >= 0
    text = caplog.text
    assert SECRET.decode() not in text and headers[HEADER] not in text and VERIFY not in text
    assert sign(b"wrong", body) not in text


def log_lines(caplog) -> list[dict]:
    """The receiver's JSON lines (a record may hold the lines of a group commit, one each)."""
    return [msgspec.json.decode(line) for r in caplog.records if r.name == "harvester.webhook"
            for line in r.getMessage().splitlines()]


async def test_concurrent_deliveries_log_a_line_each(receiver, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="harvester.webhook")
    ids = [f"179100000000001{i:02d}" for i in range(40)]
    results = await asyncio.gather(*(post(receiver.client, body_of(story(m))) for m in ids))
    assert {status for status, _ in results} == {200}
    delivered = [line for line in log_lines(caplog) if line["event"] == "delivery"]
    assert sorted(m for line in delivered for m in line["media"]) == ids
    assert all(line["status"] == 200 and line["stored"] == 1 for line in delivered)
