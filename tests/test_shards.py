"""Shards: the union of N shards' harvests equals one unsharded harvest, record for record; a
token never spans two shards; adding an account moves no other token; bad shard options exit 2."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from harvester import Harvester
from harvester.cli import main
from harvester.config import parse_config
from harvester.config.shards import Shard, assign, shard_of, sharded
from harvester.days import from_unix
from harvester.records import STREAMS
from harvester.run.keys import token_key
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.sinks.merge import MERGED_DIR, merge

from support import (
    NOW,
    Recording,
    assert_streams_match,
    discover_config,
    discover_harvest,
    every_table,
    harvester,
    token_env,
    world_config,
    write_config,
)

_RUN_FIELDS = ("run_id",)


def _current(output, stream) -> list[bytes]:
    """A stream's current records without the run id (the one field a shard's run sets
    differently), each as canonical JSON, sorted: equal lists are equal record for record."""
    return sorted(msgspec.json.encode({k: v for k, v in sorted(r.items()) if k not in _RUN_FIELDS})
                  for r in manifest.current_records(output, stream))


class TokensSeen(Recording):
    """The in-memory transport, noting which token each call carried (by digest: never the token)."""

    def __init__(self, simulator):
        super().__init__(simulator)
        self.keys: set[str] = set()

    async def get(self, url, headers):
        self.keys.add(token_key(headers["Authorization"].removeprefix("Bearer ")))
        return await super().get(url, headers)


def _aliased(world, output):
    """The world's config with a second variable, TOKEN_ALIAS, holding TOKEN_0's token for one of
    its accounts: one token under two names, which must stay in one shard."""
    config, env = world_config(world, output)
    first = next(t for t in world.tokens if len(t.account_ids) > 1)
    moved = first.account_ids[-1]
    accounts = [{"id": a.id, "token_env": "TOKEN_ALIAS" if a.id == moved else a.token_env, "login": a.login}
                for a in config.accounts]
    env = {**env, "TOKEN_ALIAS": first.token}
    today = config.window.until
    raw = {"graph": {"base_url": "http://simulator", "instagram_base_url": "http://simulator", "api_version": "v25.0"},
           "rate_limit": {"calls_per_window": 1_000_000, "window_seconds": 3600, "margin_seconds": 0},
           "window": {"since": str(config.window.since), "until": str(today)},
           "output": {"format": "jsonl", "path": str(output)}, "state": {"path": str(output / "state.sqlite")},
           "accounts": accounts}
    return parse_config(raw, path="<test>", env=env, today=today), env, f"TOKEN_{first.index}"


@pytest.mark.slow
@pytest.mark.looptime
async def test_three_shards_union_equals_an_unsharded_harvest_record_for_record(tmp_path):
    world = World(WorldSpec(now=NOW, seed=31, accounts=12, media_per_account=8))
    config, env, aliased = _aliased(world, tmp_path / "whole")
    async with Harvester.pinned(config, tokens=env, transport=Recording(Simulator(world)), now=world.now) as whole:
        assert (await whole.run()).exit_code == 0

    keys = {name: token_key(env[name]) for name in config.token_keys()}
    shards = assign(keys, 3)
    assert set(shards.values()) == {0, 1, 2}               # every shard has work
    assert shards["TOKEN_ALIAS"] == shards[aliased]         # one token under two names: one shard
    seen = []
    for index in range(3):
        shard = Shard(index, 3)
        part = sharded(msgspec.structs.replace(config, output=msgspec.structs.replace(
            config.output, path=str(tmp_path / "out")), state=msgspec.structs.replace(
            config.state, path=str(tmp_path / "state.sqlite"))), shard)
        assert part.state.path == str(tmp_path / f"state.shard-{index}-of-3.sqlite")
        transport = TokensSeen(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester.pinned(part, tokens=env, transport=transport, now=world.now, shard=shard) as h:
            assert (await h.run()).exit_code == 0
        assert transport.keys == {keys[name] for name, i in shards.items() if i == index}
        seen.append(transport.keys)
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])   # no token in two shards

    merged = merge([tmp_path / "out" / f"shard-{i}-of-3" for i in range(3)], tmp_path / "out")
    assert merged.merged == [f"shard-{i}-of-3" for i in range(3)]
    assert not (tmp_path / "out" / MERGED_DIR).exists()      # disjoint shards: files listed, never copied
    for stream in STREAMS:
        union, alone = _current(tmp_path / "out", stream), _current(tmp_path / "whole", stream)
        assert alone and union == alone, stream
    assert_streams_match(tmp_path / "out", world, config)


def test_adding_an_account_moves_no_other_token():
    """A name's shard depends on the name and N only: new accounts, new names, a rotated token
    (a new string under the same name) move nothing else; a name holding a token that another
    name holds joins that name's shard."""
    names = {f"IG_TOKEN_{i}": token_key(f"secret-{i}") for i in range(300)}
    before = assign(names, 7)
    assert set(before.values()) == set(range(7))
    grown = {**names, **{f"IG_NEW_{i}": token_key(f"new-{i}") for i in range(50)}}
    after = assign(grown, 7)
    assert {name: after[name] for name in names} == before
    rotated = assign({**names, "IG_TOKEN_5": token_key("refreshed")}, 7)
    assert rotated == before
    alias = assign({**names, "ZZ_ALIAS": names["IG_TOKEN_9"], "IG_MISSING": None}, 7)
    assert {name: alias[name] for name in names} == before
    assert alias["ZZ_ALIAS"] == before["IG_TOKEN_9"] and alias["IG_MISSING"] == shard_of("IG_MISSING", 7)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--shard", "4/3"], {}, "--shard 4/3: shard index 4 is out of range; expected 0 <= I < N, from 0 to 2"),
    (["--shard", "3/3"], {}, "shard index 3 is out of range"),
    (["--shard", "x"], {}, "--shard 'x' is not valid; expected I/N, whole numbers with 0 <= I < N"),
    (["--shard", "1/0"], {}, "N = 0 is not valid; expected at least 1 shard"),
    (["--shards", "3"], {}, "--shards 3: the environment variable JOB_COMPLETION_INDEX is not set"),
    (["--shards", "3"], {"JOB_COMPLETION_INDEX": "3"}, "shard index 3 is out of range"),
    (["--shards", "3"], {"JOB_COMPLETION_INDEX": "one"}, "JOB_COMPLETION_INDEX = 'one' is not valid"),
    (["--shards", "0"], {}, "'0' is not a whole number >= 1"),
])
def test_bad_shard_options_exit_2_with_a_message_before_anything(tmp_path, capsys, monkeypatch, args, env, message):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    monkeypatch.setenv("TOKEN_0", "x")
    monkeypatch.setenv("TOKEN_1", "y")
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    assert main(["run", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.looptime
async def test_merge_keeps_the_record_harvested_last_when_an_account_is_in_two_outputs(tmp_path):
    """An account that moved (N changed): its keys are in two outputs; the later record wins, each
    key once, and only files holding such an account are copied."""
    world = World(WorldSpec(now=NOW, seed=32, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "a")
    async with Harvester.pinned(config, tokens=env, transport=Recording(Simulator(world)), now=world.now - 3600) as h:
        assert (await h.run()).exit_code == 0
    later = msgspec.structs.replace(config, output=msgspec.structs.replace(config.output, path=str(tmp_path / "b")),
                                    state=msgspec.structs.replace(config.state, path=str(tmp_path / "b.sqlite")))
    async with Harvester.pinned(later, tokens=env, transport=Recording(Simulator(world)), now=world.now) as h:
        assert (await h.run()).exit_code == 0
    merge([tmp_path / "a", tmp_path / "b"], tmp_path / "union")
    for stream in STREAMS:
        union = list(manifest.current_records(tmp_path / "union", stream))
        keys = [manifest.key_of(r) for r in union]
        assert len(keys) == len(set(keys)) > 0
        newer = {manifest.key_of(r): r for r in manifest.current_records(tmp_path / "b", stream)}
        assert all(newer[manifest.key_of(r)] == r for r in union if manifest.key_of(r) in newer), stream
        older_only = {manifest.key_of(r) for r in manifest.current_records(tmp_path / "a", stream)} - newer.keys()
        assert older_only <= set(keys)          # what only the earlier harvest has stays current
    assert (tmp_path / "union" / MERGED_DIR).exists()


def test_merge_refuses_what_is_not_a_shard_output_and_a_run_refuses_a_merged_output(tmp_path, capsys):
    (tmp_path / "s0").mkdir()
    assert main(["manifest", "--merge", str(tmp_path / "s0")]) == 2
    assert "s0: no manifest.json; expected the output directory of a shard that has finished a run" \
        in capsys.readouterr().err
    manifest.publish(tmp_path / "s0", "run-1")
    manifest.publish(tmp_path / "s1", "run-2")
    manifest.publish(tmp_path / "mine", "run-3")
    assert main(["manifest", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--into",
                 str(tmp_path / "mine")]) == 2
    assert "is the manifest of runs published there, not of a merge" in capsys.readouterr().err
    assert main(["manifest", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1")]) == 0
    assert "the union of 2 outputs" in capsys.readouterr().out
    with pytest.raises(Exception, match="holds the merged manifest of shards"):
        manifest.publish(tmp_path, "run-4")


@pytest.mark.slow
async def test_shards_from_job_completion_index_over_loopback_each_merging_the_union(tmp_path, simulator_server):
    """The CLI as the Indexed Job runs it: ``run --shards 2 --merge`` with JOB_COMPLETION_INDEX 0,
    then 1, each with its own state file and output; each merges what has been published, so after
    the last one the union at [output] path is the ground truth, whole."""
    world = World(WorldSpec(seed=33, accounts=6, media_per_account=10, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    for index in range(2):
        proc = await harvester("run", "--config", str(config), "--shards", "2", "--merge",
                               env={**token_env(world), "JOB_COMPLETION_INDEX": str(index)})
        assert await proc.wait() == 0, (await proc.stderr.read()).decode()
        assert (tmp_path / f"state.shard-{index}-of-2.sqlite").is_file()
        assert (tmp_path / "out" / f"shard-{index}-of-2" / "manifest.json").is_file()
        assert manifest.load(tmp_path / "out").merged == [f"shard-{i}-of-2" for i in range(index + 1)]
    assert_streams_match(tmp_path / "out", world, config, token_env(world))
    proc = await harvester("status", "--config", str(config), "--shard", "1/2", env={}, capture=True)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0 and "finished" in out       # the shard's own state file


def test_merge_without_a_shard_exits_2(tmp_path, capsys):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    assert main(["run", "--config", str(config), "--merge"]) == 2
    assert "--merge merges the outputs of shards; expected it with --shard I/N or --shards N" in capsys.readouterr().err


@pytest.mark.looptime
async def test_a_missing_token_is_failed_by_its_own_shard_only(tmp_path):
    """A variable that is not set holds no token: it goes by its name, and only its shard reports
    its accounts failed (the others do not know them)."""
    world = World(WorldSpec(now=NOW, seed=34, accounts=8, media_per_account=5))
    config, env = world_config(world, tmp_path / "out")
    gone = config.accounts[-1].token_env
    env = {k: v for k, v in env.items() if k != gone}
    failed = {}
    for index in range(3):
        shard = Shard(index, 3)
        async with Harvester.pinned(sharded(config, shard), tokens=env, transport=Recording(Simulator(world)),
                             now=world.now, shard=shard) as h:
            summary = await h.run()
        failed[index] = {o.account_id for o in summary.failed}
    home = shard_of(gone, 3)
    assert failed[home] == {a.id for a in config.accounts_of(gone)}
    assert all(not failed[i] for i in range(3) if i != home)


@pytest.mark.looptime
async def test_discovered_accounts_go_with_their_tables_token_and_the_union_equals_the_whole(tmp_path):
    """[[discover]] tables: each shard runs the discovery of its own tokens only, and harvests what
    they find; the union equals an unsharded harvest, each account in one shard."""
    world = World(WorldSpec(now=NOW, seed=4, accounts=9, media_per_account=6, tokens=4))
    whole_config, env = discover_config(world, tmp_path / "whole", every_table(world))
    whole, summary = await discover_harvest(world, whole_config, env)
    assert summary.exit_code == 0, summary.render()
    config = msgspec.structs.replace(
        whole_config, output=msgspec.structs.replace(whole_config.output, path=str(tmp_path / "out")),
        state=msgspec.structs.replace(whole_config.state, path=str(tmp_path / "s.sqlite")))
    shards = assign({name: token_key(env[name]) for name in config.token_keys()}, 3)
    assert len(set(shards.values())) > 1
    discovered: dict[str, list[str]] = {}
    for index in range(3):
        shard = Shard(index, 3)
        transport = TokensSeen(Simulator(world))
        async with Harvester.pinned(sharded(config, shard), tokens=env, transport=transport, now=world.now,
                             shard=shard) as h:
            assert (await h.run()).exit_code == 0
        assert set(h.discovered) == {name for name, i in shards.items() if i == index and name in whole.discovered}
        assert transport.keys <= {token_key(env[name]) for name, i in shards.items() if i == index}
        discovered.update(h.discovered)
    assert discovered == whole.discovered
    merge([tmp_path / "out" / f"shard-{i}-of-3" for i in range(3)], tmp_path / "out")
    for stream in STREAMS:
        assert _current(tmp_path / "out", stream) == _current(tmp_path / "whole" / "out", stream), stream


def test_a_shards_backfill_estimate_counts_its_own_tokens_only(tmp_path, capsys, monkeypatch, present):
    world = World(WorldSpec(now=NOW, seed=35, accounts=10))
    env = token_env(world)
    for name, token in env.items():
        monkeypatch.setenv(name, token)
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")     # nothing is called
    shards = assign({name: token_key(token) for name, token in env.items()}, 2)
    today = from_unix(int(present))
    since, until = str(today - timedelta(days=60)), str(today)
    for index in range(2):
        assert main(["backfill", "--config", str(config), "--since", since, "--until", until,
                     "--estimate", "--shard", f"{index}/2"]) == 0
        out = capsys.readouterr().out
        listed = {line.split()[0] for line in out.splitlines() if line.startswith("  TOKEN_")}
        assert listed == {name for name, i in shards.items() if i == index}
