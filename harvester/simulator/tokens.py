"""Token health as the API tells it: ``/debug_token`` (asked with the app token ``app_id|secret``)
and Instagram Login's ``/refresh_access_token`` (asked with the long-lived token itself).

``debug_token`` answers 200 with ``{"data": {...}}`` for any input token it can read, valid or
not (an invalid one carries ``is_valid: false`` and an ``error`` object); only a bad *app* token
is an error answer. Times are the simulator's wall clock (:meth:`Simulator.wall`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from . import errors as E
from .errors import SimReply, graph_error
from .tokenbook import TOKEN_LIFETIME, TokenInfo
from .world import World

DATA_ACCESS_DAYS = 90
"""Data access lasts 90 days from the user's last engagement with the app (here: the issue)."""
APPLICATION = "Harvester Simulator"
BAD_APP_TOKEN = "Invalid OAuth access token signature."
NOT_APP_TOKEN = ("(#100) You must provide an app access token, or a user access token that is an owner or "
                 "developer of the app")
INPUT_REQUIRED = "(#100) The parameter input_token is required"
INVALID_INPUT = "Invalid OAuth access token."
GRANT_TYPE = "(#100) Unsupported grant_type: expected ig_refresh_token"  # GUESS: the API's wording is unknown
NOT_INSTAGRAM = "Invalid OAuth access token - Cannot parse access token"


def is_debug_token(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] == "debug_token"


def is_refresh(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] == "refresh_access_token"


Verdict = Callable[[TokenInfo, float], "tuple[int, int | None, str] | None"]


def debug_token(world: World, app_token: str | None, query: Mapping[str, str], now: float,
                error_of: Verdict) -> SimReply:
    """The ``/debug_token`` answer; ``error_of(token, now)`` is the pipeline's 190 verdict on a token
    (None when it works), so that both say the same."""
    if not app_token:
        return graph_error(400, 190, "An access token is required to request this resource.")
    if app_token != f"{world.app_id}|{world.app_secret}":
        if world.token(app_token) is not None:
            return graph_error(400, 100, NOT_APP_TOKEN, type="GraphMethodException")
        return graph_error(400, 190, BAD_APP_TOKEN)
    secret = query.get("input_token")
    if not secret:
        return graph_error(400, 100, INPUT_REQUIRED)
    token = world.token(secret)
    if token is None:
        return _ok({"data": {"error": {"code": 190, "message": INVALID_INPUT}, "is_valid": False, "scopes": []}})
    data = _data(world, token)
    problem = error_of(token, now)
    if problem is not None:
        code, subcode, message = problem
        data["error"] = {"code": code, "message": message, **({"subcode": subcode} if subcode else {})}
        data["is_valid"] = False
    return _ok({"data": dict(sorted(data.items()))})


def _data(world: World, token: TokenInfo) -> dict[str, Any]:
    return {"app_id": world.app_id, "type": "USER", "application": APPLICATION,
            "data_access_expires_at": int(token.issued_at + DATA_ACCESS_DAYS * 86400),
            "expires_at": int(token.expires_at) if token.expires_at is not None else 0,
            "is_valid": True, "issued_at": int(token.issued_at), "scopes": list(token.scopes),
            "granular_scopes": [{"scope": s} for s in token.scopes], "user_id": token.user_id}


def refresh(world: World, token: TokenInfo, query: Mapping[str, str], now: float) -> SimReply:
    """A new long-lived Instagram Login token, valid TOKEN_LIFETIME from now (the caller's token was
    authenticated, so it has not expired)."""
    if token.kind != "instagram":
        return graph_error(400, 190, NOT_INSTAGRAM)
    if query.get("grant_type") != "ig_refresh_token":
        return E.invalid(GRANT_TYPE)
    renewed = world.renew(token, now)
    return _ok({"access_token": renewed.token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME})


def _ok(body: dict) -> SimReply:
    return SimReply(200, orjson.dumps(body))
