"""The Graph API client: builds requests, reads usage, turns error answers into exceptions.

The token travels only in the ``Authorization: Bearer`` header: never in a URL, so never in a
log line or an exception that quotes one. The client decides nothing about retries (that is
``policy``'s table) and decodes no successful body (that is ``flatten``'s and ``wire``'s, on
the hot path, once). It only makes sure that what it returns looks like a JSON object and is
not an error; a 200 body cut short is caught where it is decoded (``wire`` raises DecodeError).

What goes into a URL is checked here, because ids come from answers (issue 10, point 7): each
path segment is a Graph id (digits) or one of the edges harvester asks for (so needs no quoting); a
``paging.next`` is followed only along the edge it pages; a body past ``max_response_bytes``
fails the unit whatever the transport. A refusal is ``DecodeError(complete=True)``: the id or URL
came from an answer, so the unit that holds it fails with the reason, and asking again will not
change it (configured account ids are checked by the config loader long before).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from urllib.parse import unquote, unquote_plus, urlencode, urlsplit, urlunsplit

import msgspec

from ..errors import DecodeError, GraphError
from .hedge import Flight
from .transport import Response, Transport
from .wire import Usage, decode_error, is_graph_id, parse_usage

REDACTED = "[redacted]"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Default cap of a body: far above any real answer (a full media page is about 30 kB)."""
NAMES = frozenset({"me", "insights", "media", "stories", "children", "accounts", "debug_token",
                   "refresh_access_token"})
"""The nodes and edges harvester asks for: with Graph ids, the only path segments allowed."""
_SEGMENT = "|".join(("[0-9]{1,32}", *sorted(NAMES)))
_PATH = re.compile(f"(?:{_SEGMENT})(?:/(?:{_SEGMENT}))*")
"""A path of such segments (a Graph id is :data:`.wire.GRAPH_ID`): checked in one match."""
_VERSIONED = re.compile(r"/v\d+\.\d+/(.*)", re.S)
QueryParams = Mapping[str, str] | Sequence[tuple[str, str]]
"""Query parameters: a mapping, or pairs in order (a planned unit's, as they are)."""


class Reply(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    usage: Usage | None = None


class GraphClient:
    def __init__(self, transport: Transport, base_url: str, api_version: str, *,
                 max_response_bytes: int = MAX_RESPONSE_BYTES):
        self.transport = transport
        self.max_response_bytes = max_response_bytes
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        base = urlsplit(self.base_url)
        self._scheme, self._netloc, self._prefix = base.scheme, base.netloc, base.path.rstrip("/")

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    def url(self, path: str, params: QueryParams, *, token: str = "", versioned: bool = True) -> str:
        """``{base_url}/{api_version}/{path}?{params}``, each segment of ``path`` checked and quoted
        (``token``: never quoted in the refusal, should the path hold it)."""
        checked = path.lstrip("/")
        if not _PATH.fullmatch(checked):
            segment = next(s for s in checked.split("/") if not (is_graph_id(s) or s in NAMES))
            raise DecodeError(f"refused to call /{_cut(path, token)}: {_cut(segment, token)!r} is neither a "
                              f"Graph id (digits) nor one of {', '.join(sorted(NAMES))}", complete=True)
        # Checked segments are digits or plain names, which quoting leaves as they are.
        version = f"/{self.api_version}" if versioned else ""
        url = f"{self.base_url}{version}/{checked}"
        if not params:
            return url
        if type(params) is tuple:       # a planned unit's pairs (every insights call): no Mapping check
            pairs = params
        else:
            pairs = tuple(params.items()) if isinstance(params, Mapping) else tuple(params)
        return f"{url}?{_query(pairs)}"

    async def get(self, path: str, params: QueryParams, token: str, *, versioned: bool = True,
                  flight: Flight | None = None) -> Reply:
        """GET ``path``; ``flight``: a scheduled job's call, which the scheduler may hedge (the GET
        goes through it)."""
        return await self._send(self.url(path, params, token=token, versioned=versioned), token, flight)

    async def follow(self, url: str, token: str, *, path: str, flight: Flight | None = None) -> Reply:
        """GET a ``paging.next`` URL of the API, without its token and through our base URL,
        only if it pages ``path`` (the edge its page came from, e.g. ``"178414.../media"``)."""
        leads = self.paged_path(url)
        if leads != path.strip("/"):
            shown = urlsplit(url).path if leads is not None else "an unreadable path"
            raise DecodeError(f"paging.next leads to {_cut(shown, token)}, not /{_cut(path.strip('/'))}",
                              complete=True)
        return await self._send(self.rehost(url), token, flight)

    def paged_path(self, url: str) -> str | None:
        """The path of ``url`` after the version segment (and any base path prefix), decoded;
        None if it has no version segment."""
        path = urlsplit(url).path
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix):]
        match = _VERSIONED.fullmatch(path)
        return unquote(match.group(1)).strip("/") if match else None

    def rehost(self, url: str) -> str:
        """``url`` with ``access_token`` removed and scheme and host (and any path prefix) those
        of the configured base URL; the path and the rest of the query are kept as they are."""
        parts = urlsplit(url)
        query = "&".join(p for p in parts.query.split("&") if p and not _is_token(p))
        path = parts.path
        if self._prefix and not path.startswith(self._prefix + "/"):
            path = self._prefix + path
        return urlunsplit((self._scheme, self._netloc, path, query, ""))

    async def _send(self, url: str, token: str, flight: Flight | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"}
        response = await (self.transport.get(url, headers) if flight is None else
                          flight.get(self.transport, url, headers))
        if len(response.body) > self.max_response_bytes:
            raise too_large(self.max_response_bytes, response.status)
        usage = parse_usage(response.headers)
        if 200 <= response.status < 300 and _plain_json(response.body):
            body = response.body
            if b'"error"' in body and token and token.encode() in body:
                # An error object further in is raised by the decoder, which knows no token.
                body = body.replace(token.encode(), REDACTED.encode())
            return Reply(response.status, body, usage)
        raise _redact(_error(response, usage), token)


@lru_cache(maxsize=4096)
def _query(pairs: tuple[tuple[str, str], ...]) -> str:
    """A query string, encoded once: the units of every account share a few hundred (metric lists,
    periods, dates), and ``urlencode`` was the client's largest cost per call."""
    return urlencode(pairs)


def too_large(cap: int, status: int | None = None) -> DecodeError:
    """The failure of a body past the cap (the transport stops reading there; the client checks
    again for any transport)."""
    return DecodeError(f"answer larger than {_size(cap)} ([graph] max_response_bytes)", status=status,
                       complete=True)


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _cut(text: str, token: str = "", limit: int = 80) -> str:
    """Text from an answer, for a message: the token (should it hold it) redacted, then cut to a
    sane length."""
    if token:
        text = text.replace(token, REDACTED)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_token(pair: str) -> bool:
    return unquote_plus(pair.split("=", 1)[0]) == "access_token"


def _plain_json(body: bytes) -> bool:
    """A cheap look at the start: an object whose first member is not ``error`` (an ``error``
    further in, as ``/debug_token``'s ``{"data": {"error": ...}}`` of an invalid token, is data;
    one at the top level after other members is raised by the decoder)."""
    head = body[:32].lstrip()
    return head[:1] == b"{" and not head[1:].lstrip().startswith(b'"error"')


def _error(response: Response, usage: Usage | None) -> GraphError | DecodeError:
    """What an answer that is not plain data means: a GraphError, or DecodeError if not JSON."""
    body, status = response.body, response.status
    if not body.strip():
        return DecodeError(f"empty body (HTTP {status})", status=status)
    if body.lstrip()[:1] != b"{":
        return DecodeError(f"not JSON (HTTP {status}, {len(body)} bytes{_content_type(response)})",
                           status=status)
    try:
        return decode_error(status, body, usage)
    except DecodeError as exc:  # HTML, cut short, or JSON without an ``error`` object
        return exc


def _content_type(response: Response) -> str:
    kind = response.headers.get("content-type")
    return f", {kind.split(';')[0]}" if kind else ""


def _redact(error: GraphError | DecodeError, token: str) -> GraphError | DecodeError:
    """The API's own text may quote the token (a malformed-token message): never pass it on."""
    if not token or not isinstance(error, GraphError):
        return error
    if token in error.message or token in (error.user_title or ""):
        error.message = error.message.replace(token, REDACTED)
        error.user_title = error.user_title and error.user_title.replace(token, REDACTED)
        sub = f"/{error.subcode}" if error.subcode is not None else ""
        error.args = (f"Graph API error {error.code}{sub} (HTTP {error.status}): {error.message}",)
    return error
