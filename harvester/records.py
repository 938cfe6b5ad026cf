"""The records a harvest writes, one stream each, and their natural keys.

Three kinds, a tagged union on ``stream`` (so ``match`` and ``msgspec.json.decode(..., type=Record)``
both tell them apart):

- :class:`InsightRecord` (``insights``): one number, a metric of one object, for one
  period/window/day, for one combination of breakdown dimensions. ``since``/``until`` are those of
  the request that produced it (absent for media lifetime values and demographics); ``end_time``
  is set for daily values; ``observed_on`` (the UTC day of the harvest) only for media lifetime
  values under ``[output] lifetime_history``, which keeps one value per day observed.
- :class:`MediaRecord` (``media``): a media object as a page of ``/media`` or ``/stories`` listed
  it, keyed by its id: the latest run's record is the current one.
- :class:`AccountRecord` (``accounts``): an account node as a run read it, keyed by the account
  and the UTC day of the harvest: a daily history of followers and media counts.

The natural key identifies the fact a record states, independent of the run that fetched it: a
later run's record with the same key replaces an earlier one, and a harvest never emits a key twice.
Fields the API omits (a hidden like count, a media without caption) are ``None``.

A record is a msgspec Struct: ``msgspec.json.encode(record)`` writes it, :meth:`to_dict` gives the
plain dict that ``json.dumps`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

Value = int | float | None
ObjectType = Literal["account", "media"]
"""What an insight is about: an account's or a media's."""
Stream = Literal["insights", "media", "accounts"]
STREAMS: tuple[Stream, ...] = ("insights", "media", "accounts")

KEY_FIELDS = ("object_id", "metric", "period", "timeframe", "dimension_keys", "dimension_values", "end_time",
              "since", "until", "observed_on")
"""The fields an insight's natural key is made of (:func:`make_key`'s parameters): since/until
count only when ``end_time`` is not set."""


class _Base(msgspec.Struct, kw_only=True, omit_defaults=False, gc=False, tag_field="stream"):
    """Untracked by the garbage collector: a record holds only strings, numbers and tuples of
    strings, so it can never be part of a cycle, and millions of them cost the collector nothing."""

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (``stream`` included), for ``json.dumps`` and dataframes."""
        return msgspec.to_builtins(self)


class InsightRecord(_Base, kw_only=True, tag="insights"):
    """One fact. Immutable in practice (dimension tuples may be shared between records)."""

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
    observed_on: str | None = None
    run_id: str | None = None
    harvested_at: str | None = None
    source: str | None = None
    """``webhook`` for a story's final values that Meta posted (``story_insights``); None for a
    value a harvest polled. Not part of the natural key: the same fact, however it arrived."""


class MediaRecord(_Base, kw_only=True, tag="media"):
    """A post, reel, album or live story. ``children_ids``/``children_types``: an album's children
    in order, ``()`` for a media that has none, ``None`` when the API refused the field."""

    media_id: str
    account_id: str
    media_type: str | None = None
    media_product_type: str | None = None
    timestamp: str | None = None
    permalink: str | None = None
    shortcode: str | None = None
    caption: str | None = None
    like_count: int | None = None
    comments_count: int | None = None
    is_comment_enabled: bool | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    children_ids: tuple[str, ...] | None = ()
    children_types: tuple[str, ...] | None = ()
    run_id: str | None = None
    harvested_at: str | None = None


class AccountRecord(_Base, kw_only=True, tag="accounts"):
    """An account as a run saw it; ``day`` is the UTC day of the harvest."""

    account_id: str
    day: str
    username: str | None = None
    name: str | None = None
    followers_count: int | None = None
    follows_count: int | None = None
    media_count: int | None = None
    biography: str | None = None
    website: str | None = None
    profile_picture_url: str | None = None
    run_id: str | None = None
    harvested_at: str | None = None


Record = InsightRecord | MediaRecord | AccountRecord
"""Any record of a harvest."""

STREAM_OF: dict[type, Stream] = {InsightRecord: "insights", MediaRecord: "media", AccountRecord: "accounts"}
RECORD_TYPES: dict[Stream, type] = {stream: kind for kind, stream in STREAM_OF.items()}

NaturalKey = tuple[Any, ...]


def make_key(object_id: str, metric: str, period: str, timeframe: str | None = None,
             dimension_keys: Sequence[str] = (), dimension_values: Sequence[str] = (),
             end_time: str | None = None, since: str | None = None, until: str | None = None,
             observed_on: str | None = None) -> NaturalKey:
    """The one rule for insights: the :data:`KEY_FIELDS` in order, with ``(since, until)`` in
    place of ``end_time`` for totals that carry none. Everything that keys an insight calls this."""
    when: tuple[str | None, ...] = (end_time,) if end_time is not None else (since, until)
    return (object_id, metric, period, timeframe, tuple(dimension_keys), tuple(dimension_values), *when,
            observed_on)


def natural_key(r: Record | Mapping[str, Any]) -> NaturalKey:
    """The natural key of a record of any stream, or of one read back as a dict (from JSONL,
    say: a dict without ``stream`` is an insight, as files before the streams hold)."""
    if isinstance(r, InsightRecord):
        return make_key(r.object_id, r.metric, r.period, r.timeframe, r.dimension_keys, r.dimension_values,
                        r.end_time, r.since, r.until, r.observed_on)
    if isinstance(r, MediaRecord):
        return (r.media_id,)
    if isinstance(r, AccountRecord):
        return (r.account_id, r.day)
    stream = r.get("stream", "insights")
    if stream == "media":
        return (r["media_id"],)
    if stream == "accounts":
        return (r["account_id"], r["day"])
    return make_key(r["object_id"], r["metric"], r["period"], r.get("timeframe"), r["dimension_keys"],
                    r["dimension_values"], r.get("end_time"), r.get("since"), r.get("until"), r.get("observed_on"))


key_of = natural_key
"""The same function, under the name the manifest and the demo use for dicts."""

_key_encoder = msgspec.json.Encoder()


def key_text(r: Record | Mapping[str, Any]) -> str:
    """The natural key as one string (its JSON), for the primary key column of a table: insights'
    key fields may be null or lists, which a SQL primary key cannot hold."""
    return _key_encoder.encode(natural_key(r)).decode()
