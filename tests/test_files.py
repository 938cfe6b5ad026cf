"""harvester.files: a replaced file is the old one or the complete new one, never a part."""

import pytest

from harvester import files


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old")
    files.write_atomic(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failure_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.replacing(path) as out:
        out.write(b"half of the ne")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_rename_leaves_no_temporary_and_no_file(tmp_path):
    target = tmp_path / "world.json"
    target.mkdir()                      # a directory where the file should go: the rename fails
    with pytest.raises(OSError):
        files.write_atomic(target, b"{}")
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["world.json"]


def test_a_temporary_left_by_a_killed_writer_is_overwritten(tmp_path):
    path = tmp_path / "manifest.json"
    files.temporary_of(path).write_bytes(b"x" * 1000)      # a writer killed before its rename
    files.write_atomic(path, b"{}")
    assert path.read_bytes() == b"{}" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_fsync_dir_of_a_missing_directory_says_which(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        files.fsync_dir(tmp_path / "nowhere")
