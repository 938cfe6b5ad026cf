"""Warehouse paths: records per second through the dlt source into dlt's duckdb destination and
through the Singer tap's messages, against harvester's own DuckDB and JSONL sinks in the same run.

The records are the sinks benchmark's (:func:`bench.sinks.records`: insights in units of 30,
distinct keys), made outside the timed parts. Each path is timed in the process's CPU seconds,
its threads' and in-process DuckDB's included: what a path costs, which a shared machine's other
work does not move (on a quiet machine it is about the wall time). dlt: ``pipeline.run`` of the source's resources fed
those records (extract, normalize, load: everything dlt does), against the DuckDB sink's write,
commits and close of the same records. Singer: the tap's sink writing RECORD and STATE messages
to a file (``/dev/null``: encoding is what is measured, never a target), against the JSONL sink.
Goals: Singer at least 100,000 records/s (encoding must never be what bounds a tap), dlt at least
a third of the DuckDB sink.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from .measure import Outcome, Row, human
from .sinks import records

SIZE, QUICK = 200_000, 5_000
SINGER_GOAL, DLT_GOAL = 100_000, 1 / 3


def _units(n: int) -> list[tuple[str, list]]:
    return list(records(n))


def dlt_load(units: list[tuple[str, list]], tmp: Path) -> float:
    import dlt

    from harvester.dlt.source import BATCH, records_source
    flat = [r for _, batch in units for r in batch]
    batches = [flat[i:i + BATCH] for i in range(0, len(flat), BATCH)]
    pipeline = dlt.pipeline("bench", destination=dlt.destinations.duckdb(str(tmp / "dlt.duckdb")),
                            pipelines_dir=str(tmp / "pipelines"), dataset_name="instagram", progress=None)
    started = time.process_time()
    info = pipeline.run(records_source(iter(batches)))
    seconds = time.process_time() - started
    assert not info.has_failed_jobs, info
    with pipeline.sql_client() as client, client.execute_query("SELECT count(*) FROM insights") as cursor:
        loaded = cursor.fetchone()[0]
    assert loaded == sum(len(b) for _, b in units), loaded              # every record, each once
    return seconds


async def sink_write(sink, units: list[tuple[str, list]]) -> float:
    """CPU seconds of the sink's calls (the process's own: what a sink costs, which a machine
    shared with other work does not move; on a quiet machine the same as wall seconds)."""
    started = time.process_time()
    for unit_id, batch in units:
        sink.write(unit_id, batch)
        if sink.should_commit():
            await sink.commit()
    await sink.close()
    return time.process_time() - started


async def duckdb_sink(units, tmp: Path) -> float:
    from harvester.sinks.duckdb import DuckdbSink
    return await sink_write(DuckdbSink(tmp / "sink.duckdb", "bench"), units)


async def jsonl_sink(units, tmp: Path) -> float:
    from harvester.sinks.jsonl import JsonlSink
    return await sink_write(JsonlSink(tmp / "jsonl"), units)


async def singer(units, tmp: Path) -> float:
    from harvester.singer.sink import SingerSink
    with open("/dev/null", "wb") as out:
        sink = SingerSink(("insights", "media", "accounts"), run_id=lambda: "bench", fingerprint="bench", out=out)
        seconds = await sink_write(sink, units)
    assert sink.records == sum(len(b) for _, b in units) and len(sink.done) == len(units)
    return seconds


def run(*, quick: bool = False) -> Outcome:
    n = QUICK if quick else SIZE
    units = _units(n)
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as name:
        tmp = Path(name)
        seconds = {"dlt": dlt_load(units, tmp), "duckdb": asyncio.run(duckdb_sink(units, tmp)),
                   "singer": asyncio.run(singer(units, tmp)), "jsonl": asyncio.run(jsonl_sink(units, tmp))}
    rate = {k: n / v for k, v in seconds.items()}
    results = {"records": n, "dlt_records_per_s": rate["dlt"], "singer_records_per_s": rate["singer"],
               "duckdb_sink_records_per_s": rate["duckdb"], "jsonl_sink_records_per_s": rate["jsonl"],
               "dlt_vs_duckdb_sink": rate["dlt"] / rate["duckdb"],
               "singer_vs_jsonl_sink": rate["singer"] / rate["jsonl"]}
    rows = [
        Row("warehouse: dlt source into dlt's duckdb (per CPU s)", f"{human(rate['dlt'])}/s",
            f"{human(rate['duckdb'])}/s (DuckDB sink)", results["dlt_vs_duckdb_sink"], ">= 1/3 of the DuckDB sink",
            None if quick else rate["dlt"] >= DLT_GOAL * rate["duckdb"]),
        Row("warehouse: Singer messages encoded (per CPU s)", f"{human(rate['singer'])}/s",
            f"{human(rate['jsonl'])}/s (JSONL sink)", results["singer_vs_jsonl_sink"], ">= 100 k/s",
            None if quick else rate["singer"] >= SINGER_GOAL),
    ]
    return Outcome(results, rows)
