"""Flat named counters for a run (Scrapy's stats collector): ``calls/ok``, ``errors/code/17``,
``wait/limit_seconds``; plus the list of units that ended without data, with their reasons."""

from __future__ import annotations

from collections import Counter

import msgspec


class Outcome(msgspec.Struct, frozen=True):
    """A unit that was skipped (expected, no data) or failed (for good), and why."""

    account_id: str
    label: str
    reason: str
    code: int | None = None
    subcode: int | None = None


class Stats:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.skipped: list[Outcome] = []
        self.failed: list[Outcome] = []

    def inc(self, name: str, n: float = 1) -> None:
        self.counters[name] += n

    def get(self, name: str) -> float:
        return self.counters.get(name, 0)

    def skip(self, outcome: Outcome) -> None:
        self.skipped.append(outcome)
        self.inc("units/skipped")

    def fail(self, outcome: Outcome) -> None:
        self.failed.append(outcome)
        self.inc("units/failed")
