"""The simulator's answers as data: :class:`SimReply`, Graph API error bodies, and every message.

Error bodies follow the Graph API exactly (Meta's Graph API error-handling reference): ``{"error":
{"message", "type", "code", "error_subcode", "is_transient", "error_user_title", "error_user_msg",
"error_data", "fbtrace_id"}}``, optional fields present only when set, in the API's order, with
a ``WWW-Authenticate: OAuth "Facebook Platform" ...`` header. Messages are the API's own wording,
as Meta's reference pages and answers seen in practice give it; the few marked GUESS are plausible
stand-ins where the real text is unknown.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import Any

import msgspec
import orjson


class SimReply(msgspec.Struct):
    """One answer: HTTP status, body bytes, extra headers (Content-Type defaults to JSON)."""

    status: int
    body: bytes
    headers: dict[str, str] = {}
    nested: int = 0
    """Media whose insights a page nests (field expansion): what a per-object accounting charges."""


_trace = itertools.count(1)


def fbtrace_id() -> str:
    """An opaque, unique support id, as the API sends (it carries no meaning)."""
    digest = hashlib.blake2b(next(_trace).to_bytes(8, "big"), digest_size=15).digest()
    return base64.urlsafe_b64encode(digest).decode()


def graph_error(status: int, code: int, message: str, *, subcode: int | None = None,
                type: str = "OAuthException", is_transient: bool | None = None,
                user_title: str | None = None, user_msg: str | None = None,
                error_data: Any = None) -> SimReply:
    """An error answer shaped like the Graph API's, fields in the API's order."""
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if error_data is not None:
        error["error_data"] = error_data
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = fbtrace_id()
    kind = "invalid_token" if code == 190 else "invalid_request"
    header = f'OAuth "Facebook Platform" "{kind}" "{_header_safe(message)}"'
    return SimReply(status, orjson.dumps({"error": error}), {"WWW-Authenticate": header})


def _header_safe(message: str) -> str:
    return message.replace('"', "'").encode("ascii", "replace").decode()


# --- every message the simulator answers with ----------------------------------------------
# Token errors and throttles live beside the pipeline (server.py: MISSING, UNKNOWN, REVOKED,
# EXPIRED, THROTTLES); faults in faults.py (codes 1 and 2). The insights and node messages:

UNSUPPORTED_GET = ("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to "
                   "missing permissions, or does not support this operation.")
NONEXISTING_FIELD = "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
UNKNOWN_PATH = "Unknown path components: /{rest}"  # code 2500, as the Graph API answers unknown edges
UNKNOWN_ERROR = "An unknown error has occurred."
MUST_BE_ONE_OF = "(#100) metric[{index}] must be one of the following values: {values}"
MEDIA_METRIC_ENUM = ("impressions, reach, replies, saved, likes, comments, shares, total_interactions, follows, "
                     "profile_visits, profile_activity, navigation, ig_reels_video_view_total_time, "
                     "ig_reels_avg_watch_time, views, reels_skip_rate, reposts, facebook_views, crossposted_views, "
                     "total_views, total_likes, total_comments, link_clicks")
INSTAGRAM_LOGIN_MEDIA_ENUM = ", ".join(n for n in MEDIA_METRIC_ENUM.split(", ")
                                      if n not in ("total_views", "total_likes", "total_comments", "link_clicks"))
"""GUESS: graph.instagram.com's list, without the metrics the reference says need Facebook Login."""
ACCOUNT_METRIC_ENUM = ("reach, follower_count, website_clicks, profile_views, online_followers, accounts_engaged, "
                       "total_interactions, likes, comments, shares, saves, replies, engaged_audience_demographics, "
                       "reached_audience_demographics, follower_demographics, follows_and_unfollows, "
                       "profile_links_taps, views, threads_likes, threads_replies, reposts, quotes, "
                       "threads_followers, threads_follower_demographics, content_views, threads_views, "
                       "threads_clicks, threads_reposts")
IMPRESSIONS_MEDIA_V22 = ("(#100) Starting from version v22.0 and above, the impressions metric is no longer "
                         "supported for the queried media")
IMPRESSIONS_MEDIA_PRODUCT = ("(#100) The Media Insights API does not support the impressions metric for this "
                             "media product type")
IMPRESSIONS_ACCOUNT = ("Starting from version 22 and above, the impressions metric is no longer supported for the "
                       "queried user. Please refer to the documentation at "
                       "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a list "
                       "of supported metrics.")
NOT_FOR_PRODUCT = "(#100) The Media Insights API does not support the {metric} metric for this media product type."
NOT_FOR_PRODUCT_MANY = ("The Instagram Media Insights API does not support the {metrics} metric for this media "
                        "product type")
TOTAL_VALUE_ONLY = "(#100) The following metrics ({metrics}) should be specified with parameter metric_type=total_value"
RANGE_TOO_LONG = "(#100) There cannot be more than 30 days (2592000 s) between since and until"
LAST_30_DAYS = ("(#100) ({metric}) metric only supports querying data for the last 30 days excluding the "
                "current day")
RETENTION = "(#100) since param is not valid. Metrics data is available for the last 2 years"
NOT_ENOUGH_VIEWERS = "(#10) Not enough viewers for the media to show insights"
BEFORE_CONVERSION = "Invalid parameter"
BEFORE_CONVERSION_TITLE = "Media posted before business account conversion"
BEFORE_CONVERSION_MSG = ("The media was posted before the most recent time that the user's account was converted "
                         "to a business account from a personal account.")
CURSOR_TOO_FAR = "(#100) The After Cursor specified exceeds the max limit supported by this endpoint"
NOT_SHARED_CODE, NOT_SHARED_SUBCODE = -1, 2207086
"""``facebook_views`` of a media not shared to Facebook, as practitioners saw it (the reference:
"Throws if the media is not shared to Facebook"); it fails the whole call."""
# GUESSES: the real wording of these is not known (no reference page or known answer quotes them).
INCOMPATIBLE_PERIOD = "(#100) Incompatible period ({period}) for metric {metric}"
NO_TOTAL_VALUE = "(#100) The following metrics ({metrics}) do not support metric_type=total_value"
PARAM_REQUIRED = "(#100) The parameter {name} is required"
TIMEFRAME_ENUM = "(#100) Param timeframe must be one of {this_week, this_month}"
BREAKDOWN_REQUIRED = "(#100) Demographic metrics ({metrics}) require a breakdown"
SINCE_AFTER_UNTIL = "(#100) The since parameter must be earlier than the until parameter"
ALBUM_CHILD = "(#100) Insights are not available for media within an album"
BAD_NUMBER = "(#100) Param {name} must be a number"
METRIC_TYPE_ENUM = "(#100) Param metric_type must be one of {time_series, total_value}"
NOT_SHARED = "(#-1) The media is not shared to Facebook"


def unsupported_get(object_id: str) -> SimReply:
    """The answer for an object that does not exist or is not the token's (100/33)."""
    return graph_error(400, 100, UNSUPPORTED_GET.format(id=object_id), subcode=33, type="GraphMethodException")


def invalid(message: str) -> SimReply:
    """A validation error: code 100, HTTP 400."""
    return graph_error(400, 100, message)


def unknown_error() -> SimReply:
    """A breakdown a metric does not take fails the whole call. Status and code are a GUESS: the
    reference gives only the message; it reads as the Graph API's code 1 (HTTP 500)."""
    return graph_error(500, 1, UNKNOWN_ERROR)


def not_enough_viewers() -> SimReply:
    return graph_error(400, 10, NOT_ENOUGH_VIEWERS)


def not_shared_to_facebook() -> SimReply:
    """-1/2207086 (the code and subcode practitioners saw; the words a GUESS)."""
    return graph_error(400, NOT_SHARED_CODE, NOT_SHARED, subcode=NOT_SHARED_SUBCODE)


def before_conversion() -> SimReply:
    """100/2108006 as the API answers it, with ``error_data``, ``is_transient`` and the user title and message
    (tests/fixtures/media_insights_for_error_posted_before_business.json has the same shape)."""
    return graph_error(400, 100, BEFORE_CONVERSION, subcode=2108006, is_transient=False,
                       user_title=BEFORE_CONVERSION_TITLE, user_msg=BEFORE_CONVERSION_MSG,
                       error_data={"blame_field_specs": [[""]]})


def unknown_path(rest: str) -> SimReply:
    return graph_error(400, 2500, UNKNOWN_PATH.format(rest=rest))
