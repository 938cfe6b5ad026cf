"""What every benchmark shares: rounds and medians, and the rows of the table.

The machines are shared and noisy, so a figure is never one absolute time: each benchmark
measures its baseline in the same run, in alternating rounds, and reports medians and ratios.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

RESULTS = Path(__file__).with_name("results.json")


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
