"""``harvester webhook`` as a process: its config errors, and a SIGKILL during a burst of the
simulator's deliveries followed by their redelivery, after which every story is stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harvester.cli import main
from harvester.config import load_config
from harvester.ports import free_port
from harvester.records import natural_key
from harvester.simulator import webhooks as sim
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import factory

from support import NOW

SECRET = "process-test-secret"


def write_config(directory: Path, port: int, fmt: str = "jsonl", *, output: Path | None = None,
                 state: str = "state.sqlite") -> Path:
    path = directory / "webhook.toml"
    path.write_text(f"""
[window]
days = 1
[output]
format = "{fmt}"
path = "{output or directory / 'out'}"
schema = "webhook_{os.getpid()}_{directory.name[-20:].lower().replace('-', '_')}"
[state]
path = "{directory / state}"
[[accounts]]
id = "17841400000000000"
token_env = "UNUSED"
[webhook]
port = {port}
verify_token_env = "T_VERIFY"
[app]
secret_env = "T_SECRET"
""")
    return path


def test_missing_secrets_are_a_config_error_naming_the_variables(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("T_SECRET", raising=False)
    monkeypatch.setenv("T_VERIFY", "v")
    assert main(["webhook", "--config", str(write_config(tmp_path, 0))]) == 2
    err = capsys.readouterr().err
    assert "[app] secret_env = 'T_SECRET': the variable is not set" in err and "Traceback" not in err


def test_a_config_without_webhook_table_says_what_is_expected(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[window]\ndays = 1\n[[accounts]]\nid = "17841400000000000"\ntoken_env = "X"\n')
    assert main(["webhook", "--config", str(path)]) == 2
    assert "[webhook] is missing" in capsys.readouterr().err


def test_a_duckdb_file_another_process_holds_is_exit_2_naming_the_one_writer_rule(tmp_path, capsys, monkeypatch):
    database = tmp_path / "insights.duckdb"
    hold = f"import duckdb, time; db = duckdb.connect({str(database)!r}); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    monkeypatch.setenv("T_SECRET", "s")
    monkeypatch.setenv("T_VERIFY", "v")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code = main(["webhook", "--config", str(write_config(tmp_path, 0, "duckdb", output=database))])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "in use by another process" in err and "Harvester.webhook_app()" in err, err


class Process:
    def __init__(self, directory: Path, fmt: str = "jsonl"):
        self.directory, self.port = directory, free_port()
        self.config = write_config(directory, self.port, fmt)
        self.output = load_config(self.config, check_tokens=False).output
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "T_SECRET": SECRET, "T_VERIFY": "v"}
        log = open(self.directory / "receiver.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "harvester", "webhook", "--config", str(self.config)],
                                     env=env, stdout=log, stderr=log)
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError((self.directory / "receiver.log").read_text())


@pytest.mark.slow
async def test_a_receiver_killed_mid_burst_stores_every_delivery_exactly_once(tmp_path, any_format):
    fmt = any_format
    world = World(WorldSpec(now=NOW, seed=9, accounts=60, media_per_account=0, stories_per_account=6, few_viewers=0.0))
    items = sim.deliveries(world)
    receiver = Process(tmp_path, fmt)
    await asyncio.to_thread(receiver.start)
    sender = sim.Sender(f"http://127.0.0.1:{receiver.port}/webhook", SECRET.encode(), concurrency=32,
                        backoff=sim.Backoff(first=0.05, most=1.0, attempts=60))
    task = asyncio.ensure_future(sender.send(items, hostile=("replay",)))
    while len(sender.latencies) < len(items) // 3:
        await asyncio.sleep(0.005)
    assert receiver.proc is not None
    receiver.proc.send_signal(signal.SIGKILL)
    receiver.proc.wait()
    acknowledged_before_kill = len(sender.latencies)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(receiver.start)
    results = await task
    receiver.proc.send_signal(signal.SIGTERM)                   # publishes the segment
    assert receiver.proc.wait(timeout=60) == 0
    assert all(a.delivered for a in results)
    assert acknowledged_before_kill < len(items)
    assert any(len(a.statuses) > 1 for a in results)           # some were delivered again
    records = list(factory.current_records(receiver.output, "insights"))
    got = {natural_key(r): r["value"] for r in records}
    assert len(records) == len(got)                             # no key twice
    assert got == sim.expected(world)


def test_the_sender_cli_says_what_is_wrong(capsys, monkeypatch):
    from harvester.simulator.cli import main as simulate
    monkeypatch.setenv("S", "x")
    assert simulate(["webhooks", "--url", "http://127.0.0.1:9/webhook", "--secret-env", "S", "--hostile", "nope"]) == 2
    assert "--hostile nope: unknown" in capsys.readouterr().err
    monkeypatch.delenv("S")
    assert simulate(["webhooks", "--url", "http://127.0.0.1:9/webhook", "--secret-env", "S"]) == 2
    assert "--secret-env S: the variable is not set" in capsys.readouterr().err
