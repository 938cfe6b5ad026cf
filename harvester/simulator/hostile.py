"""Hostile answers: what an independent fake Graph API sent (issue 10, point 7), as named
transforms of the API's real answer, in the style of ``faults.truncate``.

``SimulatorSettings.hostile`` names the kinds to apply; each is applied to every answer it fits
(a kind that does not fit an answer leaves it as it is). The kinds that spoil a unit's answer
pick their victims among media by the media id (:func:`is_victim`, about one media in four), so
that a harvest has both spoiled and intact units and a test can say which records must be
missing; :attr:`Hostile.hits` records every path each kind changed.

- ``duplicate_id``: every media page repeats its first item at its end.
- ``duplicate_across_edges``: an account's first ``/stories`` page also lists its newest media
  (the one on top of its ``/media``).
- ``duplicate_across_accounts``: an account's first ``/media`` page also lists the next account's
  newest media (a collaboration post, seen from both accounts).
- ``deep_unknown``: a victim's insights answer gets an unknown field nested 100,000 levels deep.
- ``deep_error_data``: a victim's insights answer becomes an error whose ``error_data`` is nested
  100,000 levels deep.
- ``deep_usage``: every answer's ``X-App-Usage`` header is nested 4,000 levels deep.
- ``odd_timestamps``: media page timestamps in other forms (``Z``, ``+00:00``, fractional seconds)
  and nonsense (``yesterday``, empty, 10 kB), item by item.
- ``bad_ids``: every media page gets three more items with ids that are not Graph ids
  (``../../me/accounts``, ``123?access_token=x``, 10 kB of digits and letters).
- ``next_elsewhere``: every media page's ``paging.next`` leads to ``/me/accounts``.
- ``endless_paging``: a media edge never ends: the last page gets a ``next``, and each page past
  the end repeats the last real page's items with a new cursor.
- ``huge_body``: a victim's insights answer is padded to ``Hostile.huge_bytes`` (:data:`HUGE_BYTES`).
- ``error_after_32``: a victim's insights answer is a 200 whose error object (code 1) comes
  after the first 32 bytes, behind an empty ``data``.
- ``object_value``: a victim's lifetime media metric values become objects (``{"a": 1}``).
- ``refuse_children``: a call that asks the ``children`` field of a page of ``/media`` (or of a
  media node) holding an album that refuses it (``World.refuses_children``, one album in 20)
  answers 400 code 100 "Tried accessing nonexisting field (children) on node type (IGMedia)";
  the same call without ``children`` answers as ever. Another connector's sync died on one such
  media (airbytehq/airbyte#14788, "media does not allow field children"); the body is a GUESS,
  the API's words for a field a node refuses.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from . import errors as E
from .api import render_listed
from .errors import SimReply, graph_error
from .fields import FieldsSyntaxError, parse_fields
from .world import World, account_id

DEPTH = 100_000
"""Levels of nesting of the ``deep_*`` kinds in a body."""
HEADER_DEPTH = 4_000
"""Levels of nesting of ``deep_usage``: far past any decoder's recursion limit (about 1,000), and
still a header line HTTP clients accept (aiohttp's limit is 8,190 bytes)."""
HUGE_BYTES = 65 * 1024 * 1024
"""The ``huge_body`` kind's size: past the default cap of 64 MiB (``[graph] max_response_bytes``)."""
BAD_IDS = ("../../me/accounts", "123?access_token=x", "9a" * 5000)
ODD_STAMPS = ("{date}T{time}Z", "{date}T{time}+00:00", "{date}T{time}.123456+0000", "yesterday", "", "7" * 10_000)
ENDLESS = "endless:"
"""Cursors of the pages past the end of an ``endless_paging`` edge."""

Query = Mapping[str, str]


def is_victim(object_id: str) -> bool:
    """Whether the answers about ``object_id`` are spoiled by the kinds that pick victims."""
    return hashlib.blake2b(object_id.encode(), digest_size=4).digest()[0] % 4 == 0


def deep(depth: int = DEPTH) -> bytes:
    """A JSON array nested ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


class Hostile:
    """The kinds chosen, applied to answers in a fixed order (their order in :data:`KINDS`)."""

    def __init__(self, kinds: tuple[str, ...] = (), *, world: World | None = None, huge_bytes: int = HUGE_BYTES):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown hostile kind {', '.join(unknown)}; choose from {', '.join(KINDS)}")
        self.kinds = tuple(k for k in KINDS if k in kinds)
        self.world = world
        """The world whose media the ``duplicate_across_*`` kinds list twice."""
        self.huge_bytes = huge_bytes
        """Size of a ``huge_body`` answer (tests lower it along with the cap)."""
        self.hits: dict[str, set[str]] = {k: set() for k in self.kinds}
        self.last_page: dict[str, list[Any]] = {}
        """endless_paging: the last real page's items, by edge path."""

    def apply(self, path: str, query: Query, reply: Any, base_url: str) -> Any:
        """``reply`` as the chosen kinds change it (anything but a :class:`SimReply` passes)."""
        if not isinstance(reply, SimReply):
            return reply
        for kind in self.kinds:
            changed = KINDS[kind](self, _Answer(path, query, reply, base_url))
            if changed is not None:
                self.hits[kind].add(path)
                reply = changed
        return reply


class _Answer:
    __slots__ = ("base_url", "parts", "path", "query", "reply")

    def __init__(self, path: str, query: Query, reply: SimReply, base_url: str):
        self.path, self.query, self.reply, self.base_url = path, query, reply, base_url
        self.parts = [p for p in path.split("/") if p]
        if self.parts and self.parts[0][:1] == "v" and self.parts[0][1:2].isdigit():
            self.parts = self.parts[1:]

    @property
    def page(self) -> bool:
        """A media edge (``/{account}/media`` or ``/stories``)."""
        return len(self.parts) == 2 and self.parts[1] in ("media", "stories")

    def victim(self) -> bool:
        """Insights of a victim media (an account's insights are never spoiled)."""
        return (self.reply.status == 200 and len(self.parts) == 2 and self.parts[1] == "insights"
                and is_victim(self.parts[0]) and self.query.get("metric") is not None
                and "period" not in self.query)

    def body(self) -> dict | None:
        if self.reply.status != 200:
            return None
        try:
            body = orjson.loads(self.reply.body)
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    def with_body(self, body: bytes, status: int | None = None) -> SimReply:
        return SimReply(status=self.reply.status if status is None else status, body=body,
                     headers=dict(self.reply.headers))


def _page_body(a: _Answer) -> dict | None:
    body = a.body() if a.page else None
    return body if body is not None and isinstance(body.get("data"), list) else None


def duplicate_id(h: Hostile, a: _Answer) -> SimReply | None:
    body = _page_body(a)
    if not body or not body["data"]:
        return None
    body["data"].append(dict(body["data"][0]))
    return a.with_body(orjson.dumps(body))


def _with_newest_media_of(h: Hostile, a: _Answer, edge: str, offset: int) -> SimReply | None:
    """A first page of ``edge`` with the newest media of the account ``offset`` places further."""
    body = _page_body(a)
    if body is None or h.world is None or a.parts[1] != edge or "after" in a.query or "before" in a.query:
        return None
    account = h.world.account_by_id(a.parts[0])
    if account is None:
        return None
    other = h.world.account_by_id(account_id((account.index + offset) % h.world.spec.accounts))
    if other is None or h.world.listed_media(other) == 0:
        return None
    body["data"].append(render_listed(h.world, h.world.media(other, 0), a.query))
    return a.with_body(orjson.dumps(body))


def duplicate_across_edges(h: Hostile, a: _Answer) -> SimReply | None:
    return _with_newest_media_of(h, a, "stories", 0)


def duplicate_across_accounts(h: Hostile, a: _Answer) -> SimReply | None:
    return _with_newest_media_of(h, a, "media", 1)


def deep_unknown(h: Hostile, a: _Answer) -> SimReply | None:
    if not a.victim():
        return None
    return a.with_body(a.reply.body.rstrip()[:-1] + b', "x_nested": ' + deep() + b"}")


def deep_error_data(h: Hostile, a: _Answer) -> SimReply | None:
    if not a.victim():
        return None
    error = graph_error(500, 1, "An unknown error occurred", subcode=99, error_data="DEEP")
    body = error.body.replace(b'"DEEP"', deep())
    return SimReply(status=500, body=body, headers={**a.reply.headers, **error.headers})


def deep_usage(h: Hostile, a: _Answer) -> SimReply | None:
    nested = "[" * HEADER_DEPTH + "]" * HEADER_DEPTH
    return SimReply(status=a.reply.status, body=a.reply.body,
                 headers={**a.reply.headers, "X-App-Usage": f'{{"call_count": {nested}}}'})


def odd_timestamps(h: Hostile, a: _Answer) -> SimReply | None:
    body = _page_body(a)
    items = [i for i in body["data"] if isinstance(i.get("timestamp"), str)] if body else []
    if not items:
        return None
    for index, item in enumerate(items):
        day, _, rest = item["timestamp"].partition("T")
        item["timestamp"] = ODD_STAMPS[index % len(ODD_STAMPS)].format(date=day, time=rest[:8])
    return a.with_body(orjson.dumps(body))


def bad_ids(h: Hostile, a: _Answer) -> SimReply | None:
    body = _page_body(a)
    if not body or not body["data"]:
        return None
    body["data"] += [{**body["data"][0], "id": bad} for bad in BAD_IDS]
    return a.with_body(orjson.dumps(body))


def next_elsewhere(h: Hostile, a: _Answer) -> SimReply | None:
    body = _page_body(a)
    if body is None:
        return None
    paging = body.setdefault("paging", {})
    nxt = paging.get("next") or _url(a, {**a.query, "after": "elsewhere"})
    parts = urlsplit(nxt)
    version = a.path.strip("/").split("/")[0]
    paging["next"] = urlunsplit((parts.scheme, parts.netloc, f"/{version}/me/accounts", parts.query, ""))
    return a.with_body(orjson.dumps(body))


def endless_paging(h: Hostile, a: _Answer) -> SimReply | None:
    if not a.page:
        return None
    after = _endless(a.query.get("after", ""))
    if after is not None:                       # past the end: the API said "cursor too far"
        items = h.last_page.get(a.path, [])
        body: dict[str, Any] | None = {"data": items}
        status = 200
    else:
        body = _page_body(a)
        if body is None:
            return None
        if body.get("paging", {}).get("next"):
            return None
        h.last_page[a.path] = body["data"]
        after, status = 0, None
    cursor = base64.urlsafe_b64encode(f"{ENDLESS}{after + 1}".encode()).decode()
    assert body is not None
    body["paging"] = {"cursors": {"after": cursor}, "next": _url(a, {**a.query, "after": cursor})}
    return a.with_body(orjson.dumps(body), status)


def huge_body(h: Hostile, a: _Answer) -> SimReply | None:
    if not a.victim():
        return None
    body = a.reply.body.rstrip()[:-1]
    return a.with_body(body + b', "padding": "' + b" " * (h.huge_bytes - len(body)) + b'"}')


def error_after_32(h: Hostile, a: _Answer) -> SimReply | None:
    if not a.victim():
        return None
    error = orjson.loads(graph_error(500, 1, "An unknown error occurred", subcode=99).body)["error"]
    return a.with_body(orjson.dumps({"data": [], "paging": {"previous": _url(a, a.query)}, "error": error}))


def object_value(h: Hostile, a: _Answer) -> SimReply | None:
    body = a.body() if a.victim() else None
    items = [i for i in body.get("data", []) if isinstance(i, dict) and i.get("values")] if body else []
    if not items:
        return None
    for item in items:
        for point in item["values"]:
            point["value"] = {"a": 1}
    return a.with_body(orjson.dumps(body))


def refuse_children(h: Hostile, a: _Answer) -> SimReply | None:
    if h.world is None or not _asks_children(a.query):
        return None
    body = a.body()
    if body is None:
        return None
    items = body.get("data") if a.page else [body] if len(a.parts) == 1 else None
    world = h.world
    for item in items if isinstance(items, list) else []:
        media = world.media_by_id(str(item.get("id", ""))) if isinstance(item, dict) else None
        if media is not None and world.refuses_children(media):
            error = graph_error(400, 100, E.NONEXISTING_FIELD.format(field="children", node="IGMedia"))
            return SimReply(status=400, body=error.body, headers={**a.reply.headers, **error.headers})
    return None


def _asks_children(query: Query) -> bool:
    try:
        return any(f.name == "children" for f in parse_fields(query.get("fields", "")))
    except FieldsSyntaxError:
        return False


def _url(a: _Answer, query: Query) -> str:
    return f"{a.base_url}{a.path}?{urlencode({k: v for k, v in query.items() if k != 'access_token'})}"


def _endless(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    tail = raw[len(ENDLESS):]
    return int(tail) if raw.startswith(ENDLESS) and tail.isdigit() else None


KINDS: dict[str, Callable[[Hostile, _Answer], SimReply | None]] = {
    "duplicate_id": duplicate_id,
    "duplicate_across_edges": duplicate_across_edges,
    "duplicate_across_accounts": duplicate_across_accounts,
    "deep_unknown": deep_unknown,
    "deep_error_data": deep_error_data,
    "deep_usage": deep_usage,
    "odd_timestamps": odd_timestamps,
    "bad_ids": bad_ids,
    "next_elsewhere": next_elsewhere,
    "endless_paging": endless_paging,
    "huge_body": huge_body,
    "error_after_32": error_after_32,
    "object_value": object_value,
    "refuse_children": refuse_children,
}
"""Every hostile kind, in the order they are applied."""
