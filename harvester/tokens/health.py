"""Token health: what ``/debug_token`` says of each token of a config (valid, expiry, scopes),
the accounts each reaches, the warning a run gives at its start, and the renewal of Instagram
Login tokens held in token files (``harvester tokens`` and ``harvester tokens refresh``).

``/debug_token`` is asked with the app token ``app_id|app_secret`` (``[app] id_env`` /
``secret_env``), one call per token, on the Facebook host; without ``[app]`` nothing is asked
and the report says what it cannot tell. Tokens are named by their variable (or ``file:<path>``),
never shown: they go only in headers, in the ``input_token`` parameter of ``/debug_token`` (the
API takes it there only; no error here quotes a URL), and into their token file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from .. import files
from ..config import Config
from ..config.model import Login
from ..config.tokens import resolve
from ..errors import HarvesterError
from ..graph.client import REDACTED, GraphClient
from ..graph.wire import DebugData, decode_debug_token
from ..schedule.retry import Retry
from ..summary import plural
from .discovery import Found, discover

log = logging.getLogger("harvester.tokens")

WARN_DAYS = 7
"""A run warns at its start for a token that expires within this many days."""
INSIGHTS_SCOPE: dict[Login, str] = {"facebook": "instagram_manage_insights",
                                    "instagram": "instagram_business_manage_insights"}
REFRESH_PARAMS = {"grant_type": "ig_refresh_token"}
SHOWN_ACCOUNTS = 20
"""Accounts named per token in the report (the count is always given)."""


class Debug(msgspec.Struct, frozen=True):
    """What /debug_token said of one token (times in Unix seconds; 0 or None: never / not said)."""

    valid: bool
    reason: str | None = None
    expires_at: int | None = None
    data_access_expires_at: int | None = None
    scopes: tuple[str, ...] = ()


class Health(msgspec.Struct, frozen=True):
    """One token of a config: its name (never the token), what the API says, what it reaches."""

    name: str
    login: Login
    debug: Debug | None = None
    """None: not asked (no [app]) or the app token was refused (``debug_problem`` says which)."""
    debug_problem: str | None = None
    accounts: tuple[Found, ...] | None = None
    accounts_problem: str | None = None

    def lines(self, now: float) -> list[str]:
        head = f"{self.name} ({'Instagram' if self.login == 'instagram' else 'Facebook'} Login)"
        out = [f"{head}: {self._verdict()}"]
        d = self.debug
        if d is not None:
            out.append(f"  expires: {_when(d.expires_at, now)}")
            if d.data_access_expires_at:
                out.append(f"  data access expires: {_when(d.data_access_expires_at, now)}")
            out.append(f"  scopes: {', '.join(d.scopes) or 'none'}")
            needed = INSIGHTS_SCOPE[self.login]
            if d.valid and needed not in d.scopes:
                out.append(f"  MISSING {needed}: insights calls will be refused; grant it and issue a new token")
        else:
            out.append(f"  expiry and scopes: unknown ({self.debug_problem})")
        if self.accounts is not None:
            shown = ", ".join(f"{a.account_id}" + (f" (@{a.username})" if a.username else "")
                              for a in self.accounts[:SHOWN_ACCOUNTS])
            if len(self.accounts) > SHOWN_ACCOUNTS:
                shown += f", ... and {len(self.accounts) - SHOWN_ACCOUNTS} more"
            out.append(f"  reaches {len(self.accounts)} account{'s' if len(self.accounts) != 1 else ''}"
                       + (f": {shown}" if shown else ""))
        elif self.accounts_problem:
            out.append(f"  accounts: unknown ({self.accounts_problem})")
        return out

    def _verdict(self) -> str:
        if self.debug is not None:
            return "valid" if self.debug.valid else f"NOT VALID: {self.debug.reason or 'the API gives no reason'}"
        if self.accounts is not None:
            return "works (it answered the discovery call)"
        return f"NOT USABLE: {self.accounts_problem}" if self.accounts_problem else "unknown"

    def expires_soon(self, now: float, days: float = WARN_DAYS) -> bool:
        d = self.debug
        return bool(d and d.valid and d.expires_at and d.expires_at - now < days * 86400)


def app_token(config: Config, env: Mapping[str, str] | None = None) -> str | None:
    """``app_id|app_secret`` from the [app] variables, or None without [app] (or unset)."""
    app = config.app
    if not app.configured:
        return None
    environ = os.environ if env is None else env
    app_id, secret = environ.get(app.id_env or ""), environ.get(app.secret_env or "")
    return f"{app_id}|{secret}" if app_id and secret else None


async def debug_token(client: GraphClient, app: str, token: str, retry: Retry | None = None) -> Debug:
    """What /debug_token says of ``token`` (an invalid one included: the API's words in ``reason``),
    asked again as a run asks again (``retry``); a refused app token, or retries used up, raise
    HarvesterError (redacted)."""
    async def ask() -> DebugData:
        reply = await client.get("debug_token", {"input_token": token}, app)
        return decode_debug_token(reply.body)

    try:
        data = await (retry or Retry())(ask)
    except HarvesterError as exc:
        raise HarvesterError(_redact(str(exc), token, app)) from None
    reason = None
    if data.error is not None:
        sub = f"/{data.error.subcode}" if data.error.subcode else ""
        reason = f"{_redact(data.error.message or '', token, app)} ({data.error.code}{sub})"
    return Debug(data.is_valid, reason, data.expires_at, data.data_access_expires_at, tuple(data.scopes))


def _redact(text: str, *tokens: str) -> str:
    for t in tokens:
        if t:
            text = text.replace(t, REDACTED)
    return text


async def check(config: Config, clients: Mapping[Login, GraphClient], *, env: Mapping[str, str] | None = None,
                reach: bool = True, retry: Retry | None = None) -> list[Health]:
    """The health of every token of ``config``: /debug_token where [app] allows, and (``reach``)
    the accounts each token reaches (its discovery calls); each call retried as a run retries it
    (``retry``; by default the config's), so that a transient fault never makes a token look bad."""
    app = app_token(config, env)
    retry = retry or Retry.of(config)
    out = []
    for name in config.token_keys():
        login = config.login_of(name)
        token = resolve(name, env)
        if token is None:
            out.append(Health(name, login, debug_problem="no token", accounts_problem=_missing(name)))
            continue
        debug, debug_problem = None, None
        if app is None:
            debug_problem = "no [app] id_env / secret_env configured: /debug_token needs the app token"
        else:
            try:
                debug = await debug_token(clients["facebook"], app, token, retry)
            except HarvesterError as exc:
                debug_problem = f"/debug_token refused: {exc}"
        accounts, problem = None, None
        if reach:
            try:
                accounts = tuple(await discover(clients[login], token, login, retry))
            except HarvesterError as exc:
                problem = _redact(str(exc), token)
        out.append(Health(name, login, debug, debug_problem, accounts, problem))
    return out


def _missing(name: str) -> str:
    if name.startswith("file:"):
        return f"token file {name[5:]} cannot be read or is empty"
    return f"environment variable {name} is not set or empty"


def warnings(health: Sequence[Health], now: float) -> list[str]:
    """The start-of-run warnings: a token that expires within WARN_DAYS days (or is no longer valid)."""
    out = []
    for h in health:
        d = h.debug
        if d is None:
            continue
        if not d.valid:
            out.append(f"token {h.name} is not valid: {d.reason}")
        elif h.expires_soon(now):
            assert d.expires_at is not None
            renew = ("renew it with `harvester tokens refresh`" if h.login == "instagram" and h.name.startswith("file:")
                     else "renew it (Instagram Login: token_file and `harvester tokens refresh`)"
                     if h.login == "instagram" else "its user must log in again for a new one")
            out.append(f"token {h.name} expires {_when(d.expires_at, now)}: {renew}")
    for line in out:
        log.warning(line)
    return out


# --- refresh -------------------------------------------------------------------------------------


class Renewal(msgspec.Struct, frozen=True):
    name: str
    renewed: bool
    message: str


async def refresh(config: Config, clients: Mapping[Login, GraphClient], *, env: Mapping[str, str] | None = None,
                  now: float | None = None) -> list[Renewal]:
    """Renew every Instagram Login token held in a token file; say why the others are not."""
    now = time.time() if now is None else now
    out = []
    for name in config.token_keys():
        login, path = config.login_of(name), config.token_file_of(name)
        if login == "facebook":
            out.append(Renewal(name, False, await _facebook_note(config, clients, name, env, now)))
        elif path is None:
            out.append(Renewal(name, False, "an environment variable cannot be rewritten: keep the token in a "
                                            "token_file to have it renewed"))
        else:
            out.append(await _renew(clients["instagram"], name, path))
    return out


async def _facebook_note(config: Config, clients: Mapping[Login, GraphClient], name: str,
                         env: Mapping[str, str] | None, now: float) -> str:
    """A Facebook Login user token is renewed only by its user logging in again: say when it ends."""
    text = "a Facebook Login user token cannot be renewed without its user (who must log in again)"
    app, token = app_token(config, env), resolve(name, env)
    if app is None or token is None:
        return f"{text}; when it ends is unknown without [app] (/debug_token)"
    try:
        d = await debug_token(clients["facebook"], app, token, Retry.of(config))
    except HarvesterError as exc:
        return f"{text}; /debug_token refused: {exc}"
    return f"{text}; it expires {_when(d.expires_at, now)}" + ("" if d.valid else f" (NOT VALID: {d.reason})")


class _Refreshed(msgspec.Struct):
    access_token: str
    expires_in: int | None = None


async def _renew(client: GraphClient, name: str, path: str) -> Renewal:
    token = resolve(name)
    if token is None:
        return Renewal(name, False, f"token file {path} cannot be read or is empty")
    try:
        reply = await client.get("refresh_access_token", REFRESH_PARAMS, token, versioned=False)
        renewed = msgspec.json.decode(reply.body, type=_Refreshed)
    except (HarvesterError, msgspec.DecodeError) as exc:
        return Renewal(name, False, f"not renewed: {_redact(str(exc), token)}")
    try:
        files.write_atomic(Path(path), renewed.access_token.encode() + b"\n", mode=0o600)
    except OSError as exc:
        return Renewal(name, False, f"renewed, but {path} cannot be written: {exc.strerror}")
    days = f" for {plural(round(renewed.expires_in / 86400), 'day')}" if renewed.expires_in else ""
    return Renewal(name, True, f"renewed{days}; written to {path}")


def _when(ts: int | float | None, now: float) -> str:
    if not ts:
        return "never (the API gives no expiry)"
    moment = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    left = (ts - now) / 86400
    return f"{moment} (expired {-left:.1f} days ago)" if left < 0 else f"{moment} (in {left:.1f} days)"
