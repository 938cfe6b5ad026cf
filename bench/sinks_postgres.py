"""PostgreSQL sink: insights records per second through COPY (and the merge), against the JSONL sink.

A throwaway server (``harvester.sinks.pgserver``: initdb, pg_ctl on loopback, fsync on, the
usual bulk-load settings: ``shared_buffers`` 256 MB, ``max_wal_size`` 4 GB, ``checkpoint_timeout``
30 min, so no checkpoint lands mid-run) takes ``RECORDS`` insights records through
:class:`harvester.sinks.postgres.PostgresSink` as a harvest writes them: units of
``UNIT_RECORDS`` records, a commit (one transaction) every 50,000 records, timed from the first
write to the end of the last commit, into an empty table (each batch new keys: the direct
``COPY``), writes going on while a commit runs as in a harvest. Then the first
``AGAIN_RECORDS`` of them again, harvested later (every key there: the merge, as a nightly
fetching known keys), measured apart. The machine is shared: the CPU of this process, of the
sink's server backend and of the whole server (every process of it: the WAL writer, the
checkpointer, autovacuum too) is reported per record, with the load average. The JSONL sink
writes the same records in the same run (the baseline). The records are those of media lifetime
values with breakdowns, the bulk of a harvest: 20 metrics x 3 breakdown values per media.

:func:`postgres_records_per_s` is the figures alone; ``python -m bench sinks_postgres`` runs it
on its own. Its results go to the ``sinks`` section (``sinks.postgres_*``), merged with the other
formats' keys.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import msgspec

from harvester.records import InsightRecord
from harvester.sinks import pgserver

from .measure import Outcome, Row, check, human, rate

SECTION = "sinks"
RECORDS = 1_000_000
UNIT_RECORDS = 60
GOAL = 100_000
SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
RUN_ID, HARVESTED_AT, AGAIN_AT = "bench-run", "2026-11-25T03:00:00+0000", "2026-11-26T03:00:00+0000"
AGAIN_RECORDS = 200_000
BEFORE_CPU_US = "sink 11.3 + server 11.8 us"
"""What a new key cost before the sink encoded its own rows and copied new keys directly (commit
d3b9d4f: asyncpg's copy_records_to_table into the temporary table and the merge for every batch),
medians of four runs interleaved with the current code on the same machine (docs/postgres.md)."""
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


class Pass(msgspec.Struct):
    """One pass of records through the sink: wall seconds and CPU seconds of each side."""

    records: int
    seconds: float
    sink_cpu: float
    """This process (encoding the rows, the event loop, asyncpg)."""
    backend_cpu: float
    """The sink's server backend (COPY, merge, commit)."""
    server_cpu: float
    """Every process of the server (the backend, the WAL writer, the checkpointer, autovacuum)."""
    copied: int
    merged: int

    def figures(self, name: str) -> dict[str, float]:
        us = lambda cpu: round(cpu / self.records * 1e6, 2)  # noqa: E731
        return {f"{name}_records_per_s": round(rate(self.records, self.seconds)), f"{name}_records": self.records,
                f"{name}_records_per_cpu_s": round(rate(self.records, self.sink_cpu + self.server_cpu)),
                f"{name}_sink_cpu_us": us(self.sink_cpu), f"{name}_backend_cpu_us": us(self.backend_cpu),
                f"{name}_server_cpu_us": us(self.server_cpu), f"{name}_copied": self.copied,
                f"{name}_merged": self.merged}


async def _postgres(server: pgserver.TempServer, passes: list[list[InsightRecord]]) -> list[Pass]:
    """Each list of records through one sink in turn (the second one's keys already there: a
    nightly fetching them again), measured apart."""
    from harvester.sinks.postgres import PostgresSink
    sink = PostgresSink(server.dsn, schema="bench", commit_units=10**9, commit_seconds=10**9,
                        commit_records=50_000)
    await sink.open()
    backend = await sink.connection.backend_pid()
    measured = []
    for records in passes:
        loaded = dict(sink.loaded)
        cpu = time.process_time(), _cpu_seconds(backend), server.cpu_seconds()
        seconds = await _through(sink, records)
        measured.append(Pass(len(records), seconds, time.process_time() - cpu[0], _cpu_seconds(backend) - cpu[1],
                             server.cpu_seconds() - cpu[2], sink.loaded["copied"] - loaded["copied"],
                             sink.loaded["merged"] - loaded["merged"]))
    await sink.close()
    return measured


def _check(server: pgserver.TempServer, records: list[InsightRecord], first: Pass, second: Pass) -> None:
    """Every key once in the table, the second pass's values current; each pass took its path
    (new keys copied, known keys merged)."""
    again_n = second.records
    check(first.copied == len(records) and second.merged == again_n,
          f"sinks_postgres: {first.copied:,} copied of {len(records):,} new keys, {second.merged:,} merged of "
          f"{again_n:,} known ones")
    rows, runs = server.psql("harvester", "SELECT count(*), count(*) FILTER (WHERE run_id = "
                                          f"'{RUN_ID}-again') FROM bench.insights").split("|")
    total = server.psql("harvester", "SELECT sum(value) FROM bench.insights")
    check((int(rows), int(runs), int(total)) == (len(records), again_n, sum(int(r.value or 0) for r in records)),
          f"sinks_postgres: the table holds {rows} rows ({runs} of the later run, values summing to {total.strip()}) "
          f"where {len(records):,} keys were written ({again_n:,} again)")


async def _jsonl(directory: Path, records: list[InsightRecord]) -> float:
    from harvester.sinks.jsonl import JsonlSink
    sink = JsonlSink(directory, commit_units=10**9, commit_seconds=10**9)
    seconds = await _through(sink, records)
    await sink.close()
    return seconds


def again(records: list[InsightRecord], n: int) -> list[InsightRecord]:
    """The first ``n`` records fetched again by a later run (a nightly: every key already there)."""
    return [msgspec.structs.replace(r, run_id=RUN_ID + "-again", harvested_at=AGAIN_AT) for r in records[:n]]


def postgres_records_per_s(n: int = RECORDS, again_n: int = AGAIN_RECORDS) -> dict[str, float]:
    """``postgres_*`` (``n`` records into an empty table: the goal) and ``postgres_again_*``
    (``again_n`` of them again: the merge), a server of its own, the JSONL sink as baseline."""
    records = insights(n)
    scratch = Path(tempfile.mkdtemp(prefix="bench-sinks-pg-"))
    try:
        jsonl = asyncio.run(_jsonl(scratch / "jsonl", records))
        with pgserver.TempServer(durable=True, settings=SETTINGS) as server:
            first, second = asyncio.run(_postgres(server, [records, again(records, again_n)]))
            _check(server, records, first, second)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {**first.figures("postgres"), **second.figures("postgres_again"),
            "postgres_jsonl_records_per_s": round(rate(n, jsonl)), "postgres_vs_jsonl": round(jsonl / first.seconds, 4),
            "postgres_load_average": round(os.getloadavg()[0], 1)}


def run(quick: bool = False) -> Outcome:
    n, again_n = (50_000, 20_000) if quick else (RECORDS, AGAIN_RECORDS)
    if pgserver.binaries() is None:
        check(os.environ.get("CI") != "true", "sinks_postgres: PostgreSQL is not installed (no initdb): "
                                              "make install installs it (in CI this fails, as the suite does)")
        return Outcome({}, [Row("postgres sink: records/s (COPY + merge)", "not measured: no PostgreSQL (initdb)",
                                "", None, f">= {human(GOAL)}/s", None)])
    r = postgres_records_per_s(n, again_n)
    per_s = r["postgres_records_per_s"]
    cpu = lambda name: (f"sink {r[name + '_sink_cpu_us']:g} + server {r[name + '_server_cpu_us']:g} "  # noqa: E731
                        f"(backend {r[name + '_backend_cpu_us']:g}) us")
    return Outcome(r, [
        Row(f"postgres sink: insights records/s, {human(n)} new keys (COPY)", human(per_s, "/s"),
            f"jsonl {human(r['postgres_jsonl_records_per_s'], '/s')}", r["postgres_vs_jsonl"],
            f">= {human(GOAL)}/s", per_s >= GOAL),
        Row("postgres sink: CPU per record, new keys", cpu("postgres"),
            f"before: {BEFORE_CPU_US}", None, f"load average {r['postgres_load_average']:g}", None),
        Row(f"postgres sink: insights records/s, {human(again_n)} keys again (merge)",
            human(r["postgres_again_records_per_s"], "/s"), "", None, "(a nightly fetching keys again)", None),
        Row("postgres sink: CPU per record, keys again", cpu("postgres_again"), "", None, "", None)])
