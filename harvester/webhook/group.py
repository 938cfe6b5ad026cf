"""One group of deliveries sorted before it is written: each story change new, a duplicate of
what is stored, or new values of a story the group (or the segment) already holds, which wait
for the next group (one commit never holds a key twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import msgspec

from ..days import iso
from ..records import Record
from ..state.webhook import StoryRow
from .payload import StoryChange, digest, records


class Stored(msgspec.Struct, frozen=True):
    """What a delivery came to."""

    stories: int
    """Stories whose records it stored."""
    duplicates: int
    """Stories it repeated with the same values (stored by an earlier delivery)."""
    records: int


class Pending:
    """A delivery queued for the committer, answered through ``future`` once durable."""

    __slots__ = ("changes", "future", "received")

    def __init__(self, changes: Sequence[StoryChange], future: asyncio.Future[Stored], received: float):
        self.changes, self.future, self.received = changes, future, received


class Group(msgspec.Struct):
    rows: dict[str, StoryRow]
    """The stories the group stores, by media id (what the state records with the commit)."""
    accepted: list[tuple[Pending, list[StoryChange], int]]
    """Each delivery stored now: its new changes and how many it repeated."""
    later: list[Pending]
    """Deliveries that go whole to the next group (new values of a story this one holds)."""


def sort_group(batch: Sequence[Pending], known: Mapping[str, str], held: Callable[[str], bool]) -> Group:
    """Sort ``batch`` against ``known`` (``media_id -> digest`` stored) and ``held(media_id)`` (the
    segment holds the story: a file sink publishes a key once per segment)."""
    group = Group({}, [], [])
    for item in batch:
        new, dupes = [], 0
        for change in item.changes:
            d = digest(change)
            if group.rows.get(change.media_id, (None, known.get(change.media_id)))[1] == d:
                dupes += 1
            elif change.media_id in group.rows or held(change.media_id):
                break                              # new values of a story the group (segment) holds: next one
            else:
                new.append(change)
                group.rows[change.media_id] = (change.account_id, d, len(change.metrics), item.received)
        else:
            group.accepted.append((item, new, dupes))
            continue
        for change in new:                          # the delivery goes whole to the next group
            del group.rows[change.media_id]
        group.later.append(item)
    return group


def delivery_records(item: Pending, new: Sequence[StoryChange], *, run_id: str,
                     lifetime_history: bool) -> list[Record]:
    """The records of a delivery's new changes, received at its receipt time."""
    received = _iso(item.received)
    observed = received[:10] if lifetime_history else None
    out: list[Record] = []
    for change in new:
        out += records(change, run_id=run_id, received_at=received, observed_on=observed)
    return out


def tally(stored: Sequence[Stored]) -> dict[str, int]:
    """The receiver's counters of what a group's deliveries came to."""
    return {"deliveries/accepted": len(stored), "stories/stored": sum(s.stories for s in stored),
            "stories/duplicate": sum(s.duplicates for s in stored), "records/stored": sum(s.records for s in stored)}


_last_iso: tuple[int, str] = (0, iso(0))


def _iso(ts: float) -> str:
    """``days.iso`` of a receipt time, formatted once per second (every delivery asks it)."""
    global _last_iso
    second = int(ts)
    if _last_iso[0] != second:
        _last_iso = (second, iso(second))
    return _last_iso[1]
