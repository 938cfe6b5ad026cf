"""The error policy: one table from what went wrong to what to do, read by one function.

:data:`RULES` is the table (first matching row wins); :func:`decide` reads it. Counting attempts
and sleeping are the scheduler's business: a ``RETRY`` is retried with exponential backoff and
full jitter until the scheduler's bound; a ``THROTTLE`` pauses the whole token (or, scope "app",
every token) for ``wait`` seconds when the server said how long, else a backoff the scheduler
picks; ``SKIP`` records the unit as legitimately empty; ``REFUSE`` (the API refused one of the
unit's metrics, naming it) costs that metric, not the unit: the job asks again without it;
``FAIL_TOKEN`` stops every unit of the token, reported once; ``FAIL`` gives the unit up.
docs/error-policy.md shows the same table.
Every decision about a ``GraphError`` carries the API's code, subcode, type and message (cut to
:data:`MESSAGE_LIMIT`), so that failures can be reported in the API's words; ``reason`` stays
short. ``Decision.attempts`` lowers the retry bound for a failure that deserves fewer (a whole
answer of the wrong shape: :data:`MALFORMED_ATTEMPTS`). Whether a throttle is waited out or
is a lone one is the scheduler's to judge, from the usage it saw.
Sources: Meta's Graph API reference (error handling, Instagram error codes) and practitioners' reports.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache
from typing import Any, Literal

import msgspec

from ..errors import ConfigError, DecodeError, GraphError, HarvesterError, TransportError
from .refusal import listed_metrics

__all__ = ["MESSAGE_LIMIT", "RULES", "Action", "Decision", "ErrorRule", "decide", "rule_for", "too_large"]


# What the policy decides and the scheduler carries out.

class Action(enum.Enum):
    RETRY = "retry"
    THROTTLE = "throttle"
    SKIP = "skip"
    REFUSE = "refuse"
    FAIL_TOKEN = "fail_token"
    FAIL = "fail"


class Decision(msgspec.Struct, frozen=True):
    action: Action
    reason: str
    """Short and human: "not enough viewers (10)", "token expired (190/463)"."""
    wait: float | None = None
    """Seconds the server asked for (throttling); None: the scheduler's backoff decides."""
    scope: Literal["token", "app"] = "token"
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    """The API's error type ("OAuthException", "GraphMethodException"), when it answered one."""
    message: str | None = None
    """The API's own message, whitespace collapsed and cut to policy.MESSAGE_LIMIT."""
    attempts: int | None = None
    """The most attempts this kind of failure deserves; None: the scheduler's max_attempts."""
    transient: bool = False
    """Set by the scheduler on a retry out of attempts: the reason may pass, so the next run owes it."""
    listed: tuple[str, ...] = ()
    """A REFUSE of "must be one of the following values: ...": the names the API lists (read from
    the whole message, which ``message`` may cut), so that metrics new to the catalog are told."""


class ErrorRule(msgspec.Struct, frozen=True):
    """One row: every condition given must hold. ``reason`` may use ``{ref}`` (code or
    code/subcode) and ``{message}``."""

    action: Action
    reason: str
    code: int | range | None = None
    subcode: int | None = None
    pattern: str | None = None
    """A regular expression searched in the message, case-insensitively."""
    status: str | None = None
    """An HTTP status ("429") or class ("5xx")."""
    transient: bool | None = None
    scope: Literal["token", "app"] = "token"


R, T, S, FT, F = Action.RETRY, Action.THROTTLE, Action.SKIP, Action.FAIL_TOKEN, Action.FAIL
RF = Action.REFUSE

RULES: tuple[ErrorRule, ...] = (
    # Throttled: stop calling (each call extends the penalty) and wait.
    ErrorRule(T, "app throttled ({ref})", code=4, scope="app"),
    ErrorRule(T, "throttled ({ref})", code=17),
    ErrorRule(T, "throttled ({ref})", code=32),
    ErrorRule(T, "throttled ({ref})", code=613),
    ErrorRule(T, "throttled ({ref})", code=80002),
    # The token is unusable: every call of it would fail the same way.
    ErrorRule(FT, "app not installed ({ref})", code=190, subcode=458),
    ErrorRule(FT, "user checkpointed ({ref})", code=190, subcode=459),
    ErrorRule(FT, "session invalidated ({ref})", code=190, subcode=460),
    ErrorRule(FT, "token expired ({ref})", code=190, subcode=463),
    ErrorRule(FT, "unconfirmed user ({ref})", code=190, subcode=464),
    ErrorRule(FT, "invalid token ({ref})", code=190, subcode=467),
    ErrorRule(FT, "invalid session ({ref})", code=190, subcode=492),
    ErrorRule(FT, "app not used for 90 days ({ref})", code=190, subcode=493),
    ErrorRule(FT, "invalid token ({ref})", code=190),
    ErrorRule(FT, "session error ({ref})", code=102),
    # Nothing to harvest here, legitimately: record the unit as done, without records.
    ErrorRule(S, "not enough viewers ({ref})", code=10, pattern=r"not enough viewers"),
    ErrorRule(S, "posted before business conversion ({ref})", code=100, subcode=2108006),
    ErrorRule(S, "not shared to Facebook ({ref})", code=-1, subcode=2207086),
    # One metric refused (the message names it): the unit is asked again without it.
    ErrorRule(RF, "metric refused for this media product type ({ref})", code=100,
         pattern=r"does not support the .* metrics? for this media product type"),
    ErrorRule(RF, "metric refused for this media type ({ref})", code=100,
         pattern=r"is not supported for this media type"),
    ErrorRule(RF, "metric no longer supported ({ref})", code=100, pattern=r"metric is no longer supported"),
    ErrorRule(RF, "metric unknown to the API ({ref})", code=100, pattern=r"metric\[\d+\] must be one of"),
    # A day that aged out of the retention while its call waited (the plan leaves older ones out).
    ErrorRule(S, "older than the API keeps ({ref})", code=100,
         pattern=r"since param is not valid\. metrics data is available for the last"),
    # Permission missing: a property of the token, not of the unit.
    ErrorRule(FT, "permission denied ({ref})", code=10),
    ErrorRule(FT, "permission denied ({ref})", code=range(200, 300)),
    # The object is not there for this token: the API says so in words (100/33 alone may be throttling).
    ErrorRule(F, "object does not exist or is not permitted for this token ({ref})", code=100, subcode=33,
         pattern=r"does not exist, cannot be loaded due to missing permissions"),
    # Transient: retry with backoff, a bounded number of times.
    ErrorRule(R, "unsupported request, maybe throttling ({ref})", code=100, subcode=33),
    # Too much asked at once (a page of media with their insights nested): asking the same again
    # would get the same answer; a page job asks a smaller page instead.
    ErrorRule(F, "too much data asked at once ({ref})", code=1, pattern=r"reduce the amount of data"),
    ErrorRule(R, "unknown error ({ref})", code=1),
    ErrorRule(R, "service error ({ref})", code=2),
    ErrorRule(R, "application limit ({ref})", code=341),
    ErrorRule(R, "temporarily blocked ({ref})", code=368),
    ErrorRule(R, "transient error ({ref})", transient=True),
    ErrorRule(R, "too many requests (HTTP 429)", status="429"),
    ErrorRule(R, "server error ({ref})", status="5xx"),
    # Anything else is permanent for this unit.
    ErrorRule(F, "invalid parameter ({ref}): {message}", code=100),
)

def too_large(decision: Decision) -> bool:
    """Whether ``decision`` is the API's "reduce the amount of data" (its row above): a page job
    halves its ``limit`` and asks again rather than fail."""
    return decision.code == 1 and decision.reason.startswith("too much data asked at once")


MESSAGE_LIMIT = 200
"""The most characters of the API's message (or a decoder's detail) a decision carries."""

MALFORMED_ATTEMPTS = 2
"""Attempts for a whole answer of the wrong shape: asking again rarely changes it, once is enough."""
_PATTERNS = {r.pattern: re.compile(r.pattern, re.IGNORECASE) for r in RULES if r.pattern}


def decide(error: HarvesterError) -> Decision:
    """What to do about ``error`` (how many times it happened is the scheduler's to count)."""
    if isinstance(error, GraphError):
        return _decide_graph(error)
    if isinstance(error, DecodeError):
        return Decision(R, f"unreadable answer{_http(error.status)}: {_short(str(error))}",
                        attempts=MALFORMED_ATTEMPTS if error.complete else None)
    if isinstance(error, TransportError):
        return Decision(R, f"connection failed{_http(error.status)}")
    if isinstance(error, ConfigError):
        return Decision(FT, "no access token" if "token" in str(error) else "configuration error")
    return Decision(F, type(error).__name__)


def rule_for(error: GraphError) -> ErrorRule | None:
    """The first row of :data:`RULES` that ``error`` matches (None: the default, FAIL)."""
    return next((r for r in RULES if _matches(r, error)), None)


def _decide_graph(error: GraphError) -> Decision:
    decision = _decide_shape(error.status, error.code, error.subcode, error.type, error.message, error.is_transient)
    if decision.action is T and (wait := _server_wait(error)) is not None:
        return msgspec.structs.replace(decision, wait=wait)
    return decision


@lru_cache(maxsize=256)
def _decide_shape(status: int, code: int | None, subcode: int | None, type: str | None, message: str,
                  is_transient: bool | None) -> Decision:
    """The decision for an error of this shape (all a rule reads but the wait a throttle's usage
    asks for): a harvest's errors repeat a few shapes (thousands of "not shared to Facebook")."""
    error = GraphError(status=status, code=code, subcode=subcode, message=message, type=type,
                       is_transient=is_transient)
    rule = rule_for(error)
    ref, short = _ref(error), _short(message)
    words: dict[str, Any] = {"code": code, "subcode": subcode, "type": type, "message": short or None}
    if rule is None:
        return Decision(F, f"{short} ({ref})", **words)
    reason = rule.reason.format(ref=ref, message=short)
    if rule.action is RF:
        words["listed"] = listed_metrics(message)
    return Decision(rule.action, reason, None, rule.scope, **words)


def _matches(rule: ErrorRule, error: GraphError) -> bool:
    if rule.code is not None and not (error.code in rule.code if isinstance(rule.code, range)
                                      else error.code == rule.code):
        return False
    if rule.subcode is not None and error.subcode != rule.subcode:
        return False
    if rule.pattern is not None and not _PATTERNS[rule.pattern].search(error.message or ""):
        return False
    if rule.transient is not None and error.is_transient is not rule.transient:
        return False
    return rule.status is None or rule.status in (str(error.status), f"{error.status // 100}xx")


def _server_wait(error: GraphError) -> float | None:
    """The server's ``estimated_time_to_regain_access``, when it gave one."""
    regain = getattr(error.usage, "regain_seconds", None)
    return float(regain) if regain else None


def _ref(error: GraphError) -> str:
    if error.code is None:
        return f"HTTP {error.status}"
    return f"{error.code}/{error.subcode}" if error.subcode is not None else str(error.code)


def _http(status: int | None) -> str:
    return f" (HTTP {status})" if status is not None else ""


def _short(message: str | None) -> str:
    text = " ".join((message or "").split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
