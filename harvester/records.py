"""The flat record every sink writes, and its natural key.

One record is one number: a metric of one object, for one period/window/day, for one combination
of breakdown dimensions. ``since``/``until`` are those of the request that produced it (absent for
media lifetime values and demographics); ``end_time`` is set for daily values.

The natural key identifies the fact a record states, independent of the run that fetched it: a
later run's record with the same key replaces an earlier one, and a harvest never emits a key twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

Value = int | float | None
ObjectType = Literal["account", "media"]
"""What a record is about: an account's insight or a media's."""

KEY_FIELDS = ("object_id", "metric", "period", "timeframe", "dimension_keys", "dimension_values", "end_time",
              "since", "until")
"""The fields a natural key is made of (:func:`make_key`'s parameters): since/until count only when
``end_time`` is not set."""


class Record(msgspec.Struct, kw_only=True, omit_defaults=False, gc=False):
    """One fact. Immutable in practice (dimension tuples may be shared between records), and
    untracked by the garbage collector: a record holds only strings, numbers and tuples of strings,
    so it can never be part of a cycle, and millions of them cost the collector nothing."""

    account_id: str
    object_id: str
    object_type: ObjectType
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


def make_key(object_id: str, metric: str, period: str, timeframe: str | None = None,
             dimension_keys: Sequence[str] = (), dimension_values: Sequence[str] = (),
             end_time: str | None = None, since: str | None = None, until: str | None = None) -> NaturalKey:
    """The one rule: the :data:`KEY_FIELDS` in order, with ``(since, until)`` in place of
    ``end_time`` for totals that carry none. Everything that keys a fact calls this."""
    when: tuple[str | None, ...] = (end_time,) if end_time is not None else (since, until)
    return (object_id, metric, period, timeframe, tuple(dimension_keys), tuple(dimension_values), *when)


def natural_key(r: Record | Mapping[str, Any]) -> NaturalKey:
    """The natural key of a record, or of a record read back as a dict (from JSONL, say)."""
    if isinstance(r, Record):
        return make_key(r.object_id, r.metric, r.period, r.timeframe, r.dimension_keys, r.dimension_values,
                        r.end_time, r.since, r.until)
    return make_key(r["object_id"], r["metric"], r["period"], r.get("timeframe"), r["dimension_keys"],
                    r["dimension_values"], r.get("end_time"), r.get("since"), r.get("until"))


key_of = natural_key
"""The same function, under the name the manifest and the demo use for dicts."""
