"""One commit policy for every sink: seconds bound what a crash repeats, units or records what a commit costs."""

import pytest

from harvester.records import InsightRecord
from harvester.sinks.base import CommitPolicy
from harvester.sinks.duckdb import DuckdbSink
from harvester.sinks.jsonl import JsonlSink
from harvester.sinks.parquet import ParquetSink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(i: int) -> InsightRecord:
    return InsightRecord(account_id="1", object_id=str(i), object_type="account", metric="reach", period="day",
                         metric_type="total_value", value=float(i))


def test_nothing_written_is_never_due_whatever_the_clock():
    clock = Clock()
    policy = CommitPolicy(1.0, units=1, records=1, clock=clock)
    clock.now += 10**6
    assert not policy.due(0, 0)


def test_due_at_the_first_bound_reached_and_the_seconds_count_from_the_last_commit():
    clock = Clock()
    policy = CommitPolicy(2.0, units=3, records=100, clock=clock)
    assert not policy.due(2, 99)
    assert policy.due(3, 0) and policy.due(1, 100)
    clock.now += 1.999
    assert not policy.due(1, 1)
    clock.now += 0.001
    assert policy.due(1, 1)
    policy.committed()
    assert not policy.due(1, 1)
    clock.now += 2.0
    assert policy.due(1, 1)


def test_a_bound_left_out_never_makes_it_due():
    policy = CommitPolicy(3600.0, clock=Clock())
    assert not policy.due(10**9, 10**9)


@pytest.mark.parametrize("make, due_by", [
    (lambda path, clock: JsonlSink(path, commit_units=3, commit_seconds=5, clock=clock), "units"),
    (lambda path, clock: ParquetSink(path, batch_records=4, commit_seconds=5, clock=clock), "records"),
    (lambda path, clock: DuckdbSink(path / "db.duckdb", "run", batch_records=4, commit_seconds=5, clock=clock),
     "records"),
], ids=["jsonl", "parquet", "duckdb"])
async def test_each_sink_commits_by_its_own_bound_and_by_the_seconds(tmp_path, make, due_by):
    clock = Clock()
    sink = make(tmp_path, clock)
    try:
        sink.write("u0", [record(0), record(1)])
        sink.write("u1", [record(2)])
        assert not sink.should_commit()                 # 2 units, 3 records
        sink.write("u2", [] if due_by == "units" else [record(3)])
        assert sink.should_commit()                     # 3 units (jsonl) or 4 records (parquet, duckdb)
        await sink.commit()
        sink.write("u3", [record(4)])
        clock.now += 4.9
        assert not sink.should_commit()
        clock.now += 0.1
        assert sink.should_commit()
    finally:
        await sink.close()
