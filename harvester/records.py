"""The flat record every sink writes, and its natural key.

One record is one number: a metric of one object, for one period/window/day, for one combination
of breakdown dimensions. ``since``/``until`` are those of the request that produced it (absent for
media lifetime values and demographics); ``end_time`` is set for daily values.

The natural key identifies the fact a record states, independent of the run that fetched it: a
later run's record with the same key replaces an earlier one, and a harvest never emits a key twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

Value = int | float | None

KEY_FIELDS = ("object_id", "metric", "period", "timeframe", "dimension_keys", "dimension_values", "end_time")


class Record(msgspec.Struct, kw_only=True, omit_defaults=False, gc=False):
    """One fact. Immutable in practice (dimension tuples may be shared between records), and
    untracked by the garbage collector: a record holds only strings, numbers and tuples of strings,
    so it can never be part of a cycle, and millions of them cost the collector nothing."""

    account_id: str
    object_id: str
    object_type: str  # "account" | "media"
    media_type: str | None = None
    media_product_type: str | None = None
    metric: str
    period: str
    metric_type: str | None = None
    timeframe: str | None = None
    since: str | None = None
    until: str | None = None
    end_time: str | None = None
    dimension_keys: tuple[str, ...] = ()
    dimension_values: tuple[str, ...] = ()
    value: Value = None
    run_id: str | None = None
    harvested_at: str | None = None


NaturalKey = tuple[Any, ...]


def natural_key(r: Record) -> NaturalKey:
    """``(object_id, metric, period, timeframe, dimension_keys, dimension_values, end_time)``, with
    ``(since, until)`` in place of ``end_time`` for totals that carry none."""
    when: tuple[str | None, ...] = (r.end_time,) if r.end_time is not None else (r.since, r.until)
    return (r.object_id, r.metric, r.period, r.timeframe, tuple(r.dimension_keys),
            tuple(r.dimension_values), *when)


def key_of(d: dict[str, Any]) -> NaturalKey:
    """The natural key of a record read back as a dict (from JSONL, say)."""
    when = (d["end_time"],) if d.get("end_time") is not None else (d.get("since"), d.get("until"))
    return (d["object_id"], d["metric"], d["period"], d.get("timeframe"), tuple(d["dimension_keys"]),
            tuple(d["dimension_values"]), *when)
