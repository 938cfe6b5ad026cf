"""What the Graph API sends, declared once as msgspec Structs, with decoders built at import.

Every Struct lists only the fields harvester reads: unknown fields (``title``, ``description``,
``id``, whatever Meta adds next) are skipped by the decoder. The decoders here are the only place
response bytes become Python objects; a body that is not the JSON it should be raises
:class:`~harvester.errors.DecodeError`, never a msgspec exception.

Shapes of insights (Meta's Graph API insights reference): ``values[]`` (``value`` and, for time series, ``end_time``),
``total_value`` (``value`` and ``breakdowns[].dimension_keys`` / ``results[].dimension_values``,
keys possibly more than one), a ``value`` that is an object (``online_followers``: hour -> count),
a missing ``value``, and an empty ``data``.

An answer is data only when its decoded shape is (issue 10, point 7): insights and media pages
need their ``data`` list, the account node its ``id``; an ``error`` object anywhere at the top
level of a 200 body raises the :class:`~harvester.errors.GraphError` it states (a field of each
Struct, so normal bodies are parsed once). Whatever the body (cut short, HTML, nested 100,000
levels deep), a decoder raises only DecodeError or GraphError: never RecursionError or a msgspec
exception. ``DecodeError.complete`` says whether the JSON was whole (wrong shape: asking again
will not change it) or cut short / not JSON.

Media pages are decoded whole first (the fast path); only when that fails is each item of
``data`` decoded alone, so that one bad item costs that item, not the page. Items whose ``id``
is not a Graph id (1 to 32 ASCII digits) are dropped too: every dropped item is named in
``MediaPage.rejected``. A repeated id is kept: the jobs plan each media once per run, across
pages, edges and accounts, and count the repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

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
    data: list[Insight]
    error: ErrorObject | None = None


# --- discovery -----------------------------------------------------------------------------


class AccountNode(msgspec.Struct, gc=False):
    id: str
    username: str | None = None
    name: str | None = None
    followers_count: int | None = None
    follows_count: int | None = None
    media_count: int | None = None
    biography: str | None = None
    website: str | None = None
    profile_picture_url: str | None = None
    error: ErrorObject | None = None


class Child(msgspec.Struct, gc=False):
    id: str
    media_type: str | None = None


class Children(msgspec.Struct, gc=False):
    data: list[Child] = []


class MediaItem(msgspec.Struct, gc=False):
    id: str
    media_type: str | None = None
    media_product_type: str | None = None
    timestamp: str | None = None
    permalink: str | None = None
    shortcode: str | None = None
    caption: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    like_count: int | None = None
    comments_count: int | None = None
    is_comment_enabled: bool | None = None
    username: str | None = None
    """Who created the media: another account's name on a collaboration post listed here."""
    children: Children | None = None


class Cursors(msgspec.Struct, gc=False):
    after: str | None = None
    before: str | None = None


class Paging(msgspec.Struct, gc=False):
    cursors: Cursors | None = None
    next: str | None = None


class MediaPage(msgspec.Struct, gc=False):
    data: list[MediaItem]
    paging: Paging | None = None
    error: ErrorObject | None = None
    rejected: list[str] = []
    """Items dropped from ``data``, each with its reason ("item 3: id '../../me/accounts' is not
    a Graph id"); set by :func:`decode_media_page`, whatever the body says."""


class _Nested(msgspec.Struct, gc=False):
    """A media of a page asked with its insights nested (field expansion): the insights are left
    undecoded, the body a call of the media's own would answer, for ``flatten``."""

    id: str
    insights: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    """Empty when the item has none (msgspec takes no ``Raw | None``)."""


class _NestedPage(msgspec.Struct, gc=False):
    data: list[_Nested]


class _RawPage(msgspec.Struct, gc=False):
    """A media page whose items are decoded one by one (the slow path, after a failure)."""

    data: list[msgspec.Raw]
    paging: Paging | None = None
    error: ErrorObject | None = None


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
    call_count: float | None = None
    """The highest ``call_count`` alone (CPU and time figures left out): what calls cost is
    measured by it (``schedule.cost``)."""


class _UsageFigures(msgspec.Struct):
    call_count: Number = 0
    total_time: Number = 0
    total_cputime: Number = 0
    estimated_time_to_regain_access: Number = 0


# --- token health ----------------------------------------------------------------------------


class DebugError(msgspec.Struct):
    """Why ``/debug_token`` finds a token invalid, in the API's words."""

    message: str | None = None
    code: int | None = None
    subcode: int | None = None


class DebugData(msgspec.Struct):
    """What ``/debug_token`` says of a token: valid or not, and why not (``error``), when it ends
    (Unix seconds; 0: never), what it may do. An invalid token is a 200 answer of this shape,
    ``{"data": {"error": {...}, "is_valid": false, "scopes": []}}``: data, not an error answer."""

    is_valid: bool = False
    expires_at: int | None = None
    data_access_expires_at: int | None = None
    scopes: list[str] = []
    error: DebugError | None = None


class _DebugBody(msgspec.Struct):
    data: DebugData
    error: ErrorObject | None = None


_INSIGHTS = msgspec.json.Decoder(Insights)
_ACCOUNT = msgspec.json.Decoder(AccountNode)
_MEDIA_PAGE = msgspec.json.Decoder(MediaPage)
_RAW_PAGE = msgspec.json.Decoder(_RawPage)
_MEDIA_ITEM = msgspec.json.Decoder(MediaItem)
_NESTED_PAGE = msgspec.json.Decoder(_NestedPage)
_ERROR = msgspec.json.Decoder(ErrorBody)
_DEBUG = msgspec.json.Decoder(_DebugBody)
_APP_USAGE = msgspec.json.Decoder(_UsageFigures)
_BUC_USAGE = msgspec.json.Decoder(dict[str, list[_UsageFigures]])

GRAPH_ID = re.compile(r"[0-9]{1,32}")
"""What a Graph id is: digits (an id from an answer goes into a URL path)."""


def is_graph_id(text: object) -> bool:
    """:data:`GRAPH_ID` without a regex (every call's path segments pass here)."""
    return isinstance(text, str) and 0 < len(text) <= 32 and text.isascii() and text.isdigit()


def _decode(decoder: msgspec.json.Decoder[T], body: bytes, what: str, status: int | None = 200) -> T:
    """Decode or raise DecodeError naming what was expected and where the body went wrong
    (msgspec's own words: ``Expected `int`, got `str` - at `$.data[0].values[0].value` ``)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:   # whole JSON, wrong shape
        failure, complete = f"{exc}", True
    except msgspec.DecodeError as exc:       # cut short, or not JSON at all
        failure, complete = f"{exc}", False
    except RecursionError:                   # whole JSON nested deeper than any answer
        failure, complete = "nested too deep to decode", True
    # Raised outside the handler: no msgspec or RecursionError context travels with it.
    raise DecodeError(f"bad {what} body ({len(body)} bytes): {failure}", status=status, complete=complete)


def _data(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """A 200 body of data: decoded, and not an error object (wherever it sits at the top level)."""
    try:
        result = _decode(decoder, body, what)
    except DecodeError as exc:
        if exc.complete:        # the wrong shape may be an error body without the data's fields
            stated = _stated_error(body)
            if stated is not None:
                raise stated from None
        raise
    error = result.error  # type: ignore[attr-defined]
    if error is not None:
        raise _graph_error(200, error, None)
    return result


def _stated_error(body: bytes) -> GraphError | None:
    try:
        return _graph_error(200, _ERROR.decode(body).error, None)
    except (msgspec.DecodeError, RecursionError):
        return None


def decode_insights(body: bytes) -> Insights:
    try:                                # the hot path: one decode and one attribute test
        insights = _INSIGHTS.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return _data(_INSIGHTS, body, "insights")     # raises, with the reason
    if insights.error is not None:
        raise _graph_error(200, insights.error, None)
    return insights


def decode_account(body: bytes) -> AccountNode:
    return _data(_ACCOUNT, body, "account")


def decode_debug_token(body: bytes) -> DebugData:
    """A ``/debug_token`` answer: what it says of the input token, valid or not."""
    return _data(_DEBUG, body, "/debug_token").data


def decode_media_page(body: bytes) -> MediaPage:
    """The page, its bad items dropped and named in ``rejected`` (see the module's docstring)."""
    try:
        page = _data(_MEDIA_PAGE, body, "media page")
    except DecodeError as exc:
        if not exc.complete:
            raise
        return _item_by_item(body, exc)
    page.rejected = []
    if not all(is_graph_id(item.id) for item in page.data):
        page.data = _screened(enumerate(page.data), page.rejected)
    return page


def decode_nested_insights(body: bytes) -> dict[str, bytes]:
    """Media id -> its nested insights (``{"data": [...]}``) on a page that asked them; a page
    whose items do not all decode so gives none (its media are asked one by one)."""
    try:
        page = _NESTED_PAGE.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return {}
    return {item.id: bytes(item.insights) for item in page.data if len(item.insights)}


def _item_by_item(body: bytes, failure: DecodeError) -> MediaPage:
    """The slow path: each item decoded alone; the page fails only if its frame is wrong."""
    try:
        raw = _RAW_PAGE.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise failure from None
    if raw.error is not None:
        raise _graph_error(200, raw.error, None)
    rejected: list[str] = []
    items: list[tuple[int, MediaItem]] = []
    for index, item in enumerate(raw.data):
        try:
            items.append((index, _MEDIA_ITEM.decode(item)))
        except msgspec.DecodeError as exc:
            rejected.append(f"item {index}: {exc}")
        except RecursionError:
            rejected.append(f"item {index}: nested too deep to decode")
    return MediaPage(data=_screened(items, rejected), paging=raw.paging, rejected=rejected)


def _screened(items: Iterable[tuple[int, MediaItem]], rejected: list[str]) -> list[MediaItem]:
    """The items whose id is a Graph id; the others named in ``rejected``."""
    kept: list[MediaItem] = []
    for index, item in items:
        if is_graph_id(item.id):
            kept.append(item)
        else:
            rejected.append(f"item {index}: id {_quoted(item.id)} is not a Graph id (1 to 32 digits)")
    return kept


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def decode_error(status: int, body: bytes, usage: Usage | None = None) -> GraphError:
    """The GraphError an error body states; DecodeError (raised) if it is not one (HTML, cut)."""
    return _graph_error(status, _decode(_ERROR, body, f"error (HTTP {status})", status).error, usage)


def _graph_error(status: int, err: ErrorObject, usage: Usage | None) -> GraphError:
    return GraphError(status=status, code=err.code, subcode=err.error_subcode, message=err.message,
                      type=err.type, is_transient=err.is_transient, user_title=err.error_user_title,
                      fbtrace_id=err.fbtrace_id, usage=usage)


def parse_usage(headers: Mapping[str, str]) -> Usage | None:
    """Usage from ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` (either or both).

    None when neither header is present or readable: a missing header is not 0 %. A header that
    is not valid JSON is ignored, never fatal.
    """
    app, buc = headers.get("x-app-usage"), headers.get("x-business-use-case-usage")
    if app is None and buc is None:     # names in another case (transports give them in lower case)
        app, buc = _header(headers, "x-app-usage"), _header(headers, "x-business-use-case-usage")
        if app is None and buc is None:
            return None
    return _usage(app, buc)


@lru_cache(maxsize=256)    # a header is at most 8 kB (aiohttp): at most 4 MB, a few kB in practice
def _usage(app: str | None, buc: str | None) -> Usage | None:
    """Decoded once per distinct pair of header values: they move by whole percents, so a run's
    thousands of answers carry a few hundred distinct ones."""
    figures = [f for f in _app_usage(app) + _buc_usage(buc) if _sane(f)]
    if not figures:
        return None
    percent = max(max(f.call_count, f.total_time, f.total_cputime) for f in figures)
    regain = max(f.estimated_time_to_regain_access for f in figures)
    return Usage(percent=int(-(-percent // 1)), regain_seconds=float(regain) * 60.0,
                 call_count=float(max(f.call_count for f in figures)))


def _sane(f: _UsageFigures) -> bool:
    """Finite figures only: ``1e999`` or a 400-digit count would break the arithmetic below."""
    return all(-1e12 < v < 1e12 for v in   # False for inf and NaN too; exact for big ints
               (f.call_count, f.total_time, f.total_cputime, f.estimated_time_to_regain_access))


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
    except (msgspec.DecodeError, RecursionError):   # RecursionError: nested 100,000 levels deep
        return []


def _buc_usage(value: str | None) -> list[_UsageFigures]:
    if not value:
        return []
    try:
        return [f for figures in _BUC_USAGE.decode(value).values() for f in figures]
    except (msgspec.DecodeError, RecursionError):
        return []


# --- what a harvest asks for: the fields of the Structs above ---------------------------------


def fields_of(struct: type[msgspec.Struct], leave_out: frozenset[str] = frozenset({"error"})) -> str:
    """The ``fields`` parameter asking for every field of a wire Struct, in its order: a field whose
    Struct holds a list of Structs is asked by field expansion (``children{id,media_type}``), never
    a call per item. What a harvest asks is so declared once, by the Structs that decode it."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return ",".join(_field_text(f) for f in info.fields if f.name not in leave_out)


def _field_text(field: msgspec.inspect.Field) -> str:
    kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
    for kind in kinds:
        if isinstance(kind, msgspec.inspect.StructType):
            (items,) = (f for f in kind.fields if isinstance(f.type, msgspec.inspect.ListType))
            assert isinstance(items.type, msgspec.inspect.ListType) and isinstance(items.type.item_type,
                                                                                    msgspec.inspect.StructType)
            return f"{field.encode_name}{{{fields_of(items.type.item_type.cls, frozenset())}}}"
    return field.encode_name


NOT_ON_STORIES = frozenset({"error", "like_count", "comments_count", "is_comment_enabled", "children"})
"""Stories have no likes, comments or children: a ``/stories`` page that asks for them is refused."""
ACCOUNT_FIELDS = fields_of(AccountNode)
"""The account node: what plans the account (followers, media count) and its ``accounts`` record."""
MEDIA_FIELDS = fields_of(MediaItem)
"""A ``/media`` page: what plans each media and its ``media`` record, an album's children by
field expansion."""
MEDIA_FIELDS_WITHOUT_CHILDREN = fields_of(MediaItem, frozenset({"error", "children"}))
"""Asked again of a page that refused ``children`` (one media can make a page refuse it)."""
STORY_FIELDS = fields_of(MediaItem, NOT_ON_STORIES)
"""A ``/stories`` page."""
