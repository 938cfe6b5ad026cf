"""``/{ig-user}/insights``: an account's metrics over a window (``since``/``until``), as totals
with breakdowns or daily series, and its demographics by timeframe, with every rule of the
reference the simulator knows (periods, metric types, the retention and last-30-days limits).
Values come from :class:`~.world.World`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .. import catalog
from ..days import DAY, iso, parse_iso
from . import errors as E
from .errors import SimReply
from .request import Query, Request, metric_list, ok
from .world import Account, World

LIMIT_METRICS = catalog.RECENT_ONLY
TIMEFRAMES = frozenset(catalog.TIMEFRAMES)


class AccountInsights:
    """The account insights of one world."""

    def __init__(self, world: World):
        self.world = world

    def answer(self, req: Request, account: Account) -> SimReply:
        """``/{account}/insights`` as ``req`` asks it."""
        q = req.query
        metrics = metric_list(q)
        if isinstance(metrics, SimReply):
            return metrics
        chosen = []
        for i, name in enumerate(metrics):
            m = catalog.account_metric(name)
            if m is None:
                return E.invalid(E.IMPRESSIONS_ACCOUNT) if name == "impressions" else \
                    E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=E.ACCOUNT_METRIC_ENUM))
            chosen.append(m)
        period = q.get("period")
        if not period:
            return E.invalid(E.PARAM_REQUIRED.format(name="period"))
        wrong = next((m for m in chosen if m.period != period), None)
        if wrong is not None:
            return E.invalid(E.INCOMPATIBLE_PERIOD.format(period=period, metric=wrong.name))
        demographic = [m for m in chosen if m.kind == "demographic"]
        if demographic and len(demographic) != len(chosen):
            return E.unknown_error()  # GUESS: demographics mixed with other lifetime metrics
        if demographic:
            return self._demographics(req, account, chosen)
        return self._interactions(req, account, chosen)

    def _interactions(self, req: Request, account: Account, chosen: list[catalog.Metric]) -> SimReply:
        q = req.query
        metric_type = q.get("metric_type")
        if metric_type not in (None, "total_value", "time_series"):
            return E.invalid(E.METRIC_TYPE_ENUM)
        only_totals = [m.name for m in chosen if m.metric_types == ("total_value",)]
        if only_totals and metric_type != "total_value":
            return E.invalid(E.TOTAL_VALUE_ONLY.format(metrics=",".join(only_totals)))
        no_totals = [m.name for m in chosen if "total_value" not in m.metric_types and m.kind == "series"]
        if no_totals and metric_type == "total_value":
            return E.invalid(E.NO_TOTAL_VALUE.format(metrics=",".join(no_totals)))
        window = self._window(q, chosen)
        if isinstance(window, SimReply):
            return window
        since, until = window
        if metric_type == "total_value":
            breakdowns = tuple(b for b in q.get("breakdown", "").split(",") if b)
            if any(b not in m.breakdowns for m in chosen for b in breakdowns):
                return E.unknown_error()
            data = [self._total(account, m, since, until, breakdowns) for m in chosen
                    if account.followers >= m.min_followers]
        else:  # time series: breakdowns are not included in the response
            data = [self._series(account, m, since, until) for m in chosen if account.followers >= m.min_followers]
        return ok({"data": data, "paging": _window_paging(req, since, until)})

    def _window(self, q: Query, chosen: list[catalog.Metric]) -> tuple[int, int] | SimReply:
        now = int(self.world.now)
        bad = next((k for k in ("since", "until") if q.get(k) and _moment(q[k]) is None), None)
        if bad is not None:
            return E.invalid(E.BAD_NUMBER.format(name=bad))
        until = _moment(q["until"]) or now if q.get("until") else now
        since = _moment(q["since"]) or 0 if q.get("since") else until - DAY
        if since >= until:
            return E.invalid(E.SINCE_AFTER_UNTIL)
        if until - since > catalog.MAX_RANGE_SECONDS:
            return E.invalid(E.RANGE_TOO_LONG)
        if since < now - catalog.RETENTION_DAYS["account"] * DAY:      # the API's answer, measured (harvest-rules.md)
            return E.invalid(E.RETENTION)
        recent = next((m for m in chosen if m.name in LIMIT_METRICS), None)
        if recent is not None and since < self.world.last30:
            return E.invalid(E.LAST_30_DAYS.format(metric=recent.name))
        return since, until

    def _total(self, account: Account, m: catalog.Metric, since: int, until: int,
               breakdowns: tuple[str, ...]) -> dict:
        world = self.world
        total: dict[str, Any] = {"value": world.values.interaction(account, m.name, since, until)}
        if breakdowns:
            results = []
            for combo in _combos(breakdowns):
                v = world.values.interaction(account, m.name, since, until, tuple(zip(breakdowns, combo, strict=True)))
                if v:
                    results.append({"dimension_values": list(combo), "value": v})
            total = {"value": sum(r["value"] for r in results),
                     "breakdowns": [{"dimension_keys": list(breakdowns), "results": results}]}
        return {"name": m.name, "period": m.period, "title": m.title, "description": m.description,
                "total_value": total, "id": f"{account.id}/insights/{m.name}/{m.period}"}

    def _series(self, account: Account, m: catalog.Metric, since: int, until: int) -> dict:
        world = self.world
        ends = world.values.series_days(since, until)
        values: list[dict[str, Any]]
        if m.object_value:
            values = [{"value": world.values.online_followers(account, e), "end_time": iso(e)} for e in ends]
        else:
            values = [{"value": world.values.daily(account, m.name, e), "end_time": iso(e)} for e in ends]
        return {"name": m.name, "period": m.period, "values": values, "title": m.title,
                "description": m.description, "id": f"{account.id}/insights/{m.name}/{m.period}"}

    def _demographics(self, req: Request, account: Account, chosen: list[catalog.Metric]) -> SimReply:
        q = req.query
        if q.get("metric_type") not in (None, "total_value"):
            return E.invalid(E.TOTAL_VALUE_ONLY.format(metrics=",".join(m.name for m in chosen)))
        timeframe = q.get("timeframe")
        if not timeframe:
            return E.invalid(E.PARAM_REQUIRED.format(name="timeframe"))
        if timeframe not in TIMEFRAMES:
            return E.invalid(E.TIMEFRAME_ENUM)
        breakdowns = tuple(b for b in q.get("breakdown", "").split(",") if b)
        if not breakdowns:
            return E.invalid(E.BREAKDOWN_REQUIRED.format(metrics=",".join(m.name for m in chosen)))
        if any(b not in m.breakdowns for m in chosen for b in breakdowns) or len(set(breakdowns)) < len(breakdowns):
            return E.unknown_error()
        data = [self._demographic(account, m, timeframe, breakdowns) for m in chosen
                if self.world.values.has_demographic(account, m.name, timeframe)]
        return ok({"data": data})

    def _demographic(self, account: Account, m: catalog.Metric, timeframe: str, breakdowns: tuple[str, ...]) -> dict:
        tf = timeframe.upper()
        results = [{"dimension_values": [tf, *combo], "value": v}
                   for combo, v in self.world.values.demographics(account, m.name, timeframe, breakdowns)]
        return {"name": m.name, "period": m.period, "title": m.title, "description": m.description,
                "total_value": {"breakdowns": [{"dimension_keys": ["timeframe", *breakdowns], "results": results}]},
                "id": f"{account.id}/insights/{m.name}/{m.period}"}


def _combos(breakdowns: tuple[str, ...]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for b in breakdowns:
        combos = [(*c, v) for c in combos for v in catalog.BREAKDOWN_VALUES[b]]
    return combos


def _moment(text: str) -> int | None:
    """``since``/``until``: Unix seconds, or a date or date-time the API's strtotime reads (ISO
    8601 here: Airbyte's source-instagram sends ``2026-11-15T11:57:04+00:00``)."""
    if text.isdigit():
        return int(text)
    return parse_iso(text + "T00:00:00" if len(text) == 10 else text)


def _window_paging(req: Request, since: int, until: int) -> dict[str, str]:
    """Insights paging: the adjacent windows of the same length (following them walks forever)."""
    span = until - since

    def url(s: int, u: int) -> str:
        params = {"access_token": req.token.token}
        params.update((k, v) for k, v in req.query.items() if k not in ("access_token", "since", "until"))
        params.update(since=str(s), until=str(u))
        return f"{req.base_url}/{req.version}/{req.node_id}/insights?{urlencode(params)}"

    return {"previous": url(since - span, since), "next": url(until, until + span)}
