"""Health checks that never flap (issue 22, point 3): ``harvester tokens``, ``validate --discover``
and the expiry check at a run's start go through the run's retries (the error policy and its
backoff), so seeded transient faults never turn a good token bad; and ``/debug_token``'s answer
for an invalid token (a 200 ``{"data": {"error": ...}}``) is read as that token's verdict, in the
API's words, never refused as a bad error body."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from harvester import Harvester
from harvester.cli import main
from harvester.commands.demo import demo_config
from harvester.config import parse_config
from harvester.days import from_unix
from harvester.graph.client import GraphClient
from harvester.simulator.faults import BLIP_KINDS, DEFAULT_KINDS
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec
from harvester.tokens import health as token_health

from support import NOW, token_env

BAD = "EAAnotatokenthesimulatorknows"
FAULT_SEEDS = (1, 2, 3)


def world_of(**spec) -> World:
    return World(WorldSpec(**{"seed": 31, "accounts": 12, "media_per_account": 4, "tokens": 6, "now": NOW, **spec}))


def discover_config(world: World, tmp_path, base_url: str = "http://simulator", *, extra: dict | None = None):
    """Every token of ``world`` as a [[discover]] table (its login kind), with [app]."""
    today = from_unix(int(world.now))
    raw = demo_config(base_url, {}, tmp_path / "out", today, days=2)
    raw.pop("accounts", None)
    raw["graph"]["instagram_base_url"] = base_url
    raw["state"] = {"path": str(tmp_path / "state.sqlite")}
    raw["discover"] = [{"token_env": f"TOKEN_{t.index}", "login": t.kind} for t in world.tokens]
    raw["app"] = {"id_env": "APP_ID", "secret_env": "APP_SECRET"}
    env = {**token_env(world), "APP_ID": world.app_id, "APP_SECRET": world.app_secret, **(extra or {})}
    return raw, env


def clients(transport) -> dict:
    return {login: GraphClient(transport, "http://simulator", "v25.0") for login in ("facebook", "instagram")}


def faults_served(simulator: Simulator) -> int:
    return sum(simulator.counters.snapshot()["faults"].values())


@pytest.mark.looptime
@pytest.mark.parametrize("kinds", ["transient", "with throttle blips"])
@pytest.mark.parametrize("fault_seed", FAULT_SEEDS)
async def test_token_health_at_faults_is_what_it_is_without(tmp_path, fault_seed, kinds):
    world = world_of()
    raw, env = discover_config(world, tmp_path)
    config = parse_config(raw, path="<test>", env=env, today=from_unix(int(world.now)))
    clean = await token_health.check(config, clients(SimulatorTransport(Simulator(world))), env=env)
    settings = SimulatorSettings(faults=0.25, fault_seed=fault_seed,
                                 fault_kinds=DEFAULT_KINDS + (BLIP_KINDS if kinds != "transient" else ()))
    simulator = Simulator(world, settings, clock=asyncio.get_running_loop().time)
    health = await token_health.check(config, clients(SimulatorTransport(simulator)), env=env)
    assert faults_served(simulator) > 0                       # faults met the checks, and were asked again
    assert health == clean
    assert all(h.debug is not None and h.debug.valid and h.accounts for h in health)
    assert sorted(a.account_id for h in health for a in h.accounts or ()) == sorted(
        a for t in world.tokens for a in t.account_ids)


@pytest.mark.looptime
async def test_a_run_checks_every_tokens_expiry_through_faults(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    world = world_of(token_expiry=((1, 2 * 86400),))
    raw, env = discover_config(world, tmp_path)
    config = parse_config(raw, path="<test>", env=env, today=from_unix(int(world.now)))
    simulator = Simulator(world, SimulatorSettings(faults=0.3, fault_seed=4),
                          clock=asyncio.get_running_loop().time)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    (warning,) = summary.warnings                              # no "expiry not checked" for a fault
    assert warning.startswith("token TOKEN_1 expires "), summary.render()
    assert summary.counters["calls/debug_token"] == len(world.tokens)
    assert faults_served(simulator) > 0


async def test_an_invalid_token_is_reported_invalid_in_the_apis_words(tmp_path):
    world = world_of()
    raw, env = discover_config(world, tmp_path, extra={"TOKEN_9": BAD})
    raw["discover"].append({"token_env": "TOKEN_9"})
    config = parse_config(raw, path="<test>", env=env, today=from_unix(int(world.now)))
    health = await token_health.check(config, clients(SimulatorTransport(Simulator(world))), env=env)
    bad = next(h for h in health if h.name == "TOKEN_9")
    assert bad.debug is not None and not bad.debug.valid
    assert bad.debug.reason == "Invalid OAuth access token. (190)"
    lines = bad.lines(world.now)
    assert lines[0] == "TOKEN_9 (Facebook Login): NOT VALID: Invalid OAuth access token. (190)"
    assert all(h.debug is not None and h.debug.valid for h in health if h is not bad)
    assert not any(BAD in line for h in health for line in h.lines(world.now))


@pytest.mark.looptime
async def test_a_run_names_the_invalid_token_at_its_start(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    world = world_of()
    raw, env = discover_config(world, tmp_path, extra={"TOKEN_9": BAD})
    raw["discover"].append({"token_env": "TOKEN_9"})
    config = parse_config(raw, path="<test>", env=env, today=from_unix(int(world.now)))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)),
                         now=world.now) as harvester:
        summary = await harvester.run()
    assert "token TOKEN_9 is not valid: Invalid OAuth access token. (190)" in summary.warnings
    assert not any("not checked" in w for w in summary.warnings)
    assert not any(BAD in r.getMessage() for r in caplog.records)


@pytest.mark.slow
@pytest.mark.parametrize("fault_seed", FAULT_SEEDS)
async def test_the_commands_exit_0_at_faults_over_loopback(tmp_path, simulator_server, monkeypatch, capsys,
                                                           fault_seed):
    """``harvester tokens`` and ``validate --discover`` against the simulator on a socket at 20 %
    faults (500s, bodies cut short, dropped connections): exit 0, every token valid, every table
    its accounts, as without faults."""
    world = world_of()
    server = await simulator_server(world, SimulatorSettings(faults=0.2, fault_seed=fault_seed))
    raw, env = discover_config(world, tmp_path, server.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "harvest.toml"
    path.write_text(toml(raw))
    assert await asyncio.to_thread(main, ["tokens", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid") == len(world.tokens) and "unknown" not in out
    assert await asyncio.to_thread(main, ["validate", "--config", str(path), "--discover"]) == 0
    out = capsys.readouterr().out
    for i, token in enumerate(world.tokens):
        n = len(token.account_ids)
        assert f"discover[{i}] (TOKEN_{token.index}, {token.kind} login): {n} account{'' if n == 1 else 's'}" in out
    assert faults_served(server.simulator) > 0


def toml(raw: dict) -> str:
    """A config as TOML (the few shapes a config has: tables, arrays of tables, plain values)."""
    import json

    def value(v: object) -> str:
        return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")

    lines: list[str] = []
    for name, table in raw.items():
        rows = table if isinstance(table, list) else [table]
        for row in rows:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines += [f"{k} = {value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.looptime
async def test_retry_asks_again_what_the_policy_retries_and_no_more():
    """A 500 every time: asked max_attempts times, the waits the scheduler's backoff (under a
    doubling ceiling), then the last error as it was; an invalid token: asked once, raised."""
    from harvester.errors import GraphError
    from harvester.schedule.retry import Retry

    loop = asyncio.get_running_loop()
    asked: list[float] = []

    def failing(code: int, status: int):
        async def call() -> None:
            asked.append(loop.time())
            raise GraphError(status=status, code=code, subcode=None, message="boom")
        return call

    retry = Retry(4)
    with pytest.raises(GraphError, match="boom"):
        await retry(failing(2, 500))
    waits = [b - a for a, b in itertools.pairwise(asked)]
    assert len(asked) == 4 and retry.retries == 3
    assert all(0 <= w <= 2 ** i for i, w in enumerate(waits))
    asked.clear()
    with pytest.raises(GraphError):
        await retry(failing(190, 400))
    assert len(asked) == 1
