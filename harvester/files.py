"""Durable file writes, one way for the whole package: the manifest, the summary, the simulator's
world file, the parts and their rewrites.

A file replaced with :func:`replacing` (or :func:`write_atomic`) is, after any crash, either the
complete new content or the old file: the content goes to a temporary beside it, is flushed and
fsynced, renamed over the target, and the directory is fsynced so that the rename itself survives
a power loss. The temporary has a fixed name (``.<name>.tmp``): one writer per path (the run
holds the state; the simulator owns its world file), and a temporary left by a killed process is
overwritten by the next write instead of piling up. On an error it is removed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temporary_of(path: Path) -> Path:
    """Where :func:`replacing` writes before the rename: hidden, so no glob of parts sees it."""
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def replacing(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an exception;
    with one, ``path`` is untouched and the temporary is removed. ``mode`` (e.g. 0o600 for a token
    file): the temporary has it from its creation, so the content is never readable by others."""
    path = Path(path)
    tmp = temporary_of(path)
    try:
        if mode is not None:
            tmp.unlink(missing_ok=True)         # a leftover may have looser permissions
            handle = os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb")
        else:
            handle = open(tmp, "wb")  # noqa: SIM115 (closed by the with below)
        with handle as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` by ``data``: complete or not at all, durable once this returns."""
    with replacing(path, mode=mode) as out:
        out.write(data)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make the entries of ``directory`` (files created, renamed or removed in it) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
