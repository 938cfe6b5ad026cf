"""Whether the output and state paths of a configuration can be used, said before any call.

``check`` (for ``harvester validate``) creates nothing: it walks up to the nearest existing
ancestor of each path and tells whether the rest can be created there. ``prepare`` (for a run)
creates the directories and turns every OS error into a ConfigError naming the path and what is
wrong, before the run is opened in the state, so a start-up failure never leaves a run marked
``running``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..sinks.factory import database_file, missing_extra, output_directory


def _nearest(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists (lstat: a dangling link counts)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _creatable(path: Path, what: str) -> str | None:
    """Why the missing ``path`` cannot be created as ``what`` (a directory or a file), or None."""
    base = _nearest(path)
    if not base.is_dir():
        kind = "a regular file" if base.is_file() else "not a directory"
        return f"cannot create {what} {path}: {base} is {kind}"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot create {what} {path}: no permission to write in {base}"
    if _read_only(base):
        return f"cannot create {what} {path}: {base} is on a read-only filesystem"
    return None


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def output_problem(path: str | os.PathLike) -> str | None:
    out = Path(path)
    if os.path.lexists(out):
        if not out.is_dir():
            return f"{out} exists and is not a directory"
        if not os.access(out, os.W_OK | os.X_OK):
            return f"{out}: no permission to write in it"
        return None
    return _creatable(out, "the directory")


def state_problem(path: str | os.PathLike) -> str | None:
    state = Path(path)
    if os.path.lexists(state):
        if state.is_dir():
            return f"{state} is a directory; expected a file (it is created if missing)"
        if not state.is_file():
            return f"{state} is not a regular file"
        if not os.access(state, os.R_OK | os.W_OK):
            return f"{state}: no permission to read and write it"
        if not os.access(state.parent, os.W_OK | os.X_OK):
            return f"{state}: no permission to write in {state.parent} (the state keeps its journal and lock there)"
        return None
    return _creatable(state, "the state file")


def database_problem(path: Path) -> str | None:
    """Why a DuckDB file cannot be written (its directory must be usable too), or None."""
    if os.path.lexists(path):
        if not path.is_file():
            return f"{path} exists and is not a regular file (expected a DuckDB database file)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path}: no permission to read and write it"
    return output_problem(path.parent)


def sink_problem(output) -> str | None:
    """Why ``[output] path`` cannot be written (the file formats' directory, DuckDB's file)."""
    if output.format == "duckdb":
        return database_problem(database_file(output))
    return output_problem(output_directory(output))


def check(config, *, output: bool = True) -> list[str]:
    """Every problem of the output and state paths, each naming its key; creates nothing."""
    problems = []
    if output and (why := missing_extra(config.output)):
        problems.append(f"{config.path}: {why}")
    elif output and (why := sink_problem(config.output)):
        problems.append(f"{config.path}: [output] path = {str(config.output.path)!r}: {why}")
    if why := state_problem(config.state.path):
        problems.append(f"{config.path}: [state] path = {str(config.state.path)!r}: {why}")
    return problems


def prepare(config, state_path: str | os.PathLike | None, *, output: bool = True) -> None:
    """Create the output directory and the state file's directory, or raise ConfigError saying why.
    ``state_path`` None: no state (nothing to prepare for it)."""
    problems = []
    if output:
        if why := missing_extra(config.output):
            raise ConfigError(f"{config.path}: {why}")
        directory = output_directory(config.output)
        problems += _make(config, "[output] path", Path(config.output.path), directory)
        database = database_file(config.output) if config.output.format == "duckdb" else None
        if database is not None and not problems and (why := database_problem(database)):
            problems.append(f"{config.path}: [output] path = {str(config.output.path)!r}: {why}")
    if state_path is not None:
        state = Path(state_path)
        if state.is_dir():
            problems.append(f"{config.path}: [state] path = {str(state)!r}: {state} is a directory; expected a file")
        else:
            problems += _make(config, "[state] path", state, state.parent)
    if problems:
        raise ConfigError(problems)


def _make(config, key: str, shown: Path, directory: Path) -> list[str]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".harvester-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(shown) else ""
        return [f"{config.path}: {key} = {str(shown)!r}: cannot be used: {exc.strerror or exc}{where}"]
    return []
