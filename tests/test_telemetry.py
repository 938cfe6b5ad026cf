"""Prometheus metrics pushed to a real Pushgateway, served by the receiver, and JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import time
from contextlib import asynccontextmanager

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

pytest.importorskip("prometheus_client")

from present import pin
from prometheus_client.parser import text_string_to_metric_families
from pushgateway import Pushgateway, value

from harvester import cli
from harvester.config import parse_config
from harvester.config.model import Output
from harvester.config.shards import Shard
from harvester.simulator.pipeline import SimulatorSettings
from harvester.simulator.world import World, WorldSpec
from harvester.telemetry import logs
from harvester.webhook.app import make_app
from harvester.webhook.settings import Secrets
from harvester.webhook.settings import of as settings_of
from harvester.webhook.signature import HEADER, sign
from harvester.webhook.store import WebhookStore

from support import NOW, config_toml, world_config

SECRET = b"app-secret-for-tests"
ACCOUNT = "17841400000000001"


@pytest.fixture
async def gateway():
    gw = await Pushgateway().start()
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def text_logs():
    yield
    logs.configure("text")
    logs.CONTEXT.fields.clear()


async def harvest(tmp_path, server, world, env_monkeypatch, shard: Shard | None = None, **telemetry):
    out = tmp_path / "out"
    config, env = world_config(world, out, base_url=server.url, calls_per_window=10**6, telemetry=telemetry)
    for name, token in env.items():
        env_monkeypatch.setenv(name, token)
    pin(world.now, env_monkeypatch.setattr)         # the CLI's clock at the world's present
    code = await cli._run(cli._sharded(config, shard), shard=shard)
    runs = [p for p in (out if shard is None else out / shard.name).iterdir() if (p / "summary.json").exists()]
    (run,) = runs
    return code, orjson.loads((run / "summary.json").read_bytes())


async def test_a_run_pushes_what_its_summary_says(tmp_path, simulator_server, gateway, monkeypatch):
    world = World(WorldSpec(seed=3, accounts=3, media_per_account=8, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    real_clock = time.time            # the metrics' clock (bound at import): present.pin does not move it
    started = real_clock()
    code, summary = await harvest(tmp_path, server, world, monkeypatch, pushgateway=gateway.url, push_seconds=1)
    finished = real_clock()
    samples = await gateway.samples()
    group = {"job": "harvester", "shard": "all"}
    counters = summary["counters"]
    assert code == summary["exit_code"] == 0
    assert value(samples, "harvester_run_exit_code", **group) == 0
    assert value(samples, "harvester_calls_total", outcome="ok", **group) == counters["calls/ok"] > 0
    assert value(samples, "harvester_calls_total", outcome="error", **group) == (
        counters.get("calls/error", 0) - counters.get("calls/skipped", 0))       # as the summary counts errors
    assert value(samples, "harvester_records_written_total", stream="insights", **group) == summary["records"] > 0
    assert value(samples, "harvester_records_written_total", stream="media", **group) == counters["records/media"]
    assert value(samples, "harvester_records_written_total", stream="accounts", **group) == 3
    assert value(samples, "harvester_units_total", status="done", **group) == summary["units"]["done"]
    assert value(samples, "harvester_throttles_total", **group) == counters.get("throttles", 0)
    assert started <= value(samples, "harvester_run_last_success_timestamp_seconds", **group) <= finished
    assert 0 < value(samples, "harvester_run_duration_seconds", **group) <= summary["seconds"] + 1
    usage = {dict(labels)["token"]: v for (name, labels), v in samples.items()
             if name == "harvester_rate_limit_usage_ratio"}
    assert set(usage) == {f"TOKEN_{t.index}" for t in world.tokens} and all(0 <= u <= 1 for u in usage.values())
    assert not any(t.token in str(samples) for t in world.tokens)          # named, never the token


async def test_two_shards_push_to_groups_of_their_own(tmp_path, simulator_server, gateway, monkeypatch):
    world = World(WorldSpec(seed=4, accounts=4, media_per_account=5, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    results = {}
    for index in range(2):
        results[index] = await harvest(tmp_path, server, world, monkeypatch, Shard(index, 2),
                                       pushgateway=gateway.url)
    samples = await gateway.samples()
    for index, (code, summary) in results.items():
        group = {"job": "harvester", "shard": f"{index}-of-2"}
        assert value(samples, "harvester_run_exit_code", **group) == code == 0
        assert value(samples, "harvester_records_written_total", stream="insights", **group) == summary["records"]
    assert results[0][1]["records"] != results[1][1]["records"]             # two shards, two figures kept


async def test_a_pushgateway_that_is_down_costs_a_warning_never_the_run(tmp_path, simulator_server, monkeypatch,
                                                                        caplog):
    from harvester.ports import free_port
    world = World(WorldSpec(seed=5, accounts=2, media_per_account=3, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    with caplog.at_level(logging.WARNING, logger="harvester.telemetry"):
        code, summary = await harvest(tmp_path, server, world, monkeypatch,
                                      pushgateway=f"http://127.0.0.1:{free_port()}", push_seconds=1)
    assert code == summary["exit_code"] == 0 and summary["records"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "harvester.telemetry"]
    assert len(warnings) == 1 and "metrics not pushed to http://127.0.0.1:" in warnings[0]


async def test_a_failed_run_keeps_the_last_success_an_earlier_run_pushed(tmp_path, simulator_server, gateway,
                                                                         monkeypatch):
    world = World(WorldSpec(seed=6, accounts=2, media_per_account=3, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    await harvest(tmp_path, server, world, monkeypatch, pushgateway=gateway.url)
    group = {"job": "harvester", "shard": "all"}
    succeeded = value(await gateway.samples(), "harvester_run_last_success_timestamp_seconds", **group)
    from harvester.telemetry.metrics import RunMetrics
    from harvester.telemetry.push import Pusher, group_url

    class Failed:
        def counters(self):
            return {"units/failed": 2}

        def token_usage(self):
            return {}

        def token_expiry(self):
            return {}

    pusher = Pusher(RunMetrics(Failed()), group_url(gateway.url, "harvester", "all"), 60)
    await pusher.start()
    pusher.metrics.end(3)
    await pusher.stop()
    samples = await gateway.samples()
    assert value(samples, "harvester_run_exit_code", **group) == 3
    assert value(samples, "harvester_units_total", status="failed", **group) == 2
    assert value(samples, "harvester_run_last_success_timestamp_seconds", **group) == succeeded


def test_a_missing_extra_is_named(monkeypatch):
    from harvester.errors import ConfigError
    from harvester.telemetry import metrics
    monkeypatch.setattr(metrics, "CollectorRegistry", None)
    with pytest.raises(ConfigError, match=r"pip install 'harvester\[prometheus\]'"):
        metrics.require()


@pytest.mark.parametrize("secret, shown", [
    ("EAAG" + "x" * 40, "***"),
    ("https://graph.facebook.com/v25.0/me?access_token=abc123&limit=5",
     "https://graph.facebook.com/v25.0/me?access_token=***&limit=5"),
    ("postgresql://harvester:s3cret@db.example:5432/warehouse", "postgresql://harvester:***@db.example:5432/warehouse"),
    ("client_secret=deadbeef", "client_secret=***"),
])
def test_secrets_are_masked_in_both_formats(secret, shown):
    for fmt in ("text", "json"):
        stream = io.StringIO()
        logs.configure(fmt, stream=stream)
        logging.getLogger("harvester.test").warning("seen: %s", secret, extra={"url": secret})
        line = stream.getvalue()
        assert shown in line and (secret == shown or secret not in line), (fmt, line)


def test_a_json_line_holds_time_level_logger_message_the_run_and_the_event_fields():
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logs.CONTEXT.fields.update(run_id="20261204T120000Z-abc123", shard="0-of-4")
    logging.getLogger("harvester.progress").info("units 5/10", extra={"units_done": 5})
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["level"] == "info" and event["logger"] == "harvester.progress" and event["message"] == "units 5/10"
    assert event["run_id"] == "20261204T120000Z-abc123" and event["shard"] == "0-of-4" and event["units_done"] == 5
    assert event["time"].endswith("+00:00")


def test_the_receivers_json_events_become_lines_of_their_own():
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logging.getLogger("harvester.webhook").info('{"event":"delivery","status":200}\n{"event":"delivery","status":200}')
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["message"], e["status"], e["logger"]) for e in events] == [("delivery", 200, "harvester.webhook")] * 2


@pytest.mark.slow
async def test_run_with_log_format_json_writes_only_json_lines_without_a_token(tmp_path, simulator_server):
    world = World(WorldSpec(seed=7, accounts=2, media_per_account=4, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, calls_per_window=10**6)
    path = tmp_path / "harvest.toml"
    path.write_text(config_toml(config))
    for fmt in ("json", "text"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harvester", "run", "--config", str(path), "--log-format", fmt,
            env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, stderr = await proc.communicate()
        text = stderr.decode()
        assert proc.returncode == 0, text
        assert not any(t.token in text for t in world.tokens)
        if fmt == "json":
            events = [json.loads(line) for line in text.splitlines()]      # every line parses
            (done,) = [e for e in events if e.get("event") == "run finished"]
            assert done["exit_code"] == 0 and done["records"] > 0 and done["run_id"]


@asynccontextmanager
async def receiver_client(tmp_path):
    store = WebhookStore(Output(path=str(tmp_path / "out")), tmp_path / "state.sqlite", publish_seconds=3600)
    config = parse_config({"window": {"days": 1}, "accounts": [{"id": ACCOUNT, "token_env": "UNUSED"}],
                           "webhook": {"verify_token_env": "V"}, "app": {"secret_env": "S"}},
                          path="c.toml", check_tokens=False)
    client = TestClient(TestServer(make_app(settings_of(config), Secrets(SECRET, "verify"), store)))
    await client.start_server()
    try:
        yield client, store
    finally:
        await client.close()


def story_body(media_id: str) -> bytes:
    return orjson.dumps({"object": "instagram", "entry": [{"id": ACCOUNT, "time": 1_700_000_000, "changes": [
        {"field": "story_insights", "value": {"media_id": media_id, "reach": 17, "replies": 1}}]}]})


async def test_the_receiver_serves_its_deliveries_on_metrics(tmp_path):
    bodies = [story_body(str(17_910_000_000_000_000 + i)) for i in range(12)]
    async with receiver_client(tmp_path) as (client, store):
        for body in bodies + bodies[:3]:                                    # 3 come again
            async with client.post("/webhook", data=body, headers={HEADER: sign(SECRET, body)}) as reply:
                assert reply.status == 200, await reply.text()
        async with client.post("/webhook", data=bodies[0], headers={HEADER: "sha256=" + "0" * 64}) as reply:
            assert reply.status == 403
        async with client.get("/metrics") as reply:
            text = await reply.text()
        stored = store.counts["stories/stored"]
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("harvester_webhook_deliveries_total", frozenset({("result", "stored")}))] == 12 == stored
    assert samples[("harvester_webhook_deliveries_total", frozenset({("result", "duplicate")}))] == 3
    assert samples[("harvester_webhook_deliveries_total", frozenset({("result", "signature")}))] == 1
    assert samples[("harvester_webhook_delivery_latency_seconds_count", frozenset())] == 16


async def test_without_the_extra_metrics_says_which_to_install(tmp_path, monkeypatch):
    from harvester.telemetry import metrics
    monkeypatch.setattr(metrics, "CollectorRegistry", None)
    async with receiver_client(tmp_path) as (client, _), client.get("/metrics") as reply:
        assert reply.status == 503 and "pip install 'harvester[prometheus]'" in await reply.text()


async def test_a_service_shows_the_runs_metrics_in_its_own_registry(tmp_path, simulator_server, monkeypatch):
    from prometheus_client import CollectorRegistry, generate_latest

    from harvester import Harvester
    world = World(WorldSpec(seed=8, accounts=2, media_per_account=3, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config, env = world_config(world, tmp_path / "out", base_url=server.url, calls_per_window=10**6)
    registry = CollectorRegistry()
    async with Harvester(config, tokens=env) as harvester:
        assert harvester.metrics(registry).registry is registry
        summary = await harvester.run()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    assert samples[("harvester_records_written_total", frozenset({("stream", "insights")}))] == summary.records > 0
    assert ("harvester_run_exit_code", frozenset()) not in samples          # a library run ends when its caller says


def test_a_pushgateway_without_the_extra_is_refused_by_validate_as_by_run(tmp_path, monkeypatch, capsys):
    from harvester.telemetry import metrics
    world = World(WorldSpec(seed=9, accounts=1, media_per_account=1, now=NOW))
    config, env = world_config(world, tmp_path / "out", base_url="http://127.0.0.1:9",
                               telemetry={"pushgateway": "http://127.0.0.1:9091"})
    path = tmp_path / "harvest.toml"
    path.write_text(config_toml(config) + '[telemetry]\npushgateway = "http://127.0.0.1:9091"\n')
    for name, token in env.items():
        monkeypatch.setenv(name, token)
    monkeypatch.setattr(metrics, "CollectorRegistry", None)
    assert cli.main(["validate", "--config", str(path)]) == 2
    said = capsys.readouterr().err
    assert "[telemetry] pushgateway = 'http://127.0.0.1:9091'" in said and "pip install 'harvester[prometheus]'" in said
    assert cli.main(["run", "--config", str(path)]) == 2
    assert capsys.readouterr().err == said
