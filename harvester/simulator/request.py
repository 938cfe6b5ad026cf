"""One call to the simulated Graph API, parsed once, and what every route does with it: the
``fields`` and ``metric`` it asks, the JSON answer, and the cursor paging of an edge.

Cursors are the API's opaque base64; here they encode the offset (``sim:<n>``). A paging URL is
written as the API writes it: the access token first (yes, embedded), then the query.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

from . import errors as E
from .errors import SimReply
from .fields import Field, FieldsSyntaxError, parse_fields
from .world import TokenInfo

DEFAULT_LIMIT, MAX_LIMIT = 25, 100
Query = Mapping[str, str]


class Request:
    """One call, parsed once: the node, the edge, the query, who asks and where it was asked."""

    __slots__ = ("base_url", "edge", "node_id", "query", "token", "version")

    def __init__(self, version: str, node_id: str, edge: str | None, query: Query, token: TokenInfo, base_url: str):
        self.version, self.node_id, self.edge = version, node_id, edge
        self.query, self.token, self.base_url = query, token, base_url


def ok(body: dict) -> SimReply:
    return SimReply(200, orjson.dumps(body))


def requested(query: Query, default: tuple[str, ...] = ("id",)) -> list[Field] | SimReply:
    """The parsed ``fields`` of ``query`` (``default`` when absent or empty), or the API's
    code 2500 syntax error."""
    raw = query.get("fields")
    try:
        fields = parse_fields(raw) if raw else []
    except FieldsSyntaxError as error:
        return E.graph_error(400, 2500, str(error))
    return fields or [Field(name) for name in default]


def metric_list(q: Query) -> list[str] | SimReply:
    """The ``metric`` names asked, or the API's error when there are none."""
    names = [n.strip() for n in q.get("metric", "").split(",") if n.strip()]
    return names or E.invalid(E.PARAM_REQUIRED.format(name="metric"))


# --- cursor paging ------------------------------------------------------------------------------


def paged(req: Request, total: int, render: Callable[[int], dict]) -> SimReply:
    """The page of an edge of ``total`` items that ``req`` asks for, each item rendered by index."""
    window = page_window(req.query, total)
    if isinstance(window, SimReply):
        return window
    start, end, limit = window
    body: dict[str, Any] = {"data": [render(i) for i in range(start, end)]}
    if end > start:
        paging: dict[str, Any] = {"cursors": {"before": cursor(start), "after": cursor(end)}}
        if start > 0:
            paging["previous"] = _edge_url(req, limit, "before", cursor(start))
        if end < total:
            paging["next"] = _edge_url(req, limit, "after", cursor(end))
        body["paging"] = paging
    return ok(body)


def page_window(q: Query, total: int) -> tuple[int, int, int] | SimReply:
    """(start, end, limit) of the page the query asks for."""
    raw = q.get("limit")
    if raw is not None and not raw.isdigit():
        return E.invalid(E.BAD_NUMBER.format(name="limit"))
    limit = min(MAX_LIMIT, max(1, int(raw))) if raw else DEFAULT_LIMIT
    if q.get("after"):
        start = _offset(q["after"])
        if start is None or start > total:
            return E.invalid(E.CURSOR_TOO_FAR)
        return start, min(total, start + limit), limit
    if q.get("before"):
        end = _offset(q["before"])
        if end is None or end > total:
            return E.invalid(E.CURSOR_TOO_FAR)
        return max(0, end - limit), end, limit
    return 0, min(total, limit), limit


def nested_url(req: Request) -> Callable[[Any, str, int, int], str]:
    """The ``paging.next`` of an expanded edge cut by its limit: the edge itself, from there."""
    def url(obj: Any, edge: str, limit: int, offset: int) -> str:
        params = {"access_token": req.token.token, "limit": str(limit), "after": cursor(offset)}
        return f"{req.base_url}/{req.version}/{obj.id}/{edge}?{urlencode(params)}"
    return url


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(b"sim:%d" % offset).decode()


def _offset(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode())
    except (ValueError, TypeError):
        return None
    return int(raw[4:]) if raw[:4] == b"sim:" and raw[4:].isdigit() else None


def _edge_url(req: Request, limit: int, direction: str, cursor: str) -> str:
    """A paging URL as the API writes it: the access token first (yes, embedded), then the query."""
    params = {"access_token": req.token.token}
    params.update((k, v) for k, v in req.query.items() if k not in ("access_token", "after", "before", "limit"))
    params.update(limit=str(limit), **{direction: cursor})
    return f"{req.base_url}/{req.version}/{req.node_id}/{req.edge}?{urlencode(params)}"
