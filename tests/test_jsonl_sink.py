import asyncio

import orjson

from harvester.records import Record
from harvester.sinks.jsonl import JsonlSink


def record(i: int) -> Record:
    return Record(account_id="1", object_id=f"m{i}", object_type="media", metric="reach",
                  period="lifetime", value=i)


async def test_commit_makes_parts_complete_and_names_their_units(tmp_path):
    sink = JsonlSink(tmp_path / "run", part_records=2)
    sink.write("u1", [record(1), record(2)])
    sink.write("u2", [])
    assert sink.should_commit()
    commit = await sink.commit()
    assert commit.part == "part-00001.jsonl" and commit.unit_ids == ("u1", "u2") and commit.records == 2
    lines = (tmp_path / "run" / "part-00001.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["value"] for line in lines] == [1, 2]
    assert list((tmp_path / "run").glob("*.tmp")) == []


async def test_units_without_records_commit_without_a_file(tmp_path):
    sink = JsonlSink(tmp_path / "run")
    sink.write("u1", [])
    commit = await sink.commit()
    assert commit.unit_ids == ("u1",) and commit.part == "" and not (tmp_path / "run").exists()
    assert await sink.commit() is None


async def test_recover_removes_uncommitted_and_temporary_parts(tmp_path):
    first = JsonlSink(tmp_path / "run")
    first.write("u1", [record(1)])
    await first.commit()
    first.write("u2", [record(2)])
    await first.commit()
    first.write("u3", [record(3)])
    first._spill()  # written to a .tmp file, never committed: a crash here
    second = JsonlSink(tmp_path / "run")
    removed = second.recover({"part-00001.jsonl"})
    assert sorted(removed)[0] == "part-00002.jsonl" and any(n.endswith(".tmp") for n in removed)
    second.write("u2", [record(2)])
    assert (await second.commit()).part == "part-00002.jsonl"


async def test_writes_during_a_commit_go_to_the_next_part(tmp_path):
    sink = JsonlSink(tmp_path / "run", buffer_bytes=1)
    sink.write("u1", [record(1)])
    pending = asyncio.ensure_future(sink.commit())
    await asyncio.sleep(0)  # the commit has detached its part and is fsyncing it
    sink.write("u2", [record(2)])
    assert (await pending).unit_ids == ("u1",)
    assert (await sink.commit()).unit_ids == ("u2",)
