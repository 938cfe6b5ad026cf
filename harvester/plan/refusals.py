"""Metrics the API refuses, learned per kind of object so that they are not asked again.

A refusal costs one metric of one call (:mod:`harvester.graph.refusal` reads which). The kind
of an object is what the API decides by: level, product type, media type, login and API
version. Once a metric was refused :data:`LEARN_AFTER` times for a kind in a run, later calls of
that kind leave it out, so refusals stay a handful per kind rather than one per media
(:mod:`.probes` keeps the calls asked before that few). What the API says decides: a metric it
served for an object of the kind in this run is refused per object from then on, never learned
for the kind (the objects that have it keep it); one its enum no longer lists ("metric[i] must be
one of ...") is learned at once, whatever it served before. A metric that needs the media shared
to Facebook (``catalog.Metric.condition``) is refused by every media not shared, whatever the
words: only the enum's teach anything of a kind about it. What was learned is kept in the state
(``refused_metrics``) and used by later runs for :data:`REPROBE_SECONDS` (a week), after which
the metric is asked again (a metric Meta brings back is picked up); a row is kept per API
version, so a new ``[graph] api_version`` probes afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

import msgspec

from .. import catalog
from ..days import DAY
from ..graph.flatten import Context
from .units import Unit, metrics_of, without

LEARN_AFTER = 3
"""Refusals of one metric for one kind in a run after which that kind's later calls leave it out."""
REPROBE_SECONDS = 7 * DAY
"""How long a learned refusal holds; then the metric is asked again."""


class Kind(NamedTuple):
    """The kind of object the API refuses a metric for."""

    level: str
    product: str | None
    media_type: str | None
    login: str
    api_version: str

    def label(self) -> str:
        """``media FEED IMAGE (facebook, v25.0)``: how summaries and status name it (no ``/``)."""
        what = " ".join(p for p in (self.level, self.product, self.media_type) if p)
        return f"{what} ({self.login}, {self.api_version})"


def kind_of(ctx: Context, login: str, api_version: str) -> Kind:
    return _kind(ctx.object_type, ctx.media_product_type, ctx.media_type, login, api_version)


@cache
def _kind(level: str, product: str | None, media_type: str | None, login: str, api_version: str) -> Kind:
    """Made once per kind: kinds are few, and asked of every call (a NamedTuple is slow to make)."""
    if level == "account":
        return Kind("account", None, None, login, api_version)
    return Kind("media", product or "FEED", media_type, login, api_version)


_NONE: frozenset[str] = frozenset()
"""No metric left out (what most calls of most kinds leave out)."""


class Learned(msgspec.Struct, frozen=True):
    """A metric the API refused for a kind of object, as the state keeps it."""

    kind: Kind
    metric: str
    refusals: int
    message: str | None
    learned_at: float


class Refusals:
    """What one run knows of refused metrics: learned ones (earlier runs' and its own) and the
    refusals it counts towards learning. ``on_refused = "fail"`` never drops anything."""

    def __init__(self, learned: Iterable[Learned] = (), *, learn_after: int = LEARN_AFTER, drop: bool = True):
        self.learn_after, self.drop = learn_after, drop
        self._dropped: dict[Kind, set[str]] = {}
        self._counts: Counter[tuple[Kind, str]] = Counter()
        self._served: dict[Kind, set[str]] = {}
        """Metrics answered with data for an object of the kind in this run."""
        self._known: dict[Kind, set[str]] = {}
        """... or in an answer about the object that refused none of them (a skip)."""
        for row in learned:
            self._dropped.setdefault(row.kind, set()).add(row.metric)

    @property
    def learned_any(self) -> bool:
        """Whether any call may have a metric to leave out."""
        return self.drop and bool(self._dropped)

    def dropped(self, kind: Kind) -> frozenset[str] | set[str]:
        """The metrics calls of ``kind`` leave out."""
        return self._dropped.get(kind, _NONE) if self.drop else _NONE

    def answered(self, kind: Kind, metrics: Iterable[str], *, data: bool = True) -> None:
        """A call of ``kind`` asking ``metrics`` was answered without a refusal: with data
        (``data``; the metrics are served to the kind), or with a skip about its object."""
        known = self._known.get(kind)
        if known is None:
            known = self._known[kind] = set()
        known.update(metrics)
        if data:
            served = self._served.get(kind)
            if served is None:
                served = self._served[kind] = set()
            served.update(metrics)

    def known(self, kind: Kind, metrics: Iterable[str]) -> bool:
        """Whether every one of ``metrics`` was answered for ``kind`` in this run."""
        known = self._known.get(kind)
        return known is not None and known.issuperset(metrics)

    def refused(self, kind: Kind, metric: str, message: str | None, now: float, *,
                conclusive: bool = False) -> Learned | None:
        """Count one refusal; the Learned row when this one makes the metric dropped for the kind.
        ``conclusive``: the API's list of valid metrics leaves it out (learned at once)."""
        self._counts[kind, metric] += 1
        if not self.drop or metric in self._dropped.get(kind, ()):
            return None
        if not conclusive and (metric in self._served.get(kind, ()) or self._counts[kind, metric] < self.learn_after
                               or _per_object(kind, metric)):
            return None
        self._dropped.setdefault(kind, set()).add(metric)
        for answered in (self._served, self._known):
            answered.get(kind, set()).discard(metric)
        return Learned(kind, metric, self._counts[kind, metric], message, now)

    @classmethod
    def of_rows(cls, rows: Iterable[tuple], **options: Any) -> Refusals:
        """From the state's rows (``StateStore.learned_refusals``)."""
        return cls([Learned(Kind(*kind), metric, n, message, at) for kind, metric, n, message, at in rows],
                   **options)

    def learned(self) -> dict[Kind, frozenset[str]]:
        return {k: frozenset(v) for k, v in self._dropped.items()}


def _per_object(kind: Kind, metric: str) -> bool:
    """Whether a refusal of ``metric`` may say no more than that one object lacks its condition."""
    known = catalog.metric("media", metric) if kind.level == "media" else None
    return known is not None and known.condition == "shared_to_facebook"


def leave_out(unit: Unit, dropped: Iterable[str]) -> tuple[Unit | None, tuple[str, ...]]:
    """``unit`` without the ``dropped`` metrics it asks (None: nothing left to ask), and which
    of them it asked."""
    asked = metrics_of(unit)
    gone = tuple(m for m in asked if m in set(dropped))
    if not gone:
        return unit, ()
    return without(unit, gone), gone
