"""What the Graph API sends, declared once as msgspec Structs, with decoders built at import.

Every Struct lists only the fields harvester reads: unknown fields (``title``, ``description``,
``id``, whatever Meta adds next) are skipped by the decoder. The decoders here are the only place
response bytes become Python objects; a body that is not the JSON it should be raises
:class:`~harvester.errors.DecodeError`, never a msgspec exception.

Shapes of insights (Meta's Graph API insights reference): ``values[]`` (``value`` and, for time series, ``end_time``),
``total_value`` (``value`` and ``breakdowns[].dimension_keys`` / ``results[].dimension_values``,
keys possibly more than one), a ``value`` that is an object (``online_followers``: hour -> count),
a missing ``value``, and an empty ``data``.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

import msgspec

from ..errors import DecodeError, GraphError

Number = int | float
T = TypeVar("T")

# --- insights ------------------------------------------------------------------------------
# gc=False is safe: decoded bodies are trees of lists, strings and numbers, never cycles.


class Result(msgspec.Struct, gc=False):
    dimension_values: tuple[str, ...] = ()
    value: Number | None = None


class Breakdown(msgspec.Struct, gc=False):
    dimension_keys: tuple[str, ...] = ()
    results: list[Result] = []


class TotalValue(msgspec.Struct, gc=False):
    value: Number | None = None
    breakdowns: list[Breakdown] = []


class Point(msgspec.Struct, gc=False):
    value: Number | dict[str, Number | None] | None = None
    end_time: str | None = None


class Insight(msgspec.Struct, gc=False):
    name: str
    period: str | None = None
    values: list[Point] = []
    total_value: TotalValue | None = None


class Insights(msgspec.Struct, gc=False):
    data: list[Insight] = []


# --- discovery -----------------------------------------------------------------------------


class AccountNode(msgspec.Struct, gc=False):
    id: str
    username: str | None = None
    followers_count: int | None = None
    media_count: int | None = None


class MediaItem(msgspec.Struct, gc=False):
    id: str
    media_type: str | None = None
    media_product_type: str | None = None
    timestamp: str | None = None


class Cursors(msgspec.Struct, gc=False):
    after: str | None = None
    before: str | None = None


class Paging(msgspec.Struct, gc=False):
    cursors: Cursors | None = None
    next: str | None = None


class MediaPage(msgspec.Struct, gc=False):
    data: list[MediaItem] = []
    paging: Paging | None = None
    rejected: list[str] = []
    """Why items of the page were left out (filled by the decoder, never by the API)."""


# --- errors and usage ----------------------------------------------------------------------


class ErrorObject(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: int | None = None
    error_subcode: int | None = None
    is_transient: bool | None = None
    error_user_title: str | None = None
    error_user_msg: str | None = None
    error_data: Any = None
    fbtrace_id: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorObject


class Usage(msgspec.Struct, frozen=True):
    """Where a token stands: the highest percentage any usage header reports, and how long
    the server says a throttled caller must wait (0 when it is not throttled)."""

    percent: int
    regain_seconds: float = 0.0


class _UsageFigures(msgspec.Struct):
    call_count: Number = 0
    total_time: Number = 0
    total_cputime: Number = 0
    estimated_time_to_regain_access: Number = 0


_INSIGHTS = msgspec.json.Decoder(Insights)
_ACCOUNT = msgspec.json.Decoder(AccountNode)
_MEDIA_PAGE = msgspec.json.Decoder(MediaPage)
_ERROR = msgspec.json.Decoder(ErrorBody)
_APP_USAGE = msgspec.json.Decoder(_UsageFigures)
_BUC_USAGE = msgspec.json.Decoder(dict[str, list[_UsageFigures]])


def _decode(decoder: msgspec.json.Decoder[T], body: bytes, what: str, status: int | None = 200) -> T:
    """Decode or raise DecodeError naming what was expected and where the body went wrong."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # also msgspec.ValidationError
        raise DecodeError(f"bad {what} body ({len(body)} bytes): {exc}", status=status) from exc


def decode_insights(body: bytes) -> Insights:
    return _decode(_INSIGHTS, body, "insights")


def decode_account(body: bytes) -> AccountNode:
    return _decode(_ACCOUNT, body, "account")


def decode_media_page(body: bytes) -> MediaPage:
    return _decode(_MEDIA_PAGE, body, "media page")


def decode_error(status: int, body: bytes, usage: Usage | None = None) -> GraphError:
    """The GraphError an error body states; DecodeError (raised) if it is not one (HTML, cut)."""
    err = _decode(_ERROR, body, f"error (HTTP {status})", status).error
    return GraphError(status=status, code=err.code, subcode=err.error_subcode, message=err.message,
                      type=err.type, is_transient=err.is_transient, user_title=err.error_user_title,
                      fbtrace_id=err.fbtrace_id, usage=usage)


def parse_usage(headers: Mapping[str, str]) -> Usage | None:
    """Usage from ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` (either or both).

    None when neither header is present or readable: a missing header is not 0 %. A header that
    is not valid JSON is ignored, never fatal.
    """
    figures = _app_usage(_header(headers, "x-app-usage")) + _buc_usage(_header(headers, "x-business-use-case-usage"))
    if not figures:
        return None
    percent = max(max(f.call_count, f.total_time, f.total_cputime) for f in figures)
    regain = max(f.estimated_time_to_regain_access for f in figures)
    return Usage(percent=int(-(-percent // 1)), regain_seconds=float(regain) * 60.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _app_usage(value: str | None) -> list[_UsageFigures]:
    if not value:
        return []
    try:
        return [_APP_USAGE.decode(value)]
    except msgspec.DecodeError:
        return []


def _buc_usage(value: str | None) -> list[_UsageFigures]:
    if not value:
        return []
    try:
        return [f for figures in _BUC_USAGE.decode(value).values() for f in figures]
    except msgspec.DecodeError:
        return []
