"""``[metrics]``: what to harvest, checked against the catalog (names, levels, periods, metric
types, breakdowns, timeframes, demographic breakdowns), with a did-you-mean for typos and the
version and replacement of retired metrics."""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import catalog
from .model import MetricChoice, Selection
from .problems import (
    Problems,
    _did_you_mean,
    _kind,
    _names,
    _no_repeats,
    _show,
    _strings,
    _table,
    _unknown,
)


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
METRICS_KEYS = ("account", "demographics", "media", "timeframes", "demographic_breakdowns", "on_refused")
ON_REFUSED = ("drop", "fail")


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
    if "on_refused" in table:
        value = table["on_refused"]
        if value in ON_REFUSED:
            chosen["on_refused"] = value
        else:
            p.add(f"[metrics] on_refused = {_show(value)} is not a choice; allowed: {_names(ON_REFUSED)} (\"drop\": "
                  "a metric the API refuses is left out and the rest asked; \"fail\": the call fails)")
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
