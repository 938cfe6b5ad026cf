"""A delivery's body: ``{"object": "instagram", "entry": [{"id", "time", "changes": [{"field", "value"}]}]}``.

Meta's ``story_insights`` change carries the story's id and its final metrics, one number each
(``{"media_id": "1802…", "reach": 17, "replies": 0, "taps_forward": 12, …}``), sent about an hour
after the story expired. Each becomes one insights record per metric with the natural key of a
polled story's lifetime value (object_id, metric, ``lifetime``), so a story seen by a harvest and
by the webhook is stored once.

Rules, all or nothing per delivery (as a unit's records are): a body that is not a JSON object
with an ``entry`` list is refused; a ``story_insights`` change whose account or story id is not
a Graph id, whose value is not an object, or whose metric is not a number is refused with a
message naming it. An entry without ``changes`` (a messaging entry, say) and changes of other
fields are acknowledged and counted, never stored.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import msgspec

from ..graph.wire import is_graph_id
from ..records import InsightRecord

FIELD = "story_insights"
Number = int | float


class PayloadError(ValueError):
    """The delivery cannot be stored as it is; the message says where and what was expected."""


class _Change(msgspec.Struct):
    field: Any = None
    value: msgspec.Raw = msgspec.Raw(b"null")


class _Entry(msgspec.Struct):
    id: Any = None
    time: Any = None
    changes: list[_Change] | None = None


class _Delivery(msgspec.Struct):
    entry: list[_Entry]
    object: Any = None


_decoder = msgspec.json.Decoder(_Delivery)
_value_decoder = msgspec.json.Decoder(dict[str, Any])


class StoryChange(msgspec.Struct, frozen=True):
    """One story's final values, as a delivery stated them."""

    account_id: str
    media_id: str
    metrics: tuple[tuple[str, Number], ...]
    """``(metric, value)`` sorted by metric (so two equal deliveries compare equal)."""
    time: int | None = None
    """When Meta sent it (``entry.time``, Unix seconds), if it said."""


class Parsed(msgspec.Struct):
    stories: list[StoryChange]
    ignored: Counter[str]
    """Field -> changes of other fields acknowledged and not stored; ``(no changes)`` for entries without any."""


def parse(body: bytes) -> Parsed:
    """The story changes of a delivery, or PayloadError."""
    try:
        delivery = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"body is not a webhook delivery: {exc}; expected a JSON object "
                           '{"object": "instagram", "entry": [...]}') from None
    stories: list[StoryChange] = []
    ignored: Counter[str] = Counter()
    for i, entry in enumerate(delivery.entry):
        if not entry.changes:
            ignored["(no changes)"] += 1
            continue
        for j, change in enumerate(entry.changes):
            if change.field != FIELD:
                ignored[str(change.field)[:64]] += 1
                continue
            stories.append(_story(entry, change, f"entry[{i}].changes[{j}]"))
    return Parsed(stories, ignored)


def _story(entry: _Entry, change: _Change, where: str) -> StoryChange:
    if not is_graph_id(entry.id):
        raise PayloadError(f"{where.split('.')[0]}.id = {_show(entry.id)} is not an account id; expected a "
                           "string of digits")
    try:
        value = _value_decoder.decode(change.value)
    except msgspec.DecodeError:
        raw = bytes(change.value).decode(errors="replace")
        raise PayloadError(f"{where}.value = {raw if len(raw) <= 40 else raw[:37] + '...'} is not an "
                           'object; expected {"media_id": "<story id>", "<metric>": <number>, ...}') from None
    media_id = value.pop("media_id", None)
    if not is_graph_id(media_id):
        raise PayloadError(f"{where}.value.media_id = {_show(media_id)} is not a story id; expected a string "
                           "of digits")
    metrics = []
    for name, number in sorted(value.items()):
        if number is None:
            continue                       # the API's "no value": nothing to state
        if type(number) not in (int, float):
            raise PayloadError(f"{where}.value.{name[:64]} = {_show(number)} is not a number; expected an "
                               "integer or a decimal")
        metrics.append((name, number))
    sent = entry.time if type(entry.time) is int else None
    return StoryChange(entry.id, media_id, tuple(metrics), sent)


def _show(value: Any) -> str:
    """A value as a message may quote it: short, whatever the sender put there."""
    scalar = isinstance(value, (str, int, float, bool, type(None)))
    text = msgspec.json.encode(value).decode() if scalar else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def records(change: StoryChange, *, run_id: str, received_at: str, observed_on: str | None = None
            ) -> list[InsightRecord]:
    """The insights records a story change states: media lifetime values of a STORY, ``source`` webhook."""
    return [InsightRecord(account_id=change.account_id, object_id=change.media_id, object_type="media",
                          media_product_type="STORY", metric=name, period="lifetime", value=number,
                          observed_on=observed_on, run_id=run_id, harvested_at=received_at, source="webhook")
            for name, number in change.metrics]


def digest(change: StoryChange) -> str:
    """What makes two deliveries of a story the same: its account, id and values."""
    return hashlib.blake2b(msgspec.json.encode(change), digest_size=12).hexdigest()
