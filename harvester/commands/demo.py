"""``harvester demo``: a simulated world on loopback, harvested end to end, checked against truth.

Starts the simulator on a free port with faults on, harvests every account and media of its
world through the real HTTP client, then compares the records written with the simulator's
ground truth: the demo says how many records were expected, found, missing, extra or wrong.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path

import msgspec

from ..config import Config, parse_config
from ..days import from_unix
from ..records import Stream, key_of
from ..run.harvester import Harvester
from ..sinks import factory
from ..state.store import StateStore
from ..summary import plural


def demo_config(base_url: str, tokens: dict[str, tuple[str, ...]], output: Path, today, *,
                days: int = 3, calls_per_window: int = 200, window_seconds: float = 3600,
                output_format: str = "jsonl", logins: Mapping[str, str] | None = None) -> dict:
    """A configuration, as parsed TOML, for the world's accounts (one token variable per token;
    ``logins``: a token variable's login where it is not Facebook Login: the simulator serves
    both logins at ``base_url``)."""
    logins = logins or {}
    return {
        "graph": {"base_url": base_url, "instagram_base_url": base_url, "api_version": "v25.0"},
        "rate_limit": {"calls_per_window": calls_per_window, "window_seconds": window_seconds},
        "window": {"since": str(today - timedelta(days=days)), "until": str(today)},
        "output": {"format": output_format, "path": str(output)},
        "state": {"path": str(output / "state.sqlite")},
        "accounts": [{"id": account, "token_env": env, **({"login": logins[env]} if env in logins else {})}
                     for env, accounts in tokens.items() for account in accounts],
    }


def world_config(world, output: Path, *, base_url: str = "http://simulator", days: int = 3,
                 calls_per_window: int = 200, window_seconds: float = 3600, output_format: str = "jsonl",
                 path: str = "<simulated world>", **tables) -> tuple[Config, dict[str, str]]:
    """A parsed configuration harvesting every account of a simulated ``world`` over its last
    ``days`` days, and the environment holding its tokens (``TOKEN_<index>``); ``tables`` are TOML
    tables merged over it (``scheduler={...}``, ``rate_limit={"margin_seconds": 0}``)."""
    env = {f"TOKEN_{t.index}": t.token for t in world.tokens}
    today = from_unix(int(world.now))
    raw = demo_config(base_url, {f"TOKEN_{t.index}": t.account_ids for t in world.tokens}, output, today,
                      days=days, calls_per_window=calls_per_window, window_seconds=window_seconds,
                      output_format=output_format,
                      logins={f"TOKEN_{t.index}": t.kind for t in world.tokens if t.kind != "facebook"})
    for name, table in tables.items():
        raw.setdefault(name, {}).update(table)
    return parse_config(raw, path=path, env=env, today=today), env


_RUN_FIELDS = ("stream", "run_id", "harvested_at")


def fact(record: dict) -> object:
    """What a record states, as the ground truth holds it: an insight's value; an object's fields
    (lists as tuples), without the run's metadata."""
    if record.get("stream", "insights") == "insights":
        return record["value"]
    return {k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k not in _RUN_FIELDS}


def compare(records: Iterable[dict], truth: dict) -> dict[str, int]:
    """Records of one stream against its ground truth: counts of each way they can differ."""
    found = {}
    duplicates = 0
    for record in records:
        key = key_of(record)
        duplicates += key in found
        found[key] = fact(record)
    wrong = sum(1 for k, v in found.items() if k in truth and truth[k] != v)
    return {"expected": len(truth), "found": len(found), "missing": len(truth.keys() - found.keys()),
            "extra": len(found.keys() - truth.keys()), "wrong": wrong, "duplicates": duplicates}


def expected_streams(world, config: Config, *, hostile: Iterable[str] = (), drift=None) -> dict[Stream, dict]:
    """Each stream's ground truth for a harvest of ``config`` (of a world whose API drifts: less
    the metrics it refuses)."""
    from ..simulator.drift import without_refused
    from ..simulator.truth import expected_accounts, expected_media, expected_records

    accounts = [a.id for a in config.accounts]
    insights = expected_records(world, config.window.since, config.window.until, totals=config.window.totals)
    return {"insights": insights if drift is None else without_refused(insights, world, drift),
            "media": expected_media(world, accounts=accounts, hostile=hostile),
            "accounts": expected_accounts(world, from_unix(int(world.now)), accounts=accounts)}


def check_streams(output: Path, world, config: Config, *, hostile: Iterable[str] = (),
                  drift=None) -> dict[str, dict[str, int]]:
    """Each stream of the published output against the simulator's ground truth (:func:`expected_streams`)."""
    settings = msgspec.structs.replace(config.output, path=str(output))
    return {stream: compare(factory.current_records(settings, stream), expected)
            for stream, expected in expected_streams(world, config, hostile=hostile, drift=drift).items()}


async def fetch_checked_streams(output: Path, world, config: Config, *, drift=None) -> dict[str, dict[str, int]]:
    """:func:`check_streams` on a running loop (the demo's): a database read through its async driver."""
    settings = msgspec.structs.replace(config.output, path=str(output))
    return {stream: compare(await factory.fetch_current_records(settings, stream), expected)
            for stream, expected in expected_streams(world, config, drift=drift).items()}


async def demo(args) -> int:
    from ..simulator.pipeline import SimulatorSettings
    from ..simulator.server import SimulatorServer
    from ..simulator.world import World, WorldSpec

    output = Path(args.output)
    shutil.rmtree(output, ignore_errors=True)
    world = World(WorldSpec(seed=args.seed, accounts=args.accounts, media_per_account=args.media_per_account))
    from ..simulator.drift import DEMO as DEMO_DRIFT
    drift = DEMO_DRIFT if getattr(args, "drift", False) else None
    settings = SimulatorSettings(faults=args.faults, calls_per_window=100_000, window_seconds=3600, drift=drift)
    started = time.monotonic()
    async with SimulatorServer(world, settings) as server:
        env = {f"DEMO_TOKEN_{t.index}": t for t in world.tokens}
        today = from_unix(int(world.now))
        raw = demo_config(server.url, {k: t.account_ids for k, t in env.items()}, output, today,
                          calls_per_window=100_000, output_format=args.format,
                          logins={k: t.kind for k, t in env.items() if t.kind != "facebook"})
        config = parse_config(raw, path="<demo>", env={k: t.token for k, t in env.items()}, today=today)
        print(f"simulator at {server.url}: {plural(len(world.tokens), 'token')}, "
              f"{plural(len(config.accounts), 'account')}, "
              f"faults {args.faults:.0%}" + (f", drift: {drift.describe()}" if drift else "")
              + f"; harvesting {config.window.since} .. {config.window.until}",
              file=sys.stderr)
        state = StateStore(config.state.path)
        async with Harvester.pinned(config, tokens={k: t.token for k, t in env.items()}, state=state,
                             now=world.now) as harvester:
            summary = await harvester.run()
        state.close()
        served = server.simulator.counters.snapshot()
    print(summary.render(), file=sys.stderr)
    results = await fetch_checked_streams(output, world, config, drift=drift)
    found = harvester.stats.counters
    print(f"harvested {plural(len(config.accounts), 'account')}, {int(found['discovered/media']):,} media and "
          f"{plural(int(found['discovered/stories']), 'live story', 'live stories')}; the simulator served "
          f"{plural(served.get('calls', 0), 'call')}, faults {served.get('faults', {})}", file=sys.stderr)
    for stream, result in results.items():
        print(f"ground truth, {stream}: " + ", ".join(f"{k} {v:,}" for k, v in result.items()), file=sys.stderr)
    print(f"harvested and checked in {time.monotonic() - started:.1f} s", file=sys.stderr)
    if config.output.format == "duckdb":
        _print_query(factory.database_file(config.output))
    ok = all(r["missing"] == r["extra"] == r["wrong"] == r["duplicates"] == 0 for r in results.values())
    print("demo: OK, every record of the ground truth with its exact value" if ok else "demo: MISMATCH",
          file=sys.stderr)
    reported = time.monotonic()
    print(f"report of the simulated world: {_report(config, output)} ({time.monotonic() - reported:.1f} s)",
          file=sys.stderr)
    print(f"{time.monotonic() - started:.1f} s in all, report included", file=sys.stderr)
    return 0 if ok and summary.exit_code == 0 else 1


def _report(config: Config, output: Path) -> str:
    """The report of the harvested window, beside the output (or why there is none)."""
    from ..errors import ConfigError
    from ..report import write
    try:
        return str(write(config, since=config.window.since, until=config.window.until, out=output / "report.html"))
    except ConfigError as exc:          # DuckDB not installed: say which extra brings it
        return "; ".join(exc.problems)


_QUERY = ("select media_type, count(*) as media, round(avg(like_count), 1) as avg_likes "
          "from media group by media_type order by media desc")


def _print_query(database: Path) -> None:
    """A query a person can run on the demo's file: with the DuckDB CLI, or Python's duckdb."""
    print(f"the records are in {database} (a table per stream: insights, media, accounts); try:\n"
          f"  duckdb {database} \"{_QUERY}\"\n"
          f"or, without the DuckDB CLI:\n"
          f"  {sys.executable} -c \"import duckdb; duckdb.connect('{database}', read_only=True)"
          f".sql('{_QUERY}').show()\"", file=sys.stderr)
