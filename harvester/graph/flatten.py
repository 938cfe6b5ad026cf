"""Insights bodies to flat records: the hot path of a harvest.

One msgspec decoder of typed Structs (``wire.Insights``, built once) turns the bytes into
objects; records are built straight from them, with the context of the call that fetched them
(docs/harvest-rules.md says which values become records):

- ``breakdown_only`` calls: one record per breakdown result, the call's total is not repeated;
  demographics (a ``timeframe`` in the context) keep dimension keys that start with
  "timeframe" (added if the API left it out);
- otherwise ``total_value.value`` when there is one (account totals), else every ``values[]``
  entry: with ``end_time`` one record per day, an object value (``online_followers``) one record
  per hour with dimension key "hour", and without ``end_time`` the first value (media lifetime).

An item without a value yields nothing, ``{"data": []}`` yields nothing, unknown fields are
ignored, and a body that is not insights JSON (cut short, say) raises DecodeError.
"""

from __future__ import annotations

from typing import Callable

import msgspec

from ..days import iso
from ..records import Record
from .wire import Insight, decode_insights


class Context(msgspec.Struct, frozen=True):
    """What a record needs to know that the response does not say: whose, what, which window."""

    account_id: str
    object_id: str
    object_type: str  # "account" | "media"
    media_type: str | None = None
    media_product_type: str | None = None
    metric_type: str | None = None
    timeframe: str | None = None
    since: int | None = None
    until: int | None = None
    breakdown_only: bool = False


Make = Callable[..., Record]


def flatten(body: bytes, ctx: Context, *, run_id: str | None = None,
            harvested_at: str | None = None) -> list[Record]:
    data = decode_insights(body).data
    if not data:
        return []
    make = _maker(ctx, run_id, harvested_at)
    out: list[Record] = []
    for item in data:
        if ctx.breakdown_only:
            _breakdowns(item, make, ctx.timeframe, out)
        elif item.total_value is not None and item.total_value.value is not None:
            out.append(make(item.name, item.period, item.total_value.value, None, [], []))
        else:
            _values(item, make, out)
    return out


def _maker(ctx: Context, run_id: str | None, harvested_at: str | None) -> Make:
    """A record builder with everything the call's records share bound once."""
    account_id, object_id, object_type = ctx.account_id, ctx.object_id, ctx.object_type
    media_type, product, metric_type = ctx.media_type, ctx.media_product_type, ctx.metric_type
    timeframe = ctx.timeframe
    since = iso(ctx.since) if ctx.since is not None else None
    until = iso(ctx.until) if ctx.until is not None else None

    def make(metric, period, value, end_time, keys, values) -> Record:
        return Record(account_id=account_id, object_id=object_id, object_type=object_type,
                      media_type=media_type, media_product_type=product, metric=metric,
                      period=period, metric_type=metric_type, timeframe=timeframe, since=since,
                      until=until, end_time=end_time, dimension_keys=keys, dimension_values=values,
                      value=value, run_id=run_id, harvested_at=harvested_at)

    return make


def _breakdowns(item: Insight, make: Make, timeframe: str | None, out: list[Record]) -> None:
    total = item.total_value
    if total is None:
        return
    name, period = item.name, item.period
    for breakdown in total.breakdowns:
        keys, lead = breakdown.dimension_keys, []
        if timeframe is not None and keys[:1] != ["timeframe"]:
            keys, lead = ["timeframe", *keys], [timeframe.upper()]
        for result in breakdown.results:
            if result.value is not None:
                out.append(make(name, period, result.value, None, list(keys),
                                lead + result.dimension_values if lead else result.dimension_values))


def _values(item: Insight, make: Make, out: list[Record]) -> None:
    name, period = item.name, item.period
    for point in item.values:
        value, end_time = point.value, point.end_time
        if type(value) is dict:
            out.extend(make(name, period, v, end_time, ["hour"], [hour])
                       for hour, v in value.items() if v is not None)
        elif value is not None:
            out.append(make(name, period, value, end_time, [], []))
            if end_time is None:
                return  # a lifetime value: the first is the value
