"""Which media insights may ride in a page of ``/media`` (field expansion), and how a media's
planned call splits between the page and a call of its own.

A page mixes product types (FEED posts, carousels, REELS) and one media refusing one metric sinks
the whole page's insights, so a page asks only the metrics every media it may list takes: those
of the selection that the catalog gives both FEED and REELS without a breakdown
(:data:`PAGE_METRICS`), less any the API refused for a kind of media (learned in this or an
earlier run, :mod:`.refusals`). What a media's own call asks beyond them (REELS' watch time,
FEED's follows, the breakdown calls) stays a call of its own, and the records the page brings
are those of a call asking exactly the metrics that rode, with the same context: the same
records, field for field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .. import catalog
from ..config import Selection
from .refusals import Kind
from .units import Unit, metrics_of, without

PAGE_PRODUCTS: tuple[catalog.ProductType, ...] = ("FEED", "REELS")
"""The product types a ``/media`` page lists (stories have their own edge)."""
PAGE_METRICS = tuple(m.name for m in catalog.MEDIA_METRICS
                     if set(PAGE_PRODUCTS) <= set(m.product_types) and not m.breakdowns
                     and m.condition is None)
"""Media metrics every media of a ``/media`` page takes, by the catalog: never one served on a
condition (one media not shared to Facebook would sink the page's insights; the Facebook Login
totals were never seen nested, so they stay in each media's own call)."""


def page_metrics(selection: Selection, learned: Mapping[Kind, Iterable[str]], login: str,
                 api_version: str, refused: Iterable[str] = ()) -> tuple[str, ...]:
    """The metrics a page asks nested: :data:`PAGE_METRICS` of the selection, less what the API
    refused for any kind of media a page lists (``learned``) and ``refused`` (by a page)."""
    chosen = {c.metric.name for c in selection.media}
    dropped = set(refused)
    for kind, metrics in learned.items():
        if kind.level == "media" and kind.product in PAGE_PRODUCTS and (kind.login, kind.api_version) == (
                login, api_version):
            dropped.update(metrics)
    return tuple(n for n in PAGE_METRICS if n in chosen and n not in dropped)


def saves_calls(selection: Selection, metrics: tuple[str, ...], login: str) -> bool:
    """Whether a page nesting ``metrics`` answers the whole call of some media (of a product type
    whose selected metrics a token of ``login`` is served, the breakdown calls and the metrics asked
    apart aside, all ride): only then does it save a call. With every metric selected, FEED's follows
    and REELS' watch time keep a call per media anyway."""
    riding = set(metrics)
    return any({c.metric.name for c in selection.media if product in c.metric.product_types
                and c.metric.condition != "shared_to_facebook"
                and catalog.served_to(c.metric, login)} <= riding
               for product in PAGE_PRODUCTS)


def insights_field(metrics: Iterable[str]) -> str:
    """The ``fields`` item that nests them: ``insights.metric(reach,views)``."""
    return f"insights.metric({','.join(metrics)})"


class Split(NamedTuple):
    """A media's planned call: what rode in the page, and what is still to ask (None: nothing)."""

    rode: Unit
    rest: Unit | None


def split(unit: Unit, metrics: tuple[str, ...]) -> Split | None:
    """``unit`` (a media's call of all its metrics) as the page answered ``metrics`` of it; None
    when it does not ask each of them (the page's answer is not that call's: it is asked alone)."""
    asked = metrics_of(unit)
    if not set(metrics) <= set(asked):
        return None
    rode = without(unit, frozenset(asked) - frozenset(metrics))
    return None if rode is None else Split(rode, without(unit, frozenset(metrics)))
