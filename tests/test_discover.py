"""Accounts found from a token: [[discover]] tables in the config, and harvests of the simulator
that find exactly its accounts for each kind of token, mixed with listed accounts, each once."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harvester.commands.status import render
from harvester.config.model import Discover
from harvester.errors import ConfigError
from harvester.run.accounts import Accounts
from harvester.run.keys import TokenKeys
from harvester.simulator.pipeline import Simulator
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore
from harvester.summary import Stats
from harvester.tokens.discovery import Found

from support import IG_HOST, NOW, Outage, assert_matches_truth, discover_config, every_table, run_records, token_env
from support import discover_harvest as harvest


class HostLog(SimulatorTransport):
    """The simulator's transport, noting the host and path of every call."""

    def __init__(self, simulator):
        super().__init__(simulator)
        self.calls: list[tuple[str, str]] = []

    async def get(self, url, headers):
        parts = urlsplit(url)
        self.calls.append((f"{parts.scheme}://{parts.netloc}", parts.path))
        return await super().get(url, headers)


# --- config ---------------------------------------------------------------------------------

def test_discover_tables_parse_with_their_defaults():
    world = World(WorldSpec(now=NOW, seed=2, accounts=4, tokens=2))
    config, _ = discover_config(world, Path("."), [{"token_env": "TOKEN_0"},
                                             {"token_env": "TOKEN_1", "login": "instagram",
                                              "include": ["@brand", "17841400000000003"], "exclude": ["old"]}])
    assert config.accounts == ()
    assert config.discover == (Discover("TOKEN_0"), Discover("TOKEN_1", login="instagram",
                                                             include=("brand", "17841400000000003"),
                                                             exclude=("old",)))
    assert config.token_keys() == ("TOKEN_0", "TOKEN_1")
    assert config.login_of("TOKEN_1") == "instagram" and config.login_of("TOKEN_0") == "facebook"
    assert config.discover[1].wants("17841400000000003", None) and config.discover[1].wants("9", "brand")
    assert not config.discover[1].wants("9", "other") and not Discover("T", exclude=("old",)).wants("9", "old")


@pytest.mark.parametrize(("discover", "accounts", "message"), [
    ([{"token_env": "A", "token_file": "t"}], [],
     "discover[0] has both token_env and token_file; expected exactly one: token_env (the name of the environment "
     "variable holding the token, e.g. \"IG_TOKEN_MAIN\") or token_file (a file holding only the token, "
     "e.g. \"tokens/main.token\")"),
    ([{"login": "instagram"}], [], "discover[0] has neither token_env nor token_file; expected exactly one"),
    ([{"token_env": "TOKEN_0", "login": "tiktok"}], [],
     'discover[0].login = "tiktok" is not valid; expected "facebook" (Facebook Login, graph.facebook.com, the '
     'default) or "instagram" (Instagram Login, graph.instagram.com)'),
    ([{"token_env": "TOKEN_0", "include": "brand"}], [],
     'discover[0].include = "brand" is a string; expected an array of strings'),
    ([{"token_env": "TOKEN_0", "scope": "all"}], [], 'discover[0] has an unknown key "scope"'),
    ([{"token_env": "NOT_SET"}], [],
     'discover[0].token_env = "NOT_SET": the environment variable is not set or empty'),
    ([{"token_file": "/nonexistent/x.token"}], [],
     'discover[0].token_file = "/nonexistent/x.token": cannot be read: No such file or directory'),
    ([{"token_env": "TOKEN_0", "login": "instagram"}], [{"id": "1", "token_env": "TOKEN_0"}],
     'discover[0].login = "instagram" but the same token (TOKEN_0) is login = "facebook" elsewhere; expected one '
     'login kind per token'),
])
def test_discover_mistakes_are_said_clearly(discover, accounts, message):
    world = World(WorldSpec(now=NOW, seed=2, accounts=4, tokens=2))
    with pytest.raises(ConfigError) as caught:
        discover_config(world, Path("."), discover, accounts)
    assert any(p.startswith(f"<test>: {message}") for p in caught.value.problems), caught.value.problems


def test_app_needs_its_secret_and_may_have_it_alone():
    """An app id without its secret is of no use; the secret alone serves the webhook's signatures."""
    world = World(WorldSpec(now=NOW, seed=2, accounts=4, tokens=2))
    with pytest.raises(ConfigError) as caught:
        discover_config(world, Path("."), [{"token_env": "TOKEN_0"}], app={"id_env": "APP_ID"})
    assert caught.value.problems == ["<test>: [app] has id_env but not secret_env; expected both (the app token is "
                                     "id|secret) or secret_env alone (for the webhook)"]
    config, _ = discover_config(world, Path("."), [{"token_env": "TOKEN_0"}], app={"secret_env": "APP_SECRET"})
    assert config.app.secret_env == "APP_SECRET" and not config.app.configured


# --- harvests ---------------------------------------------------------------------------------

@pytest.mark.looptime
async def test_discovery_finds_exactly_the_worlds_accounts_for_each_kind_of_token(tmp_path):
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=6, tokens=4))
    assert {t.kind for t in world.tokens} == {"facebook", "instagram"}
    config, env = discover_config(world, tmp_path, every_table(world))
    transport = HostLog(Simulator(world))
    harvester, summary = await harvest(world, config, env, transport)
    assert summary.exit_code == 0, summary.render()
    assert harvester.discovered == {f"TOKEN_{t.index}": list(t.account_ids) for t in world.tokens}
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
    assert summary.counters["discovered/accounts"] == world.spec.accounts
    # Instagram Login tokens went to the Instagram host, and only they
    ig_accounts = {a for t in world.tokens if t.kind == "instagram" for a in t.account_ids}
    for host, path in transport.calls:
        parts = path.split("/")
        on_ig = host == IG_HOST
        if parts[2] in ig_accounts:
            assert on_ig, path
        elif parts[2].startswith("1784"):
            assert not on_ig, path
    assert sum(1 for _, p in transport.calls if p.endswith("/me/accounts") or "/accounts" in p) >= 1
    assert sum(1 for h, p in transport.calls if p == "/v25.0/me" and h == IG_HOST) == 2


@pytest.mark.looptime
async def test_listed_and_discovered_accounts_are_each_harvested_once(tmp_path):
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=6, tokens=4))
    fb = next(t for t in world.tokens if t.kind == "facebook" and len(t.account_ids) >= 3)
    listed, found_twice, excluded = fb.account_ids[0], fb.account_ids[1], fb.account_ids[2]
    username = world.account_by_id(excluded).username
    tables = [{"token_env": f"TOKEN_{fb.index}", "exclude": [username]},
              {"token_env": "SAME_TOKEN"}]                    # the same token under another name
    env = {**token_env(world), "SAME_TOKEN": fb.token, "LISTED": fb.token}
    config, _ = discover_config(world, tmp_path, tables, accounts=[{"id": listed, "token_env": "LISTED"}], env=env)
    harvester, summary = await harvest(world, config, env)
    assert summary.exit_code == 0, summary.render()
    # the listed account keeps its entry; the first table takes the rest but the excluded one,
    # which the second table (no exclude) then harvests
    assert harvester.discovered == {f"TOKEN_{fb.index}": [a for a in fb.account_ids if a not in (listed, excluded)],
                                    "SAME_TOKEN": [excluded]}
    assert found_twice in harvester.discovered[f"TOKEN_{fb.index}"]
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until,
                                                   accounts=list(fb.account_ids)))
    assert summary.counters["discovered/accounts_elsewhere"] == len(fb.account_ids) - 1 + 1
    assert summary.counters["discovered/accounts_excluded"] == 1


@pytest.mark.looptime
async def test_a_discovery_that_fails_is_reported_like_an_account(tmp_path):
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=6, tokens=4, revoked_tokens=1))
    revoked = world.tokens[-1]
    good = world.tokens[0]
    config, env = discover_config(world, tmp_path, [{"token_env": f"TOKEN_{good.index}"},
                                                    {"token_env": f"TOKEN_{revoked.index}", "login": revoked.kind}])
    harvester, summary = await harvest(world, config, env)
    assert summary.exit_code == 3
    assert [(o.account_id, o.code, o.subcode) for o in summary.failed] == [("discover[1] (TOKEN_3)", 190, 460)]
    assert summary.failed[0].reason.startswith("discovery failed: ")
    assert harvester.discovered == {f"TOKEN_{good.index}": list(good.account_ids)}
    state = StateStore(config.state.path)
    shown = render(state)
    state.close()
    assert f"  discovered: {len(good.account_ids)} accounts with TOKEN_{good.index}" in shown
    assert "  discover[1] (TOKEN_3): discovery failed: " in shown
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until,
                                                   accounts=list(good.account_ids)))


@pytest.mark.looptime
async def test_a_facebook_discovery_of_an_instagram_token_fails_clearly(tmp_path):
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=6, tokens=4))
    ig = next(t for t in world.tokens if t.kind == "instagram")
    config, env = discover_config(world, tmp_path, [{"token_env": f"TOKEN_{ig.index}"}])
    _, summary = await harvest(world, config, env)
    assert summary.exit_code == 3
    (outcome,) = summary.failed
    assert outcome.code == 2500 and 'login = "instagram"' in outcome.reason


def test_the_first_table_takes_a_shared_account_whichever_discovery_ends_first(tmp_path):
    """Two tokens that reach one account (two admins of a Page): the second table's discovery
    ends first, yet the account goes to the first table; what only the second finds is its own."""
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=2, tokens=4))
    env = {**token_env(world), "FIRST": "token-a", "SECOND": "token-b"}
    config, _ = discover_config(world, tmp_path, [{"token_env": "FIRST"}, {"token_env": "SECOND"}], env=env)
    keys = TokenKeys(config, env)
    keys.names = {"key-a": "FIRST", "key-b": "SECOND"}
    accounts = Accounts(config, keys, Stats(), run_id="r", now=world.now)
    accounts.discovery_done(1, [Found("1"), Found("2")], None)
    assert accounts.discovered == {}                          # waits for the first table
    accounts.discovery_done(0, [Found("1")], None)
    assert accounts.discovered == {"FIRST": ["1"], "SECOND": ["2"]}
    assert accounts.stats.get("discovered/accounts_elsewhere") == 1


@pytest.mark.looptime
async def test_what_a_run_owes_for_discovered_accounts_the_next_run_asks_again(tmp_path):
    """The API goes down after 120 calls: what the run could not call for its discovered accounts is
    owed; the next run discovers them again, asks what was owed first, and the output is the truth."""
    world = World(WorldSpec(now=NOW, seed=5, accounts=5, media_per_account=15, tokens=3))
    config, env = discover_config(world, tmp_path, every_table(world))
    transport = Outage(Simulator(world), after=120)
    first, summary = await harvest(world, config, env, transport)
    assert summary.exit_code == 3
    state = StateStore(config.state.path)
    owed = state.owed([a for t in world.tokens for a in t.account_ids])
    state.close()
    assert any(o.kind == "unit" for o in owed)
    transport.down = False
    _, summary = await harvest(world, config, env, transport)
    assert summary.exit_code == 0, summary.render()
    assert summary.carried_over == {first.run_id: len([o for o in owed if o.kind == "unit"])}
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")),
                         expected_records(world, config.window.since, config.window.until))
