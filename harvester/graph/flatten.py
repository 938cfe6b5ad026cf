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

import msgspec
from msgspec.structs import replace

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


def flatten(body: bytes, ctx: Context, *, run_id: str | None = None,
            harvested_at: str | None = None) -> list[Record]:
    data = decode_insights(body).data
    if not data:
        return []
    template = _template(ctx, run_id, harvested_at)
    out: list[Record] = []
    for item in data:
        if ctx.breakdown_only:
            _breakdowns(item, template, ctx.timeframe, out)
        elif item.total_value is not None and item.total_value.value is not None:
            out.append(replace(template, metric=item.name, period=item.period,
                               value=item.total_value.value, dimension_keys=[], dimension_values=[]))
        else:
            _values(item, template, out)
    return out


def _template(ctx: Context, run_id: str | None, harvested_at: str | None) -> Record:
    """What every record of the call shares, set once. Each record is a ``structs.replace`` of
    it (about 4x faster than building a Record from its seventeen keywords); the lists are
    always fresh, so that no two records share one."""
    return Record(account_id=ctx.account_id, object_id=ctx.object_id, object_type=ctx.object_type,
                  media_type=ctx.media_type, media_product_type=ctx.media_product_type, metric="",
                  period="", metric_type=ctx.metric_type, timeframe=ctx.timeframe,
                  since=iso(ctx.since) if ctx.since is not None else None,
                  until=iso(ctx.until) if ctx.until is not None else None,
                  run_id=run_id, harvested_at=harvested_at)


def _breakdowns(item: Insight, template: Record, timeframe: str | None, out: list[Record]) -> None:
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
                values = lead + result.dimension_values if lead else result.dimension_values
                out.append(replace(template, metric=name, period=period, value=result.value,
                                   dimension_keys=list(keys), dimension_values=values))


def _values(item: Insight, template: Record, out: list[Record]) -> None:
    name, period = item.name, item.period
    for point in item.values:
        value, end_time = point.value, point.end_time
        if type(value) is dict:
            out.extend(replace(template, metric=name, period=period, value=v, end_time=end_time,
                               dimension_keys=["hour"], dimension_values=[hour])
                       for hour, v in value.items() if v is not None)
        elif value is not None:
            out.append(replace(template, metric=name, period=period, value=value, end_time=end_time,
                               dimension_keys=[], dimension_values=[]))
            if end_time is None:
                return  # a lifetime value: the first is the value
