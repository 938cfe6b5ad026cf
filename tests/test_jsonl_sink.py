import asyncio

import orjson

from harvester.records import AccountRecord, InsightRecord, MediaRecord
from harvester.sinks.jsonl import JsonlSink


def record(i: int) -> InsightRecord:
    return InsightRecord(account_id="1", object_id=f"m{i}", object_type="media", metric="reach",
                  period="lifetime", value=i)


def values(path) -> list[int]:
    return [orjson.loads(line)["value"] for line in path.read_bytes().splitlines()]


async def test_commit_makes_parts_complete_and_names_their_units(tmp_path):
    sink = JsonlSink(tmp_path / "run", part_records=2)
    sink.write("u1", [record(1), record(2)])
    sink.write("u2", [])
    assert sink.should_commit()
    commit = await sink.commit()
    part = tmp_path / "run" / "insights" / "part-00001.jsonl"
    (done,) = commit.parts
    assert done.part == "insights/part-00001.jsonl" and commit.unit_ids == ("u1", "u2") and done.records == 2
    assert done.length == part.stat().st_size
    assert values(part) == [1, 2]
    assert list((tmp_path / "run").glob("*.tmp")) == []


async def test_units_without_records_commit_without_a_file(tmp_path):
    sink = JsonlSink(tmp_path / "run")
    sink.write("u1", [])
    commit = await sink.commit()
    assert commit.unit_ids == ("u1",) and commit.parts == () and not (tmp_path / "run").exists()
    assert await sink.commit() is None


async def test_commits_append_to_one_part_until_it_is_full(tmp_path):
    """Frequent checkpoints, few files: each commit extends the open part; a full part closes."""
    sink = JsonlSink(tmp_path / "run", part_records=3)
    commits = []
    for i in range(1, 6):
        sink.write(f"u{i}", [record(i)])
        commits.append(await sink.commit())
    await sink.close()
    parts = [c.parts[0] for c in commits]
    assert [(p.part, p.records) for p in parts] == [
        ("insights/part-00001.jsonl", 1), ("insights/part-00001.jsonl", 2), ("insights/part-00001.jsonl", 3),
        ("insights/part-00002.jsonl", 1), ("insights/part-00002.jsonl", 2)]
    assert parts[0].length < parts[1].length < parts[2].length
    assert [p.name for p in sink.parts()] == ["part-00001.jsonl", "part-00002.jsonl"]
    assert values(tmp_path / "run" / "insights" / "part-00001.jsonl") == [1, 2, 3]
    assert values(tmp_path / "run" / "insights" / "part-00002.jsonl") == [4, 5]


async def test_should_commit_after_commit_units_units_or_commit_seconds(tmp_path):
    by_units = JsonlSink(tmp_path / "a", commit_units=3, commit_seconds=3600)
    for i in range(2):
        by_units.write(f"u{i}", [record(i)])
    assert not by_units.should_commit()
    by_units.write("u2", [])
    assert by_units.should_commit()
    await by_units.commit()
    assert not by_units.should_commit()
    now = [0.0]
    by_time = JsonlSink(tmp_path / "b", commit_units=10**6, commit_seconds=0.05, clock=lambda: now[0])
    by_time.write("u0", [record(0)])
    now[0] = 0.049
    assert not by_time.should_commit()
    now[0] = 0.05
    assert by_time.should_commit()


async def test_recover_cuts_a_part_back_to_its_committed_length(tmp_path):
    """Killed mid-part: bytes of uncommitted units on disk after the checkpoint are cut off, parts
    never committed are removed, and appending goes on in a new part."""
    first = JsonlSink(tmp_path / "run", buffer_bytes=1)      # every write reaches the file at once
    first.write("u1", [record(1)])
    committed = await first.commit()
    first.write("u2", [record(2)])                            # on disk, never committed: a crash here
    run = tmp_path / "run" / "insights"
    (run / "part-00007.jsonl").write_bytes(b'{"half":')   # a part never committed
    (run / "part-123-456.tmp").write_bytes(b"{")          # from an older harvester
    part = run / "part-00001.jsonl"
    (length,) = [p.length for p in committed.parts]
    assert part.stat().st_size > length

    second = JsonlSink(tmp_path / "run")
    changed = second.recover({"insights/part-00001.jsonl": length})
    assert sorted(changed) == [f"insights/part-00001.jsonl (from byte {length:,})", "insights/part-00007.jsonl",
                               "insights/part-123-456.tmp"]
    assert values(part) == [1]
    second.write("u2", [record(2)])
    assert (await second.commit()).parts[0].part == "insights/part-00002.jsonl"
    assert values(run / "part-00002.jsonl") == [2]


async def test_recover_keeps_parts_committed_whole(tmp_path):
    """A part recorded without a length (a state file from before lengths) is committed entire."""
    first = JsonlSink(tmp_path / "run")
    first.write("u1", [record(1), record(2)])
    await first.close()
    assert JsonlSink(tmp_path / "run").recover({"insights/part-00001.jsonl": None}) == []
    assert values(tmp_path / "run" / "insights" / "part-00001.jsonl") == [1, 2]


async def test_writes_during_a_commit_belong_to_the_next_commit(tmp_path):
    sink = JsonlSink(tmp_path / "run", buffer_bytes=1)
    sink.write("u1", [record(1)])
    pending = asyncio.ensure_future(sink.commit())
    await asyncio.sleep(0)  # the commit has taken its length and is fsyncing the part
    sink.write("u2", [record(2)])
    first = await pending
    assert first.unit_ids == ("u1",) and first.parts[0].records == 1
    second = await sink.commit()
    assert second.unit_ids == ("u2",) and second.parts[0].records == 2
    assert second.parts[0].length > first.parts[0].length
    assert values(tmp_path / "run" / "insights" / "part-00001.jsonl")[:1] == [1]


async def test_each_stream_goes_to_its_own_parts_and_one_commit_covers_them_all(tmp_path):
    sink = JsonlSink(tmp_path / "run")
    sink.write("u1", [record(1)])
    sink.write("media/5", [MediaRecord(media_id="5", account_id="1", caption=None)])
    sink.write("accounts/1/2026-12-01", [AccountRecord(account_id="1", day="2026-12-01", followers_count=9)])
    commit = await sink.close()
    assert commit.unit_ids == ("u1", "media/5", "accounts/1/2026-12-01")
    assert sorted(p.part for p in commit.parts) == [
        "accounts/part-00001.jsonl", "insights/part-00001.jsonl", "media/part-00001.jsonl"]
    media = orjson.loads((tmp_path / "run" / "media" / "part-00001.jsonl").read_bytes())
    assert media["stream"] == "media" and media["media_id"] == "5" and media["caption"] is None
    account = orjson.loads((tmp_path / "run" / "accounts" / "part-00001.jsonl").read_bytes())
    assert account["followers_count"] == 9 and account["day"] == "2026-12-01"


async def test_a_full_part_asks_for_a_commit_until_one_starts_the_next_part(tmp_path):
    """should_commit keeps up with parts filling (a unit of any stream) and with commits emptying
    them, however the records came (one stream a unit, or streams mixed in one)."""
    sink = JsonlSink(tmp_path / "run", part_records=2, commit_units=100, commit_seconds=3600)
    sink.write("u1", [record(1)])
    assert not sink.should_commit()
    media = MediaRecord(media_id="9", account_id="1")
    sink.write("u2", [media, record(2)])
    assert sink.should_commit()
    await sink.commit()
    assert not sink.should_commit()
    sink.write("u3", [])
    assert not sink.should_commit()
    sink.write("u4", [media, media])
    assert sink.should_commit()
    await sink.close()
    assert not sink.should_commit()
