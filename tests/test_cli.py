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

from support import NOW, assert_matches_truth, harvester, token_env, write_config


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
    assert err.splitlines() == [
        f"error: --since {today - timedelta(days=800)} is older than the two years the API keeps (the earliest day "
        f"harvested whole: {today - timedelta(days=729)}, 729 days before today)"]     # the flag, not the file
    assert not (tmp_path / "out").exists() and not (tmp_path / "state.sqlite").exists()


def test_backfill_names_each_bad_flag_and_still_checks_the_file(tmp_path, capsys, monkeypatch, present):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    monkeypatch.setenv("TOKEN_0", "x")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    config.write_text("colour = \"blue\"\n" + config.read_text())
    today = from_unix(int(present))
    assert main(["backfill", "--config", str(config), "--since", str(today - timedelta(days=3)),
                 "--until", str(today + timedelta(days=2))]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"error: --until {today + timedelta(days=2)} is in the future (latest allowed: {today}, "
                        "today; until is exclusive)")
    assert any(line.startswith(f"error: {config}: ") and "colour" in line for line in lines[1:]), lines
    assert not any("[window]" in line for line in lines)


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
    said = capsys.readouterr().err
    assert (f"[output] path = '{tmp_path / 'file' / 'out'}': cannot create the directory "
            f"{tmp_path / 'file' / 'out'}: {tmp_path / 'file'} is a regular file") in said
    assert not (tmp_path / "state.sqlite").exists()               # validate creates nothing
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == said                        # one check, one message
    assert _runs(tmp_path / "state.sqlite") == []                 # nothing marked running


def test_an_output_path_in_proc_is_refused_by_validate_as_by_run(tmp_path, capsys, monkeypatch):
    """/proc says writable to root's os.access, and refuses a directory: validate finds out the way
    a run does (it tries, in the nearest existing directory, and leaves nothing), with one message."""
    config = _config_with_paths(tmp_path, monkeypatch, output="/proc/harvester-out",
                                state=str(tmp_path / "state.sqlite"))
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"error: {config}: [output] path = '/proc/harvester-out': cannot create the directory "
                           "/proc/harvester-out: ")
    assert "(creating in /proc)" in said and "Traceback" not in said
    assert not (tmp_path / "state.sqlite").exists()
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == said
    assert _runs(tmp_path / "state.sqlite") == []


def test_a_state_path_in_proc_is_refused_by_validate_as_by_run(tmp_path, capsys, monkeypatch):
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "out"),
                                state="/proc/harvester/state.sqlite")
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert "[state] path = '/proc/harvester/state.sqlite': cannot create the state file" in said
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == said
    assert not (tmp_path / "out").exists()


def test_a_state_file_that_is_not_sqlite_is_refused_by_validate_as_by_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "state.sqlite").write_bytes(b"not a database, not at all" * 100)
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "out"),
                                state=str(tmp_path / "state.sqlite"))
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert "[state] path = " in said and "not a harvester state file (file is not a database)" in said
    assert main(["run", "--config", str(config)]) == 2
    assert "not a harvester state file (file is not a database)" in capsys.readouterr().err
    assert (tmp_path / "state.sqlite").read_bytes() == b"not a database, not at all" * 100


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

    from support import freeze_at_call

    world = World(WorldSpec(seed=4, accounts=6, media_per_account=60, now=NOW))
    server = await simulator_server(world, SimulatorSettings(latency_ms=50, calls_per_window=10**9))
    config = write_config(tmp_path / "harvest.toml", world, server.url)
    env = token_env(world)
    proc = await harvester("run", "--config", str(config), env=env)
    await asyncio.wait_for(freeze_at_call(server, proc, 120).wait(), 120)     # mid-harvest, on any machine
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
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


def test_status_help_describes_shard_as_choosing_whose_runs_are_shown(capsys):
    assert main(["status", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--shard I/N the runs of shard I of N (0 <= I < N), from that shard's own state file" in shown
    assert "harvest " not in shown.replace("harvester status", "")
    assert main(["run", "--help"]) == 0
    assert "harvest only the tokens of shard I of N" in " ".join(capsys.readouterr().out.split())


def test_counts_of_one_are_singular_in_what_the_cli_prints(tmp_path, capsys, monkeypatch):
    world = World(WorldSpec(seed=1, accounts=1, now=1_796_000_000.0))
    monkeypatch.setenv("TOKEN_0", "x")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    assert main(["validate", "--config", str(config)]) == 0
    assert f"{config}: ok: 1 account over 1 token, window " in capsys.readouterr().out


def test_words_plural():
    from harvester.summary import plural
    assert [plural(n, "account") for n in (0, 1, 2, 1.0, 12_345)] == [
        "0 accounts", "1 account", "2 accounts", "1 account", "12,345 accounts"]
    assert (plural(1, "live story", "live stories"), plural(3, "entry"), plural(2, "media")) == (
        "1 live story", "3 entries", "2 media")


@pytest.mark.parametrize("out, says", [
    ("/proc/r.html", "cannot create a file in /proc: No such file or directory"),
    ("{tmp}/no-such-dir/r.html", "{tmp}/no-such-dir does not exist"),
    ("{tmp}", "{tmp} is a directory; expected a file path"),
])
def test_a_report_out_path_that_cannot_be_written_is_exit_2_before_the_report_is_built(tmp_path, capsys, out, says):
    world = World(WorldSpec(seed=1, accounts=1, now=1_796_000_000.0))
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")
    out, says = out.format(tmp=tmp_path), says.format(tmp=tmp_path)
    assert main(["report", "--config", str(config), "--out", out]) == 2
    assert capsys.readouterr().err == f"error: --out {out}: {says}\n"


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"harvester {version('harvester')}\n"


def test_a_postgres_output_without_its_dsn_variable_is_refused_by_validate_as_by_run(tmp_path, capsys, monkeypatch):
    """The check the sink makes (config.dsn.dsn_problem), asked by validate before anything: no server needed."""
    pytest.importorskip("asyncpg")
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "out"),
                                state=str(tmp_path / "state.sqlite"))
    config.write_text(config.read_text().replace('format = "jsonl"', 'format = "postgres"\ndsn_env = "NO_DSN_HERE"'))
    monkeypatch.delenv("NO_DSN_HERE", raising=False)
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert said == (f'error: {config}: [output] dsn_env = "NO_DSN_HERE": the environment variable is not set; it '
                    "must hold the DSN of the PostgreSQL database, such as postgresql://USER@HOST:5432/DBNAME "
                    "(a password after USER, as USER:PASSWORD)\n")
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == said


def test_a_duckdb_output_that_is_no_duckdb_file_is_refused_by_validate_as_by_run(tmp_path, capsys, monkeypatch):
    pytest.importorskip("duckdb")
    (tmp_path / "out.duckdb").write_bytes(b"not a database" * 512)
    config = _config_with_paths(tmp_path, monkeypatch, output=str(tmp_path / "out.duckdb"),
                                state=str(tmp_path / "state.sqlite"))
    config.write_text(config.read_text().replace('format = "jsonl"', 'format = "duckdb"'))
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert f"[output] path = '{tmp_path / 'out.duckdb'}': cannot be opened as a DuckDB database: " in said
    assert main(["run", "--config", str(config)]) == 2
    assert "cannot be opened as a DuckDB database: " in capsys.readouterr().err
    assert (tmp_path / "out.duckdb").read_bytes() == b"not a database" * 512
