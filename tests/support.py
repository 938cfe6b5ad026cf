"""Helpers shared by the harvest tests: a configuration for a simulated world, reading a run's
output back, and the comparison with the simulator's ground truth."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import msgspec

from harvester.commands import demo
from harvester.commands.demo import check_streams, compare
from harvester.config import Config
from harvester.days import from_unix

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


PRESENT = Path(__file__).with_name("present.py")


def harvester_command(*args: str) -> list[str]:
    """``harvester ARGS`` in a subprocess whose clock starts at :data:`NOW` (tests/present.py), so
    that it harvests a pinned world as that world's present sees it."""
    return [sys.executable, str(PRESENT), *args]


def config_toml(config: Config) -> str:
    """The TOML of what :func:`world_config` sets (graph, rate limit, window, output, state, the
    accounts), for a test that runs a command on a file."""
    accounts = "".join(f'[[accounts]]\nid = "{a.id}"\ntoken_env = "{a.token_env}"\n' for a in config.accounts)
    return (f'[graph]\nbase_url = "{config.graph.base_url}"\n'
            f'[rate_limit]\ncalls_per_window = {config.rate_limit.calls_per_window}\nmargin_seconds = 0\n'
            f'[window]\nsince = "{config.window.since}"\nuntil = "{config.window.until}"\n'
            f'[output]\npath = "{config.output.path}"\n[state]\npath = "{config.state.path}"\n{accounts}')
