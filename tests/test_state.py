"""The state file: its versioned layout, migrations from older files, and files it must refuse."""

from __future__ import annotations

import random
import sqlite3

import pytest

from harvester.cli import main
from harvester.errors import ConfigError, StateError
from harvester.simulator.world import World, WorldSpec
from harvester.sinks.base import PartCommit
from harvester.state.schema import SCHEMA_VERSION
from harvester.state.store import Owed, StateStore

from support import NOW, write_config

# The media table as files written before the layout was versioned have it (with and without
# the run_id column added later), plus one run so that the file is not taken for a new one.
LEGACY = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, config_path TEXT,
    since TEXT, until TEXT, started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    exit_code INTEGER, summary TEXT);
INSERT INTO runs (run_id, kind, fingerprint, started_at, status) VALUES ('old', 'run', 'f', 1.0, 'finished');
CREATE TABLE media (
    media_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, product_type TEXT, posted REAL,
    harvested_at REAL NOT NULL{run_id});
INSERT INTO media VALUES ('m1', 'a1', 'FEED', NULL, 1000.0{old});
"""


def legacy_file(path, *, with_run_id: bool):
    db = sqlite3.connect(path)
    db.executescript(LEGACY.format(run_id=", run_id TEXT" if with_run_id else "", old=", 'old'" if with_run_id else ""))
    db.close()
    return path


def columns(path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute("PRAGMA table_info(media)")]
    finally:
        db.close()


def user_version(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_a_new_file_has_the_current_layout_and_version(tmp_path):
    StateStore(tmp_path / "state.sqlite").close()
    assert user_version(tmp_path / "state.sqlite") == SCHEMA_VERSION
    assert columns(tmp_path / "state.sqlite") == ["media_id", "account_id", "product_type", "harvested_at", "run_id"]


@pytest.mark.parametrize("with_run_id", [False, True])
def test_an_older_file_is_migrated_and_keeps_its_refresh_times(tmp_path, with_run_id):
    path = legacy_file(tmp_path / "state.sqlite", with_run_id=with_run_id)
    state = StateStore(path)
    assert state.last_harvested(["m1", "m2"], run_id="new") == {"m1": 1000.0}
    assert [r.run_id for r in state.runs()] == ["old"]
    state.close()
    assert user_version(path) == SCHEMA_VERSION
    assert "posted" not in columns(path)
    StateStore(path).close()                      # opening a current file again changes nothing
    assert user_version(path) == SCHEMA_VERSION


def test_a_file_from_a_newer_harvester_is_refused_untouched(tmp_path):
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match=rf"written by a newer harvester \(state version {SCHEMA_VERSION + 1}; "
                                         rf"this one reads up to {SCHEMA_VERSION}\)"):
        StateStore(path)
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "state.sqlite"
    path.write_text("run_id,status\n")
    with pytest.raises(StateError, match=r"not a harvester state file .*file is not a database") as caught:
        StateStore(path)
    assert isinstance(caught.value, ConfigError)
    assert path.read_text() == "run_id,status\n"


def test_media_refresh_times_commit_with_their_units(tmp_path):
    state = StateStore(tmp_path / "state.sqlite")
    state.open_run("r1", kind="run", fingerprint="f", config_path=None, since=None, until=None)
    state.commit("r1", [PartCommit("insights/part-00001.jsonl", 3)], {"u1": ("done", "a1", "media m1")},
                 [("m1", "a1", "FEED")], 5000.0)
    assert state.finished_units("r1") == {"u1"}
    assert state.last_harvested(["m1"], run_id="r2") == {"m1": 5000.0}
    assert state.last_harvested(["m1"], run_id="r1") == {}     # left to r1's own unit checkpoints
    state.close()


def test_the_cli_reports_a_bad_state_file_and_calls_nothing(tmp_path, capsys, monkeypatch):
    world = World(WorldSpec(now=NOW, seed=1, accounts=2))
    for t in world.tokens:
        monkeypatch.setenv(f"TOKEN_{t.index}", "x")
    config = write_config(tmp_path / "harvest.toml", world, "http://127.0.0.1:9")   # nothing listens there
    (tmp_path / "state.sqlite").write_bytes(b"\x00not sqlite at all" * 100)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'state.sqlite'}: not a harvester state file" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_version_1_file_gains_the_api_words_of_failed_units_and_status_shows_them(tmp_path):
    from harvester.commands.status import render
    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.executescript(LEGACY.format(run_id=", run_id TEXT", old=", 'old'") + """
CREATE TABLE units (
    run_id TEXT NOT NULL, unit_id TEXT NOT NULL, account_id TEXT, label TEXT, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_code INTEGER, last_error TEXT, part TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (run_id, unit_id));
PRAGMA user_version = 1;
""")
    db.close()
    state = StateStore(path)
    assert {"last_subcode", "last_type", "last_message"} <= set(columns_of(path, "units"))
    state.unit_failed("old", "u1", account_id="1", label="account 1", reason="object missing (100/33)", code=100,
                      subcode=33, type="GraphMethodException", message="Object with ID '1' does not exist")
    text = render(state)
    state.close()
    assert ("- account 1: object missing (100/33) [code 100/33, GraphMethodException: Object with ID '1' does "
            "not exist]") in text


def columns_of(path, table) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def test_a_version_2_file_gains_the_receivers_tables_and_keeps_what_its_receiver_wrote(tmp_path):
    """Version 3: the store owns every table; a receiver of version 2 had made its own."""
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE webhook_segments")                  # a version-2 file no receiver used
    db.execute("INSERT INTO webhook_counters VALUES ('stories/stored', 7)")    # one a receiver used
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    StateStore(path).close()
    assert user_version(path) == SCHEMA_VERSION
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"webhook_segments", "webhook_parts", "webhook_stories", "webhook_counters", "spent"} <= tables
    assert db.execute("SELECT value FROM webhook_counters").fetchall() == [(7,)]
    db.close()


def older_file(tmp_path, version: int, *dropped: str):
    """A state file as of ``version``: today's less the tables that version did not have."""
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    db = sqlite3.connect(path)
    for table in dropped:
        db.execute(f"DROP TABLE {table}")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    return path


def test_a_version_3_file_gains_the_refused_metrics_and_the_settled_calls(tmp_path):
    """Version 4: what was learned of refused metrics and which account calls are final."""
    path = older_file(tmp_path, 3, "refused_metrics", "settled")
    store = StateStore(path)
    assert user_version(path) == SCHEMA_VERSION
    store.learn_refusal(("media", "FEED", "IMAGE", "facebook", "v25.0"), "shares", 3, "(#100) no", 100.0)
    assert store.learned_refusals(api_version="v25.0") == [
        (("media", "FEED", "IMAGE", "facebook", "v25.0"), "shares", 3, "(#100) no", 100.0)]
    assert store.learned_refusals(api_version="v26.0") == [] and store.learned_refusals(since=101.0) == []
    store.commit("r1", [], {"u1": ("done", "1", "account 1 totals")}, settled=["u1"])
    assert store.settled_units(["u1", "u2"]) == {"u1"}
    store.close()


def test_a_version_4_file_gains_the_media_not_shared_to_facebook(tmp_path):
    """Version 5: media that answered "not shared to Facebook", each with when it did."""
    path = older_file(tmp_path, 4, "not_shared")
    store = StateStore(path)
    assert user_version(path) == SCHEMA_VERSION
    store.not_shared("17900000000000001", "1", 100.0, "r1")
    store.not_shared("17900000000000002", "1", 200.0, "r1")
    assert store.not_shared_since(["17900000000000001", "17900000000000002", "3"], since=150.0) == {
        "17900000000000002"}
    store.not_shared("17900000000000001", "1", 300.0, "r2")                 # asked again, answered again
    assert store.not_shared_since(["17900000000000001"], since=150.0) == {"17900000000000001"}
    assert store.not_shared_since(["17900000000000001"], since=150.0, run_id="r2") == set()   # its own: resumed
    assert store.forget_not_shared(before=250.0) == 1                       # 2, answered at 200, no run reads
    assert store.not_shared_since(["17900000000000001", "17900000000000002"], since=0.0) == {"17900000000000001"}
    store.close()


def test_a_committed_unit_is_owed_no_more_and_other_owed_work_stays(tmp_path):
    """The commit that marks a unit done drops what earlier runs owed for it (and skips that
    work when nothing is owed at all)."""
    store = StateStore(tmp_path / "s.db")
    store.commit("r1", [], {"u0": ("done", "a1", "first")})
    for owed_id in ("u1", "u2"):
        store.owe(Owed(owed_id, "r0", "a1", "unit", b"{}", "outage", 1.0, 9e9))
    store.commit("r1", [PartCommit("insights/part-00001.jsonl", 1, 10)],
                 {"u1": ("done", "a1", "x"), "u3": ("done", "a1", "y")})
    assert [o.owed_id for o in store.owed(["a1"])] == ["u2"]
    store.commit("r1", [], {"u2": ("skipped", "a1", "z")})
    assert store.owed(["a1"]) == [] and store.unit_counts("r1") == {"done": 3, "skipped": 1}
    store.close()


V5_UNITS = """
CREATE TABLE units (
    run_id TEXT NOT NULL, unit_id TEXT NOT NULL, account_id TEXT, label TEXT, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_code INTEGER, last_error TEXT, part TEXT,
    updated_at REAL NOT NULL, last_subcode INTEGER, last_type TEXT, last_message TEXT,
    PRIMARY KEY (run_id, unit_id));
INSERT INTO units (run_id, unit_id, account_id, label, status, updated_at) VALUES
    ('r1', 'u2', 'a1', 'second', 'done', 2.0), ('r1', 'u1', 'a1', 'first', 'skipped', 1.0);
INSERT INTO units (run_id, unit_id, account_id, label, status, last_code, last_error, updated_at)
    VALUES ('r1', 'u3', 'a1', 'third', 'failed', 1, 'api error (1)', 3.0);
"""


def test_a_version_5_file_keeps_its_units_whose_checkpoints_are_then_appended(tmp_path):
    """Version 6: a unit's checkpoints are appended (no key on the unit); its latest is its status."""
    path = older_file(tmp_path, 5, "units")
    db = sqlite3.connect(path)
    db.executescript(V5_UNITS)
    db.close()
    store = StateStore(path)
    assert user_version(path) == SCHEMA_VERSION
    assert store.finished_units("r1") == {"u1", "u2"}
    assert store.unit_counts("r1") == {"done": 1, "skipped": 1, "failed": 1}
    assert [row[:3] for row in store.failed_outcomes("r1")] == [("a1", "third", "api error (1)")]
    store.commit("r1", [], {"u3": ("done", "a1", "third")})                  # resumed: done at last
    assert store.unit_counts("r1") == {"done": 2, "skipped": 1} and store.failed_outcomes("r1") == []
    rows = store.db.execute("SELECT unit_id FROM units ORDER BY rowid").fetchall()
    assert rows == [("u2",), ("u1",), ("u3",), ("u3",)]
    store.close()


def test_a_units_latest_checkpoint_is_its_status_in_status_and_the_report(tmp_path):
    from harvester.report.missing import _from_state
    store = StateStore(tmp_path / "state.sqlite")
    store.open_run("r1", kind="run", fingerprint="f", config_path=None, since=None, until=None)
    store.unit_failed("r1", "u1", account_id="a1", label="media 1", reason="timed out")
    store.unit_failed("r1", "u1", account_id="a1", label="media 1", reason="api error (2)", code=2, attempts=5)
    store.unit_failed("r1", "u2", account_id="a1", label="media 2", reason="timed out")
    assert store.unit_counts("r1") == {"failed": 2}
    assert [row[:4] for row in store.failed_outcomes("r1")] == [("a1", "media 1", "api error (2)", 2),
                                                                ("a1", "media 2", "timed out", None)]
    store.commit("r1", [], {"u2": ("done", "a1", "media 2")})                # the next attempt answered it
    assert store.unit_counts("r1") == {"failed": 1, "done": 1} and store.finished_units("r1") == {"u2"}
    store.close()
    _, failed = _from_state(tmp_path / "state.sqlite", ["r1"])
    assert failed == [{"outcome": "failed", "account_id": "a1", "label": "media 1", "reason": "api error (2)"}]


def test_a_commit_appends_its_units_rather_than_rewriting_pages_all_over_the_file(tmp_path):
    """Unit ids are digests: keyed by them, a commit of 130 units rewrote about 108 pages of a
    state holding 10,000; appended, it writes its rows' and the run's index's last pages."""
    rng = random.Random(5)
    store = StateStore(tmp_path / "state.sqlite")

    def commit(n: int) -> None:
        store.commit("r1", [PartCommit("insights/part-00001.jsonl", n * 130, n * 9000)],
                     {f"{rng.getrandbits(96):024x}": ("done", "17841400000000001", "media insights")
                      for _ in range(130)})

    for n in range(80):
        commit(n)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    commit(80)
    _, written, _ = store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    store.close()
    assert 0 < written <= 20
