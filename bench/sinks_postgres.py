"""PostgreSQL sink: insights records per second through COPY + merge, against the JSONL sink.

A throwaway server (``harvester.sinks.pgserver``: initdb, pg_ctl on loopback, fsync on, the
usual bulk-load settings: ``shared_buffers`` 256 MB, ``max_wal_size`` 4 GB) takes ``RECORDS``
insights records through :class:`harvester.sinks.postgres.PostgresSink` as a harvest writes
them: units of ``UNIT_RECORDS`` records, a commit (one transaction: COPY into the temporary
table, ``INSERT ... ON CONFLICT`` into ``insights`` in key order) every 50,000 records, timed
from the first write to the end of the last commit, into an empty table, writes going on while a
commit runs as in a harvest. The machine is shared: the CPU seconds of this process and of the
server backend are reported too (records per CPU second), with the load average. The JSONL sink writes the
same records in the same run (the baseline). The records are those of media lifetime values
with breakdowns, the bulk of a harvest: 20 metrics x 3 breakdown values per media.

:func:`postgres_records_per_s` is the figure alone, for the sinks table of ``bench/sinks.py``;
``python -m bench sinks_postgres`` runs it on its own. Its results go to the ``sinks`` section
(``sinks.postgres_records_per_s``), merged with the other formats' keys.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from harvester.records import InsightRecord
from harvester.sinks import pgserver

from .measure import Outcome, Row, human, rate

SECTION = "sinks"
RECORDS = 1_000_000
UNIT_RECORDS = 60
GOAL = 100_000
SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
RUN_ID, HARVESTED_AT = "bench-run", "2026-11-25T03:00:00+0000"
METRICS = ("reach", "views", "likes", "comments", "shares", "saved", "total_interactions", "follows",
           "profile_visits", "profile_activity", "replies", "navigation", "ig_reels_avg_watch_time",
           "ig_reels_video_view_total_time", "crossposted_views", "facebook_views", "impressions",
           "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count")


def insights(n: int) -> list[InsightRecord]:
    """``n`` distinct records, like a harvest's media lifetime values by breakdown."""
    values = ("FEED", "STORY", "REELS")
    return [InsightRecord(account_id=f"178414{i // 600_000:011d}", object_id=f"179{i // 60:014d}", object_type="media",
                          media_type="VIDEO", media_product_type="REELS", metric=METRICS[i // 3 % 20],
                          period="lifetime", dimension_keys=("media_product_type",),
                          dimension_values=(values[i % 3],), value=i % 9973, run_id=RUN_ID,
                          harvested_at=HARVESTED_AT) for i in range(n)]


async def _through(sink, records: list[InsightRecord]) -> float:
    """Write as the ledger does: units go on being written while a commit runs (one at a time)."""
    started = time.perf_counter()
    committing: asyncio.Future | None = None
    for n, start in enumerate(range(0, len(records), UNIT_RECORDS)):
        sink.write(f"unit-{n}", records[start:start + UNIT_RECORDS])
        if sink.should_commit() and (committing is None or committing.done()):
            if committing is not None:
                committing.result()
            committing = asyncio.ensure_future(sink.commit())
        await asyncio.sleep(0)                      # a harvest awaits its calls: the commit moves on
    if committing is not None:
        await committing
    await sink.commit()
    return time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (the server backend), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _postgres(dsn: str, records: list[InsightRecord]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process plus the server backend (the machine is
    shared: wall time also counts other sessions' work)."""
    from harvester.sinks.postgres import PostgresSink
    sink = PostgresSink(dsn, schema="bench", commit_units=10**9, commit_seconds=10**9, commit_records=50_000)
    await sink.open()
    assert sink._conn is not None
    backend = await sink._conn.fetchval("SELECT pg_backend_pid()")
    cpu = time.process_time(), _cpu_seconds(backend)
    seconds = await _through(sink, records)
    cpu_seconds = time.process_time() - cpu[0] + _cpu_seconds(backend) - cpu[1]
    await sink.close()
    return seconds, cpu_seconds


async def _jsonl(directory: Path, records: list[InsightRecord]) -> float:
    from harvester.sinks.jsonl import JsonlSink
    sink = JsonlSink(directory, commit_units=10**9, commit_seconds=10**9)
    seconds = await _through(sink, records)
    await sink.close()
    return seconds


def postgres_records_per_s(n: int = RECORDS) -> dict[str, float]:
    """``{"postgres_records_per_s", "postgres_vs_jsonl"}`` for ``n`` records (a server of its own)."""
    records = insights(n)
    scratch = Path(tempfile.mkdtemp(prefix="bench-sinks-pg-"))
    try:
        jsonl = asyncio.run(_jsonl(scratch / "jsonl", records))
        with pgserver.TempServer(durable=True, settings=SETTINGS) as server:
            postgres, cpu = asyncio.run(_postgres(server.dsn, records))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"postgres_records_per_s": round(rate(n, postgres)), "postgres_jsonl_records_per_s": round(rate(n, jsonl)),
            "postgres_vs_jsonl": round(jsonl / postgres, 4), "postgres_records": n,
            "postgres_records_per_cpu_s": round(rate(n, cpu)), "postgres_load_average": round(os.getloadavg()[0], 1)}


def run(quick: bool = False) -> Outcome:
    n = 50_000 if quick else RECORDS
    if pgserver.binaries() is None:
        return Outcome({}, [Row("postgres sink: records/s (COPY + merge)", "not measured: no PostgreSQL (initdb)",
                                "", None, f">= {human(GOAL)}/s", None)])
    results = postgres_records_per_s(n)
    per_s = results["postgres_records_per_s"]
    per_cpu = results["postgres_records_per_cpu_s"]
    return Outcome(results, [
        Row(f"postgres sink: insights records/s, {human(n)} (COPY + merge)", human(per_s, "/s"),
            f"jsonl {human(results['postgres_jsonl_records_per_s'], '/s')}", results["postgres_vs_jsonl"],
            f">= {human(GOAL)}/s", per_s >= GOAL),
        Row("postgres sink: records per CPU second (sink + server backend)", human(per_cpu, "/s"),
            f"load average {results['postgres_load_average']:g}", None, "(what an idle core gives)", None)])
