"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary directory,
``pg_ctl`` on a free loopback port, one database, a DSN; stopped and removed at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(``runuser``), in a directory handed to it: under the temporary directory when that user can
reach it, else under ``/tmp`` (a root's ``TMPDIR`` in ``/root`` is closed to other users). The
binaries are found on ``PATH`` or under ``/usr/lib/postgresql/*/bin`` (Debian's layout);
:func:`binaries` says None when there are none.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..ports import free_port

SUPERUSER = "harvester_admin"


def binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _stat(pid: int) -> list[int]:
    """The numeric fields of /proc/<pid>/stat after the command name, from ``state`` on (so
    index 1 is the parent's pid, 11 and 12 user and system time, 13 and 14 those of waited-for
    children), the state itself as 0."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *map(int, fields[1:])]


def _cpu(pid: int, *, children: bool = False) -> float:
    fields = _stat(pid)
    ticks = fields[11] + fields[12] + (fields[13] + fields[14] if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _parent_for(user: str | None) -> str | None:
    """Where the server's directory goes: the temporary directory, unless ``user`` (the server's
    own, when we are root) could not pass through one of its parents; then ``/tmp``."""
    parent = Path(tempfile.gettempdir()).resolve()
    if user is None:
        return None
    if all(d.stat().st_mode & 0o001 for d in (parent, *parent.parents)):
        return None
    return "/tmp"


class TempServer:
    """``start()`` it, use :attr:`dsn` (database ``harvester``, a superuser with a password), ``stop()`` it."""

    def __init__(self, *, durable: bool = False, password: str = "s3cret-admin-pw",
                 settings: dict[str, str] | None = None):
        bindir = binaries()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
        self.bin, self.durable, self.password = bindir, durable, password
        self.settings = dict(settings or {})
        """More ``-c name=value`` server settings (a benchmark's shared_buffers, say)."""
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="harvester-pg-", dir=_parent_for(self.user)))
        self.data = self.dir / "data"
        self.port = free_port()

    @property
    def dsn(self) -> str:
        return self.dsn_for(SUPERUSER, self.password)

    def dsn_for(self, user: str, password: str, database: str = "harvester") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir, env={**os.environ, **(env or {})})
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> TempServer:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        self.pg_ctl("start")
        self.psql("postgres", "CREATE DATABASE harvester")
        return self

    def pg_ctl(self, action: str) -> None:
        """``start``, ``stop`` or ``restart`` (fast shutdown: open connections are cut)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        args = ["pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast"]
        if action != "stop":
            args += ["-o", options, "-l", str(self.dir / "server.log")]
        self._run(*args, action)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server has used so far: the postmaster, each of its
        processes (backends, WAL writer, checkpointer, autovacuum), and those that have exited
        (a benchmark's server-side cost, whichever process does the work). Linux /proc only."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        total = _cpu(pid, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(pid):
                try:
                    if _stat(int(entry.name))[1] == pid:
                        total += _cpu(int(entry.name))
                except OSError:             # gone meanwhile: counted with the exited ones (or just missed)
                    pass
        return total

    def psql(self, database: str, sql: str) -> str:
        return self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                         "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql,
                         env={"PGPASSWORD": self.password})

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.pg_ctl("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TempServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
