"""Whether the output and state paths of a configuration can be used, said before any call.

``check`` is the one check ``harvester validate`` and a run both make, so that validate refuses
every path a run would (and a PostgreSQL output whose DSN variable is unset). It leaves nothing
behind, and it does not trust permission bits (root passes ``os.access`` everywhere, and
``/proc`` says writable): it creates and removes a probe file in an existing directory, or a
probe directory in the nearest existing ancestor of a missing one. ``prepare`` (for a run) makes
the same check, then creates the directories and turns any OS error left into a ConfigError
naming the path and what is wrong, before the run is opened in the state, so a start-up failure
never leaves a run marked ``running``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..config.dsn import dsn_problem
from ..errors import ConfigError
from .factory import database_file, missing_extra, output_directory


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
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".harvester-probe-", dir=base))
    except OSError as exc:
        return f"cannot create {what} {path}: {exc.strerror or exc} (creating in {base})"
    return None


def _writable(directory: Path) -> str | None:
    """Why no file can be created in the existing ``directory`` (found by creating one), or None."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".harvester-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot create a file in {directory}: {exc.strerror or exc}"
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
        return _writable(out)
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
        if not os.access(state.parent, os.W_OK | os.X_OK) or _writable(state.parent):
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


def output_file_problem(path: str | os.PathLike) -> str | None:
    """Why a file (a report) cannot be written at ``path`` (its directory must exist), or None;
    found by creating and removing a probe beside it, so nothing is left."""
    target = Path(path)
    if target.is_dir():
        return f"{target} is a directory; expected a file path"
    if os.path.lexists(target) and not os.access(target, os.W_OK):
        return f"{target}: no permission to write it"
    directory = target.parent
    if not directory.is_dir():
        return f"{directory} is not a directory" if os.path.lexists(directory) else f"{directory} does not exist"
    return _writable(directory)


def sink_problem(output) -> str | None:
    """Why ``[output] path`` cannot be written (the file formats' directory, DuckDB's file)."""
    if output.format == "duckdb":
        return database_problem(database_file(output))
    return output_problem(output_directory(output))


def check(config, *, output: bool = True, state: bool = True,
          state_path: str | os.PathLike | None = None) -> list[str]:
    """Every problem of the output and state paths, each naming its key; leaves nothing behind.
    ``state_path``: the state file a run uses, when not the config's [state] path."""
    problems = []
    if output and (why := missing_extra(config.output)):
        problems.append(f"{config.path}: {why}")
    elif output and (why := sink_problem(config.output)):
        problems.append(f"{config.path}: [output] path = {str(config.output.path)!r}: {why}")
    if output and (why := dsn_problem(config.output)):
        problems.append(f'{config.path}: [output] dsn_env = "{config.output.dsn_env}": {why}')
    path = config.state.path if state_path is None else state_path
    if state and (why := state_problem(path)):
        problems.append(f"{config.path}: [state] path = {str(path)!r}: {why}")
    return problems


def prepare(config, state_path: str | os.PathLike | None, *, output: bool = True) -> None:
    """:func:`check`, then create the output directory and the state file's directory, or raise
    ConfigError saying why. ``state_path`` None: no state (nothing to prepare for it)."""
    if problems := check(config, output=output, state=state_path is not None, state_path=state_path):
        raise ConfigError(problems)
    if output:
        problems += _make(config, "[output] path", Path(config.output.path), output_directory(config.output))
    if state_path is not None:
        problems += _make(config, "[state] path", Path(state_path), Path(state_path).parent)
    if problems:
        raise ConfigError(problems)


def _make(config, key: str, shown: Path, directory: Path) -> list[str]:
    """Create ``directory`` (what check found possible); an OS error of a race, as a problem."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(shown) else ""
        return [f"{config.path}: {key} = {str(shown)!r}: cannot be used: {exc.strerror or exc}{where}"]
    return []
