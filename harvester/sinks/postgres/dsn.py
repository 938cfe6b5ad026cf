"""A DSN told without its secrets: where it points (host, port, database, user) for messages,
and a driver's error with anything of its password masked. The DSN itself is never logged, shown
or stored."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit


def describe(dsn: str) -> str:
    """Where a DSN points, for messages: host, port, database and user, never the password
    (URI ``postgresql://u:p@h:5432/db`` or ``key=value`` form)."""
    parts: dict[str, str] = {}
    if "://" in dsn:
        try:
            url = urlsplit(dsn)
            parts = {"host": url.hostname or "", "port": str(url.port or ""),
                     "database": unquote(url.path.lstrip("/")), "user": unquote(url.username or "")}
        except ValueError:
            return "an unreadable PostgreSQL URI"
    else:
        found = dict(re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn))
        parts = {"host": found.get("host", ""), "port": found.get("port", ""),
                 "database": found.get("dbname", ""), "user": found.get("user", "")}
        parts = {k: v.strip("'") for k, v in parts.items()}
    shown = [f"{k} {v}" for k, v in parts.items() if v]
    return ", ".join(shown) if shown else "the default server"


def secrets(dsn: str) -> list[str]:
    """What must never be shown of a DSN: the whole string and its password."""
    found = [dsn]
    if "://" in dsn:
        try:
            url = urlsplit(dsn)
            if url.password:
                found += [url.password, unquote(url.password)]
        except ValueError:
            pass
    found += [m.strip("'") for m in re.findall(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def reason(exc: BaseException, dsn: str) -> str:
    """A driver's error as one line, with anything of the DSN's secrets masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in secrets(dsn):
        text = text.replace(secret, "***")
    return text
