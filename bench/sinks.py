"""Sinks: records per second written by each ``[output] format``, bytes on disk, peak RSS.

Each (format, size) runs in a fresh child process (``python -m bench.sinks FORMAT RECORDS``) that
writes ``RECORDS`` insights records through the format's sink as a harvest does: units of
``PER_UNIT`` records, a commit whenever the sink says one is due (the default ``[output]``
settings; each sink says when, see its should_commit), then close and publish. Only the sink's calls are timed
(the records are made between them, each with its own key, as a harvest's are). JSONL, the
baseline, runs in the same ``make bench``. Peak RSS is the child's (VmHWM), at 1M and 100k.

:data:`SINKS` is the table of formats: adding one is one entry (its settings in a temporary
directory, and how to measure what it stored).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import msgspec
import orjson

from .measure import Outcome, Row, human
from .memory import maxrss_mb

SMALL, LARGE = 100_000, 1_000_000
PER_UNIT = 30
MEMORY_GOAL = 1.5
DUCKDB_GOAL = 200_000


def _tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.name != "state.sqlite")


class SinkUnderTest(NamedTuple):
    output: Callable[[Path], dict]
    """``[output]`` settings writing into a temporary directory."""
    stored_bytes: Callable[[Path], int]
    """Bytes the run left, given that directory."""


SINKS: dict[str, SinkUnderTest] = {
    "jsonl": SinkUnderTest(lambda tmp: {"format": "jsonl", "path": str(tmp / "out")}, _tree_bytes),
    "parquet": SinkUnderTest(lambda tmp: {"format": "parquet", "path": str(tmp / "out")}, _tree_bytes),
    "duckdb": SinkUnderTest(lambda tmp: {"format": "duckdb", "path": str(tmp / "out" / "insights.duckdb")},
                            _tree_bytes),
}


def records(n: int):
    """Units of insights records like a harvest's: a media's metrics over days, distinct keys."""
    from harvester.records import InsightRecord

    template = InsightRecord(account_id="17841400000000000", object_id="", object_type="media",
                             media_type="IMAGE", media_product_type="FEED", metric="reach", period="day",
                             metric_type="time_series", since="2026-11-01T00:00:00+0000",
                             until="2026-11-30T00:00:00+0000", dimension_keys=(), dimension_values=(), value=0,
                             run_id="20261201T120000Z-98d7ae", harvested_at="2026-12-01T12:00:00+0000")
    ends = [f"2026-11-{d:02d}T08:00:00+0000" for d in range(1, 31)]
    metrics = ("reach", "views", "likes", "comments", "saved", "shares")
    replace = msgspec.structs.replace
    for unit in range(n // PER_UNIT):
        media = f"179{unit // len(metrics):014d}"
        metric = metrics[unit % len(metrics)]
        yield f"u{unit}", [replace(template, object_id=media, metric=metric, end_time=ends[i], value=unit * 7 + i)
                           for i in range(PER_UNIT)]


async def write(fmt: str, n: int, tmp: Path) -> dict:
    from harvester.config.model import Output
    from harvester.sinks import factory

    output = Output(**SINKS[fmt].output(tmp))
    before = maxrss_mb()
    spent = 0.0
    sink = factory.open_sink(output, "run-1")
    sink.recover({})
    for unit, batch in records(n):
        started = time.perf_counter()
        sink.write(unit, batch)
        if sink.should_commit():
            await sink.commit()
        spent += time.perf_counter() - started
    started = time.perf_counter()
    await sink.close()
    sink.publish()
    spent += time.perf_counter() - started
    return {"format": fmt, "records": n // PER_UNIT * PER_UNIT, "seconds": spent, "bytes": SINKS[fmt].stored_bytes(tmp),
            "rss_before_mb": before, "peak_rss_mb": maxrss_mb()}


def child(fmt: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sinks-") as tmp:
        print(orjson.dumps(asyncio.run(write(fmt, n, Path(tmp)))).decode())


def measure(fmt: str, n: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.sinks", fmt, str(n)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode != 0:
        raise RuntimeError(f"bench.sinks {fmt} {n}: {done.stderr.strip()}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False) -> Outcome:
    small_n, large_n = (SMALL // 10, LARGE // 10) if quick else (SMALL, LARGE)
    figures: dict[str, dict[str, dict]] = {}
    for fmt in SINKS:
        figures[fmt] = {"small": measure(fmt, small_n), "large": measure(fmt, large_n)}
        for size in ("small", "large"):
            r = figures[fmt][size]
            print(f"sinks: {fmt} {r['records']:,} records in {r['seconds']:.2f} s "
                  f"({r['records'] / r['seconds']:,.0f}/s), {r['bytes']:,} bytes, peak RSS {r['peak_rss_mb']:.1f} MB",
                  file=sys.stderr)
    rate = {fmt: f["large"]["records"] / f["large"]["seconds"] for fmt, f in figures.items()}
    size = {fmt: f["large"]["bytes"] for fmt, f in figures.items()}
    memory = {fmt: f["large"]["peak_rss_mb"] / f["small"]["peak_rss_mb"] for fmt, f in figures.items()}
    worst = max(memory, key=lambda fmt: memory[fmt])
    results: dict[str, float] = {f"{fmt}_records_per_s": rate[fmt] for fmt in SINKS}
    results |= {f"{fmt}_bytes_1m": float(size[fmt]) for fmt in SINKS}
    results |= {f"{fmt}_memory_ratio_1m_vs_100k": memory[fmt] for fmt in SINKS}
    results |= {f"{fmt}_peak_rss_mb_1m": figures[fmt]["large"]["peak_rss_mb"] for fmt in SINKS}
    results |= {"parquet_vs_jsonl": rate["parquet"] / rate["jsonl"],
                "parquet_bytes_vs_jsonl": size["parquet"] / size["jsonl"],
                "memory_ratio_1m_vs_100k": memory[worst], "records_1m": float(figures["jsonl"]["large"]["records"])}
    jsonl = f"{human(rate['jsonl'])}/s (jsonl)"
    rows = [Row(f"sinks: parquet records/s, {large_n / 1e6:g} M", f"{human(rate['parquet'])}/s", jsonl,
                results["parquet_vs_jsonl"], ">= 1x", results["parquet_vs_jsonl"] >= 1),
            Row("sinks: parquet bytes", human(size["parquet"], "B"), f"{human(size['jsonl'], 'B')} (jsonl)",
                results["parquet_bytes_vs_jsonl"], "<= 0.25x", results["parquet_bytes_vs_jsonl"] <= 0.25),
            Row("sinks: duckdb records/s", f"{human(rate['duckdb'])}/s", jsonl, rate["duckdb"] / rate["jsonl"],
                f">= {human(DUCKDB_GOAL)}/s", rate["duckdb"] >= DUCKDB_GOAL),
            Row(f"sinks: peak RSS 1M vs 100k (worst: {worst})", f"{figures[worst]['large']['peak_rss_mb']:.0f} MB",
                f"{figures[worst]['small']['peak_rss_mb']:.0f} MB", memory[worst], f"<= {MEMORY_GOAL}x",
                memory[worst] <= MEMORY_GOAL)]
    for fmt in SINKS:
        if fmt not in ("jsonl", "parquet", "duckdb"):       # formats added to the table: their rate
            rows.append(Row(f"sinks: {fmt} records/s", f"{human(rate[fmt])}/s", jsonl, rate[fmt] / rate["jsonl"],
                            "", None))
    return Outcome(results, rows)


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
