"""What the error policy decides and the scheduler carries out: :class:`Action` and
:class:`Decision`, in a module below both (the policy fills them, the scheduler reads them).

``harvester.graph.policy`` re-exports both names, so ``from harvester.graph.policy import
Action, Decision`` keeps working.
"""

from __future__ import annotations

import enum
from typing import Literal

import msgspec


class Action(enum.Enum):
    RETRY = "retry"
    THROTTLE = "throttle"
    SKIP = "skip"
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
