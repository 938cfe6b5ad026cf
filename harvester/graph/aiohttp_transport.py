"""The real transport: one aiohttp session, where library errors become harvester's.

Every aiohttp, asyncio and OS error, including a body cut short (``ClientPayloadError``, a reset
mid-body), is translated here, once, into :class:`TransportError` with ``raise ... from exc``.
Messages name the host and path only: the query (which may hold a token) never appears, and
the cause keeps no URL either (aiohttp's own exceptions may quote the full URL).

A body its ``Content-Encoding`` header says is compressed but is not (aiohttp's
``ContentEncodingError``) becomes :class:`DecodeError` naming the encoding, with the status: the
answer arrived and is wrong, which the policy retries once (a whole answer of the wrong shape),
not as a lost connection. Its message names no URL, so that the units it fails share one reason.

A body is read in chunks and never past ``max_response_bytes``: a larger answer (a declared
``Content-Length`` over the cap, or the bytes as they come) closes the connection and raises
``DecodeError(complete=True)`` after holding at most the cap and one chunk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError
from yarl import URL

from ..errors import DecodeError, TransportError
from .client import MAX_RESPONSE_BYTES, too_large
from .transport import Response

CHUNK = 256 * 1024
_ENCODING = re.compile(r"content-encoding:\s*([^.]+)", re.IGNORECASE)


class AiohttpTransport:
    """``limit`` bounds open connections (TCPConnector); ``timeout`` is per request, in seconds;
    ``max_response_bytes`` caps a body."""

    def __init__(self, limit: int = 32, timeout: float = 60, max_response_bytes: int = MAX_RESPONSE_BYTES):
        self.limit = limit
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"AiohttpTransport(limit={self.limit}, timeout={self.timeout})"

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        session = self._session or self._open()
        status: int | None = None
        try:
            async with session.get(_target(url), headers=headers, allow_redirects=False) as resp:
                status = resp.status
                body = await self._read(resp)
                if body is None:
                    resp.close()    # the rest of the body is never read: the connection cannot be reused
                    raise too_large(self.max_response_bytes, resp.status)
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            failure = exc
        # Raised outside the handler, so that no implicit __context__ keeps the original around.
        if (encoding := _bad_encoding(failure)) is not None:
            raise DecodeError(f"the body cannot be decoded as {encoding}, the Content-Encoding its header names",
                              status=status, complete=True) from _scrubbed(failure)
        raise TransportError(f"GET {_where(url)} failed: {_describe(failure)}") from _scrubbed(failure)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None as soon as it is known to be past the cap."""
        cap = self.max_response_bytes
        length = resp.content_length
        if length is not None and length > cap:
            return None
        if length is not None and "Content-Encoding" not in resp.headers:
            # Declared and not compressed: one read, which stops at the declared length.
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _open(self) -> aiohttp.ClientSession:
        """Created on first use, so that it belongs to the running loop."""
        connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # No cookie jar: the Graph API sets none that matter, and the jar is work on every call.
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False,
                                        cookie_jar=aiohttp.DummyCookieJar())
        # aiohttp silently re-sends a GET once when a kept-alive connection drops: a call the
        # rate limiter never counted. Retries are the policy's (no public switch for this).
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _target(url: str) -> URL | str:
    """The client's URLs are encoded already (``urlencode``, checked path segments): handed over
    as such, yarl does not parse and quote them again. Anything else (a space, a control
    character, non-ASCII) goes as a string, for yarl to quote."""
    if not (url.isascii() and url.isprintable() and " " not in url):
        return url
    cut = url.find("/", url.find("://") + 3)
    origin = _origin(url[:cut]) if cut > 0 and "#" not in url else None
    if origin is None:
        return URL(url, encoded=True)
    # What URL(url, encoded=True) makes of it, without splitting the URL again on every call.
    path, _, query = url[cut:].partition("?")
    return URL.build(scheme=origin[0], authority=origin[1], path=path, query_string=query, encoded=True)


@lru_cache(maxsize=16)
def _origin(prefix: str) -> tuple[str, str] | None:
    """``(scheme, authority)`` of ``scheme://authority`` as yarl reads it, or None when ``prefix``
    is not just that. Cached: a run calls one or two origins, on every call."""
    try:
        parsed = URL(prefix, encoded=True)
    except ValueError:
        return None
    scheme, authority = parsed.scheme, parsed.raw_authority
    head = len(scheme) + 3
    if scheme and authority and prefix[:head].lower() == f"{scheme}://" and prefix[head:] == authority:
        return scheme, authority
    return None


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _bad_encoding(exc: BaseException) -> str | None:
    """The encoding aiohttp could not decode the body with (``gzip``, ``deflate``, ``brotli (br)``),
    or None when ``exc`` is no content-decoding failure."""
    link: BaseException | None = exc
    for _ in range(4):
        if link is None:
            return None
        if isinstance(link, ContentEncodingError):
            text = str(getattr(link, "message", "") or "")
            named = _ENCODING.search(text)
            return " ".join((named.group(1) if named else text).split()) or "the encoding it names"
        link = link.__cause__ or link.__context__
    return None


def _describe(exc: BaseException) -> str:
    """The kind of failure, without any URL aiohttp may have put in the exception's text."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the body was cut short"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({type(exc.os_error).__name__})"
    if isinstance(exc, (ConnectionResetError, aiohttp.ClientOSError)):
        return "connection reset"
    return type(exc).__name__


def _scrubbed(exc: BaseException) -> BaseException:
    """The cause to chain: the original, unless something in its chain could carry a secret
    (a query string, or request headers as aiohttp's ``request_info`` holds them)."""
    link: BaseException | None = exc
    for _ in range(8):
        if link is None:
            return exc
        text = f"{link!r} {link}".lower()
        if hasattr(link, "request_info") or "?" in text or "bearer" in text or "authorization" in text:
            break
        link = link.__cause__ or link.__context__
    return TransportError(f"{type(exc).__name__} (details withheld: they may hold the URL or headers)")
