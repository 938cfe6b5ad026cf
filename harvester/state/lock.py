"""One run at a time per state file: ``<state>.lock``, held with ``flock`` for the whole run.

Two runs on one state file (an overlapping cron job) would join the same run and remove each
other's uncommitted parts. The lock file sits beside the state file and is held with an exclusive
``fcntl.flock`` from before the run is opened until the run is finished. The kernel releases an
``flock`` when its process dies, however it dies (SIGKILL included), so a lock left by a killed
run is simply taken by the next one: no pid guessing, no heartbeat. The file's content (pid,
host, since) is only there to say who holds it; it is rewritten by each new holder and left in
place when released (removing it would race with a process that just opened it).

``flock`` is local to a host: a state file on a network filesystem shared by several hosts is not
protected (give each host its own ``[state] path``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ..errors import StateError


class Holder(msgspec.Struct, frozen=True):
    """Who holds a lock, as written in the lock file."""

    pid: int
    host: str
    since: float

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return f"pid {self.pid} on {self.host}, running since {at}"


def lock_path(state_path: str | os.PathLike) -> Path:
    path = Path(state_path)
    return path.with_name(path.name + ".lock")


class RunLock:
    """The exclusive lock of one state file; :meth:`acquire` raises StateError if another process
    (or another Harvester of this process) holds it."""

    def __init__(self, state_path: str | os.PathLike):
        self.state_path = Path(state_path)
        self.path = lock_path(state_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateError(f"{self.state_path}: cannot create the lock file {self.path}: "
                             f"{exc.strerror}; expected a writable directory for [state] path") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            who = holder.describe() if holder else "another process (its lock file says nothing yet)"
            raise StateError(f"{self.state_path}: another harvester run uses this state file: {who} "
                             f"(lock {self.path}); wait for it to finish, or give this run its own "
                             f"[state] path") from None
        except OSError as exc:
            os.close(fd)
            raise StateError(f"{self.state_path}: cannot lock {self.path}: {exc.strerror}") from None
        record = msgspec.json.encode(Holder(os.getpid(), socket.gethostname(), time.time()))
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def holder(self) -> Holder | None:
        """Who holds the lock now, or None if nobody does (for ``harvester status``)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> Holder | None:
    try:
        return msgspec.json.decode(os.pread(fd, 4096, 0).strip(), type=Holder)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
