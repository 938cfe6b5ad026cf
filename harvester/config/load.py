"""Reading a configuration: the TOML file, the rules of each table, the window, the accounts and
their token variables, the refresh tiers; ``parse_config`` and ``load_config``."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from .. import catalog
from ..errors import ConfigError
from . import tokens as token_rules
from .metrics import _selection
from .model import (
    DEFAULT_TIERS,
    EXPAND_INSIGHTS,
    OUTPUT_FORMATS,
    TOTALS,
    Account,
    AppSettings,
    Config,
    GraphSettings,
    Output,
    RateLimit,
    RefreshSettings,
    ReportSettings,
    SchedulerSettings,
    StateSettings,
    TelemetrySettings,
    Tier,
    WebhookSettings,
    Window,
)
from .problems import (
    Problems,
    ValueRule,
    _at_least,
    _check,
    _checked,
    _kind,
    _one_of,
    _show,
    _table,
    _to_date,
    _unknown,
)

_NUMBER = (int, float)
_POSITIVE_INT = ValueRule((int,), _at_least(1), "an integer >= 1")
_POSITIVE_OR_AUTO = ValueRule((int, str), lambda v: v == "auto" if isinstance(v, str) else v >= 1,
                              'an integer >= 1 or "auto"')
_PATH = ValueRule((str,), bool, "a non-empty path")
_VERSION = re.compile(r"v\d+\.\d+")
_DSN_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DATE = ValueRule((date, str), lambda v: _to_date(v) is not None, 'a date such as 2026-10-01 or "2026-10-01" (UTC)')

def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


WHOLE_DAYS = catalog.RETENTION_DAYS["account"] - 1
"""The most days back a window may start: the API keeps account insights 730 days back from the
moment of each call, so the day 730 days back is already cut by any call after its midnight (the
plan leaves it out, ``plan.units.earliest_since``); the day after it is the first kept whole."""


RULES: dict[str, dict[str, ValueRule]] = {
    "graph": {
        "base_url": ValueRule((str,), lambda v: v.startswith(("http://", "https://")), "an http:// or https:// URL"),
        "instagram_base_url": ValueRule((str,), lambda v: v.startswith(("http://", "https://")),
                                        "an http:// or https:// URL"),
        "api_version": ValueRule((str,), lambda v: bool(_VERSION.fullmatch(v)), 'a version such as "v25.0"'),
        "max_response_bytes": ValueRule((int,), _at_least(1024), "a whole number of bytes >= 1024 (1 KiB)"),
        "expand_insights": _one_of(EXPAND_INSIGHTS),
    },
    "rate_limit": {
        "calls_per_window": _POSITIVE_INT,
        "window_seconds": ValueRule(_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
        "margin_seconds": ValueRule(_NUMBER, _at_least(0), "a number of seconds >= 0"),
    },
    "window": {
        "since": _DATE,
        "until": _DATE,
        "days": ValueRule((int,), lambda v: 1 <= v <= WHOLE_DAYS,
                     f"a whole number of days from 1 to {WHOLE_DAYS} (the days the API keeps whole)"),
        "totals": _one_of(TOTALS),
        "settle_days": ValueRule((int,), lambda v: 0 <= v <= 30, "a whole number of days from 0 to 30 (insights "
                                 "may arrive 48 hours late; 0: a day is settled once it has ended)"),
    },
    "output": {"format": _one_of(OUTPUT_FORMATS), "path": _PATH,
               "commit_seconds": ValueRule(_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
               "commit_units": _POSITIVE_INT, "part_records": _POSITIVE_INT,
               "lifetime_history": ValueRule((bool,), lambda v: True, "true or false"),
               "dsn_env": ValueRule((str,), lambda v: bool(_DSN_ENV.fullmatch(v)),
                                    "the name of an environment variable, such as HARVESTER_PG_DSN"),
               "schema": ValueRule((str,), lambda v: bool(_SCHEMA.fullmatch(v)),
                                   "a PostgreSQL schema name: lower-case letters, digits and _, at most 63")},
    "state": {"path": _PATH},
    "webhook": {
        "host": ValueRule((str,), bool, 'a host name or address, e.g. "127.0.0.1"'),
        "port": ValueRule((int,), lambda v: 0 <= v <= 65535, "a port number from 0 to 65535 (0: any free port)"),
        "path": ValueRule((str,), lambda v: v.startswith("/") and v not in ("/healthz", "/metrics") and " " not in v,
                          'a URL path starting with "/" other than "/healthz" and "/metrics", e.g. "/webhook"'),
        "verify_token_env": ValueRule((str,), lambda v: bool(_ENV_NAME.fullmatch(v)),
                                      'the name of an environment variable, e.g. "IG_WEBHOOK_VERIFY_TOKEN"'),
        "max_body_bytes": ValueRule((int,), _at_least(1024), "a whole number of bytes >= 1024"),
        "publish_seconds": ValueRule(_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
    },
    "report": {"tz": ValueRule((str,), _is_zone, 'an IANA time zone, e.g. "Europe/Berlin" or "UTC"')},
    "telemetry": {
        "pushgateway": ValueRule((str,), lambda v: v.startswith(("http://", "https://")),
                                 'the URL of a Prometheus Pushgateway, e.g. "http://pushgateway:9091"'),
        "push_seconds": ValueRule(_NUMBER, lambda v: v >= 1, "a number of seconds >= 1"),
        "job": ValueRule((str,), lambda v: bool(_ENV_NAME.fullmatch(v)),
                         'a Prometheus label value of letters, digits and _, e.g. "harvester"'),
        "log_format": _one_of(("text", "json")),
    },
    "scheduler": {"max_in_flight": _POSITIVE_OR_AUTO, "max_attempts": _POSITIVE_INT,
                  "per_token_in_flight": _POSITIVE_OR_AUTO,
                  "hedge": ValueRule((bool,), lambda v: True, "true or false")},
    "refresh": {"enabled": ValueRule((bool,), lambda v: True, "true or false")},
    "tier": {
        "every_days": ValueRule(_NUMBER, lambda v: v > 0, "a number of days > 0"),
        "max_age_days": ValueRule(_NUMBER, lambda v: v > 0, "a number of days > 0"),
    },
}
SETTINGS = {"graph": GraphSettings, "rate_limit": RateLimit, "output": Output, "state": StateSettings,
            "report": ReportSettings, "telemetry": TelemetrySettings,
            "scheduler": SchedulerSettings}
TOP_LEVEL = ("graph", "rate_limit", "window", "output", "state", "scheduler", "metrics", "refresh", "accounts",
             "discover", "app", "webhook", "report", "telemetry")
ACCOUNT_KEYS = ("id", "token_env", "token_file", "login")



def _settings(p: Problems, raw: dict, name: str):
    before = len(p.messages)
    values = _checked(p, _table(p, raw.get(name, {}), f"[{name}]"), RULES[name], f"[{name}]")
    return msgspec.convert(values, SETTINGS[name]) if len(p.messages) == before else None


def _in_flight(p: Problems, scheduler: SchedulerSettings | None, table: Any) -> None:
    """Both caps set, and the per-token one above the global one: one of them is a mistake. (With
    only max_in_flight lowered, the default per-token cap simply yields to it.)"""
    if (scheduler is not None and isinstance(table, dict) and {"max_in_flight", "per_token_in_flight"} <= table.keys()
            and isinstance(scheduler.max_in_flight, int) and isinstance(scheduler.per_token_in_flight, int)
            and scheduler.per_token_in_flight > scheduler.max_in_flight):
        p.add(f"[scheduler] per_token_in_flight = {scheduler.per_token_in_flight} is above max_in_flight = "
              f"{scheduler.max_in_flight}; expected per_token_in_flight <= max_in_flight")


_VERSION_SEGMENT = re.compile(r"/v\d+(\.\d+)?(/|$)")


def _base_url(p: Problems, graph: GraphSettings | None) -> None:
    """A base URL with the version in its path (``.../v25.0/``) would put it in every path twice."""
    if graph is None:
        return
    path = graph.base_url.split("://", 1)[-1].partition("/")[2]
    if _VERSION_SEGMENT.search("/" + path):
        p.add(f"[graph] base_url = {_show(graph.base_url)} has an API version in its path; expected the host only "
              f"(e.g. \"https://graph.facebook.com\"), the version goes in [graph] api_version "
              f"(now {_show(graph.api_version)})")


def _webhook(p: Problems, raw: dict, app: AppSettings) -> WebhookSettings | None:
    """``[webhook]`` if the file has one: its keys, and the two secrets' variables the receiver
    needs (the verify token's here, the app secret's in ``[app]``); their values are read only by
    ``harvester webhook``."""
    if "webhook" not in raw:
        return None
    before = len(p.messages)
    table = _table(p, raw["webhook"], "[webhook]")
    values = _checked(p, table, RULES["webhook"], "[webhook]")
    if isinstance(raw["webhook"], dict) and "verify_token_env" not in table:
        p.add("[webhook] verify_token_env is missing; expected the name of the environment variable holding "
              "the verify token you gave Meta's App Dashboard")
    app_table = raw.get("app", {})
    if app.secret_env is None and not (isinstance(app_table, dict) and "secret_env" in app_table):
        p.add("[app] secret_env is missing; expected the name of the environment variable holding the app "
              "secret (App Dashboard > App settings > Basic), which signs every webhook delivery")
    return msgspec.convert(values, WebhookSettings) if len(p.messages) == before else None


# --- window ----------------------------------------------------------------------------------


def _window(p: Problems, raw: dict, today: date) -> Window | None:
    if "window" not in raw:
        p.add("[window] is missing; expected since and until (UTC dates, until exclusive), or days = N")
        return None
    table = raw["window"]
    if not isinstance(table, dict):
        p.add(f"[window] is {_kind(table)}; expected a table")
        return None
    before = len(p.messages)
    values = _checked(p, table, RULES["window"], "[window]")
    span = _span(p, table, values, today)
    if span is None or not _span_ok(p, *span, today) or len(p.messages) > before:
        return None
    return Window(*span, totals=values.get("totals", "day"), settle_days=values.get("settle_days", 3))


def _span(p: Problems, table: dict, values: dict, today: date) -> tuple[date, date] | None:
    """since and until as given, or the last ``days`` before today; None if they cannot be told."""
    dated = [k for k in ("since", "until") if k in table]
    if "days" in table:
        if dated:
            p.add(f"[window] has both days and {' and '.join(dated)}; expected either since and until, or days")
            return None
        return (today - timedelta(days=values["days"]), today) if "days" in values else None
    for key in ("since", "until"):
        if key not in table:
            p.add(f"[window] {key} is missing; expected since and until (UTC dates, until exclusive), or days = N")
    since, until = _to_date(values.get("since")), _to_date(values.get("until"))
    return (since, until) if since is not None and until is not None else None


def earliest_whole_day(today: date) -> date:
    """The oldest day whose account insights a harvest started on ``today`` gets whole."""
    return today - timedelta(days=WHOLE_DAYS)


def window_problems(since: date, until: date, today: date, *,
                    names: tuple[str, str] = ("[window] since = {}", "[window] until = {}")) -> list[str]:
    """What is wrong with the window ``[since, until)`` on ``today``; ``names`` say where each
    date came from (a config key, or ``--since {}`` for a command-line flag)."""
    since_is, until_is = names[0].format(since), names[1].format(until)
    earliest = earliest_whole_day(today)
    problems = []
    if since >= until:
        problems.append(f"{since_is} is not before {until_is}; expected since < until (until is exclusive)")
    if since < earliest:
        problems.append(f"{since_is} is older than the two years the API keeps (the earliest day harvested "
                        f"whole: {earliest}, {WHOLE_DAYS} days before today)")
    if until > today:
        problems.append(f"{until_is} is in the future (latest allowed: {today}, today; until is exclusive)")
    return problems


def _span_ok(p: Problems, since: date, until: date, today: date) -> bool:
    problems = window_problems(since, until, today)
    for problem in problems:
        p.add(problem)
    return not problems


# --- accounts --------------------------------------------------------------------------------


def _accounts(p: Problems, raw: dict, env: Mapping[str, str] | None) -> tuple[Account, ...]:
    entries = raw.get("accounts")
    if entries is None and raw.get("discover"):
        return ()                               # every account found from a token
    if not isinstance(entries, list) or not entries:
        shown = "is missing" if entries is None else f"= {_show(entries)} is {_kind(entries) if entries else 'empty'}"
        p.add(f"accounts {shown}; expected at least one [[accounts]] table with id and token_env, or a "
              f"[[discover]] table with the token whose accounts to find")
        return ()
    accounts = [_account(p, entry, f"accounts[{i}]") for i, entry in enumerate(entries)]
    _duplicate_ids(p, accounts)
    if env is not None:
        _tokens_set(p, accounts, env)
    return tuple(a for a in accounts if a is not None)


def _account(p: Problems, entry: Any, where: str) -> Account | None:
    if not isinstance(entry, dict):
        p.add(f"{where} is {_kind(entry)}; expected a table with id and token_env")
        return None
    _unknown(p, entry, ACCOUNT_KEYS, where)
    if "id" not in entry:
        p.add(f"{where}.id is missing; expected {_ACCOUNT_EXPECTED['id']}")
    account_id = entry.get("id")
    good_id = account_id is None or _account_id_ok(p, account_id, f"{where}.id")
    source, login = token_rules.token_source(p, entry, where), token_rules.login(p, entry, where)
    if account_id is None or source is None or login is None or not good_id:
        return None
    return Account(account_id, source[0], source[1], login)  # type: ignore[arg-type]


_ACCOUNT_EXPECTED = {
    "id": 'the Instagram account id as a string of digits, e.g. "17841405822304914"',
    "token_env": 'the name of the environment variable holding its token, e.g. "IG_TOKEN_MAIN"',
}


def _account_id_ok(p: Problems, value: Any, where: str) -> bool:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return True
    p.add(f"{where} = {_show(value)} is not valid; expected {_ACCOUNT_EXPECTED['id']}")
    return False


def _duplicate_ids(p: Problems, accounts: list[Account | None]) -> None:
    first: dict[str, int] = {}
    for i, account in enumerate(accounts):
        if account is None:
            continue
        if account.id in first:
            p.add(f"accounts[{i}].id = {_show(account.id)} duplicates accounts[{first[account.id]}].id; "
                  f"expected each account once")
        first.setdefault(account.id, i)


def _tokens_set(p: Problems, accounts: list[Account | None], env: Mapping[str, str]) -> None:
    """One message per variable not set, naming its first account; the value is never read out."""
    users: dict[str, list[int]] = {}
    for i, account in enumerate(accounts):
        if account is not None and account.token_file is None:
            users.setdefault(account.token_env, []).append(i)
    for name, positions in users.items():
        if not env.get(name):
            more = f" (used by {len(positions)} accounts)" if len(positions) > 1 else ""
            p.add(f"accounts[{positions[0]}].token_env = {_show(name)}: the environment variable is not set "
                  f"or empty{more}; expected it to hold the account's access token")


# --- refresh ---------------------------------------------------------------------------------


def _refresh(p: Problems, raw: dict) -> RefreshSettings:
    table = _table(p, raw.get("refresh", {}), "[refresh]")
    _unknown(p, table, ("enabled", "tiers"), "[refresh]")
    enabled = table.get("enabled", True)
    _check(p, "[refresh] enabled", enabled, RULES["refresh"]["enabled"])
    tiers = _tiers(p, table["tiers"]) if "tiers" in table else DEFAULT_TIERS
    return RefreshSettings(enabled is True, tiers or DEFAULT_TIERS)


def _tiers(p: Problems, value: Any) -> tuple[Tier, ...] | None:
    if not isinstance(value, list) or not value:
        p.add(f"[refresh] tiers = {_show(value)} is not valid; expected an array of at least one table "
              f"{{ every_days = N, max_age_days = N }} (the last one without max_age_days)")
        return None
    tiers = [_tier(p, entry, i, last=i == len(value) - 1) for i, entry in enumerate(value)]
    for i in range(1, len(tiers)):
        low, high = (t.max_age_days if t else None for t in tiers[i - 1:i + 1])
        if low is not None and high is not None and high <= low:
            p.add(f"[refresh] tiers[{i}].max_age_days = {_show(high)} is not above "
                  f"tiers[{i - 1}].max_age_days = {_show(low)}; expected ascending ages")
    return None if None in tiers else tuple(tiers)  # type: ignore[arg-type]


def _tier(p: Problems, entry: Any, i: int, *, last: bool) -> Tier | None:
    where = f"[refresh] tiers[{i}]"
    if not isinstance(entry, dict):
        p.add(f"{where} is {_kind(entry)}; expected a table {{ every_days = N, max_age_days = N }}")
        return None
    before = len(p.messages)
    values = _checked(p, entry, RULES["tier"], where, sep=".")
    if "every_days" not in entry:
        p.add(f"{where}.every_days is missing; expected a number of days > 0")
    if last and "max_age_days" in entry:
        p.add(f"{where}.max_age_days = {_show(entry['max_age_days'])} is not allowed on the last tier; "
              f"expected none (the last tier covers media of any age)")
    if not last and "max_age_days" not in entry:
        p.add(f"{where}.max_age_days is missing; expected a number of days (only the last tier is open-ended)")
    return Tier(values["every_days"], values.get("max_age_days")) if len(p.messages) == before else None


# --- entry points ----------------------------------------------------------------------------


def parse_config(raw: dict, *, path: str, env: Mapping[str, str] | None = None, today: date | None = None,
                 check_tokens: bool = True) -> Config:
    """A Config from parsed TOML, or ConfigError listing every problem.

    ``today`` (default: the current UTC date) bounds the window; with ``check_tokens`` every
    token variable must be set and non-empty in ``env`` (default ``os.environ``).
    """
    p = Problems(path)
    today = today or datetime.now(UTC).date()
    _unknown(p, raw, TOP_LEVEL, "the top level")
    settings = {name: _settings(p, raw, name) for name in SETTINGS}
    _in_flight(p, settings["scheduler"], raw.get("scheduler"))
    _base_url(p, settings["graph"])
    window = _window(p, raw, today)
    environ = os.environ if env is None else env
    accounts = _accounts(p, raw, environ if check_tokens else None)
    discover, app = token_rules.discover_tables(p, raw), token_rules.app_settings(p, raw)
    token_rules.one_login_per_token(p, accounts, discover)
    if check_tokens:
        token_rules.tokens_set(p, accounts, discover, app, environ)
    selection, refresh = _selection(p, raw), _refresh(p, raw)
    webhook = _webhook(p, raw, app)
    p.raise_any()
    assert window is not None                      # else a problem was raised
    return Config(path, settings["graph"], settings["rate_limit"], window, settings["output"], settings["state"],
                  settings["scheduler"], accounts, selection, refresh, discover, app, settings["report"], webhook,
                  settings["telemetry"])


def load_config(path: str | os.PathLike, *, env: Mapping[str, str] | None = None, today: date | None = None,
                check_tokens: bool = True) -> Config:
    """Read a TOML file and :func:`parse_config` it; unreadable files and TOML syntax errors
    (with line and column) are ConfigErrors too."""
    name = os.fspath(path)
    return parse_config(read_toml(name), path=name, env=env, today=today, check_tokens=check_tokens)


def read_toml(path: str) -> dict:
    """A TOML file as a dict; unreadable files and syntax errors (with line and column) are ConfigErrors."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: the file is not UTF-8 text") from None
