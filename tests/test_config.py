"""Configuration: every kind of mistake with its exact message, the defaults, the example files,
``harvester validate``, and tokens never leaking."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from harvester import catalog
from harvester.cli import main
from harvester.config import (
    Account,
    Config,
    GraphSettings,
    MetricChoice,
    Output,
    RateLimit,
    RefreshSettings,
    SchedulerSettings,
    Selection,
    StateSettings,
    Window,
    load_config,
    parse_config,
)
from harvester.config.model import IN_FLIGHT_CEILING, TOKEN_DEPTH_CAP
from harvester.errors import ConfigError
from harvester.plan.refresh import DEFAULT_TIERS, Tier

TODAY = date(2026, 11, 26)
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
ENV = {"IG_TOKEN_MAIN": "EAAGsecretMAINtoken0123456789", "IG_TOKEN_B": "EAAGsecretBtoken0123456789"}
GOOD = {
    "window": {"since": "2026-10-01", "until": "2026-11-01"},
    "accounts": [{"id": "17841405822304914", "token_env": "IG_TOKEN_MAIN"}],
}


def parse(raw: dict, **kwargs) -> Config:
    kwargs.setdefault("env", ENV)
    kwargs.setdefault("today", TODAY)
    return parse_config(raw, path="harvest.toml", **kwargs)


def problems(raw: dict, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw, **kwargs)
    return info.value.problems


def good(**tables) -> dict:
    raw = copy.deepcopy(GOOD)
    raw.update(tables)
    return raw


def metrics(**lists) -> dict:
    return good(metrics=lists)


F = "harvest.toml: "
ACCOUNT_NAMES = ("accounts_engaged, comments, follows_and_unfollows, likes, profile_links_taps, reach, replies, "
                 "reposts, saves, shares, total_interactions, views, follower_count, online_followers")
TOP = ("graph, rate_limit, window, output, state, scheduler, metrics, refresh, accounts, discover, app, webhook, "
       "report, telemetry")
ID_EXPECTED = 'the Instagram account id as a string of digits, e.g. "17841405822304914"'

# (what is wrong, raw config, the exact messages)
MISTAKES = [
    ("unknown top-level key", good(windows={}),
     [f'the top level has an unknown key "windows" (did you mean "window"?); allowed: {TOP}']),
    ("unknown key in a table", good(graph={"base_ur": "https://x"}),
     ['[graph] has an unknown key "base_ur" (did you mean "base_url"?); '
      'allowed: base_url, instagram_base_url, api_version, max_response_bytes, expand_insights']),
    ("expand_insights not one of its three", good(graph={"expand_insights": "sometimes"}),
     ['[graph] expand_insights = "sometimes" is not valid; expected one of "auto", "always", "never"']),
    ("unknown key without a close match", good(state={"dir": "x"}),
     ['[state] has an unknown key "dir"; allowed: path']),
    ("a table that is not a table", good(output="out"),
     ['[output] is a string; expected a table']),
    ("wrong type", good(rate_limit={"calls_per_window": "200"}),
     ['[rate_limit] calls_per_window = "200" is a string; expected an integer >= 1']),
    ("out of range", good(rate_limit={"calls_per_window": 0, "window_seconds": -1, "margin_seconds": -0.5}),
     ["[rate_limit] calls_per_window = 0 is not valid; expected an integer >= 1",
      "[rate_limit] window_seconds = -1 is not valid; expected a number of seconds > 0",
      "[rate_limit] margin_seconds = -0.5 is not valid; expected a number of seconds >= 0"]),
    ("per-token cap above the global one", good(scheduler={"max_in_flight": 4, "per_token_in_flight": 8}),
     ["[scheduler] per_token_in_flight = 8 is above max_in_flight = 4; expected per_token_in_flight <= max_in_flight"]),
    ("boolean for an integer", good(scheduler={"max_in_flight": True}),
     ['[scheduler] max_in_flight = true is a boolean; expected an integer >= 1 or "auto"']),
    ("a word for a cap", good(scheduler={"per_token_in_flight": "many"}),
     ['[scheduler] per_token_in_flight = "many" is not valid; expected an integer >= 1 or "auto"']),
    ("graph url and version", good(graph={"base_url": "graph.facebook.com", "api_version": "25"}),
     ['[graph] base_url = "graph.facebook.com" is not valid; expected an http:// or https:// URL',
      '[graph] api_version = "25" is not valid; expected a version such as "v25.0"']),
    ("a version in the base url", good(graph={"base_url": "https://graph.facebook.com/v25.0/"}),
     ['[graph] base_url = "https://graph.facebook.com/v25.0/" has an API version in its path; expected the host '
      'only (e.g. "https://graph.facebook.com"), the version goes in [graph] api_version (now "v25.0")']),
    ("checkpoint bounds", good(output={"commit_units": 0, "commit_seconds": 0}),
     ["[output] commit_units = 0 is not valid; expected an integer >= 1",
      "[output] commit_seconds = 0 is not valid; expected a number of seconds > 0"]),
    ("output format", good(output={"format": "csv"}),
     ['[output] format = "csv" is not valid; expected one of "jsonl", "parquet", "duckdb", "postgres"']),
    ("empty path", good(state={"path": ""}),
     ['[state] path = "" is not valid; expected a non-empty path']),
    # window
    ("window older than two years", good(window={"since": date(2023, 1, 1), "until": "2023-02-01"}),
     ["[window] since = 2023-01-01 is older than the two years the API keeps (the earliest day harvested whole: "
      "2024-11-27, 729 days before today)"]),
    ("window ending in the future", good(window={"since": "2026-11-01", "until": "2026-12-01"}),
     ["[window] until = 2026-12-01 is in the future (latest allowed: 2026-11-26, today; until is exclusive)"]),
    ("empty window", good(window={"since": "2026-11-02", "until": "2026-11-02"}),
     ["[window] since = 2026-11-02 is not before [window] until = 2026-11-02; expected since < until "
      "(until is exclusive)"]),
    ("both days and dates", good(window={"days": 3, "since": "2026-11-01"}),
     ["[window] has both days and since; expected either since and until, or days"]),
    ("missing until", good(window={"since": "2026-11-01"}),
     ["[window] until is missing; expected since and until (UTC dates, until exclusive), or days = N"]),
    ("missing window", {"accounts": GOOD["accounts"]},
     ["[window] is missing; expected since and until (UTC dates, until exclusive), or days = N"]),
    ("not a date", good(window={"since": "2026-13-01", "until": datetime(2026, 11, 1, 12, 0)}),
     ['[window] since = "2026-13-01" is not valid; expected a date such as 2026-10-01 or "2026-10-01" (UTC)',
      '[window] until = 2026-11-01T12:00:00 is not valid; expected a date such as 2026-10-01 or "2026-10-01" (UTC)']),
    ("window not a table", good(window="last 3 days"),
     ["[window] is a string; expected a table"]),
    ("empty window table", good(window={}),
     ["[window] since is missing; expected since and until (UTC dates, until exclusive), or days = N",
      "[window] until is missing; expected since and until (UTC dates, until exclusive), or days = N"]),
    ("days out of range", good(window={"days": 730}),
     ["[window] days = 730 is not valid; expected a whole number of days from 1 to 729 (the days the API keeps "
      "whole)"]),
    ("totals", good(window={"days": 1, "totals": "week"}),
     ['[window] totals = "week" is not valid; expected one of "day", "window"']),
    ("settle_days", good(window={"days": 1, "settle_days": -1}),
     ["[window] settle_days = -1 is not valid; expected a whole number of days from 0 to 30 (insights may arrive 48 "
      "hours late; 0: a day is settled once it has ended)"]),
    # accounts
    ("no accounts", {"window": GOOD["window"]},
     ["accounts is missing; expected at least one [[accounts]] table with id and token_env, "
      "or a [[discover]] table with the token whose accounts to find"]),
    ("empty accounts", good(accounts=[]),
     ["accounts = [] is empty; expected at least one [[accounts]] table with id and token_env, "
      "or a [[discover]] table with the token whose accounts to find"]),
    ("[accounts] instead of [[accounts]]", good(accounts={"id": "1", "token_env": "IG_TOKEN_MAIN"}),
     ['accounts = { id = "1", token_env = "IG_TOKEN_MAIN" } is a table; expected at least one [[accounts]] '
      'table with id and token_env, or a [[discover]] table with the token whose accounts to find']),
    ("account id not digits", good(accounts=[{"id": "@brand", "token_env": "IG_TOKEN_MAIN"},
                                             {"id": 17841405822304915, "token_env": "IG_TOKEN_MAIN"}]),
     [f'accounts[0].id = "@brand" is not valid; expected {ID_EXPECTED}',
      f"accounts[1].id = 17841405822304915 is not valid; expected {ID_EXPECTED}"]),
    ("duplicated account", good(accounts=[{"id": "1", "token_env": "IG_TOKEN_MAIN"},
                                          {"id": "2", "token_env": "IG_TOKEN_B"},
                                          {"id": "1", "token_env": "IG_TOKEN_B"}]),
     ['accounts[2].id = "1" duplicates accounts[0].id; expected each account once']),
    ("missing keys in an account", good(accounts=[{"id": "1"}, {"token_env": "IG_TOKEN_MAIN"}]),
     ['accounts[0] has neither token_env nor token_file; expected exactly one: token_env (the name of the '
      'environment variable holding the token, e.g. "IG_TOKEN_MAIN") or token_file (a file holding only the token, '
      'e.g. "tokens/main.token")',
      f"accounts[1].id is missing; expected {ID_EXPECTED}"]),
    ("unknown key in an account", good(accounts=[{"id": "1", "token_env": "IG_TOKEN_MAIN", "name": "brand"}]),
     ['accounts[0] has an unknown key "name"; allowed: id, token_env, token_file, login']),
    ("bad variable name", good(accounts=[{"id": "1", "token_env": "IG-TOKEN"}]),
     ['accounts[0].token_env = "IG-TOKEN" is not a valid environment variable name; expected letters, digits '
      'and _, not starting with a digit']),
    ("missing token variable", good(accounts=[{"id": "1", "token_env": "IG_TOKEN_GONE"},
                                              {"id": "2", "token_env": "IG_TOKEN_GONE"},
                                              {"id": "3", "token_env": "IG_TOKEN_EMPTY"}]),
     ['accounts[0].token_env = "IG_TOKEN_GONE": the environment variable is not set or empty (used by 2 '
      "accounts); expected it to hold the account's access token",
      'accounts[2].token_env = "IG_TOKEN_EMPTY": the environment variable is not set or empty; expected it '
      "to hold the account's access token"]),
    # metrics
    ("unknown metric", metrics(account=["reech"]),
     [f'[metrics] account[0] = "reech" is not an account metric (did you mean "reach"?); allowed: {ACCOUNT_NAMES}']),
    ("deprecated account metric", metrics(account=["accounts_engaged", "impressions"]),
     ['[metrics] account[1] = "impressions" is deprecated: it returns an error since v22.0; use "views" instead']),
    ("deprecated media metric", metrics(media=[{"name": "carousel_album_engagement"}]),
     ['[metrics] media[0].name = "carousel_album_engagement" is deprecated: it returns an error since v18.0; '
      'use "total_interactions" instead']),
    ("metrics at the wrong level", metrics(account=["saved", "follower_demographics"], media=["accounts_engaged"],
                                           demographics=["reach"]),
     ['[metrics] account[0] = "saved" is a media metric: list it under [metrics] media',
      '[metrics] account[1] = "follower_demographics" is a demographic metric: list it under [metrics] demographics',
      '[metrics] demographics[0] = "reach" is an account metric: list it under [metrics] account',
      '[metrics] media[0] = "accounts_engaged" is an account metric: list it under [metrics] account']),
    ("unknown media metric", metrics(media=["profile_visit"]),
     ['[metrics] media[0] = "profile_visit" is not a media metric (did you mean "profile_visits"?); allowed: '
      + ", ".join(m.name for m in catalog.MEDIA_METRICS)]),
    ("period", metrics(account=[{"name": "reach", "period": "week"}], media=[{"name": "reach", "period": "day"}]),
     ['[metrics] account[0].period = "week" is not a period of reach; allowed: "day"',
      '[metrics] media[0].period = "day" is not a period of reach; allowed: "lifetime"']),
    ("metric type", metrics(account=[{"name": "follower_count", "metric_types": ["total_value"]},
                                     {"name": "likes", "metric_types": []}]),
     ['[metrics] account[0].metric_types: "total_value" is not a metric type of follower_count; allowed: time_series',
      "[metrics] account[1].metric_types = [] is empty; allowed: total_value"]),
    ("breakdown not supported", metrics(account=[{"name": "likes", "breakdowns": ["follow_type"]}],
                                        media=[{"name": "navigation", "breakdowns": ["action_type"]}]),
     ['[metrics] account[0].breakdowns: "follow_type" is not a breakdown of likes; allowed: media_product_type',
      '[metrics] media[0].breakdowns: "action_type" is not a breakdown of navigation; allowed: '
      "story_navigation_action_type"]),
    ("breakdown without totals", metrics(account=[{"name": "reach", "metric_types": ["time_series"],
                                                   "breakdowns": ["follow_type"]}]),
     ['[metrics] account[0].breakdowns = ["follow_type"] needs metric type "total_value": breakdowns apply only '
      'to totals; expected "total_value" in metric_types, or no breakdowns']),
    ("metric types not an array", metrics(account=[{"name": "reach", "metric_types": "time_series",
                                                    "breakdowns": ["follow_type"]}]),
     ['[metrics] account[0].metric_types = "time_series" is a string; expected an array of strings']),
    ("metric listed twice", metrics(account=["reach", {"name": "reach", "metric_types": ["time_series"]}]),
     ['[metrics] account[1] = "reach" repeats account[0]']),
    ("entry neither name nor table", metrics(media=[3, {"period": "lifetime"}]),
     ["[metrics] media[0] = 3 is an integer; expected a metric name or a table with name",
      "[metrics] media[1].name is missing or not a string; expected a metric name"]),
    ("unknown key in a metric entry", metrics(demographics=[{"name": "follower_demographics",
                                                             "breakdowns": ["age"]}]),
     ['[metrics] demographics[0] has an unknown key "breakdowns"; allowed: name, period, metric_types']),
    ("not a list", metrics(media="reach"),
     ['[metrics] media = "reach" is a string; expected an array of metric names or tables']),
    ("unknown [metrics] key", metrics(acount=[]),
     ['[metrics] has an unknown key "acount" (did you mean "account"?); allowed: account, demographics, media, '
      "timeframes, demographic_breakdowns, on_refused"]),
    ("on_refused", metrics(on_refused="skip"),
     ['[metrics] on_refused = "skip" is not a choice; allowed: drop, fail ("drop": a metric the API refuses is left '
      'out and the rest asked; "fail": the call fails)']),
    ("timeframes", metrics(timeframes=["last_30_days", "this_mnth", "this_week", "this_week"]),
     ['[metrics] timeframes[0] = "last_30_days" is deprecated: only this_week and this_month are accepted since '
      "v20.0; allowed: this_week, this_month",
      '[metrics] timeframes[1] = "this_mnth" is not a timeframe (did you mean "this_month"?); allowed: this_week, '
      "this_month",
      '[metrics] timeframes[3] = "this_week" repeats timeframes[2]']),
    ("demographic breakdowns", metrics(demographic_breakdowns=["age,zip", "gender,gender", "country", "country"]),
     ['[metrics] demographic_breakdowns[0] = "age,zip": "zip" is not a demographic breakdown; allowed: age, city, '
      "country, gender, or several joined by commas",
      '[metrics] demographic_breakdowns[1] = "gender,gender" names a breakdown twice; expected each at most once',
      '[metrics] demographic_breakdowns[3] = "country" repeats demographic_breakdowns[2]']),
    # refresh
    ("refresh tiers not ascending", good(refresh={"tiers": [{"every_days": 1, "max_age_days": 30},
                                                            {"every_days": 7, "max_age_days": 7},
                                                            {"every_days": 30}]}),
     ["[refresh] tiers[1].max_age_days = 7 is not above tiers[0].max_age_days = 30; expected ascending ages"]),
    ("refresh tiers not open-ended", good(refresh={"tiers": [{"every_days": 1}, {"every_days": 7,
                                                                                 "max_age_days": 90}]}),
     ["[refresh] tiers[0].max_age_days is missing; expected a number of days (only the last tier is open-ended)",
      "[refresh] tiers[1].max_age_days = 90 is not allowed on the last tier; expected none (the last tier covers "
      "media of any age)"]),
    ("refresh tier values", good(refresh={"enabled": "yes", "tiers": [{"every_days": 0, "max_age": 7}, {}]}),
     ['[refresh] enabled = "yes" is a string; expected true or false',
      '[refresh] tiers[0] has an unknown key "max_age" (did you mean "max_age_days"?); allowed: every_days, '
      "max_age_days",
      "[refresh] tiers[0].every_days = 0 is not valid; expected a number of days > 0",
      "[refresh] tiers[0].max_age_days is missing; expected a number of days (only the last tier is open-ended)",
      "[refresh] tiers[1].every_days is missing; expected a number of days > 0"]),
    ("no refresh tiers", good(refresh={"tiers": []}),
     ["[refresh] tiers = [] is not valid; expected an array of at least one table { every_days = N, "
      "max_age_days = N } (the last one without max_age_days)"]),
]


@pytest.mark.parametrize("raw, expected", [case[1:] for case in MISTAKES], ids=[case[0] for case in MISTAKES])
def test_each_mistake_has_its_exact_message(raw, expected):
    assert problems(raw) == [F + message for message in expected]


def test_every_problem_is_reported_at_once():
    raw = good(graph={"api_version": "25"}, window={"since": "2020-01-01", "until": "2030-01-01"},
               accounts=[{"id": "x", "token_env": "IG_TOKEN_GONE"}], metrics={"media": ["plays"]})
    found = problems(raw)
    assert len(found) == 5
    assert all(message.startswith(F) for message in found)
    assert [m.split(" ", 2)[1] for m in found] == ["[graph]", "[window]", "[window]", "accounts[0].id", "[metrics]"]


def test_config_error_message_joins_the_problems():
    with pytest.raises(ConfigError) as info:
        parse(good(output={"format": "csv"}, state={"path": ""}))
    assert str(info.value) == "\n".join(info.value.problems)
    assert len(info.value.problems) == 2


# --- defaults ----------------------------------------------------------------------------


def test_defaults():
    config = parse(GOOD)
    assert config.path == "harvest.toml"
    assert config.graph == GraphSettings("https://graph.facebook.com", "v25.0")
    assert config.rate_limit == RateLimit(200, 3600, 1.0)
    assert config.window == Window(date(2026, 10, 1), date(2026, 11, 1), "day")
    assert config.output == Output("jsonl", "out")
    assert config.state == StateSettings("harvest-state.sqlite")
    assert config.scheduler == SchedulerSettings("auto", 5, "auto")
    assert config.refresh == RefreshSettings(True, DEFAULT_TIERS)
    assert config.accounts == (Account("17841405822304914", "IG_TOKEN_MAIN"),)
    assert config.selection == Selection()


def test_calls_in_flight_by_default_grow_with_the_tokens_up_to_the_ceiling():
    settings = parse(GOOD).scheduler
    assert settings.token_cap() == TOKEN_DEPTH_CAP
    assert [settings.in_flight_cap(n) for n in (1, 4, 10_000)] == [TOKEN_DEPTH_CAP, 4 * TOKEN_DEPTH_CAP,
                                                                   IN_FLIGHT_CEILING]


@pytest.mark.parametrize(("scheduler", "caps"), [
    ({"max_in_flight": 32}, (64, 32, 32)),              # the global number wins, even above one token's cap
    ({"max_in_flight": "auto", "per_token_in_flight": 3}, (3, 3, IN_FLIGHT_CEILING)),
    ({"per_token_in_flight": 2}, (2, 2, IN_FLIGHT_CEILING)),
    ({"max_in_flight": 64, "per_token_in_flight": 64}, (64, 64, 64)),   # set to the defaults: kept as numbers
])
def test_a_users_caps_win_over_auto(scheduler, caps):
    settings = parse(good(scheduler=scheduler)).scheduler
    assert (settings.token_cap(), settings.in_flight_cap(1), settings.in_flight_cap(10_000)) == caps


def test_auto_caps_are_not_checked_against_each_other():
    settings = parse(good(scheduler={"max_in_flight": 4, "per_token_in_flight": "auto"})).scheduler
    assert (settings.token_cap(), settings.in_flight_cap(100)) == (TOKEN_DEPTH_CAP, 4)


def test_default_selection_is_every_current_metric_with_every_breakdown():
    selection = Selection()
    account = [m for m in catalog.ACCOUNT_METRICS if m.kind in ("interaction", "series")]
    demographic = [m for m in catalog.ACCOUNT_METRICS if m.kind == "demographic"]
    assert [c.metric for c in selection.account] == account
    assert [c.metric for c in selection.demographics] == demographic
    assert [c.metric for c in selection.media] == list(catalog.MEDIA_METRICS)
    for choice in selection.account + selection.demographics + selection.media:
        assert (choice.metric_types, choice.breakdowns) == (choice.metric.metric_types, choice.metric.breakdowns)
    assert selection.timeframes == ("this_month",)
    assert selection.demographic_breakdowns == (("age",), ("city",), ("country",), ("gender",), ("age", "gender"))


def test_each_metrics_key_defaults_on_its_own():
    selection = parse(metrics(media=[], timeframes=["this_week", "this_month"])).selection
    assert selection.media == ()
    assert selection.account == Selection().account
    assert selection.timeframes == ("this_week", "this_month")


def test_metric_entries_narrow_the_choice():
    selection = parse(metrics(
        account=["likes", {"name": "reach", "period": "day", "metric_types": ["time_series"]},
                 {"name": "views", "breakdowns": []}],
        demographics=[{"name": "follower_demographics", "metric_types": ["total_value"]}],
        media=[{"name": "profile_activity", "breakdowns": []}, "navigation"],
        demographic_breakdowns=["age, gender", "city"])).selection
    likes, reach, views = (catalog.account_metric(n) for n in ("likes", "reach", "views"))
    assert selection.account == (MetricChoice(likes, ("total_value",), ("media_product_type",)),
                                 MetricChoice(reach, ("time_series",), ()),
                                 MetricChoice(views, ("total_value",), ()))
    assert [c.metric.name for c in selection.demographics] == ["follower_demographics"]
    assert [(c.metric.name, c.metric_types, c.breakdowns) for c in selection.media] == [
        ("profile_activity", (), ()), ("navigation", (), ("story_navigation_action_type",))]
    assert selection.demographic_breakdowns == (("age", "gender"), ("city",))


def test_settings_given_are_kept():
    config = parse(good(graph={"base_url": "http://127.0.0.1:8800", "api_version": "v24.0"},
                        rate_limit={"calls_per_window": 50, "window_seconds": 60, "margin_seconds": 0},
                        output={"path": "data/out"}, state={"path": "s.sqlite"},
                        scheduler={"max_in_flight": 4, "max_attempts": 2, "per_token_in_flight": 1},
                        refresh={"enabled": False, "tiers": [{"every_days": 2, "max_age_days": 10},
                                                             {"every_days": 14}]}))
    assert config.graph == GraphSettings("http://127.0.0.1:8800", "v24.0")
    assert config.rate_limit == RateLimit(50, 60.0, 0.0)
    assert isinstance(config.rate_limit.window_seconds, float)
    assert (config.output.path, config.state.path) == ("data/out", "s.sqlite")
    assert config.scheduler == SchedulerSettings(4, 2, 1)
    assert config.refresh == RefreshSettings(False, (Tier(2, 10), Tier(14, None)))


def test_days_window_ends_today():
    window = parse(good(window={"days": 3, "totals": "window"})).window
    assert window == Window(TODAY - timedelta(days=3), TODAY, "window")


def test_dates_as_toml_dates_or_strings_and_the_retention_edge():
    earliest = TODAY - timedelta(days=catalog.RETENTION_DAYS["account"] - 1)
    window = parse(good(window={"since": earliest, "until": str(TODAY)})).window
    assert (window.since, window.until) == (date(2024, 11, 27), TODAY)
    with pytest.raises(ConfigError):
        parse(good(window={"since": earliest - timedelta(days=1), "until": str(TODAY)}))


@pytest.mark.parametrize("hour", [0, 1, 13, 23.99])
def test_the_earliest_day_the_config_allows_is_harvested_whole_at_any_hour_of_today(hour):
    """The day the message names is one the plan covers whole whenever today the run starts (the
    API keeps 730 days back from the call, which cuts the day 730 days back after its midnight)."""
    from harvester.config.load import earliest_whole_day
    from harvester.days import to_unix
    from harvester.plan.units import left_out_days
    now = to_unix(TODAY) + hour * 3600
    assert left_out_days(Window(earliest_whole_day(TODAY), TODAY), now) == 0
    assert parse(good(window={"days": 729})).window.since == earliest_whole_day(TODAY)


def test_token_keys_are_distinct_in_order_of_first_use():
    accounts = [{"id": "3", "token_env": "IG_TOKEN_B"}, {"id": "1", "token_env": "IG_TOKEN_MAIN"},
                {"id": "2", "token_env": "IG_TOKEN_B"}]
    assert parse(good(accounts=accounts)).token_keys() == ("IG_TOKEN_B", "IG_TOKEN_MAIN")


def test_tokens_are_checked_in_os_environ_by_default_or_not_at_all(monkeypatch):
    monkeypatch.delenv("IG_TOKEN_MAIN", raising=False)
    with pytest.raises(ConfigError):
        parse_config(GOOD, path="harvest.toml", today=TODAY)
    assert parse_config(GOOD, path="harvest.toml", today=TODAY, check_tokens=False).accounts
    monkeypatch.setenv("IG_TOKEN_MAIN", "EAAGx")
    assert parse_config(GOOD, path="harvest.toml", today=TODAY).accounts


def test_config_is_frozen():
    config = parse(GOOD)
    with pytest.raises(AttributeError):
        config.window = None  # type: ignore[misc]


# --- files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example.toml", "minimal.toml"])
def test_example_configs_validate(name):
    env = {"IG_TOKEN_MAIN": "a", "IG_TOKEN_AGENCY": "b"}
    config = load_config(CONFIGS / name, env=env, today=TODAY)
    assert config.path == str(CONFIGS / name)
    assert config.window == Window(TODAY - timedelta(days=3), TODAY, "day")
    assert config.accounts[0] == Account("17841405822304914", "IG_TOKEN_MAIN")


def test_example_spells_out_every_key_and_the_default_selection():
    config = load_config(CONFIGS / "example.toml", env={"IG_TOKEN_MAIN": "a", "IG_TOKEN_AGENCY": "b"}, today=TODAY)
    assert config.selection == Selection()
    assert config.token_keys() == ("IG_TOKEN_MAIN", "IG_TOKEN_AGENCY")
    defaults = parse(GOOD)
    assert (config.graph, config.rate_limit, config.output, config.state, config.scheduler, config.refresh) == (
        defaults.graph, defaults.rate_limit, defaults.output, defaults.state, defaults.scheduler, defaults.refresh)


def test_example_names_every_output_format_where_format_is_set():
    """The comment on ``format`` lists every format the config accepts (it once said jsonl was the only one)."""
    from harvester.config.model import OUTPUT_FORMATS
    lines = (CONFIGS / "example.toml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("format = "))
    comment = " ".join(line.split("#", 1)[1] for line in lines[start:start + 3] if "#" in line)
    assert [f for f in OUTPUT_FORMATS if f'"{f}"' not in comment] == []
    assert "only format" not in comment


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[window]\ndays = 3\n\n[[accounts]]\nid = "1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    assert info.value.problems == [f"{path}: invalid TOML: Illegal character '\\n' (at line 5, column 8)"]


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.problems == [f"{tmp_path / 'nope.toml'}: cannot read the file: No such file or directory"]


def test_validate_command_exits_0_on_a_good_file(monkeypatch, capsys):
    monkeypatch.setenv("IG_TOKEN_MAIN", "a")
    monkeypatch.setenv("IG_TOKEN_AGENCY", "b")
    path = str(CONFIGS / "example.toml")
    assert main(["validate", "--config", path]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok: 3 accounts over 2 tokens, window ")


def test_validate_command_exits_2_with_every_message_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("IG_TOKEN_MAIN", raising=False)
    path = tmp_path / "harvest.toml"
    path.write_text('[window]\ndays = 0\n[output]\nformat = "csv"\n'
                    '[[accounts]]\nid = "1"\ntoken_env = "IG_TOKEN_MAIN"\n')
    assert main(["validate", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f'error: {path}: [output] format = "csv" is not valid; '
        'expected one of "jsonl", "parquet", "duckdb", "postgres"',
        f"error: {path}: [window] days = 0 is not valid; expected a whole number of days from 1 to 729 (the days "
        "the API keeps whole)",
        f'error: {path}: accounts[0].token_env = "IG_TOKEN_MAIN": the environment variable is not set or empty; '
        "expected it to hold the account's access token",
    ]


# --- tokens never leak -------------------------------------------------------------------


def test_no_token_value_in_any_message_or_repr():
    secret = ENV["IG_TOKEN_MAIN"]
    config = parse(good(accounts=[{"id": "1", "token_env": "IG_TOKEN_MAIN"}, {"id": "2", "token_env": "IG_TOKEN_B"}]))
    shown = repr(config) + str(msgspec.json.encode(config)) + repr(config.accounts)
    assert all(token not in shown for token in ENV.values())
    pasted = good(accounts=[{"id": "1", "token_env": secret}, {"id": secret, "token_env": "IG_TOKEN_MAIN"},
                            {"id": "3", "token_env": "IG_TOKEN_MAIN", "token": secret}],
                  graph={"api_version": secret})
    found = problems(pasted)
    assert len(found) == 4
    assert not any(secret in message for message in found)
    assert F + "accounts[0].token_env looks like an access token itself (not shown); expected the name of the " \
               'environment variable holding its token, e.g. "IG_TOKEN_MAIN"' in found
    assert F + "accounts[1].id = <value not shown: it looks like an access token> is not valid; expected " \
               + ID_EXPECTED in found


def test_the_report_time_zone_is_a_real_zone():
    assert parse(good()).report.tz == "UTC"
    assert parse(good(report={"tz": "Europe/Berlin"})).report.tz == "Europe/Berlin"
    assert problems(good(report={"tz": "Mars/Olympus"})) == [
        F + '[report] tz = "Mars/Olympus" is not valid; expected an IANA time zone, e.g. "Europe/Berlin" or "UTC"']
