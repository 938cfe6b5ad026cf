"""The command line as users run it: backfill, status, validate, exit codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.cli import main
from harvester.days import from_unix
from harvester.simulator.pipeline import SimulatorSettings
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest

from support import NOW, assert_matches_truth, token_env
from test_resume import harvester, write_config


def test_backfill_older_than_two_years_is_refused_before_any_call(tmp_path, capsys, monkeypatch, present):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    monkeypatch.setenv("TOKEN_0", "x")
    monkeypatch.setenv("TOKEN_1", "y")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    today = from_unix(int(present))
    code = main(["backfill", "--config", str(config), "--since", str(today - timedelta(days=800)),
                 "--until", str(today - timedelta(days=700))])
    err = capsys.readouterr().err
    assert code == 2
    assert f"is older than the two years the API keeps (earliest allowed: {today - timedelta(days=730)})" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "state.sqlite").exists()


def test_bad_dates_and_unknown_commands_exit_2(tmp_path, capsys):
    assert main(["backfill", "--config", "x.toml", "--since", "2026-13-01", "--until", "2026-01-01"]) == 2
    assert "'2026-13-01' is not a date; use YYYY-MM-DD" in capsys.readouterr().err
    assert main(["harvest"]) == 2
    assert main([]) == 2


def test_status_without_runs(tmp_path, capsys, monkeypatch):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    assert main(["status", "--config", str(config)]) == 0
    assert "no runs yet" in capsys.readouterr().err


@pytest.mark.slow
async def test_backfill_estimates_then_harvests_and_status_reports(tmp_path, simulator_server):
    world = World(WorldSpec(seed=6, accounts=4, media_per_account=20, now=NOW))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    today = from_unix(int(world.now))
    since, until = today - timedelta(days=45), today - timedelta(days=5)
    proc = await harvester("backfill", "--config", str(config), "--since", str(since), "--until", str(until),
                           env=token_env(world), capture=True)
    stdout, stderr = (b.decode() for b in await proc.communicate())
    assert proc.returncode == 0, stderr
    assert "estimate at 1000000 calls per token per 3600 s" in stdout        # on stdout: it is the answer
    assert "4 accounts the state has not seen assumed at 100 feed posts each (--media-per-account)" in stdout
    assert "all tokens in parallel: at least 0.0 s" in stdout
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), expected_records(world, since, until))

    proc = await harvester("status", "--config", str(config), env={}, capture=True)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0
    assert "backfill" in out and "finished" in out and f"{since} .. {until}" in out


def _config_with_paths(tmp_path, monkeypatch, *, output: str, state: str):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    for t in world.tokens:
        monkeypatch.setenv(f"TOKEN_{t.index}", "x")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    text = config.read_text()
    text = text.replace(f'path = "{tmp_path / "out"}"', f'path = "{output}"')
    text = text.replace(f'path = "{tmp_path / "state.sqlite"}"', f'path = "{state}"')
    config.write_text(text)
    return config


def _runs(state_path) -> list:
    from harvester.state.store import StateStore
    store = StateStore(state_path)
    try:
        return store.runs()
    finally:
        store.close()


def test_an_output_path_under_a_regular_file_is_a_message_in_validate_and_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "file" / "out"),
                                state=str(tmp_path / "state.sqlite"))
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert (f"[output] path = '{tmp_path / 'file' / 'out'}': cannot create the directory "
            f"{tmp_path / 'file' / 'out'}: {tmp_path / 'file'} is a regular file") in err
    assert not (tmp_path / "state.sqlite").exists()               # validate creates nothing
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "[output] path" in err and "Not a directory" in err and "Traceback" not in err
    assert _runs(tmp_path / "state.sqlite") == []                 # nothing marked running


def test_an_output_path_that_cannot_be_created_is_a_message(tmp_path, capsys, monkeypatch):
    config = _config_with_paths(tmp_path, monkeypatch, output="/proc/harvester-out",
                                state=str(tmp_path / "state.sqlite"))
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "[output] path = '/proc/harvester-out': cannot be used: " in err
    assert "Traceback" not in err
    assert _runs(tmp_path / "state.sqlite") == []


def test_a_state_path_that_is_a_directory_is_a_message_in_validate_and_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "state").mkdir()
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "out"), state=str(tmp_path / "state"))
    assert main(["validate", "--config", str(config)]) == 2
    assert f"[state] path = '{tmp_path / 'state'}': {tmp_path / 'state'} is a directory" in capsys.readouterr().err
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'state'} is a directory" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_validate_accepts_paths_that_can_be_created(tmp_path, capsys, monkeypatch):
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "a" / "out"),
                                state=str(tmp_path / "b" / "state.sqlite"))
    assert main(["validate", "--config", str(config)]) == 0, capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_status_rejects_runs_below_one(tmp_path, capsys):
    assert main(["status", "--config", "x.toml", "--runs", "0"]) == 2
    assert "argument --runs: '0' is not a whole number >= 1" in capsys.readouterr().err
    assert main(["status", "--config", "x.toml", "--runs", "-3"]) == 2


@pytest.mark.slow
async def test_a_stopped_run_shows_its_exit_code_and_the_finished_one_lists_every_outcome(tmp_path, simulator_server):
    import asyncio
    import signal

    import msgspec

    from test_resume import checkpointed

    world = World(WorldSpec(seed=4, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    env = token_env(world)
    proc = await harvester("run", "--config", str(config), env=env)
    while checkpointed(tmp_path / "state.sqlite") == 0:
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert await proc.wait() == 143, (await proc.stderr.read()).decode()
    proc = await harvester("status", "--config", str(config), env={}, capture=True)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0
    assert " stopped " in out and out.splitlines()[1].endswith("/ 143"), out

    proc = await harvester("run", "--config", str(config), env=env)
    stderr = (await proc.stderr.read()).decode()
    assert await proc.wait() == 0, stderr
    assert "attempts: 2" in stderr
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    summary = msgspec.json.decode((run_dir / "summary.json").read_bytes())
    assert summary["attempts"] == 2 and summary["outcomes_file"] == "outcomes.jsonl"
    lines = [msgspec.json.decode(line) for line in (run_dir / "outcomes.jsonl").read_bytes().splitlines()]
    skipped = [o for o in lines if o["outcome"] == "skipped"]
    total = summary["units"]["skipped"]                      # over both attempts
    assert sum(summary["skipped_by_reason"].values()) == total == len(summary["skipped"]) + summary["skipped_left_out"]
    assert 0 < len(skipped) <= total                         # the file: every one of the last attempt
    assert {"code", "subcode", "type", "message", "reason", "label"} <= skipped[0].keys()
