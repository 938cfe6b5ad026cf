"""Units of work: one Graph API call each, from the metric selection and what discovery found.

The planner groups every metric that can share a call (same period, metric type, breakdown and
timeframe) and never plans a call the catalog knows will fail or come back empty: album children,
stories past 24 hours, metrics of another product type, follower metrics outside the last 30 days
or of accounts under 100 followers, and account days older than the API keeps (the retention of
:data:`~harvester.catalog.RETENTION_DAYS`). docs/harvest-rules.md states what the calls must cover.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

import msgspec

from .. import catalog
from ..config import MetricChoice, Selection, Window
from ..days import DAY, chunks, days_back, days_ceil, to_unix
from ..graph.flatten import Context

QueryPairs = tuple[tuple[str, str], ...]


MEDIA_PAGE_LIMIT = 100
"""Media a ``/media`` or ``/stories`` page asks for (the API's most): the estimate counts pages by it."""


class Unit(msgspec.Struct, frozen=True):
    """One insights call and what its records need to know."""

    id: str
    """Stable across runs (a digest of path and parameters): the checkpoint key."""
    path: str
    params: QueryPairs
    ctx: Context
    label: str


def unit_id(path: str, params: QueryPairs) -> str:
    return _digest(path, _canonical(params))


def _canonical(params: QueryPairs) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params))


def _digest(path: str, canonical: str) -> str:
    return hashlib.blake2b(f"{path}?{canonical}".encode(), digest_size=12).hexdigest()


def _unit(path: str, params: dict[str, str], ctx: Context, label: str) -> Unit:
    items = _shared(tuple(params.items()))
    return Unit(unit_id(path, items), path, items, ctx, label)


_PARAMS: dict[QueryPairs, QueryPairs] = {}
"""Each distinct set of parameters once: every media of a product type is asked the same metrics
and breakdowns, and the units planned ahead of the calls (thousands, at 512 calls in flight)
would otherwise each hold their own copy of the same metric list."""


def _shared(items: QueryPairs) -> QueryPairs:
    shared = _PARAMS.get(items)
    if shared is None:
        if len(_PARAMS) >= 4096:        # windows' dates vary run to run: bounded
            _PARAMS.clear()
        shared = _PARAMS[items] = items
    return shared


def last30_start(now: float) -> int:
    """Start of the last :data:`~harvester.catalog.RECENT_DAYS` days, the only ones follower_count
    and online_followers can be queried for."""
    return days_back(now, catalog.RECENT_DAYS)


def earliest_since(now: float) -> int:
    """The oldest ``since`` an account call may have: the first UTC midnight at or after ``now``
    less the account retention. The API refuses anything older ("since param is not valid")."""
    return days_ceil(now - catalog.RETENTION_DAYS["account"] * DAY)


def left_out_days(window: Window, now: float) -> int:
    """Days at the start of ``window`` that no account call covers: older than the API keeps."""
    since, until = to_unix(window.since), to_unix(window.until)
    return max(0, min(earliest_since(now), until) - since) // DAY


# --- account -------------------------------------------------------------------------------


def account_units(account_id: str, followers: int | None, window: Window, selection: Selection,
                  now: float) -> list[Unit]:
    """Every insights call of one account over the window, less the days the API no longer
    keeps (:func:`earliest_since`)."""
    since, until = to_unix(window.since), to_unix(window.until)
    big = followers is None or followers >= catalog.MIN_FOLLOWERS
    earliest = earliest_since(now)
    units = list(_interaction_units(account_id, since, until, window.totals, selection.account, earliest))
    units += _series_units(account_id, since, until, selection.account, now, big, earliest)
    if big:
        units += _demographic_units(account_id, selection)
    return units


def _interaction_units(account_id: str, since: int, until: int, totals: str,
                       choices: tuple[MetricChoice, ...], earliest: int) -> Iterator[Unit]:
    chosen = [c for c in choices if c.metric.kind == "interaction" and "total_value" in c.metric_types]
    if not chosen:
        return
    breakdowns = sorted({b for c in chosen for b in c.breakdowns})
    size = DAY if totals == "day" else catalog.MAX_RANGE_SECONDS
    path = f"{account_id}/insights"
    for s, u in chunks(since, until, size, not_before=earliest):
        base = {"period": "day", "metric_type": "total_value", "since": str(s), "until": str(u)}
        ctx = Context(account_id, account_id, "account", metric_type="total_value", since=s, until=u)
        names = ",".join(c.metric.name for c in chosen)
        yield _unit(path, {"metric": names, **base}, ctx, f"account {account_id} totals {s}")
        for b in breakdowns:
            names = ",".join(c.metric.name for c in chosen if b in c.breakdowns)
            yield _unit(path, {"metric": names, **base, "breakdown": b},
                        msgspec.structs.replace(ctx, breakdown_only=True),
                        f"account {account_id} totals by {b} {s}")


def _series_units(account_id: str, since: int, until: int, choices: tuple[MetricChoice, ...],
                  now: float, big: bool, earliest: int) -> Iterator[Unit]:
    names = {c.metric.name for c in choices
             if c.metric.kind == "series" or "time_series" in c.metric_types}
    if not big:
        names -= catalog.FOLLOWERS_ONLY
    recent = max(since, last30_start(now))
    path = f"{account_id}/insights"
    # Split at the start of the last 30 days so that follower_count rides along with reach.
    for lo, hi in ((since, min(until, recent)), (recent, until)):
        daily = [n for n in ("reach", "follower_count")
                 if n in names and (n not in catalog.RECENT_ONLY or lo >= recent)]
        for s, u in chunks(lo, hi, catalog.MAX_RANGE_SECONDS, not_before=earliest):
            ctx = Context(account_id, account_id, "account", metric_type="time_series", since=s, until=u)
            if daily:
                yield _unit(path, {"metric": ",".join(daily), "period": "day", "metric_type": "time_series",
                                   "since": str(s), "until": str(u)}, ctx, f"account {account_id} series {s}")
            if "online_followers" in names and lo >= recent:
                yield _unit(path, {"metric": "online_followers", "period": "lifetime",
                                   "since": str(s), "until": str(u)},
                            msgspec.structs.replace(ctx, metric_type=None),
                            f"account {account_id} online_followers {s}")


def _demographic_units(account_id: str, selection: Selection) -> Iterator[Unit]:
    names = ",".join(c.metric.name for c in selection.demographics)
    if not names:
        return
    path = f"{account_id}/insights"
    for timeframe in selection.timeframes:
        for breakdown in selection.demographic_breakdowns:
            b = ",".join(breakdown)
            ctx = Context(account_id, account_id, "account", metric_type="total_value",
                          timeframe=timeframe, breakdown_only=True)
            yield _unit(path, {"metric": names, "period": "lifetime", "metric_type": "total_value",
                               "timeframe": timeframe, "breakdown": b},
                        ctx, f"account {account_id} demographics {timeframe} by {b}")


# --- media ---------------------------------------------------------------------------------


def media_units(account_id: str, media_id: str, media_type: str | None,
                media_product_type: str | None, posted: float | None, selection: Selection,
                now: float, login: str = "facebook", *, shared: bool = True) -> list[Unit]:
    """The calls of one media object: all its metrics, then one per breakdown metric, then the
    metrics served only to media shared to Facebook in a call of their own (a media not shared
    refuses that call whole, and it must sink nothing else; ``shared=False``: it did lately, the
    call is left out, :mod:`harvester.plan.unshared`). Metrics that need Facebook Login are not
    asked with a token of another ``login``."""
    product = catalog.product_type_of(media_type or "", media_product_type)
    if product == "STORY" and posted is not None and now - posted >= catalog.STORY_LIFETIME_SECONDS:
        return []
    path = f"{media_id}/insights"
    ctx = Context(account_id, media_id, "media", media_type, media_product_type)
    by_breakdown: Context | None = None                 # one for all its breakdown calls
    units = []
    for call in _media_calls(selection.media, product, login, shared):
        of = ctx
        if call.breakdown:
            of = by_breakdown = by_breakdown or msgspec.structs.replace(ctx, breakdown_only=True)
        units.append(Unit(_digest(path, call.canonical), path, call.params, of, f"media {media_id}{call.label}"))
    return units


class _MediaCall(msgspec.Struct, frozen=True):
    """One call of a media of a product type, less what names the media."""

    params: QueryPairs
    canonical: str
    """``params`` as :func:`unit_id` digests them."""
    label: str
    """What follows ``media {id}`` in the unit's label."""
    breakdown: bool = False


_MEDIA_CALLS: dict[tuple[int, str, str, bool], tuple[tuple[MetricChoice, ...], tuple[_MediaCall, ...]]] = {}


def _media_calls(chosen: tuple[MetricChoice, ...], product: str, login: str, shared: bool) -> tuple[_MediaCall, ...]:
    """The calls every media of ``product`` gets, worked out once per selection (every media of a
    run asks the same ones; a run plans thousands). Keyed by the selection's identity, which the
    entry holds, so an id reused by another selection never matches."""
    key = (id(chosen), product, login, shared)
    hit = _MEDIA_CALLS.get(key)
    if hit is not None and hit[0] is chosen:
        return hit[1]
    mine = [c for c in chosen if product in c.metric.product_types and catalog.served_to(c.metric, login)]
    plain = [c for c in mine if c.metric.condition != "shared_to_facebook"]
    on_share = [c for c in mine if c.metric.condition == "shared_to_facebook"] if shared else []
    calls: list[tuple[dict[str, str], str, bool]] = []
    if plain:
        calls.append(({"metric": ",".join(c.metric.name for c in plain)}, f" ({product})", False))
    for c in plain:
        for b in c.breakdowns:
            calls.append(({"metric": c.metric.name, "breakdown": b}, f" {c.metric.name} by {b}", True))
    if on_share:
        calls.append(({"metric": ",".join(c.metric.name for c in on_share)}, f" ({product}) shared to Facebook",
                      False))
    made = tuple(_MediaCall(items, _canonical(items), label, breakdown)
                 for params, label, breakdown in calls if (items := _shared(tuple(params.items()))))
    if len(_MEDIA_CALLS) >= 256:
        _MEDIA_CALLS.clear()
    _MEDIA_CALLS[key] = (chosen, made)
    return made


# --- how long the API keeps it -------------------------------------------------------------


def media_expires_at(product: str | None, posted: float | None, now: float) -> float:
    """Until when a media's insights can be asked for: a story's 24 hours, else the media retention."""
    if product == "STORY":
        return (now if posted is None else posted) + catalog.STORY_LIFETIME_SECONDS
    return (now if posted is None else posted) + catalog.RETENTION_DAYS["media"] * DAY


def window_expires_at(window: Window) -> float:
    """Until when an account's window has something the API keeps: until its last day falls out
    of the account retention (the plan leaves out the older days, :func:`earliest_since`)."""
    return to_unix(window.until) - DAY + catalog.RETENTION_DAYS["account"] * DAY


def account_expires_at(unit: Unit, now: float) -> float:
    """Until when an account unit can be asked for, which is when the API starts refusing its
    ``since``: follower metrics while it is within the last 30 days (:func:`last30_start`, the
    day of the call excluded), the rest while it is within the account retention; lifetime
    values without a window are current values, worth asking for again only for a while."""
    since = unit.ctx.since
    if since is None:
        return now + 7 * DAY
    metrics = dict(unit.params).get("metric", "").split(",")
    recent = [m.last_days for name in metrics
              if (m := catalog.account_metric(name)) is not None and m.last_days is not None]
    if recent:
        return since + (min(recent) + 1) * DAY
    return since + catalog.RETENTION_DAYS["account"] * DAY


# --- refused metrics ---------------------------------------------------------------------------


def metrics_of(unit: Unit) -> tuple[str, ...]:
    """The metrics a unit asks, in the order it asks them."""
    return _metrics(unit.params)


@lru_cache(maxsize=4096)
def _metrics(params: QueryPairs) -> tuple[str, ...]:
    """Read once per parameter set (a few hundred in a run; every call's metrics are read two or
    three times on the hot path)."""
    return tuple(m for m in dict(params).get("metric", "").split(",") if m)


def without(unit: Unit, metrics: tuple[str, ...] | frozenset[str] | set[str]) -> Unit | None:
    """The same call without ``metrics`` (None: it asks nothing else). Its id is the one the
    planner gives a call that never asked them, so a resumed run finds it checkpointed."""
    left = [m for m in metrics_of(unit) if m not in metrics]
    if not left:
        return None
    params = {k: v for k, v in unit.params}
    params["metric"] = ",".join(left)
    return _unit(unit.path, params, unit.ctx, unit.label)
