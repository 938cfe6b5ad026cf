import orjson

from harvester.records import AccountRecord, InsightRecord, MediaRecord, key_of
from harvester.sinks import manifest
from harvester.sinks.jsonl import JsonlSink


def day_total(day: int, value: int, run: str) -> InsightRecord:
    since, until = f"2026-10-{day:02d}T00:00:00+0000", f"2026-10-{day + 1:02d}T00:00:00+0000"
    return InsightRecord(account_id="1", object_id="1", object_type="account", metric="reach", period="day",
                  metric_type="total_value", since=since, until=until, value=value, run_id=run)


async def write_run(out, run_id, days, value):
    sink = JsonlSink(out / run_id)
    sink.write("u", [day_total(d, value, run_id) for d in days])
    await sink.commit()


async def test_a_later_run_replaces_records_of_the_same_key(tmp_path):
    await write_run(tmp_path, "r1", [1, 2, 3], 10)
    manifest.publish(tmp_path, "r1")
    await write_run(tmp_path, "r2", [2, 3, 4], 20)
    m = manifest.publish(tmp_path, "r2")
    records = list(manifest.current_records(tmp_path))
    by_day = {r["since"][8:10]: (r["value"], r["run_id"]) for r in records}
    assert by_day == {"01": (10, "r1"), "02": (20, "r2"), "03": (20, "r2"), "04": (20, "r2")}
    assert len({key_of(r) for r in records}) == len(records) == 4
    assert m.runs == ["r1", "r2"] and (tmp_path / "r1" / "insights" / "part-00001.jsonl").exists() is False
    assert sorted(p.name for p in (tmp_path / "r1" / "insights").glob("*.jsonl")) == ["part-00001.r2.jsonl"]


async def test_a_run_covering_everything_retires_older_files(tmp_path):
    await write_run(tmp_path, "r1", [1, 2], 10)
    manifest.publish(tmp_path, "r1")
    await write_run(tmp_path, "r2", [1, 2], 30)
    m = manifest.publish(tmp_path, "r2")
    assert m.files("insights") == ["r2/insights/part-00001.jsonl"]
    assert [r["value"] for r in manifest.current_records(tmp_path)] == [30, 30]
    written = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert written["version"] == 2 and written["streams"] == {
        "insights": ["r2/insights/part-00001.jsonl"], "media": [], "accounts": []}


def test_a_run_without_records_publishes_into_a_new_directory(tmp_path):
    m = manifest.publish(tmp_path / "out", "r1")
    assert m.runs == ["r1"] and m.files("insights") == [] and m.files("media") == []
    assert list(manifest.current_records(tmp_path / "out")) == []


async def test_object_streams_replace_by_their_own_keys(tmp_path):
    """media: the latest run's record of a media is current; accounts: one per account and day."""
    for run_id, likes, day in (("r1", 5, "2026-11-30"), ("r2", 7, "2026-12-01")):
        sink = JsonlSink(tmp_path / run_id)
        sink.write("m", [MediaRecord(media_id="9", account_id="1", like_count=likes, run_id=run_id)])
        sink.write("a", [AccountRecord(account_id="1", day=day, followers_count=likes, run_id=run_id)])
        await sink.close()
        manifest.publish(tmp_path, run_id)
    assert [(r["media_id"], r["like_count"]) for r in manifest.current_records(tmp_path, "media")] == [("9", 7)]
    assert sorted((r["day"], r["followers_count"]) for r in manifest.current_records(tmp_path, "accounts")) == [
        ("2026-11-30", 5), ("2026-12-01", 7)]


def test_a_version_1_manifest_is_read_as_the_insights_stream(tmp_path):
    """Output from before the streams: its parts sit in the run directory, listed in ``current``."""
    (tmp_path / "r0").mkdir()
    (tmp_path / "r0" / "part-00001.jsonl").write_bytes(orjson.dumps(day_total(1, 3, "r0").to_dict()) + b"\n")
    (tmp_path / "manifest.json").write_bytes(orjson.dumps(
        {"version": 1, "runs": ["r0"], "current": ["r0/part-00001.jsonl"], "updated_at": 1.0}))
    assert [r["value"] for r in manifest.current_records(tmp_path)] == [3]
