"""Whether a page of ``/media`` asks its media's insights nested (field expansion), and how many
media a page asks, per token (``[graph] expand_insights``).

- ``never``: a call per media, as without expansion.
- ``always``: every page nests (what refuses it falls back, below).
- ``auto`` (the default): only where it is measured to cost less (:mod:`harvester.schedule.cost`).
  Nothing nests when no media's whole call would ride (every metric selected: FEED's follows and
  REELS' watch time keep a call per media, so a page would save nothing); a token whose answers
  carry no usage header never nests, nor one whose budget is too large for a whole percent to
  price a page. Otherwise its first page nests, as a probe, and the usage headers price a media
  nested against a call of its own (1 call): pages nest while ``per_media <= CHEAPER *
  due_share`` (``due_share``: the media of the token's last page that were due, so a page that
  would nest many media for few due is not asked so), else media are asked one by one, and a
  page probes again once the estimate is :data:`RECHECK_SECONDS` old. One probe at a time per
  token, and a probe that priced nothing (too few media nested for a whole percent to tell)
  waits as long; two pages in a row whose nested insights failed stop the token nesting for
  :data:`RECHECK_SECONDS`.

Page size: a page starts at :data:`~harvester.plan.units.MEDIA_PAGE_LIMIT` media; the API's code 1
"reduce the amount of data" halves the token's size (kept for its later pages) and the page is
asked again; at one media it is asked without its insights. A page whose nested insights fail
otherwise (one media refusing a metric fails them all) is asked again without them, and its
media go one by one: nothing is lost. A metric such a failure names is not nested again by that
token in the run (the calls one by one teach the refusal per kind, :mod:`harvester.plan.refusals`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

from ..config import Config, Selection
from ..config.model import ExpandInsights
from ..graph.policy import Decision
from ..graph.refusal import refused_metrics
from ..plan.expand import page_metrics, saves_calls
from ..plan.refusals import Kind, Refusals
from ..plan.units import MEDIA_PAGE_LIMIT
from ..schedule.cost import CallCosts

CHEAPER = 0.5
"""A page nests when a media nested is measured to cost at most this share of a call of its own
(times the share of the page's media that are due): a margin over the estimate's error."""
RECHECK_SECONDS = 3600.0
"""How old an estimate may grow (or how long a token that stopped nesting waits) before a page
probes again."""
FAILURES_TO_STOP = 2


class PageAsk(NamedTuple):
    """What a page asks beyond its media: ``metrics`` nested, ``limit`` media."""

    metrics: tuple[str, ...]
    limit: int


class _Token(msgspec.Struct):
    limit: int = MEDIA_PAGE_LIMIT
    due_share: float = 1.0
    probing: bool = False
    failures: int = 0
    probed_at: float = float("-inf")
    stopped_until: float = float("-inf")
    refused: set[str] = msgspec.field(default_factory=set)


class Expansion:
    """The choice for one run: ``learned`` gives the refusals known now (per kind)."""

    def __init__(self, mode: ExpandInsights, costs: CallCosts | None, selection: Selection,
                 learned: Callable[[], Mapping[Kind, frozenset[str]]], api_version: str):
        self.mode, self.costs, self.selection = mode, costs, selection
        self.learned, self.api_version = learned, api_version
        self._tokens: dict[str, _Token] = {}

    def ask(self, key: str, login: str) -> PageAsk | None:
        """What the next ``/media`` page of ``key`` nests (None: nothing)."""
        if self.mode == "never":
            return None
        token = self._token(key)
        metrics = page_metrics(self.selection, self.learned(), login, self.api_version, token.refused)
        if not metrics or (self.mode == "auto" and not (saves_calls(self.selection, metrics, login)
                                                        and self._worth(key, token))):
            return None
        return PageAsk(metrics, token.limit)

    def _worth(self, key: str, token: _Token) -> bool:
        costs = self.costs
        if costs is None or not costs.reported(key) or not costs.can_price(token.limit):
            return False                        # no usage header, or too coarse to price a page
        now = costs.clock()
        if now < token.stopped_until:
            return False
        per_media = costs.per_media(key)
        if per_media is not None and now - costs.measured_at(key) < RECHECK_SECONDS:
            return per_media <= CHEAPER * token.due_share
        if token.probing or now - token.probed_at < RECHECK_SECONDS:
            return False                        # one probe at a time; one that priced nothing waits
        token.probing, token.probed_at = True, now
        return True

    def answered(self, key: str) -> None:
        """A page's nested insights came back."""
        token = self._token(key)
        token.probing, token.failures = False, 0

    def smaller(self, key: str, ask: PageAsk) -> int | None:
        """The API found the page too large: the token's next size (None: one media was too much)."""
        token = self._token(key)
        token.probing, token.probed_at = False, float("-inf")      # the smaller page probes at once
        if ask.limit <= 1:
            return None
        token.limit = min(token.limit, ask.limit // 2)
        return token.limit

    def failed(self, key: str, ask: PageAsk, decision: Decision) -> None:
        """A page's nested insights failed whole with ``decision``."""
        token = self._token(key)
        token.probing = False
        token.refused.update(refused_metrics(decision.message, ask.metrics))
        token.failures += 1
        if self.mode == "auto" and token.failures >= FAILURES_TO_STOP and self.costs is not None:
            token.stopped_until, token.failures = self.costs.clock() + RECHECK_SECONDS, 0

    def listed(self, key: str, due: int, listed: int) -> None:
        """A page of ``key`` listed ``listed`` media of which ``due`` were due."""
        if listed:
            self._token(key).due_share = due / listed

    def _token(self, key: str) -> _Token:
        token = self._tokens.get(key)
        if token is None:
            token = self._tokens[key] = _Token()
        return token


def expansion_of(config: Config, clock: Callable[[], float], refusals: Refusals) -> dict[str, Any]:
    """A run's ``JobContext`` arguments for ``[graph] expand_insights``: the choice, and what the
    usage headers say calls cost (measured for ``auto`` only); nothing for ``never``."""
    mode = config.graph.expand_insights
    if mode == "never":
        return {}
    limits = config.rate_limit
    costs = CallCosts(limits.calls_per_window, limits.window_seconds, clock) if mode == "auto" else None
    return {"costs": costs,
            "expansion": Expansion(mode, costs, config.selection, refusals.learned, config.graph.api_version)}
