"""The DSN of a ``format = "postgres"`` output: read from the environment variable ``[output]
dsn_env`` names, never from the file. One check of it, asked by ``harvester validate`` (through
``paths.check``) and by the postgres sink when a run opens it, so that both refuse the same."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .model import Output


def dsn_problem(output: Output, env: Mapping[str, str] | None = None) -> str | None:
    """Why a postgres output has no DSN to connect with (its ``dsn_env`` variable unset or
    blank), or None (also for every other format)."""
    if output.format != "postgres":
        return None
    if (os.environ if env is None else env).get(output.dsn_env or "", "").strip():
        return None
    return ("the environment variable is not set; it must hold the DSN of the PostgreSQL database, such as "
            "postgresql://USER@HOST:5432/DBNAME (a password after USER, as USER:PASSWORD)")
