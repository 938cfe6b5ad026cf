"""Resume: the calls a harvest makes when it is SIGKILLed three times and then run to the end,
over the calls of an uninterrupted harvest of the same world (issue #10 point 3).

The simulator serves from a child process (``python -m harvester.simulator``) over loopback and
counts every call it answers (``/__simulator__/counters``). ``harvester run`` runs as a child
process with the configuration's defaults for checkpoints (``[output]`` sets nothing but the
path). First an uninterrupted harvest (its calls ``C``, its checkpointed units ``U``), then the
same harvest into another output and state: each of the first three attempts is SIGKILLed once it
has made ``KILL_AT[i]`` of the calls still owed when it started (estimated from the units it
found checkpointed: ``C * (1 - checkpointed / U)``), so the kills fall at spread moments of the
harvest whatever the machine's speed; the fourth attempt runs to the end. The figure is the calls
of the four attempts over ``C``; a crash that repeats no work would give 1.0.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import orjson

from bench.e2e import Server
from harvester.config import load_config
from harvester.days import from_unix
from harvester.simulator.world import World, WorldSpec

from .measure import BenchFailure, Outcome, Row, check_truth

SEED, ACCOUNTS, MEDIA, DAYS, LATENCY_MS = 41, 12, 400, 3, 4
KILL_AT = (0.5, 0.5, 0.5)
GOAL = 1.15
NO_LIMIT = 10**9


class Simulator(Server):
    """The e2e benchmark's simulator process, with a little latency per call."""

    def __init__(self, directory: Path, accounts: int, media: int, now: float):
        super().__init__(directory, accounts, media, "--latency", str(LATENCY_MS), seed=SEED, now=now)

    def calls(self) -> int:
        with urllib.request.urlopen(self.world["base_url"] + "/__simulator__/counters", timeout=10) as answer:
            return orjson.loads(answer.read())["calls"]


def write_config(directory: Path, world: dict, now: float) -> Path:
    """A harvest of every account over DAYS days, checkpoint settings left at their defaults."""
    directory.mkdir(parents=True)
    today = from_unix(int(now))
    accounts = "".join(f'[[accounts]]\nid = "{a}"\ntoken_env = "T{i}"\n'
                       + (f'login = "{t["kind"]}"\n' if t["kind"] != "facebook" else "") + "\n"
                       for i, t in enumerate(world["tokens"]) for a in t["accounts"])
    path = directory / "harvest.toml"
    path.write_text(f"""
[graph]
base_url = "{world['base_url']}"
instagram_base_url = "{world['base_url']}"
api_version = "v25.0"

[rate_limit]
calls_per_window = {NO_LIMIT}
window_seconds = 3600
margin_seconds = 0

[window]
since = "{today - timedelta(days=DAYS)}"
until = "{today}"

[output]
format = "jsonl"
path = "{directory / 'out'}"

[state]
path = "{directory / 'state.sqlite'}"

{accounts}""")
    return path


def checkpointed(state: Path) -> int:
    """Units the state store holds as done or skipped (read beside the writer: SQLite WAL)."""
    if not state.exists():
        return 0
    try:
        with closing(sqlite3.connect(state, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM units WHERE status IN ('done', 'skipped')").fetchone()[0]
    except sqlite3.Error:
        return 0


def start(config: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harvester", "run", "--config", str(config)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> None:
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise BenchFailure(f"resume: harvester run exited {proc.returncode}: {stderr.decode()[-2000:]}")


def uninterrupted(sim: Simulator, config: Path, env: dict[str, str]) -> tuple[int, int, float]:
    """Calls, checkpointed units and seconds of one harvest run to the end."""
    before, started = sim.calls(), time.monotonic()
    finish(start(config, env))
    return sim.calls() - before, checkpointed(config.parent / "state.sqlite"), time.monotonic() - started


def with_kills(sim: Simulator, config: Path, env: dict[str, str], calls: int, units: int) -> dict:
    """The same harvest killed in the middle of each of its first attempts, then finished."""
    state = config.parent / "state.sqlite"
    before, kills, checkpointed_before_kill = sim.calls(), 0, 0
    for fraction in KILL_AT:
        owed = calls * max(0.0, 1 - checkpointed(state) / units)
        at_start, units_at_start = sim.calls(), checkpointed(state)
        proc = start(config, env)
        while proc.poll() is None and sim.calls() - at_start < fraction * owed:
            time.sleep(0.01)
        if proc.poll() is not None:            # finished before the kill: nothing left to interrupt
            finish(proc)
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1
        checkpointed_before_kill += checkpointed(state) > units_at_start
    else:
        finish(start(config, env))
    return {"calls": sim.calls() - before, "kills": kills, "kills_after_a_checkpoint": checkpointed_before_kill}


def run(*, quick: bool = False) -> Outcome:
    accounts, media = (4, 100) if quick else (ACCOUNTS, MEDIA)
    # ``harvester run`` reads the wall clock: the world's present is this second (not the pinned NOW
    # of the other benchmarks), so that its stories, all posted within 23 hours of it, are still
    # live for the next hour of harvesting, and the ground truth is what the runs must find.
    now = int(time.time())
    world = World(WorldSpec(seed=SEED, accounts=accounts, media_per_account=media, now=now))  # the child's too
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        sim = Simulator(Path(tmp), accounts, media, now)
        try:
            env = {f"T{i}": t["token"] for i, t in enumerate(sim.world["tokens"])}
            whole, after_kills = write_config(Path(tmp) / "whole", sim.world, now), \
                write_config(Path(tmp) / "killed", sim.world, now)
            calls, units, seconds = uninterrupted(sim, whole, env)
            killed = with_kills(sim, after_kills, env, calls, units)
        finally:
            sim.close()
        for config, what in ((whole, "resume (uninterrupted)"), (after_kills, "resume (after the kills)")):
            check_truth(world, load_config(config, env=env), what, output=config.parent / "out")
    ratio = killed["calls"] / calls
    print(f"resume: {calls:,} calls ({units:,} units) in {seconds:.1f} s uninterrupted; "
          f"{killed['calls']:,} calls across {killed['kills']} kills and the finish", file=sys.stderr)
    results = {"calls_ratio_after_3_kills": ratio, "calls_uninterrupted": calls, "calls_with_kills": killed["calls"],
               "units": units, "kills": killed["kills"], "kills_after_a_checkpoint": killed["kills_after_a_checkpoint"],
               "seconds_uninterrupted": seconds}
    row = Row("resume: calls after 3 SIGKILLs", f"{killed['calls']:,} calls",
              f"{calls:,} (uninterrupted)", ratio, f"<= {GOAL}", ratio <= GOAL and killed["kills"] == 3)
    return Outcome(results, [row])
