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
ignored, and a body that is not insights JSON (cut short, a 200 without ``data``, an error object
at its top level) raises DecodeError (or the GraphError it states).

Values are read by what the catalog says the metric is: an object value (hour -> count) only for
a metric whose ``object_value`` is set (``online_followers``), and a number for no such metric
(a time series entry; a lone lifetime value is not looked up, it is the hot path of media, and no
media metric is object-valued). An object where a number is due
(``{"value": {"a": 1}}`` for a media's ``reach``) fails the whole unit with
``DecodeError(complete=True)`` naming the metric, rather than dropping that one item: a unit's
records are all or nothing, and a record invented from it (an "hour" breakdown that is not one)
or a silently missing metric would both be wrong data.
"""

from __future__ import annotations

from typing import cast

import msgspec
from msgspec.structs import replace

from .. import catalog
from ..days import iso
from ..errors import DecodeError
from ..records import InsightRecord, ObjectType
from .wire import Insight, TotalValue, decode_insights


class Context(msgspec.Struct, frozen=True):
    """What a record needs to know that the response does not say: whose, what, which window."""

    account_id: str
    object_id: str
    object_type: ObjectType
    media_type: str | None = None
    media_product_type: str | None = None
    metric_type: str | None = None
    timeframe: str | None = None
    since: int | None = None
    until: int | None = None
    breakdown_only: bool = False


def flatten(body: bytes, ctx: Context, *, run_id: str | None = None, harvested_at: str | None = None,
            observed_on: str | None = None) -> list[InsightRecord]:
    """``observed_on``: the UTC day stamped on media lifetime values under ``[output]
    lifetime_history`` (it joins their natural key, so each day observed is kept)."""
    data = decode_insights(body).data
    if not data:
        return []
    template = _template(ctx, run_id, harvested_at)
    if observed_on is not None and ctx.object_type == "media":
        template = replace(template, observed_on=observed_on)
    out: list[InsightRecord] = []
    if ctx.breakdown_only:
        for item in data:
            if item.total_value is not None:
                _breakdowns(item.name, item.period, item.total_value, template, ctx.timeframe, out)
        return out
    append = out.append
    for item in data:
        total, values = item.total_value, item.values
        if total is not None and total.value is not None:
            append(replace(template, metric=item.name, period=item.period, value=total.value))
        elif len(values) == 1 and values[0].end_time is None and type(values[0].value) is not dict:
            if values[0].value is not None:   # a lifetime value (media): the common case, kept short
                append(replace(template, metric=item.name, period=item.period, value=values[0].value))
        else:
            _values(item, template, out)
    return out


def _template(ctx: Context, run_id: str | None, harvested_at: str | None) -> InsightRecord:
    """What every record of the call shares, set once; each record is a ``structs.replace`` of it
    (about twice as fast as building a InsightRecord from its seventeen keywords)."""
    since, until = ctx.since, ctx.until
    return InsightRecord(account_id=ctx.account_id, object_id=ctx.object_id, object_type=ctx.object_type,
                         media_type=ctx.media_type, media_product_type=ctx.media_product_type, metric="",
                         period="", metric_type=ctx.metric_type, timeframe=ctx.timeframe,
                         since=None if since is None else _ISO.get(since) or _iso(since),
                         until=None if until is None else _ISO.get(until) or _iso(until),
                         run_id=run_id, harvested_at=harvested_at)


_ISO: dict[int, str] = {}
"""A harvest asks for the same few windows over and over: each stamp is formatted once."""


def _iso(ts: int) -> str:
    if len(_ISO) > 4096:
        _ISO.clear()
    text = _ISO[ts] = iso(ts)
    return text


def _breakdowns(name: str, period: str | None, total: TotalValue, template: InsightRecord, timeframe: str | None,
                out: list[InsightRecord]) -> None:
    append = out.append
    for breakdown in total.breakdowns:
        keys, lead = breakdown.dimension_keys, cast(tuple[str, ...], ())
        if timeframe is not None and keys[:1] != ("timeframe",):
            keys, lead = ("timeframe", *keys), (timeframe.upper(),)
        for result in breakdown.results:
            if result.value is not None:
                append(replace(template, metric=name, period=period, value=result.value, dimension_keys=keys,
                               dimension_values=lead + result.dimension_values if lead else result.dimension_values))


def _values(item: Insight, template: InsightRecord, out: list[InsightRecord]) -> None:
    name, period = item.name, item.period
    object_valued = (template.object_type, name) in _OBJECT_VALUED
    for point in item.values:
        value, end_time = point.value, point.end_time
        if type(value) is dict:
            if not object_valued:
                raise DecodeError(f"bad insights body: {template.object_type} metric {name!r} has an object "
                                  f"value where the catalog expects a number", complete=True)
            out.extend(replace(template, metric=name, period=period, value=v, end_time=end_time,
                               dimension_keys=_HOUR, dimension_values=(hour,))
                       for hour, v in value.items() if v is not None)
        elif value is not None:
            if object_valued:
                raise DecodeError(f"bad insights body: {template.object_type} metric {name!r} has a number "
                                  f"where the catalog expects an object (hour -> count)", complete=True)
            out.append(replace(template, metric=name, period=period, value=value, end_time=end_time))
            if end_time is None:
                return  # a lifetime value: the first is the value


_HOUR = ("hour",)
_OBJECT_VALUED = frozenset((m.level, m.name) for m in (*catalog.ACCOUNT_METRICS, *catalog.MEDIA_METRICS)
                           if m.object_value)
"""(level, metric) whose value is an object: hour -> count (``online_followers``)."""
