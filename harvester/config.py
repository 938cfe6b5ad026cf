"""TOML -> frozen msgspec Structs, with every mistake found before any call.

Validation collects every problem, not just the first, and raises them together as one
:class:`~harvester.errors.ConfigError`; each message starts with the file name and names the key
(``[window] since``, ``accounts[2].token_env``, ``[metrics] account[0].breakdowns``; list
positions count from 0), what is wrong and what is allowed. Metric names, periods, metric types,
breakdowns and timeframes are checked against :mod:`harvester.catalog`, so a typo or a metric the
API has retired is refused here instead of failing a call at 3 a.m.

Defaults live in one place: the Struct definitions below (and ``Selection``'s defaults: every
current metric of the catalog with every breakdown). Relative paths (``[output] path``,
``[state] path``) are kept as given, i.e. relative to the working directory of the process, not
to the config file. Token values are read only to check that their variable is set; they never
enter a Struct, a message or a repr.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Literal, Mapping, NamedTuple

import msgspec

from . import catalog
from .errors import ConfigError
from .refresh import DEFAULT_TIERS, Tier

OUTPUT_FORMATS = ("jsonl",)
TOTALS = ("day", "window")


class GraphSettings(msgspec.Struct, frozen=True):
    base_url: str = "https://graph.facebook.com"
    """Also ``https://graph.instagram.com``, the simulator or a proxy."""
    api_version: str = "v25.0"


class RateLimit(msgspec.Struct, frozen=True):
    """Per token, over a rolling window."""

    calls_per_window: int = 200
    window_seconds: float = 3600
    margin_seconds: float = 1.0
    """Extra spacing kept between a window's oldest call and a new one, for clock and network
    skew between us and the API's counter (0 in simulated time)."""


class Window(msgspec.Struct, frozen=True):
    """Account insights over ``[since, until)``, UTC midnights."""

    since: date
    until: date
    totals: Literal["day", "window"] = "day"
    """``day``: one total per UTC day; ``window``: one per chunk of at most 30 days."""


class Output(msgspec.Struct, frozen=True):
    format: str = "jsonl"
    path: str = "out"
    commit_seconds: float = 15.0
    """Checkpoint at least this often: the most work a crash can make a resumed run repeat."""
    part_records: int = 100_000
    """Records per part file at most."""


class StateSettings(msgspec.Struct, frozen=True):
    path: str = "harvest-state.sqlite"


class SchedulerSettings(msgspec.Struct, frozen=True):
    max_in_flight: int = 32
    """Calls open at once, over every token."""
    max_attempts: int = 5
    """Tries of one call before it is given up."""
    per_token_in_flight: int = 8


class Account(msgspec.Struct, frozen=True):
    id: str
    token_env: str
    """The environment variable holding the token (the token itself is never stored here)."""


class MetricChoice(msgspec.Struct, frozen=True):
    """One catalog metric and the metric types and breakdowns asked of it (media: no metric type)."""

    metric: catalog.Metric
    metric_types: tuple[str, ...]
    breakdowns: tuple[str, ...]


def _everything(metrics: tuple[catalog.Metric, ...]) -> tuple[MetricChoice, ...]:
    return tuple(MetricChoice(m, m.metric_types, m.breakdowns) for m in metrics)


class Selection(msgspec.Struct, frozen=True):
    """What to harvest; ``Selection()`` is the default: everything current, every breakdown."""

    account: tuple[MetricChoice, ...] = _everything(
        catalog.account_metrics("interaction") + catalog.account_metrics("series"))
    demographics: tuple[MetricChoice, ...] = _everything(catalog.account_metrics("demographic"))
    media: tuple[MetricChoice, ...] = _everything(catalog.MEDIA_METRICS)
    timeframes: tuple[str, ...] = catalog.DEFAULT_TIMEFRAMES
    demographic_breakdowns: tuple[tuple[str, ...], ...] = catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS


class RefreshSettings(msgspec.Struct, frozen=True):
    """Media refresh by age (:mod:`harvester.refresh`)."""

    enabled: bool = True
    tiers: tuple[Tier, ...] = DEFAULT_TIERS


class Config(msgspec.Struct, frozen=True):
    """A validated configuration; ``path`` is the file it came from, as given (messages start with it)."""

    path: str
    graph: GraphSettings
    rate_limit: RateLimit
    window: Window
    output: Output
    state: StateSettings
    scheduler: SchedulerSettings
    accounts: tuple[Account, ...]
    selection: Selection
    refresh: RefreshSettings = RefreshSettings()

    def token_keys(self) -> tuple[str, ...]:
        """Distinct token variable names, in order of first use: one scheduler slot each."""
        return tuple(dict.fromkeys(a.token_env for a in self.accounts))


# --- the rules, as data ----------------------------------------------------------------------


class Rule(NamedTuple):
    """What one scalar key accepts: its TOML types, a check of the value, and how to say so."""

    types: tuple[type, ...]
    ok: Callable[[Any], bool]
    expected: str


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


def _one_of(choices: tuple[str, ...]) -> Rule:
    return Rule((str,), lambda v: v in choices, "one of " + ", ".join(f'"{c}"' for c in choices))


_NUMBER = (int, float)
_POSITIVE_INT = Rule((int,), _at_least(1), "an integer >= 1")
_PATH = Rule((str,), bool, "a non-empty path")
_VERSION = re.compile(r"v\d+\.\d+")
_DATE = Rule((date, str), lambda v: _to_date(v) is not None, 'a date such as 2026-10-01 or "2026-10-01" (UTC)')

RULES: dict[str, dict[str, Rule]] = {
    "graph": {
        "base_url": Rule((str,), lambda v: v.startswith(("http://", "https://")), "an http:// or https:// URL"),
        "api_version": Rule((str,), lambda v: bool(_VERSION.fullmatch(v)), 'a version such as "v25.0"'),
    },
    "rate_limit": {
        "calls_per_window": _POSITIVE_INT,
        "window_seconds": Rule(_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
        "margin_seconds": Rule(_NUMBER, _at_least(0), "a number of seconds >= 0"),
    },
    "window": {
        "since": _DATE,
        "until": _DATE,
        "days": Rule((int,), lambda v: 1 <= v <= catalog.RETENTION_DAYS,
                     f"a whole number of days from 1 to {catalog.RETENTION_DAYS}"),
        "totals": _one_of(TOTALS),
    },
    "output": {"format": _one_of(OUTPUT_FORMATS), "path": _PATH,
               "commit_seconds": Rule(_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
               "part_records": _POSITIVE_INT},
    "state": {"path": _PATH},
    "scheduler": {"max_in_flight": _POSITIVE_INT, "max_attempts": _POSITIVE_INT, "per_token_in_flight": _POSITIVE_INT},
    "refresh": {"enabled": Rule((bool,), lambda v: True, "true or false")},
    "tier": {
        "every_days": Rule(_NUMBER, lambda v: v > 0, "a number of days > 0"),
        "max_age_days": Rule(_NUMBER, lambda v: v > 0, "a number of days > 0"),
    },
}
SETTINGS = {"graph": GraphSettings, "rate_limit": RateLimit, "output": Output, "state": StateSettings,
            "scheduler": SchedulerSettings}
TOP_LEVEL = ("graph", "rate_limit", "window", "output", "state", "scheduler", "metrics", "refresh", "accounts")
ACCOUNT_KEYS = ("id", "token_env")
METRICS_KEYS = ("account", "demographics", "media", "timeframes", "demographic_breakdowns")


class MetricList(NamedTuple):
    """One list of ``[metrics]``: which catalog metrics it takes and the keys of a table entry."""

    level: catalog.Level
    kinds: tuple[str, ...]
    keys: tuple[str, ...]
    what: str


METRIC_LISTS = {
    "account": MetricList("account", ("interaction", "series"), ("name", "period", "metric_types", "breakdowns"),
                          "an account"),
    "demographics": MetricList("account", ("demographic",), ("name", "period", "metric_types"), "a demographic"),
    "media": MetricList("media", ("media",), ("name", "period", "breakdowns"), "a media"),
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Graph API tokens start so (user/page: EAA..., Instagram Login: IGQ..., IGAA...) or are long runs of
#: token characters; a value like this is never echoed, in case someone pasted a token.
_TOKEN_LIKE = re.compile(r"(EAA|IGQ|IGAA)\w{16,}|[\w|-]{60,}")


# --- messages --------------------------------------------------------------------------------


class Problems:
    """Every problem found, each prefixed with the file name."""

    def __init__(self, path: str):
        self.path = path
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(f"{self.path}: {message}")

    def raise_any(self) -> None:
        if self.messages:
            raise ConfigError(self.messages)


def _show(value: Any) -> str:
    """A value as TOML writes it; anything that looks like an access token is never shown."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "<value not shown: it looks like an access token>" if _TOKEN_LIKE.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
             (datetime, "a date-time"), (date, "a date"), (time, "a time"), (list, "an array"), (dict, "a table"))
    return next(name for t, name in kinds if isinstance(value, t))


def _names(names) -> str:
    return ", ".join(names) if names else "none"


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {_show(close[0])}?)" if close else ""


def _to_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


# --- generic checks --------------------------------------------------------------------------


def _table(p: Problems, value: Any, where: str) -> dict:
    if isinstance(value, dict):
        return value
    p.add(f"{where} is {_kind(value)}; expected a table")
    return {}


def _unknown(p: Problems, table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            p.add(f"{where} has an unknown key {_show(key)}{_did_you_mean(key, allowed)}; allowed: {_names(allowed)}")


def _check(p: Problems, where: str, value: Any, rule: Rule) -> bool:
    if (isinstance(value, bool) and bool not in rule.types) or not isinstance(value, rule.types):
        p.add(f"{where} = {_show(value)} is {_kind(value)}; expected {rule.expected}")
        return False
    if not rule.ok(value):
        p.add(f"{where} = {_show(value)} is not valid; expected {rule.expected}")
        return False
    return True


def _checked(p: Problems, table: dict, rules: dict[str, Rule], where: str, sep: str = " ") -> dict[str, Any]:
    """The known keys of a table that pass their rule (the others are reported)."""
    _unknown(p, table, rules, where)
    return {k: v for k, v in table.items() if k in rules and _check(p, f"{where}{sep}{k}", v, rules[k])}


def _settings(p: Problems, raw: dict, name: str):
    before = len(p.messages)
    values = _checked(p, _table(p, raw.get(name, {}), f"[{name}]"), RULES[name], f"[{name}]")
    return msgspec.convert(values, SETTINGS[name]) if len(p.messages) == before else None


def _strings(p: Problems, value: Any, where: str) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    p.add(f"{where} = {_show(value)} is {_kind(value)}; expected an array of strings")
    return None


def _no_repeats(p: Problems, items: list, where: str) -> None:
    first: dict = {}
    for i, item in enumerate(items):
        if item in first:
            p.add(f"{where}[{i}] = {_show(item)} repeats {where.split()[-1]}[{first[item]}]")
        first.setdefault(item, i)


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
    return Window(*span, totals=values.get("totals", "day"))


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
    if "since" in values and "until" in values:
        return _to_date(values["since"]), _to_date(values["until"])
    return None


def _span_ok(p: Problems, since: date, until: date, today: date) -> bool:
    earliest = today - timedelta(days=catalog.RETENTION_DAYS)
    before = len(p.messages)
    if since >= until:
        p.add(f"[window] since = {since} is not before until = {until}; expected since < until (until is exclusive)")
    if since < earliest:
        p.add(f"[window] since = {since} is older than the two years the API keeps (earliest allowed: {earliest})")
    if until > today:
        p.add(f"[window] until = {until} is in the future (latest allowed: {today}, today; until is exclusive)")
    return len(p.messages) == before


# --- accounts --------------------------------------------------------------------------------


def _accounts(p: Problems, raw: dict, env: Mapping[str, str] | None) -> tuple[Account, ...]:
    entries = raw.get("accounts")
    if not isinstance(entries, list) or not entries:
        shown = "is missing" if entries is None else f"= {_show(entries)} is {_kind(entries) if entries else 'empty'}"
        p.add(f"accounts {shown}; expected at least one [[accounts]] table with id and token_env")
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
    for key in ACCOUNT_KEYS:
        if key not in entry:
            p.add(f"{where}.{key} is missing; expected {_ACCOUNT_EXPECTED[key]}")
    account_id, token_env = entry.get("id"), entry.get("token_env")
    good_id = account_id is None or _account_id_ok(p, account_id, f"{where}.id")
    good_env = token_env is None or _token_env_ok(p, token_env, f"{where}.token_env")
    if account_id is None or token_env is None or not (good_id and good_env):
        return None
    return Account(account_id, token_env)


_ACCOUNT_EXPECTED = {
    "id": 'the Instagram account id as a string of digits, e.g. "17841405822304914"',
    "token_env": 'the name of the environment variable holding its token, e.g. "IG_TOKEN_MAIN"',
}


def _account_id_ok(p: Problems, value: Any, where: str) -> bool:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return True
    p.add(f"{where} = {_show(value)} is not valid; expected {_ACCOUNT_EXPECTED['id']}")
    return False


def _token_env_ok(p: Problems, value: Any, where: str) -> bool:
    if isinstance(value, str) and _TOKEN_LIKE.fullmatch(value):
        p.add(f"{where} looks like an access token itself (not shown); expected {_ACCOUNT_EXPECTED['token_env']}")
    elif not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        p.add(f"{where} = {_show(value)} is not a valid environment variable name; expected letters, digits "
              f"and _, not starting with a digit")
    else:
        return True
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
        if account is not None:
            users.setdefault(account.token_env, []).append(i)
    for name, positions in users.items():
        if not env.get(name):
            more = f" (used by {len(positions)} accounts)" if len(positions) > 1 else ""
            p.add(f"accounts[{positions[0]}].token_env = {_show(name)}: the environment variable is not set "
                  f"or empty{more}; expected it to hold the account's access token")


# --- metrics ---------------------------------------------------------------------------------


def _selection(p: Problems, raw: dict) -> Selection:
    table = _table(p, raw.get("metrics", {}), "[metrics]")
    _unknown(p, table, METRICS_KEYS, "[metrics]")
    chosen: dict[str, Any] = {}
    for key in METRIC_LISTS:
        if key in table:
            chosen[key] = _metric_list(p, table[key], key)
    if "timeframes" in table:
        chosen["timeframes"] = _timeframes(p, table["timeframes"])
    if "demographic_breakdowns" in table:
        chosen["demographic_breakdowns"] = _demographic_breakdowns(p, table["demographic_breakdowns"])
    return Selection(**{k: v for k, v in chosen.items() if v is not None})


def _metric_list(p: Problems, value: Any, key: str) -> tuple[MetricChoice, ...] | None:
    where = f"[metrics] {key}"
    if not isinstance(value, list):
        p.add(f"{where} = {_show(value)} is {_kind(value)}; expected an array of metric names or tables")
        return None
    choices = [_choice(p, entry, key, f"{where}[{i}]") for i, entry in enumerate(value)]
    _no_repeats(p, [c.metric.name if c else object() for c in choices], where)
    return tuple(c for c in choices if c is not None)


def _choice(p: Problems, entry: Any, key: str, where: str) -> MetricChoice | None:
    spec = METRIC_LISTS[key]
    if isinstance(entry, str):
        entry, name_at = {"name": entry}, where
    elif isinstance(entry, dict):
        _unknown(p, entry, spec.keys, where)
        name_at = f"{where}.name"
        if not isinstance(entry.get("name"), str):
            p.add(f"{name_at} is missing or not a string; expected a metric name")
            return None
    else:
        p.add(f"{where} = {_show(entry)} is {_kind(entry)}; expected a metric name or a table with name")
        return None
    metric = _find(p, entry["name"], key, name_at)
    return _options(p, metric, entry, key, where) if metric is not None else None


def _find(p: Problems, name: str, key: str, where: str) -> catalog.Metric | None:
    spec = METRIC_LISTS[key]
    metric = catalog.metric(spec.level, name)
    if metric is not None and metric.kind in spec.kinds:
        return metric
    gone = catalog.deprecated(spec.level, name)
    home = _home(name)
    if gone is not None:
        instead = f"; use {_show(gone.replacement)} instead" if gone.replacement else ""
        p.add(f"{where} = {_show(name)} is deprecated: it returns an error since {gone.version}{instead}")
    elif home is not None and home != key:
        p.add(f"{where} = {_show(name)} is {METRIC_LISTS[home].what} metric: list it under [metrics] {home}")
    else:
        allowed = [m.name for m in _catalog_list(key)]
        p.add(f"{where} = {_show(name)} is not {spec.what} metric{_did_you_mean(name, allowed)}; "
              f"allowed: {_names(allowed)}")
    return None


def _catalog_list(key: str) -> tuple[catalog.Metric, ...]:
    spec = METRIC_LISTS[key]
    metrics = catalog.ACCOUNT_METRICS if spec.level == "account" else catalog.MEDIA_METRICS
    return tuple(m for m in metrics if m.kind in spec.kinds)


def _home(name: str) -> str | None:
    """The [metrics] list a current metric belongs in (account first: both levels have ``reach``)."""
    return next((key for key in METRIC_LISTS if name in {m.name for m in _catalog_list(key)}), None)


def _options(p: Problems, metric: catalog.Metric, entry: dict, key: str, where: str) -> MetricChoice | None:
    before = len(p.messages)
    if "period" in entry and entry["period"] != metric.period:
        p.add(f"{where}.period = {_show(entry['period'])} is not a period of {metric.name}; "
              f"allowed: {_show(metric.period)}")
    types = _subset(p, entry, "metric_types", metric.metric_types, metric.name, where) if key != "media" else ()
    default = metric.breakdowns if key == "media" or "total_value" in (types or ()) else ()
    breakdowns = _subset(p, entry, "breakdowns", metric.breakdowns, metric.name, where, default)
    if key == "account" and breakdowns and types is not None and "total_value" not in types:
        p.add(f"{where}.breakdowns = {_show(list(breakdowns))} needs metric type \"total_value\": breakdowns "
              f"apply only to totals; expected \"total_value\" in metric_types, or no breakdowns")
    if len(p.messages) > before:
        return None
    return MetricChoice(metric, types or (), breakdowns or ())


_NOUNS = {"metric_types": "metric type", "breakdowns": "breakdown"}


def _subset(p: Problems, entry: dict, field: str, allowed: tuple[str, ...], metric: str, where: str,
            default: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """The values of ``field`` (default: all allowed), each checked against the catalog."""
    if field not in entry:
        return allowed if default is None else default
    values = _strings(p, entry[field], f"{where}.{field}")
    if values is None:
        return None
    if not values and field == "metric_types":
        p.add(f"{where}.metric_types = [] is empty; allowed: {_names(allowed)}")
    for value in values:
        if value not in allowed:
            p.add(f"{where}.{field}: {_show(value)} is not a {_NOUNS[field]} of {metric}"
                  f"{_did_you_mean(value, allowed)}; allowed: {_names(allowed)}")
    _no_repeats(p, values, f"{where}.{field}")
    return tuple(values)


def _timeframes(p: Problems, value: Any) -> tuple[str, ...] | None:
    values = _strings(p, value, "[metrics] timeframes")
    if values is None:
        return None
    allowed = _names(catalog.TIMEFRAMES)
    for i, timeframe in enumerate(values):
        where = f"[metrics] timeframes[{i}] = {_show(timeframe)}"
        if timeframe in catalog.DEPRECATED_TIMEFRAMES:
            p.add(f"{where} is deprecated: only this_week and this_month are accepted since v20.0; allowed: {allowed}")
        elif timeframe not in catalog.TIMEFRAMES:
            p.add(f"{where} is not a timeframe{_did_you_mean(timeframe, catalog.TIMEFRAMES)}; allowed: {allowed}")
    _no_repeats(p, values, "[metrics] timeframes")
    return tuple(values)


def _demographic_breakdowns(p: Problems, value: Any) -> tuple[tuple[str, ...], ...] | None:
    """Each entry one breakdown or several joined by commas (``"age,gender"``: a cross-tab)."""
    values = _strings(p, value, "[metrics] demographic_breakdowns")
    if values is None:
        return None
    sets = [tuple(part.strip() for part in v.split(",")) for v in values]
    allowed = _names(catalog.DEMOGRAPHIC_BREAKDOWNS)
    for i, parts in enumerate(sets):
        where = f"[metrics] demographic_breakdowns[{i}] = {_show(values[i])}"
        for part in parts:
            if part not in catalog.DEMOGRAPHIC_BREAKDOWNS:
                p.add(f"{where}: {_show(part)} is not a demographic breakdown"
                      f"{_did_you_mean(part, catalog.DEMOGRAPHIC_BREAKDOWNS)}; allowed: {allowed}, or several "
                      f"joined by commas")
        if len(set(parts)) < len(parts):
            p.add(f"{where} names a breakdown twice; expected each at most once")
    _no_repeats(p, [",".join(s) for s in sets], "[metrics] demographic_breakdowns")
    return tuple(sets)


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
    today = today or datetime.now(timezone.utc).date()
    _unknown(p, raw, TOP_LEVEL, "the top level")
    settings = {name: _settings(p, raw, name) for name in SETTINGS}
    window = _window(p, raw, today)
    accounts = _accounts(p, raw, (os.environ if env is None else env) if check_tokens else None)
    selection, refresh = _selection(p, raw), _refresh(p, raw)
    p.raise_any()
    return Config(path, settings["graph"], settings["rate_limit"], window, settings["output"], settings["state"],
                  settings["scheduler"], accounts, selection, refresh)


def load_config(path: str | os.PathLike, *, env: Mapping[str, str] | None = None, today: date | None = None,
                check_tokens: bool = True) -> Config:
    """Read a TOML file and :func:`parse_config` it; unreadable files and TOML syntax errors
    (with line and column) are ConfigErrors too."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: invalid TOML: the file is not UTF-8 text") from None
    return parse_config(raw, path=name, env=env, today=today, check_tokens=check_tokens)
