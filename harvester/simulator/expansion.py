"""Insights nested in a page of media by field expansion, as the simulator answers them.

``GET /{ig-user-id}/media?fields=id,...,insights.metric(reach,views)&limit=50`` lists each media
with its insights inside it (``"insights": {"data": [...]}``, the body ``/{media}/insights`` would
answer). Meta documents neither how such a page counts against the rate limits nor how it fails,
so the simulator follows what practitioners report and lets a world choose the accounting:

- **Whole or nothing.** The nested insights of every media are answered as a call of its own
  would be; the first media whose call would fail (a metric refused for its kind, a drift's
  refusal, posted before the business conversion) fails the whole page with that error.
- **Too much data.** A page asking more than :data:`NESTED_VALUES_MAX` values (its ``limit``
  times the metrics nested, whatever the media left) answers code 1 "Please reduce the amount of
  data you're asking for, then retry your request" (HTTP 500), as large expanded pages do.
- **Accounting** (``SimulatorSettings.expansion_cost``): ``one``, the page is one call like any
  other; ``per-object``, the page counts one call and each media whose insights it nests one
  more, in the token's rolling window and in the usage headers of that very answer (as a page
  plus one insights call per media would).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import orjson

from .errors import SimReply, graph_error
from .fields import Field

ExpansionCost = Literal["one", "per-object"]
EXPANSION_COSTS: tuple[ExpansionCost, ...] = ("one", "per-object")

NESTED_VALUES_MAX = 500
"""The most insights values (media asked for, the page's ``limit``, times metrics nested) one page
may nest: a page of 100 media with 8 metrics is refused, one of 50 is answered. GUESS: Meta states
no figure; practitioners report code 1 on large pages with insights nested, and nest them in
pages of 30 to 50 media."""
REDUCE_DATA = "Please reduce the amount of data you're asking for, then retry your request"


def split(fields: Sequence[Field]) -> tuple[list[Field], Field | None]:
    """The fields of a page without ``insights``, and the ``insights`` field (None: not asked)."""
    nested = next((f for f in fields if f.name == "insights"), None)
    return [f for f in fields if f.name != "insights"], nested


def insights_query(field: Field) -> dict[str, str]:
    """The query a call of its own would carry: ``insights.metric(a,b).period(lifetime)`` ->
    ``{"metric": "a,b", "period": "lifetime"}`` (every modifier but ``limit``)."""
    return {name: args for name, args in field.modifiers if name != "limit"}


def too_much(field: Field, limit: int) -> SimReply | None:
    """Code 1 when ``limit`` media with the nested metrics pass :data:`NESTED_VALUES_MAX`."""
    metrics = [m for m in insights_query(field).get("metric", "").split(",") if m.strip()]
    if limit * max(1, len(metrics)) <= NESTED_VALUES_MAX:
        return None
    return graph_error(500, 1, REDUCE_DATA, is_transient=False)


class Sunk(Exception):
    """One media's nested insights failed: the whole page answers its error."""

    def __init__(self, reply: SimReply):
        super().__init__(reply.status)
        self.reply = reply


class Nesting:
    """One media of a page rendered with its insights added, as ``answer`` gives them (its
    ``/{media}/insights`` answer); raises :class:`Sunk` with the error of the first media whose
    insights fail. ``count``: the media nested so far."""

    def __init__(self, render: Callable[[int], dict], answer: Callable[[int], SimReply]):
        self.render, self.answer, self.count = render, answer, 0

    def __call__(self, index: int) -> dict:
        reply = self.answer(index)
        if reply.status != 200:
            raise Sunk(reply)
        item = self.render(index)
        item["insights"] = orjson.loads(reply.body)
        self.count += 1
        return item


def page(insights: Field, limit: int, render: Callable[[int], dict],
         answer: Callable[[int, dict[str, str]], SimReply],
         paged: Callable[[Callable[[int], dict]], SimReply]) -> SimReply:
    """A page of ``limit`` media (``paged`` renders it with a function of each media's index)
    nesting ``insights``: each media rendered by ``render`` and its insights as ``answer`` (its
    own call, with the query the field's modifiers make) gives them; the media nested counted in
    the reply (``SimReply.nested``). Code 1 when too large; the first failing media's error."""
    refused = too_much(insights, limit)
    if refused is not None:
        return refused
    query = insights_query(insights)
    nesting = Nesting(render, lambda i: answer(i, query))
    try:
        reply = paged(nesting)
    except Sunk as sunk:
        return sunk.reply
    reply.nested = nesting.count
    return reply
