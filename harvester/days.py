"""Time on the Graph API's terms: Unix seconds, US-Pacific days, ISO stamps, 30-day chunks.

A daily value's ``end_time`` is midnight America/Los_Angeles at the end of that day, in UTC
(07:00Z under daylight time, 08:00Z otherwise). Because an ``end_time`` never falls on a UTC
midnight, a window cut at UTC midnights places every daily value in exactly one chunk: a request
``[since, until)`` covers the days whose ``end_time`` satisfies ``since <= end_time < until``.
The US rules are computed here so that no time-zone database is needed.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

DAY = 86400
UTC = UTC


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def pacific_dst_at_midnight(day: date) -> bool:
    """Whether daylight time is in effect at 00:00 local on ``day`` (changes happen at 02:00)."""
    return _nth_sunday(day.year, 3, 2) < day <= _nth_sunday(day.year, 11, 1)


def pacific_end_time(day: date) -> int:
    """Unix time of the ``end_time`` of Pacific day ``day`` (midnight starting ``day + 1``)."""
    nxt = day + timedelta(days=1)
    offset = 7 if pacific_dst_at_midnight(nxt) else 8
    return to_unix(nxt) + offset * 3600


def pacific_days_ending_in(since: int, until: int) -> list[date]:
    """Pacific days whose ``end_time`` lies in ``[since, until)``."""
    day = datetime.fromtimestamp(since, UTC).date() - timedelta(days=2)
    days: list[date] = []
    while True:
        end = pacific_end_time(day)
        if end >= until:
            return days
        if end >= since:
            days.append(day)
        day += timedelta(days=1)


def days_back(now: float, days: int) -> int:
    """UTC midnight ``days`` days before the day of ``now``: where "the last N days" start
    (``follower_count`` and ``online_followers`` can be asked for the last 30 only)."""
    return to_unix(from_unix(int(now))) - days * DAY


def to_unix(day: date) -> int:
    """Unix time of UTC midnight starting ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def from_unix(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def iso(ts: int | float) -> str:
    """The Graph API's timestamp format: ``2026-10-02T07:00:00+0000``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_iso(text: str) -> int | None:
    """Unix time of an API timestamp (``+0000``, ``+00:00``, ``Z``, fractional seconds; no zone
    is UTC), or None for anything else: a media item's ``timestamp`` comes from the answer, and
    an unreadable one leaves the posting time unknown instead of failing the page."""
    if not isinstance(text, str) or not 10 <= len(text) <= _ISO_MAX:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    try:
        return int(stamp.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


_ISO_MAX = 40
"""Longer than any ISO stamp (``2026-10-02T07:00:00.123456789+00:00`` is 35)."""


def days_ceil(ts: float) -> int:
    """The first UTC midnight at or after ``ts``."""
    return -(-math.ceil(ts) // DAY) * DAY


def chunks(since: int, until: int, size: int, *, not_before: int | None = None) -> list[tuple[int, int]]:
    """Cut ``[since, until)`` into consecutive pieces of at most ``size`` seconds: no gap, no overlap.
    ``not_before``: what lies before it is left out, the pieces keep their places (the one holding
    it starts there), so that the pieces after it are the same whatever ``not_before`` is."""
    out = []
    start = since
    while start < until:
        end = min(start + size, until)
        if not_before is None or end > not_before:
            out.append((start if not_before is None else max(start, not_before), end))
        start = end
    return out
