"""What each token spent of its rolling window, kept in the state file for the next process: a
resumed or repeated run starts each token's window with it, so it is not throttled at start.
Rows are keyed by a digest of the token (the scheduler's slot key), never the token."""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence

import msgspec


class Spent(msgspec.Struct, frozen=True):
    """What a process spent of one token's budget, in wall-clock seconds: a new process starts the
    token's rolling window with it, so a resumed or repeated run is not throttled at start."""

    starts: Sequence[float]
    """Its calls still in the window when saved, oldest first (an array of doubles: 8 bytes a
    call, where a tuple of floats takes 32)."""
    paused_until: float
    """Until when a throttle paused it (every call before then would extend the penalty)."""


class SpentTable:
    """The ``spent`` table of a state file."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def save(self, spent: Mapping[str, Spent], *, window_seconds: float, now: float) -> None:
        """Keep each token's ``spent`` (keyed by its digest, never the token) and drop the rows that
        no longer count at ``now``: a row lasts until its last start has left the window and its
        pause has ended."""
        rows = [(key, _floats(s.starts), s.paused_until,
                 max(s.starts[-1] + window_seconds if s.starts else s.paused_until, s.paused_until))
                for key, s in spent.items()]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO spent VALUES (?, ?, ?, ?)", rows)
            self.db.execute("DELETE FROM spent WHERE expires_at <= ?", (now,))

    def load(self, keys: Iterable[str], *, now: float) -> dict[str, Spent]:
        """What earlier processes spent of these tokens that still counts at ``now``."""
        wanted = set(keys)
        return {key: Spent(_unfloats(starts), paused) for key, starts, paused in self.db.execute(
            "SELECT token_key, starts, paused_until FROM spent WHERE expires_at > ?", (now,)) if key in wanted}


def _floats(values: Sequence[float]) -> bytes:
    """Doubles, little-endian, whatever the machine (a state file may move)."""
    packed = array("d", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def _unfloats(blob: bytes) -> array[float]:
    packed = array("d")
    packed.frombytes(blob)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed
