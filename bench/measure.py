"""What every benchmark shares: rounds and medians, and the rows of the table.

The machines are shared and noisy, so a figure is never one absolute time: each benchmark
measures its baseline in the same run, in alternating rounds, and reports medians and ratios.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import orjson

RESULTS = Path(__file__).with_name("results.json")

NOW = 1795575600.0
"""2026-11-25T03:00:00Z: the present of every benchmark's world (``WorldSpec(now=NOW)``,
``--now`` of a simulator process). A world left to follow the current hour shifts media ages,
units and every seeded draw from one hour to the next: figures could not be compared between
runs, and a check could pass at one hour and fail at another."""


class BenchFailure(Exception):
    """A benchmark's own correctness check failed (records not the ground truth, a rolling window
    exceeded, a harvest that did not finish): its figures mean nothing, and ``python -m bench``
    exits non-zero. A goal missed (a figure too slow) is a row marked NO, never this."""


def check(condition: object, message: str) -> None:
    """Raise :class:`BenchFailure` with ``message`` unless ``condition`` holds (not ``assert``:
    ``python -O`` would drop it)."""
    if not condition:
        raise BenchFailure(message)


def check_truth(world, config, what: str, records: Callable[[str], Iterable[dict]] | None = None,
                output: Path | None = None) -> dict[str, int]:
    """Every stream a harvest of ``world`` with ``config`` wrote equals the simulator's ground
    truth (no record missing, extra, wrong or twice): ``records(stream)`` gives a stream's records
    as dicts, else they are read from what the run published (in ``output``, if given, else where
    ``config`` says). Returns the records of each stream."""
    from harvester.commands.demo import compare
    from harvester.days import from_unix
    from harvester.simulator.truth import expected_accounts, expected_media, expected_records
    from harvester.sinks import factory

    if records is None:
        settings = config.output if output is None else msgspec.structs.replace(config.output, path=str(output))
        records = lambda stream: factory.current_records(settings, stream)  # type: ignore[arg-type]  # noqa: E731
    accounts = [a.id for a in config.accounts]
    truth = {"insights": lambda: expected_records(world, config.window.since, config.window.until,
                                                  totals=config.window.totals),
             "media": lambda: expected_media(world, accounts=accounts),
             "accounts": lambda: expected_accounts(world, from_unix(int(world.now)), accounts=accounts)}
    found: dict[str, int] = {}
    for stream, expected in truth.items():
        result = compare(records(stream), expected())
        n = result["expected"]
        check(n > 0 and result == {"expected": n, "found": n, "missing": 0, "extra": 0, "wrong": 0, "duplicates": 0},
              f"{what}: the {stream} records are not the ground truth: {result}")
        found[stream] = n
    return found


class Row(msgspec.Struct):
    """One line of the table: a figure, what it is compared with, and the goal."""

    figure: str
    value: str
    baseline: str
    ratio: float | None
    goal: str
    met: bool | None


def markdown_table(rows: list[Row]) -> str:
    """A Markdown table, readable in a terminal and pasted as is into a page."""
    head = ("figure", "value", "baseline", "ratio", "goal", "met?")
    cells = [head] + [(r.figure, r.value, r.baseline, "" if r.ratio is None else f"{r.ratio:.3g}",
                       r.goal, {True: "yes", False: "NO", None: "-"}[r.met]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]

    def line(c: tuple[str, ...]) -> str:
        return "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(c) for c in cells[1:]])


class Outcome(msgspec.Struct):
    """A benchmark's numbers (the section of results.json) and its rows of the table."""

    results: dict[str, float]
    rows: list[Row]


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call, starting from a collected heap so no earlier garbage is billed."""
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def rounds(contenders: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """Median seconds of each contender over ``n`` rounds, run in turn within each round so that
    a slow spell of the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(n):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def human(x: float, unit: str = "") -> str:
    """``1234567`` -> ``1.23 M``: short enough for a table cell."""
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{suffix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def merge_results(sections: dict[str, dict]) -> Path:
    """Merge ``sections`` into ``bench/results.json``, key by key: what a run did not measure
    keeps its figure from the run before."""
    try:
        results = orjson.loads(RESULTS.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        results = {}
    for name, figures in sections.items():
        results[name] = {**results.get(name, {}), **figures}
    RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return RESULTS
