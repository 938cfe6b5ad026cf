"""Helpers shared by the tests (no test file imports another): a configuration for a simulated
world, reading a run's output back, the comparison with the simulator's ground truth, transports
that note or bend what they carry, records and fixtures for the sinks, discovery configurations,
and the report's world."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import random
import signal
import sqlite3
import sys
from collections.abc import Iterable, Mapping
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import msgspec
import orjson
import pytest

from harvester import Harvester, catalog
from harvester.commands import demo
from harvester.commands.demo import check_streams, compare, demo_config
from harvester.config import Config, Selection, Window, parse_config
from harvester.days import from_unix, parse_iso
from harvester.graph.flatten import flatten
from harvester.graph.transport import Response
from harvester.plan import units as plan
from harvester.records import AccountRecord, InsightRecord, MediaRecord, key_of, natural_key
from harvester.simulator.api import GraphApi
from harvester.simulator.faults import HTML_503
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.state.store import StateStore

_line = msgspec.json.Decoder(dict)

SHIFT_ENV = "HARVESTER_TEST_SHIFT_HOURS"
BASE_NOW = 1_795_132_800.0
"""2026-11-20T00:00Z: the present of every test world, so that no test follows the hour it runs at."""


def _shift_hours() -> float:
    raw = os.environ.get(SHIFT_ENV, "0").strip() or "0"
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{SHIFT_ENV}={raw!r} is not a number of hours (e.g. 0, 7 or -3.5)") from None


NOW = BASE_NOW + _shift_hours() * 3600
"""The present of every test world: :data:`BASE_NOW` moved by ``HARVESTER_TEST_SHIFT_HOURS`` hours,
to run the suite as if at another hour (of the day, of a Pacific day, of a week)."""
PRESENT = Path(__file__).with_name("present.py")


def harvester_command(*args: str) -> list[str]:
    """``harvester ARGS`` in a subprocess whose clock starts at :data:`NOW` (tests/present.py), so
    that it harvests a pinned world as that world's present sees it."""
    return [sys.executable, str(PRESENT), *args]


def token_env(world) -> dict[str, str]:
    """One environment variable per simulated token: ``TOKEN_<index>`` (as :func:`world_config`)."""
    return {f"TOKEN_{t.index}": t.token for t in world.tokens}


def world_config(world, output: Path, *, days: int = 3, calls_per_window: int = 1_000_000,
                 window_seconds: float = 3600, base_url: str = "http://simulator",
                 **tables) -> tuple[Config, dict[str, str]]:
    """A parsed configuration harvesting every account of ``world`` over its last ``days`` days
    (no rate-limit margin: the simulator's clock is the harvest's)."""
    rate_limit = {"margin_seconds": 0, **tables.pop("rate_limit", {})}
    return demo.world_config(world, output, base_url=base_url, days=days, calls_per_window=calls_per_window,
                             window_seconds=window_seconds, path="<test>", rate_limit=rate_limit, **tables)


async def stopped_after(harvester: Harvester, units_done: int, **stop: Any):
    """``harvester.run()``, stopped (``stop(**stop)``) once ``units_done`` units are done, or its
    summary if it ended before."""
    task = asyncio.ensure_future(harvester.run())
    while harvester.stats.get("units/done") < units_done and not task.done():
        await asyncio.sleep(0.05)
    harvester.stop(**stop)
    return await task


def read_records(paths: Iterable[Path]) -> list[dict]:
    records = []
    for path in paths:
        with open(path, "rb") as f:
            records += [_line.decode(line) for line in f]
    return records


def run_records(output: Path, run_id: str, stream: str = "insights") -> list[dict]:
    return read_records(sorted((output / run_id / stream).glob("part-*.jsonl")))


def assert_matches_truth(records: list[dict], truth: dict) -> dict[str, int]:
    result = compare(records, truth)
    assert result == {"expected": len(truth), "found": len(truth), "missing": 0, "extra": 0, "wrong": 0,
                      "duplicates": 0}, result
    return result


def streams_truth(world, config: Config, day: date) -> dict[str, dict]:
    """What a harvest of ``world`` yields in each stream; its accounts records are of ``day``, the
    UTC day the harvest ran (the harvest's clock, not the world's)."""
    from harvester.simulator.truth import expected_accounts, expected_media
    accounts = [a.id for a in config.accounts]
    return {"insights": expected_records(world, config.window.since, config.window.until),
            "media": expected_media(world, accounts=accounts),
            "accounts": expected_accounts(world, day, accounts=accounts)}


def assert_each_stream_matches(rows: Mapping[str, list[dict]], truth: Mapping[str, dict]) -> None:
    """Each stream's records read back equal its ground truth (:func:`assert_matches_truth`)."""
    for stream, expected in truth.items():
        assert_matches_truth(rows[stream], expected)


def assert_streams_match(output: Path, world, config: Config | Path, env: dict[str, str] | None = None,
                         **kwargs) -> dict[str, dict[str, int]]:
    """Every stream of the published output equals the simulator's ground truth (``config``: a
    parsed one, or the TOML file a test wrote, read with ``env``)."""
    if isinstance(config, Path):
        from harvester.config import load_config
        config = load_config(config, env=env, today=from_unix(int(world.now)))    # the world's days
    results = check_streams(output, world, config, **kwargs)
    for stream, result in results.items():
        expected = result["expected"]
        assert expected > 0 and result == {"expected": expected, "found": expected, "missing": 0, "extra": 0,
                                           "wrong": 0, "duplicates": 0}, (stream, result)
    return results


def config_toml(config: Config) -> str:
    """The TOML of what :func:`world_config` sets (graph, rate limit, window, output, state, the
    accounts with their tokens' login), for a test that runs a command on a file."""
    accounts = "".join(f'[[accounts]]\nid = "{a.id}"\ntoken_env = "{a.token_env}"\nlogin = "{a.login}"\n'
                       for a in config.accounts)
    return (f'[graph]\nbase_url = "{config.graph.base_url}"\n'
            f'instagram_base_url = "{config.graph.instagram_base_url}"\n'
            f'[rate_limit]\ncalls_per_window = {config.rate_limit.calls_per_window}\nmargin_seconds = 0\n'
            f'[window]\nsince = "{config.window.since}"\nuntil = "{config.window.until}"\n'
            f'[output]\npath = "{config.output.path}"\n[state]\npath = "{config.state.path}"\n{accounts}')


# -- transports that note or bend what they carry --------------------------------------------------


class Recording(SimulatorTransport):
    """The in-memory transport, noting each call's path, query and status."""

    def __init__(self, simulator):
        super().__init__(simulator)
        self.calls: list[tuple[str, str, int]] = []

    async def get(self, url, headers):
        response = await super().get(url, headers)
        path, _, query = url.partition("?")
        self.calls.append((path.rsplit("/v25.0/", 1)[1], query, response.status))
        return response


class Outage(SimulatorTransport):
    """The simulator, but every call from the ``after``-th on is an HTML 503 while ``down``."""

    def __init__(self, simulator: Simulator, after: int):
        super().__init__(simulator)
        self.after, self.calls, self.down = after, 0, True

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        self.calls += 1
        if self.down and self.calls > self.after:
            return Response(503, {"content-type": "text/html"}, HTML_503)
        return await super().get(url, headers)


async def harvest_with_state(config, env, transport, world, *, now=None):
    """A harvest of ``world`` through ``transport`` on the config's state file (``now``: the
    harvest's present, the world's by default); the harvester and its summary."""
    state = StateStore(config.state.path)
    try:
        async with Harvester.pinned(config, tokens=env, transport=transport, state=state,
                             now=world.now if now is None else now) as harvester:
            summary = await harvester.run()
    finally:
        state.close()
    return harvester, summary


# -- truths and checks -----------------------------------------------------------------------------


def truth_of(world, config, accounts=None):
    return expected_records(world, config.window.since, config.window.until, accounts=accounts)


def assert_no_token_anywhere(tokens, directory: Path, caplog, *objects) -> None:
    blobs = [p.read_bytes() for p in directory.rglob("*") if p.is_file()]
    blobs += [r.getMessage().encode() for r in caplog.records]
    blobs += [repr(o).encode() + str(o).encode() for o in objects]
    for token in tokens:
        assert not any(token.encode() in blob for blob in blobs)


SKIPPED = {(100, 2108006), (10, None), (-1, 2207086)}
"""The errors a planned unit may legitimately meet: posted before the conversion, too few viewers,
not shared to Facebook (the call of the metrics that need it)."""


def _listed(api, token, account, edge):
    query = {"fields": "id,media_type,media_product_type,timestamp", "limit": "4"}
    while True:
        page = orjson.loads(api.handle(f"/v25.0/{account}/{edge}", query, token, "http://sim").body)
        yield from page["data"]
        following = page.get("paging", {}).get("next")
        if not following:
            return
        query = {k: v for k, v in parse_qsl(urlsplit(following).query) if k != "access_token"}


def call_by_call(world, since, until, totals="day"):
    """Every unit of the planner for every account of a live token, called on the simulator's API
    one by one and flattened (``{natural key: value}``); the skips met (each one of SKIPPED)."""
    api, selection, window = GraphApi(world), Selection(), Window(since, until, totals)
    found, skipped = {}, []
    for token in (t for t in world.tokens if not t.revoked):
        for account in token.account_ids:
            node = orjson.loads(api.handle(f"/v25.0/{account}", {"fields": "followers_count"}, token, "http://sim").body)
            units = plan.account_units(account, node["followers_count"], window, selection, world.now)
            for edge in ("media", "stories"):
                for item in _listed(api, token, account, edge):
                    product = "STORY" if edge == "stories" else item["media_product_type"]
                    units += plan.media_units(account, item["id"], item["media_type"], product,
                                              parse_iso(item["timestamp"]), selection, world.now, token.kind)
            for unit in units:
                reply = api.handle(f"/v25.0/{unit.path}", dict(unit.params), token, "http://sim")
                if reply.status != 200:
                    error = orjson.loads(reply.body)["error"]
                    assert (error["code"], error.get("error_subcode")) in SKIPPED, (unit.label, error)
                    skipped.append((error["code"], error.get("error_subcode")))
                    continue
                for record in flatten(reply.body, unit.ctx):
                    key = natural_key(record)
                    assert key not in found
                    assert key_of(msgspec.json.decode(msgspec.json.encode(record))) == key
                    found[key] = record.value
    return found, skipped


# -- records for the sinks' tests ------------------------------------------------------------------


def insight(i: int, value: float = 1, **fields) -> InsightRecord:
    return InsightRecord(account_id="1", object_id=f"m{i}", object_type="media", metric="reach", period="day",
                         metric_type="time_series", since="2026-10-01T00:00:00+0000",
                         until="2026-10-02T00:00:00+0000", end_time="2026-10-01T07:00:00+0000",
                         dimension_keys=("follow_type",), dimension_values=("FOLLOWER",), value=value,
                         run_id="r1", harvested_at="2026-10-02T12:00:00+0000", **fields)


MEDIA_RECORD = MediaRecord(media_id="9", account_id="1", media_type="CAROUSEL_ALBUM",
                           timestamp="2026-09-30T10:11:12+0000", caption=None, like_count=None, comments_count=4,
                           is_comment_enabled=True, children_ids=("91", "92"), children_types=("IMAGE", "VIDEO"),
                           run_id="r1")
ACCOUNT_RECORD = AccountRecord(account_id="1", day="2026-10-02", username="a", followers_count=10, run_id="r1")

SINKS = ("jsonl", "duckdb", "parquet")
"""The formats every exactly-once test runs with: file sinks (segments published) and a database;
the kill tests run with PostgreSQL too (:func:`any_format`)."""


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the session's tests; in CI (``CI=true``) a missing
    PostgreSQL or asyncpg fails, elsewhere it skips."""
    from harvester.sinks import pgserver
    if pgserver.binaries() is None or importlib.util.find_spec("asyncpg") is None:
        message = "PostgreSQL or asyncpg is not installed: make install installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with pgserver.TempServer() as server:
        yield server


class PG(msgspec.Struct):
    """A PostgreSQL server and a schema of its own for one test."""

    server: Any
    """The ``pgserver.TempServer``."""
    dsn: str
    schema: str

    def sql(self, query: str) -> str:
        return self.server.psql("harvester", query).strip()


_schemas = itertools.count()


@pytest.fixture
def pg(pg_server, monkeypatch) -> PG:
    """A fresh schema per test, its DSN in HARVESTER_PG_DSN."""
    monkeypatch.setenv("HARVESTER_PG_DSN", pg_server.dsn)
    return PG(pg_server, pg_server.dsn, f"t{os.getpid()}_{next(_schemas)}")


@pytest.fixture(params=[*SINKS, pytest.param("postgres", marks=pytest.mark.slow)])
def any_format(request, monkeypatch) -> str:
    """Every format; for ``postgres`` a server (a few seconds to start: slow), its DSN in ``HARVESTER_PG_DSN``."""
    if request.param == "postgres":
        monkeypatch.setenv("HARVESTER_PG_DSN", request.getfixturevalue("pg_server").dsn)
    return request.param


# -- discovery -------------------------------------------------------------------------------------

IG_HOST = "http://instagram.simulator"


def discover_config(world, tmp_path, discover, accounts=(), env=None, **extra):
    today = from_unix(int(world.now))
    raw = demo_config("http://simulator", {}, tmp_path / "out", today, days=2, calls_per_window=1_000_000)
    raw["graph"]["instagram_base_url"] = IG_HOST
    raw["rate_limit"]["margin_seconds"] = 0
    raw["discover"] = list(discover)
    raw["accounts"] = list(accounts)
    if not accounts:
        del raw["accounts"]
    raw.update(extra)
    env = env or token_env(world)
    return parse_config(raw, path="<test>", env=env, today=today), env


def every_table(world):
    return [{"token_env": f"TOKEN_{t.index}", "login": t.kind} for t in world.tokens]


async def discover_harvest(world, config, env, transport=None):
    transport = transport or SimulatorTransport(Simulator(world))
    state = StateStore(config.state.path)
    async with Harvester.pinned(config, tokens=env, transport=transport, state=state, now=world.now) as harvester:
        summary = await harvester.run()
    state.close()
    return harvester, summary


# -- the report's world ----------------------------------------------------------------------------

REPORT_TZ = "Europe/Berlin"
REPORT_DAYS = 14
REPORT_NOW = 1796126400.0
"""The report worlds' present, 2026-12-01 12:00 UTC: the report tests' edge cases hold for it (a
world's present is otherwise the current hour, and which account posted in the last week moves
with it)."""


def report_harvest(world, output, *, days: int = REPORT_DAYS, at: float | None = None, exit_code: int = 0):
    """Every account of ``world`` harvested in memory (``at``: the harvest's present)."""
    config, env = world_config(world, output, days=days)
    config = msgspec.structs.replace(config, refresh=msgspec.structs.replace(config.refresh, enabled=False))

    async def run():
        state = StateStore(config.state.path)
        transport = SimulatorTransport(Simulator(world, SimulatorSettings(calls_per_window=10**9)))
        async with Harvester.pinned(config, tokens=env, transport=transport, state=state,
                                    now=world.now if at is None else at) as harvester:
            summary = await harvester.run()
        state.close()
        assert summary.exit_code == exit_code, summary.render()

    asyncio.run(run())
    return config


def report_accounts(world, config):
    """The config's accounts of the world's live tokens."""
    wanted = {a.id for a in config.accounts}
    return [a for a in world.accounts_of_live_tokens() if a.id in wanted]


def local_day(ts: int) -> date:
    """The report's day of a Unix time (in REPORT_TZ)."""
    return datetime.fromtimestamp(ts, ZoneInfo(REPORT_TZ)).date()


def posts_of(world, account):
    return [world.media(account, n) for n in range(world.listed_media(account))]


def has_insights(world, media) -> bool:
    if media.viewers is not None:
        return media.viewers >= catalog.STORY_MIN_VIEWERS
    return not world.before_conversion(media)


# -- the CLI in a subprocess, killed or not --------------------------------------------------------


def write_config(path: Path, world, base_url: str, *, days: int = 3, commit_seconds: float = 0.2,
                 output_format: str = "jsonl") -> Path:
    accounts = "".join(f'[[accounts]]\nid = "{a}"\ntoken_env = "TOKEN_{t.index}"\nlogin = "{t.kind}"\n\n'
                       for t in world.tokens for a in t.account_ids)
    path.write_text(f"""
[graph]
base_url = "{base_url}"
instagram_base_url = "{base_url}"
api_version = "v25.0"

[rate_limit]
calls_per_window = 1000000
window_seconds = 3600
margin_seconds = 0

[window]
days = {days}

[output]
format = "{output_format}"
path = "{path.parent / 'out'}"
commit_seconds = {commit_seconds}

[state]
path = "{path.parent / 'state.sqlite'}"

{accounts}""")
    return path


async def harvester(*args: str, env: dict[str, str], capture: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *harvester_command(*args), env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


def checkpointed(state: Path) -> int:
    """Units the state store has checkpointed so far (read beside the writer: SQLite WAL)."""
    if not state.exists():
        return 0
    try:
        with closing(sqlite3.connect(state, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.Error:
        return 0


async def kill_mid_run(proc: asyncio.subprocess.Process, state: Path, server, rng: random.Random) -> bool:
    """SIGKILL ``proc`` after its next checkpoint, when the simulator has received a drawn number
    (1 to 40) of further calls: a point in the harvest, not in real time, so a slow or loaded
    machine kills at the same call, with calls in flight (the simulator's latency holds each).
    False if it finished first (the signal may find it exited but not yet reaped)."""
    before = checkpointed(state)
    while checkpointed(state) <= before and proc.returncode is None:
        await asyncio.sleep(0.05)
    target = server.simulator.counters.calls + rng.randint(1, 40)
    while server.simulator.counters.calls < target and proc.returncode is None:
        await asyncio.sleep(0.002)
    if proc.returncode is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return await proc.wait() == -signal.SIGKILL      # not if it had exited, unreaped, before the signal


def freeze_at_call(server, proc: asyncio.subprocess.Process, call: int) -> asyncio.Event:
    """SIGSTOP ``proc`` when its ``call``-th call reaches ``server``, before that call is answered: the
    harvest is frozen mid-way at the same point however fast the machine (it cannot finish while
    the call waits); the event is set then. SIGCONT lets it go on."""
    frozen = asyncio.Event()
    serve, seen = server.simulator.serve, 0

    async def serving(*args, **kwargs):
        nonlocal seen
        seen += 1
        if seen == call and proc.returncode is None:
            proc.send_signal(signal.SIGSTOP)
            frozen.set()
        return await serve(*args, **kwargs)

    server.simulator.serve = serving
    return frozen


async def run_with_kills(config: Path, env: dict[str, str], server, rng: random.Random,
                         kills: int) -> tuple[int, int]:
    """Start ``harvester run`` against ``server``; SIGKILL it ``kills`` times in the middle; then let
    it finish."""
    killed = 0
    while True:
        proc = await harvester("run", "--config", str(config), env=env)
        if killed < kills and await kill_mid_run(proc, config.parent / "state.sqlite", server, rng):
            killed += 1
            continue
        stderr = await proc.stderr.read()
        code = await proc.wait()
        assert code in (0, 3), stderr.decode()
        return code, killed
