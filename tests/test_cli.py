"""The command line as users run it: backfill, status, validate, exit codes."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from harvester.cli import main
from harvester.days import from_unix
from harvester.sinks import manifest
from harvester.simulator.server import SimulatorSettings
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec

from support import assert_matches_truth, token_env
from test_resume import harvester, write_config


def test_backfill_older_than_two_years_is_refused_before_any_call(tmp_path, capsys, monkeypatch):
    world = World(WorldSpec(seed=1, accounts=2))
    monkeypatch.setenv("TOKEN_0", "x")
    monkeypatch.setenv("TOKEN_1", "y")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    today = date.today()
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
    world = World(WorldSpec(seed=1, accounts=2))
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    assert main(["status", "--config", str(config)]) == 0
    assert "no runs yet" in capsys.readouterr().err


@pytest.mark.slow
async def test_backfill_estimates_then_harvests_and_status_reports(tmp_path, simulator_server):
    world = World(WorldSpec(seed=6, accounts=4, media_per_account=20, now=time.time()))
    server = await simulator_server(world, SimulatorSettings(calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    today = from_unix(int(world.now))
    since, until = today - timedelta(days=45), today - timedelta(days=5)
    proc = await harvester("backfill", "--config", str(config), "--since", str(since), "--until", str(until),
                           env=token_env(world))
    stderr = (await proc.stderr.read()).decode()
    assert await proc.wait() == 0, stderr
    assert "estimate at 1000000 calls per token per 3600 s" in stderr
    assert "all tokens in parallel: at least 0h00m" in stderr
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), expected_records(world, since, until))

    proc = await harvester("status", "--config", str(config), env={}, capture=True)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0
    assert "backfill" in out and "finished" in out and f"{since} .. {until}" in out
