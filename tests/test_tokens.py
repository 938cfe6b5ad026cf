"""Token health: the simulator's /debug_token and /refresh_access_token, what ``harvester tokens``
reports, the warning a run gives at its start, and a refreshed token that keeps a harvest going
past the old one's expiry."""

from __future__ import annotations

import asyncio
import logging
import os
import stat

import orjson
import pytest

from harvester import Harvester
from harvester.cli import main
from harvester.commands.demo import demo_config
from harvester.config import parse_config
from harvester.days import from_unix
from harvester.graph.client import GraphClient
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.tokenbook import TOKEN_LIFETIME
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.state.store import StateStore
from harvester.tokens import health as token_health

from support import NOW, assert_matches_truth, assert_no_token_anywhere, harvester_command, run_records, token_env

DAY = 86400


def world_of(**spec):
    return World(WorldSpec(now=NOW, **{"seed": 8, "accounts": 3, "media_per_account": 8, "tokens": 2, **spec}))


async def get(sim, path, token=None, **query):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = await sim.serve("GET", path, query, headers)
    return reply.status, orjson.loads(reply.body)


def app_token(world):
    return f"{world.app_id}|{world.app_secret}"


# --- the simulator -------------------------------------------------------------------------------

async def test_debug_token_tells_validity_expiry_and_scopes():
    world = world_of(token_expiry=((1, 3 * DAY),))
    sim = Simulator(world)
    fb, ig = world.tokens
    status, body = await get(sim, "/v25.0/debug_token", app_token(world), input_token=ig.token)
    assert status == 200
    data = body["data"]
    assert data["is_valid"] is True and data["type"] == "USER" and data["app_id"] == world.app_id
    assert data["expires_at"] == int(world.now + 3 * DAY) and data["user_id"] == ig.account_ids[0]
    assert data["scopes"] == ["instagram_business_basic", "instagram_business_manage_insights"]
    assert data["data_access_expires_at"] > world.now
    _, body = await get(sim, "/debug_token", app_token(world), input_token=fb.token)
    assert body["data"]["expires_at"] == 0 and "instagram_manage_insights" in body["data"]["scopes"]
    _, body = await get(sim, "/debug_token", app_token(world), input_token="EAAnotatoken")
    assert body == {"data": {"error": {"code": 190, "message": "Invalid OAuth access token."}, "is_valid": False,
                             "scopes": []}}


async def test_debug_token_refuses_a_bad_app_token_and_a_user_token():
    world = world_of()
    sim = Simulator(world)
    status, body = await get(sim, "/debug_token", f"{world.app_id}|wrong", input_token=world.tokens[0].token)
    assert status == 400 and body["error"]["code"] == 190 and body["error"]["message"] == \
        "Invalid OAuth access token signature."
    status, body = await get(sim, "/debug_token", world.tokens[0].token, input_token=world.tokens[0].token)
    assert status == 400 and body["error"]["code"] == 100 and "app access token" in body["error"]["message"]
    status, body = await get(sim, "/debug_token", app_token(world))
    assert status == 400 and body["error"]["message"] == "(#100) The parameter input_token is required"


@pytest.mark.looptime
async def test_an_expired_token_answers_463_and_a_refreshed_one_is_new_and_valid_60_days():
    world = world_of(token_expiry=((1, 100),))
    sim = Simulator(world, clock=asyncio.get_running_loop().time)
    ig = world.tokens[1]
    assert (await get(sim, "/v25.0/me", ig.token))[0] == 200
    status, body = await get(sim, "/refresh_access_token", ig.token, grant_type="ig_refresh_token")
    assert status == 200 and body["token_type"] == "bearer" and body["expires_in"] == TOKEN_LIFETIME
    fresh = body["access_token"]
    assert fresh != ig.token and fresh.startswith("IGAA")
    assert (await get(sim, "/v25.0/me", ig.token))[0] == 200           # the old one works until its expiry
    await asyncio.sleep(101)
    status, body = await get(sim, "/v25.0/me", ig.token)
    assert status == 400 and (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
    assert body["error"]["message"].startswith("Error validating access token: Session has expired on ")
    assert (await get(sim, "/v25.0/me", fresh))[0] == 200
    _, debug = await get(sim, "/debug_token", app_token(world), input_token=ig.token)
    assert debug["data"]["is_valid"] is False and debug["data"]["error"]["subcode"] == 463
    status, body = await get(sim, "/refresh_access_token", world.tokens[0].token, grant_type="ig_refresh_token")
    assert status == 400 and body["error"]["code"] == 190              # a Facebook Login token is not renewed
    status, body = await get(sim, "/refresh_access_token", fresh, grant_type="fb_exchange_token")
    assert status == 400 and body["error"]["code"] == 100


def test_token_health_worlds_have_expiries_within_a_week_and_missing_scopes():
    world = World(WorldSpec(now=NOW, seed=3, accounts=12, tokens=8, token_health=True))
    soon = [t for t in world.tokens if t.expires_at - world.now < 7 * DAY]
    assert soon and all(t.expires_at > world.now for t in world.tokens)
    lacking = [t for t in world.tokens if not {"instagram_manage_insights", "instagram_business_manage_insights"}
               & set(t.scopes)]
    assert [t.index for t in lacking] == [3, 7]
    assert World(WorldSpec(now=NOW, seed=3, accounts=12, tokens=8)).tokens[0].expires_at is None   # off by default


# --- harvester tokens -----------------------------------------------------------------------------

def config_of(world, tmp_path, *, app=True, ig_file=None, **raw_extra):
    today = from_unix(int(world.now))
    fb, ig = world.tokens
    raw = demo_config("http://simulator", {"TOKEN_0": fb.account_ids}, tmp_path / "out", today, days=2,
                      calls_per_window=1_000_000)
    raw["rate_limit"]["margin_seconds"] = 0
    raw["graph"]["instagram_base_url"] = "http://simulator"
    table = {"token_file": str(ig_file)} if ig_file else {"token_env": "TOKEN_1"}
    raw["accounts"].append({"id": ig.account_ids[0], "login": "instagram", **table})
    if app:
        raw["app"] = {"id_env": "APP_ID", "secret_env": "APP_SECRET"}
    for key, value in raw_extra.items():
        raw.setdefault(key, {}).update(value)
    env = {**token_env(world), "APP_ID": world.app_id, "APP_SECRET": world.app_secret}
    return parse_config(raw, path="<test>", env=env, today=today), env


def clients(transport):
    return {login: GraphClient(transport, "http://simulator", "v25.0") for login in ("facebook", "instagram")}


async def test_the_report_names_each_token_by_variable_with_expiry_scopes_and_accounts(tmp_path):
    world = World(WorldSpec(now=NOW, seed=8, accounts=3, media_per_account=8, tokens=2, token_expiry=((1, 3 * DAY),),
                            token_health=False))
    config, env = config_of(world, tmp_path)
    health = await token_health.check(config, clients(SimulatorTransport(Simulator(world))), env=env)
    assert [h.name for h in health] == ["TOKEN_0", "TOKEN_1"]
    fb, ig = health
    assert fb.debug.valid and fb.debug.expires_at == 0 and [a.account_id for a in fb.accounts] == \
        list(world.tokens[0].account_ids)
    assert ig.debug.expires_at == int(world.now + 3 * DAY) and ig.expires_soon(world.now)
    text = "\n".join(line for h in health for line in h.lines(world.now))
    assert "TOKEN_1 (Instagram Login): valid" in text and "(in 3.0 days)" in text
    assert "expires: never (the API gives no expiry)" in text
    assert "reaches 1 account: " + world.tokens[1].account_ids[0] in text
    assert "MISSING" not in text
    assert not any(t.token in text for t in world.tokens)
    assert token_health.warnings(health, world.now) == [
        f"token TOKEN_1 expires {token_health._when(world.now + 3 * DAY, world.now)}: renew it (Instagram Login: "
        f"token_file and `harvester tokens refresh`)"]


async def test_a_missing_insights_scope_and_no_app_are_said(tmp_path):
    world = World(WorldSpec(now=NOW, seed=8, accounts=8, media_per_account=8, tokens=4, token_health=True))
    missing = world.tokens[3]
    today = from_unix(int(world.now))
    raw = demo_config("http://simulator", {f"TOKEN_{missing.index}": missing.account_ids}, tmp_path, today)
    raw["accounts"] = [{**a, "login": missing.kind} for a in raw["accounts"]]
    raw["app"] = {"id_env": "APP_ID", "secret_env": "APP_SECRET"}
    env = {**token_env(world), "APP_ID": world.app_id, "APP_SECRET": world.app_secret}
    config = parse_config(raw, path="<test>", env=env, today=today)
    (h,) = await token_health.check(config, clients(SimulatorTransport(Simulator(world))), env=env)
    scope = "instagram_business_manage_insights" if missing.kind == "instagram" else "instagram_manage_insights"
    assert f"  MISSING {scope}: insights calls will be refused; grant it and issue a new token" in h.lines(world.now)
    del raw["app"]
    config = parse_config(raw, path="<test>", env=env, today=today)
    (h,) = await token_health.check(config, clients(SimulatorTransport(Simulator(world))), env=env)
    assert h.debug is None and "  expiry and scopes: unknown (no [app] id_env / secret_env configured: /debug_token " \
                               "needs the app token)" in h.lines(world.now)
    assert h.accounts is not None                     # it still tells what the token reaches


@pytest.mark.looptime
async def test_a_run_warns_once_at_its_start_for_a_token_expiring_within_a_week(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    world = world_of(token_expiry=((1, 2 * DAY),))
    config, env = config_of(world, tmp_path)
    simulator = Simulator(world)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now,
                         state=StateStore(tmp_path / "s.sqlite")) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    assert len(summary.warnings) == 1 and summary.warnings[0].startswith("token TOKEN_1 expires ")
    assert "WARNING: token TOKEN_1 expires" in summary.render()
    assert [r.getMessage() for r in caplog.records if "expires" in r.getMessage()] == summary.warnings
    assert summary.counters["calls/debug_token"] == 2                 # one per token
    assert simulator.counters.snapshot()["endpoints"].get("other") == 2      # and both reached the API (as "other")
    # without [app]: no /debug_token call, no warning
    config, env = config_of(world, tmp_path, app=False)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now,
                         state=StateStore(tmp_path / "s2.sqlite")) as harvester:
        summary = await harvester.run()
    assert summary.warnings == [] and "calls/debug_token" not in summary.counters


# --- harvester tokens refresh ---------------------------------------------------------------------

@pytest.mark.looptime
async def test_a_refreshed_token_keeps_a_harvest_going_past_the_old_ones_expiry(tmp_path, caplog):
    """The Instagram Login token expires 2 simulated minutes into a harvest that takes far longer
    (10 calls a minute): unrefreshed, its account fails with 190/463; refreshed first, the token
    file holds the new token (mode 0600) and the harvest gets every record of the truth."""
    caplog.set_level(logging.DEBUG)
    limits = {"calls_per_window": 10, "window_seconds": 60}
    token_file = tmp_path / "ig.token"
    for refreshed in (False, True):
        world = world_of(token_expiry=((1, 120),))
        ig = world.tokens[1]
        token_file.write_text(ig.token + "\n")
        out = tmp_path / ("refreshed" if refreshed else "expired")
        config, env = config_of(world, out, ig_file=token_file, app=False, rate_limit=limits)
        simulator = Simulator(world, SimulatorSettings(**limits))
        transport = SimulatorTransport(simulator)
        if refreshed:
            (renewal,) = [r for r in await token_health.refresh(config, clients(transport), env=env)
                          if r.name == f"file:{token_file}"]
            assert renewal.renewed and renewal.message == f"renewed for 60 days; written to {token_file}"
            assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
            assert token_file.read_text().strip() != ig.token
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now,
                             state=StateStore(out / "state.sqlite")) as harvester:
            summary = await harvester.run()
        assert loop.time() - started > 300                         # well past the old token's expiry
        records = run_records(out / "out", harvester.run_id)
        if refreshed:
            assert summary.exit_code == 0, summary.render()
            assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
            new = token_file.read_text().strip()
            assert_no_token_anywhere([ig.token, new], out, caplog, summary, harvester, config)
            state_bytes = (out / "state.sqlite").read_bytes()
            assert ig.token.encode() not in state_bytes and new.encode() not in state_bytes
        else:
            assert summary.exit_code == 3
            assert {(o.code, o.subcode) for o in summary.failed if o.account_id == ig.account_ids[0]} == {(190, 463)}


async def test_refresh_says_why_it_renews_no_facebook_token_and_no_variable(tmp_path):
    world = world_of()
    config, env = config_of(world, tmp_path)
    renewals = await token_health.refresh(config, clients(SimulatorTransport(Simulator(world))), env=env,
                                          now=world.now)
    assert [(r.name, r.renewed) for r in renewals] == [("TOKEN_0", False), ("TOKEN_1", False)]
    assert renewals[0].message == ("a Facebook Login user token cannot be renewed without its user (who must log in "
                                   "again); it expires never (the API gives no expiry)")
    assert renewals[1].message.startswith("an environment variable cannot be rewritten")


# --- the commands ---------------------------------------------------------------------------------

@pytest.mark.slow
async def test_the_tokens_commands_over_loopback(tmp_path, simulator_server):
    world = world_of(token_expiry=((1, 3 * DAY),))
    server = await simulator_server(world)
    token_file = tmp_path / "ig.token"
    token_file.write_text(world.tokens[1].token)
    lines = [f'[graph]\nbase_url = "{server.url}"\ninstagram_base_url = "{server.url}"',
             '[window]\ndays = 1',
             '[app]\nid_env = "APP_ID"\nsecret_env = "APP_SECRET"',
             f'[output]\npath = "{tmp_path / "out"}"', f'[state]\npath = "{tmp_path / "s.sqlite"}"',
             '[[discover]]\ntoken_env = "TOKEN_0"',
             f'[[discover]]\ntoken_file = "{token_file}"\nlogin = "instagram"']
    config = tmp_path / "harvest.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, **token_env(world), "APP_ID": world.app_id, "APP_SECRET": world.app_secret}
    proc = await asyncio.create_subprocess_exec(
        *harvester_cmd("tokens", "--config", str(config)), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (b.decode() for b in await proc.communicate())
    assert proc.returncode == 0, err
    assert "TOKEN_0 (Facebook Login): valid" in out and f"file:{token_file} (Instagram Login): valid" in out
    assert f"reaches {len(world.tokens[0].account_ids)} accounts" in out
    assert not any(t.token in out + err for t in world.tokens)
    proc = await asyncio.create_subprocess_exec(
        *harvester_cmd("tokens", "refresh", "--config", str(config)), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (b.decode() for b in await proc.communicate())
    assert proc.returncode == 0, err
    assert f"file:{token_file}: renewed for 60 days; written to {token_file}" in out
    assert "TOKEN_0: a Facebook Login user token cannot be renewed without its user" in out
    assert token_file.read_text().strip() != world.tokens[1].token
    proc = await asyncio.create_subprocess_exec(
        *harvester_cmd("validate", "--config", str(config), "--discover"), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (b.decode() for b in await proc.communicate())
    assert proc.returncode == 0, err
    assert f"discover[0] (TOKEN_0, facebook login): {len(world.tokens[0].account_ids)} accounts" in out
    assert f"discover[1] (file:{token_file}, instagram login): 1 account" in out


def test_plain_validate_calls_nothing(tmp_path, capsys, monkeypatch):
    world = world_of()
    monkeypatch.setenv("TOKEN_0", world.tokens[0].token)
    config = tmp_path / "harvest.toml"
    config.write_text('[graph]\nbase_url = "http://127.0.0.1:9"\n[window]\ndays = 1\n'
                      f'[output]\npath = "{tmp_path / "out"}"\n[state]\npath = "{tmp_path / "s.sqlite"}"\n'
                      '[[discover]]\ntoken_env = "TOKEN_0"\n')
    assert main(["validate", "--config", str(config)]) == 0
    assert "0 accounts and 1 [[discover]] table over 1 token" in capsys.readouterr().out
    assert main(["validate", "--config", str(config), "--discover"]) == 3        # nothing listens there
    assert "discover[0] (TOKEN_0, facebook login): discovery failed: " in capsys.readouterr().err


def harvester_cmd(*args):
    return harvester_command(*args)      # its clock at the world's present: the tokens' expiries as the world has them



def test_the_report_names_twenty_accounts_and_counts_the_rest():
    from harvester.tokens.discovery import Found
    health = token_health.Health("T", "facebook", accounts=tuple(Found(str(i), f"u{i}") for i in range(25)))
    (line,) = [x for x in health.lines(0) if x.startswith("  reaches")]
    assert line.startswith("  reaches 25 accounts: 0 (@u0), 1 (@u1)") and line.endswith("19 (@u19), ... and 5 more")
