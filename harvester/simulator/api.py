"""The Graph API's answers: nodes, edges with cursor paging, insights with every rule of the reference.

``GraphApi.handle`` gets a request the pipeline (server.py) has already authenticated, throttled
and fault-checked, and answers it as graph.facebook.com (a "facebook" token: ``/me`` is the user,
``/me/accounts`` lists pages, a page has ``instagram_business_account``) or graph.instagram.com
(an "instagram" token: ``/me`` is the Instagram account) would. A token reads only its own
accounts, their pages and media; anything else is the API's 100/33 "Unsupported get request".
Metric rules come from :mod:`harvester.catalog`; values from :class:`~.world.World`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson

from .. import catalog
from ..days import DAY, iso, parse_iso
from . import errors as E
from . import expansion
from .drift import Drift, served_item
from .errors import SimReply
from .fields import Edge, Field, FieldsSyntaxError, Lazy, Node, check, parse_fields, render
from .tokenbook import TokenKind
from .world import ACCOUNT_BASE, Account, Media, TokenInfo, World

DEFAULT_VERSION = "v25.0"
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
Query = Mapping[str, str]

ACCOUNT_FIELDS: dict[str, Callable[[Account], Any]] = {
    "id": lambda a: a.id, "ig_id": lambda a: a.index + 1000, "username": lambda a: a.username,
    "name": lambda a: a.name, "followers_count": lambda a: a.followers,
    "follows_count": lambda a: a.follows, "media_count": lambda a: a.media_count,
    "biography": lambda a: a.biography, "website": lambda a: a.website,
    "profile_picture_url": lambda a: a.profile_picture_url,
}
"""The IG User node's fields; None (no biography, no website) leaves the field out."""
IG_LOGIN_ACCOUNT_FIELDS: dict[str, Callable[[Account], Any]] = {**ACCOUNT_FIELDS, "user_id": lambda a: a.id}
"""Instagram Login's user node: ``user_id`` is the professional account's id (GUESS: the simulator
answers that same id as ``id``, where the API gives the app-scoped id that its paths also accept)."""
PAGE_FIELDS: dict[str, Callable[[Account], Any]] = {
    "id": lambda a: a.page_id, "name": lambda a: f"Simulated Page {a.index}",
    "category": lambda a: "Digital creator",
}
"""A Page, as the simulator keeps it: one per account (the account's index names it)."""
NODE_TYPES = {"account": "IGUser", "media": "IGMedia", "page": "Page", "user": "User"}
LIMIT_METRICS = catalog.RECENT_ONLY
TIMEFRAMES = frozenset(catalog.TIMEFRAMES)
MEDIA_ENUM = frozenset(E.MEDIA_METRIC_ENUM.split(", "))
NO_LONGER_FOR_PRODUCT = frozenset({"plays", "clips_replays_count"})
"""Retired media metrics answered with "does not support ... for this media product type"."""


class Request:
    """One call, parsed once: the node, the edge, the query, who asks and where it was asked."""

    __slots__ = ("base_url", "edge", "node_id", "query", "token", "version")

    def __init__(self, version: str, node_id: str, edge: str | None, query: Query, token: TokenInfo, base_url: str):
        self.version, self.node_id, self.edge = version, node_id, edge
        self.query, self.token, self.base_url = query, token, base_url


class Nodes:
    """The node types of one world, as :mod:`.fields` renders them: the IG User (and its
    Instagram Login variant with ``user_id``), an IG Media read by id, a media as an edge or an
    expansion lists it (a hidden like count omitted), and an album child (which has no caption,
    likes, comments or children: asking them is an unknown field, GUESS after Airbyte's
    INVALID_CHILDREN_FIELDS)."""

    def __init__(self, world: World):
        self.world = world
        owner = Node("IGUser", {"id": lambda a: a.id, "username": lambda a: a.username})
        owner_of: Callable[[Media], Account] = lambda m: world.account(m.account)  # noqa: E731
        child = Node("IGMedia", self._scalars(listed=True, child=True), {"owner": (owner_of, owner)})
        children = {"children": Edge(lambda m: world.children_of(m) if m.children else None, child)}
        self.media = Node("IGMedia", self._scalars(listed=False), {"owner": (owner_of, owner)}, children)
        self.listed = Node("IGMedia", self._scalars(listed=True), {"owner": (owner_of, owner)}, children)
        self.child = child
        edges = {"media": Edge(lambda a: Lazy(world.listed_media(a), lambda i: world.media(a, i)), self.listed),
                 "stories": Edge(lambda a: world.live_stories(a), self.listed)}
        self.account = Node("IGUser", ACCOUNT_FIELDS, {}, edges)
        self.ig_login_account = Node("IGUser", IG_LOGIN_ACCOUNT_FIELDS, {}, edges)
        self.page = Node("Page", PAGE_FIELDS, {"instagram_business_account": (lambda a: a, self.account)})
        """A Page links its account: ``{"id"}``, or expanded with ``instagram_business_account{...}``."""

    def _scalars(self, *, listed: bool, child: bool = False) -> dict[str, Callable[[Media], Any]]:
        d = self.world.details
        out: dict[str, Callable[[Media], Any]] = {
            "id": lambda m: m.id, "ig_id": lambda m: str(int(m.id) % 10**12), "media_type": lambda m: m.media_type,
            "media_product_type": lambda m: m.media_product_type, "timestamp": lambda m: iso(m.timestamp),
            "permalink": lambda m: d(m).permalink, "shortcode": lambda m: d(m).shortcode,
            "media_url": lambda m: d(m).media_url, "thumbnail_url": lambda m: d(m).thumbnail_url,
            "username": lambda m: self.world.account(m.account).username,
        }
        if not child:
            out.update({
                "caption": lambda m: d(m).caption, "comments_count": lambda m: d(m).comments_count,
                "is_comment_enabled": lambda m: d(m).is_comment_enabled,
                "like_count": (lambda m: None if d(m).likes_hidden else d(m).like_count) if listed else
                              (lambda m: d(m).like_count),
            })
        return out

    def media_node(self, media: Media) -> Node:
        """The node type a media read by id answers as."""
        return self.child if media.child is not None else self.media


@lru_cache(maxsize=8)
def nodes_of(world: World) -> Nodes:
    """The node types of ``world``, built once (hostile answers render items with them too)."""
    return Nodes(world)


def render_listed(world: World, media: Media, query: Query) -> dict[str, Any]:
    """``media`` as a page of ``/media`` or ``/stories`` asked with ``query`` lists it (the
    query's fields are taken as valid; an unreadable list answers the id alone)."""
    nodes = nodes_of(world)
    fields = requested(query)
    if isinstance(fields, SimReply) or check(nodes.listed, fields) is not None:
        fields = [Field("id")]
    return render(nodes.listed, media, fields)


def requested(query: Query, default: tuple[str, ...] = ("id",)) -> list[Field] | SimReply:
    """The parsed ``fields`` of ``query`` (``default`` when absent or empty), or the API's
    code 2500 syntax error."""
    raw = query.get("fields")
    try:
        fields = parse_fields(raw) if raw else []
    except FieldsSyntaxError as error:
        return E.graph_error(400, 2500, str(error))
    return fields or [Field(name) for name in default]


class GraphApi:
    def __init__(self, world: World, *, drift: Drift | None = None, wall: Callable[[], float] | None = None,
                 collabs: int = 0):
        self.world = world
        self.collabs = collabs
        """Collaboration posts: each account's ``/media`` lists, after its own, this many of the
        newest media of the next account (its collaborator), whose insights only the creator's
        token reads (any other gets 100/33, as for every object a token cannot see)."""
        self.drift = drift
        """How the API's metrics changed (:mod:`.drift`); None: as the catalog says."""
        self.wall = wall or (lambda: world.now)
        """The simulated present (a drift retires metrics by it)."""
        self.nodes = nodes_of(world)
        self.edges: dict[tuple[str, str | None], Callable[[Request, Any], SimReply]] = {
            ("user", None): self._user, ("user", "accounts"): self._pages,
            ("page", None): self._page,
            ("account", None): self._account, ("account", "media"): self._media_edge,
            ("account", "stories"): self._stories, ("account", "insights"): self._account_insights,
            ("media", None): self._media_node, ("media", "children"): self._children,
            ("media", "insights"): self._media_insights,
        }

    def handle(self, path: str, query: Query, token: TokenInfo, base_url: str) -> SimReply:
        parts = [p for p in path.split("/") if p]
        version = parts.pop(0) if parts and parts[0][:1] == "v" and parts[0][1:2].isdigit() else DEFAULT_VERSION
        if not parts:
            return E.unsupported_get("")
        if len(parts) > 2:
            return E.unknown_path("/".join(parts[2:]))
        found = self._resolve(parts[0], token)
        if found is None:
            return E.unsupported_get(parts[0])
        kind, obj = found
        edge = parts[1] if len(parts) > 1 else None
        handler = self.edges.get((kind, edge))
        if handler is None:
            return E.unknown_path(edge or "")
        node_id = obj.id if kind != "user" else obj.user_id
        return handler(Request(version, node_id, edge, query, token, base_url), obj)

    # --- who is what, and may this token see it -------------------------------------------

    def _resolve(self, node: str, token: TokenInfo) -> tuple[str, Any] | None:
        world = self.world
        if node == "me":
            if token.kind == "instagram":
                return "account", world.account_by_id(token.account_ids[0])
            return "user", token
        if token.kind == "facebook" and node == token.user_id:
            return "user", token
        account = world.account_by_id(node)
        if account is not None:
            return ("account", account) if world.owner(account.index).index == token.index else None
        media = world.media_by_id(node)
        if media is not None:
            return ("media", media) if world.owner(media.account).index == token.index else None
        page = world.page_account(node) if token.kind == "facebook" else None
        if page is not None and world.owner(page.index).index == token.index:
            return "page", page
        return None

    # --- nodes -----------------------------------------------------------------------------

    def _user(self, req: Request, token: TokenInfo) -> SimReply:
        fields = {"id": lambda t: t.user_id, "name": lambda t: f"Simulated User {t.index}"}
        return _fields_reply(req.query, fields, token, "user", default=("name", "id"))

    def _page(self, req: Request, account: Account) -> SimReply:
        fields = _checked(req.query, self.nodes.page, default=("name", "id"))
        return fields if isinstance(fields, SimReply) else _ok(render(self.nodes.page, account, fields))

    def _account(self, req: Request, account: Account) -> SimReply:
        # Instagram Login's /me also answers user_id
        node = self.nodes.ig_login_account if req.token.kind == "instagram" else self.nodes.account
        return self._node_reply(req, node, account)

    def _media_node(self, req: Request, media: Media) -> SimReply:
        return self._node_reply(req, self.nodes.media_node(media), media)

    def _node_reply(self, req: Request, node: Node, obj: Any) -> SimReply:
        fields = _checked(req.query, node)
        return fields if isinstance(fields, SimReply) else _ok(render(node, obj, fields, _nested_url(req)))

    # --- edges: cursor paging ---------------------------------------------------------------

    def _pages(self, req: Request, token: TokenInfo) -> SimReply:
        fields = _checked(req.query, self.nodes.page, default=("name", "id"))
        if isinstance(fields, SimReply):
            return fields
        accounts = [self.world.account(int(a) - ACCOUNT_BASE) for a in token.account_ids]
        return self._paged(req, len(accounts), lambda i: render(self.nodes.page, accounts[i], fields))

    def _media_edge(self, req: Request, account: Account) -> SimReply:
        own = self.world.listed_media(account)
        partner, shared = self.collaborator(account)
        return self._listing(req, self.nodes.listed, own + shared,
                             lambda i: self.world.media(account, i) if i < own else self.world.media(partner, i - own),
                             nests=True)

    def collaborator(self, account: Account) -> tuple[Account, int]:
        """The account whose newest media ``account``'s ``/media`` lists too, and how many."""
        partner = self.world.account((account.index + 1) % self.world.spec.accounts)
        shared = min(self.collabs, self.world.listed_media(partner)) if partner.index != account.index else 0
        return partner, shared

    def _stories(self, req: Request, account: Account) -> SimReply:
        return self._listing(req, self.nodes.listed, account.stories, lambda i: self.world.story(account, i),
                             nests=True)

    def _children(self, req: Request, media: Media) -> SimReply:
        return self._listing(req, self.nodes.child, media.children, lambda i: self.world.child(media, i))

    def _listing(self, req: Request, node: Node, total: int, item: Callable[[int], Any],
                 nests: bool = False) -> SimReply:
        """A cursor-paged edge whose items answer ``fields`` as ``node``; ``nests``: a page of
        media, which may nest their insights (:mod:`.expansion`)."""
        asked = requested(req.query)
        if isinstance(asked, SimReply):
            return asked
        fields, insights = expansion.split(asked) if nests else (asked, None)
        bad = check(node, fields)
        if bad is not None:
            return E.invalid(E.NONEXISTING_FIELD.format(field=bad.field, node=bad.node))
        url = _nested_url(req)
        one: Callable[[int], dict] = lambda i: render(node, item(i), fields, url)  # noqa: E731
        window = _page_window(req.query, total)
        if insights is None or isinstance(window, SimReply):
            return self._paged(req, total, one)
        return expansion.page(insights, window[2], one, lambda i, q: self.media_insights(item(i), q, req.token.kind),
                              lambda nested: self._paged(req, total, nested))

    def _paged(self, req: Request, total: int, render: Callable[[int], dict]) -> SimReply:
        window = _page_window(req.query, total)
        if isinstance(window, SimReply):
            return window
        start, end, limit = window
        body: dict[str, Any] = {"data": [render(i) for i in range(start, end)]}
        if end > start:
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
            if start > 0:
                paging["previous"] = _edge_url(req, limit, "before", _cursor(start))
            if end < total:
                paging["next"] = _edge_url(req, limit, "after", _cursor(end))
            body["paging"] = paging
        return _ok(body)

    # --- account insights --------------------------------------------------------------------

    def _account_insights(self, req: Request, account: Account) -> SimReply:
        q = req.query
        metrics = _metric_list(q)
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
        return _ok({"data": data, "paging": _window_paging(req, since, until)})

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
        total: dict[str, Any] = {"value": world.interaction(account, m.name, since, until)}
        if breakdowns:
            results = []
            for combo in _combos(breakdowns):
                v = world.interaction(account, m.name, since, until, tuple(zip(breakdowns, combo, strict=True)))
                if v:
                    results.append({"dimension_values": list(combo), "value": v})
            total = {"value": sum(r["value"] for r in results),
                     "breakdowns": [{"dimension_keys": list(breakdowns), "results": results}]}
        return {"name": m.name, "period": m.period, "title": m.title, "description": m.description,
                "total_value": total, "id": f"{account.id}/insights/{m.name}/{m.period}"}

    def _series(self, account: Account, m: catalog.Metric, since: int, until: int) -> dict:
        world = self.world
        ends = world.series_days(since, until)
        values: list[dict[str, Any]]
        if m.object_value:
            values = [{"value": world.online_followers(account, e), "end_time": iso(e)} for e in ends]
        else:
            values = [{"value": world.daily(account, m.name, e), "end_time": iso(e)} for e in ends]
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
                if self.world.has_demographic(account, m.name, timeframe)]
        return _ok({"data": data})

    def _demographic(self, account: Account, m: catalog.Metric, timeframe: str, breakdowns: tuple[str, ...]) -> dict:
        tf = timeframe.upper()
        results = [{"dimension_values": [tf, *combo], "value": v}
                   for combo, v in self.world.demographics(account, m.name, timeframe, breakdowns)]
        return {"name": m.name, "period": m.period, "title": m.title, "description": m.description,
                "total_value": {"breakdowns": [{"dimension_keys": ["timeframe", *breakdowns], "results": results}]},
                "id": f"{account.id}/insights/{m.name}/{m.period}"}

    # --- media insights ------------------------------------------------------------------------

    def _media_insights(self, req: Request, media: Media) -> SimReply:
        return self.media_insights(media, req.query, req.token.kind)

    def media_insights(self, media: Media, query: Query, login: TokenKind) -> SimReply:
        """``/{media}/insights`` with ``query`` by a token of ``login``: asked by id, or nested in
        a page of media."""
        metrics = _metric_list(query)
        if isinstance(metrics, SimReply):
            return metrics
        if media.child is not None:
            return E.invalid(E.ALBUM_CHILD)  # GUESS: the reference says only "not available"
        served: list[str] = []
        if self.drift is not None:
            refusal = self.drift.refusal(self.world, metrics, media, self.wall() - self.world.now)
            if refusal is not None:
                return refusal
            served = self.drift.served(metrics)
            metrics = [n for n in metrics if n not in served]
        chosen = _media_metrics(metrics, media, login)
        if isinstance(chosen, SimReply):
            return chosen
        breakdowns = tuple(b for b in query.get("breakdown", "").split(",") if b)
        if any(b not in m.breakdowns for m in chosen for b in breakdowns) or len(breakdowns) > 1:
            return E.unknown_error()
        if any(m.condition == "shared_to_facebook" for m in chosen) and not self.world.shared_to_facebook(media):
            return E.not_shared_to_facebook()        # the whole call, whatever else it asks
        if media.expired:
            return _ok({"data": []})  # GUESS: an expired story's insights as "no data"
        if self.world.before_conversion(media):
            return E.before_conversion()
        if media.viewers is not None and media.viewers < catalog.STORY_MIN_VIEWERS:
            return E.not_enough_viewers()
        return _ok({"data": [self._media_metric(media, m, breakdowns) for m in chosen]
                    + [served_item(self.world, media, n) for n in served]})

    def _media_metric(self, media: Media, m: catalog.Metric, breakdowns: tuple[str, ...]) -> dict:
        value = self.world.media_value(media, m.name)
        out: dict[str, Any] = {"name": m.name, "period": "lifetime", "values": [{"value": value}],
                               "title": m.title, "description": m.description}
        if breakdowns:
            results = [{"dimension_values": [v], "value": n}
                       for v, n in self.world.media_breakdown(media, m.name, breakdowns[0])]
            out["total_value"] = {"value": value, "breakdowns": [{"dimension_keys": [breakdowns[0]],
                                                                  "results": results}]}
        out["id"] = f"{media.id}/insights/{m.name}/lifetime"
        return out


# --- helpers -----------------------------------------------------------------------------------


def _ok(body: dict) -> SimReply:
    return SimReply(200, orjson.dumps(body))


def _metric_list(q: Query) -> list[str] | SimReply:
    names = [n.strip() for n in q.get("metric", "").split(",") if n.strip()]
    return names or E.invalid(E.PARAM_REQUIRED.format(name="metric"))


def _media_metrics(names: list[str], media: Media, login: str) -> list[catalog.Metric] | SimReply:
    """The catalog's metrics for ``names``, or the error the API gives for the first bad one
    (to a token of Instagram Login, the metrics of Facebook Login only are unknown names)."""
    product = media.product_type
    chosen, unsupported = [], []
    for i, name in enumerate(names):
        m = catalog.media_metric(name)
        if m is not None and not catalog.served_to(m, login):
            return E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=E.INSTAGRAM_LOGIN_MEDIA_ENUM))
        if m is not None and product in m.product_types:
            chosen.append(m)
        elif name == "impressions":
            feed_still = media.media_type in ("IMAGE", "CAROUSEL_ALBUM") or product == "STORY"
            return E.invalid(E.IMPRESSIONS_MEDIA_V22 if feed_still else E.IMPRESSIONS_MEDIA_PRODUCT)
        elif m is not None or name in NO_LONGER_FOR_PRODUCT or name in MEDIA_ENUM:
            unsupported.append(name)
        else:
            return E.invalid(E.MUST_BE_ONE_OF.format(index=i, values=E.MEDIA_METRIC_ENUM))
    if len(unsupported) == 1:
        return E.invalid(E.NOT_FOR_PRODUCT.format(metric=unsupported[0]))
    if unsupported:
        return E.invalid(E.NOT_FOR_PRODUCT_MANY.format(metrics=", ".join(unsupported)))
    return chosen


def _combos(breakdowns: tuple[str, ...]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for b in breakdowns:
        combos = [(*c, v) for c in combos for v in catalog.BREAKDOWN_VALUES[b]]
    return combos


def _field_list(q: Query, known: Mapping[str, Any], kind: str,
                default: tuple[str, ...] = ("id",)) -> list[str] | SimReply:
    raw = q.get("fields")
    fields = [f.strip() for f in raw.split(",") if f.strip()] if raw else list(default)
    bad = next((f for f in fields if f not in known), None)
    if bad is not None:
        return E.invalid(E.NONEXISTING_FIELD.format(field=bad, node=NODE_TYPES[kind]))
    if "id" not in fields:
        fields.append("id")       # the API always answers the id
    return fields


def _checked(q: Query, node: Node, default: tuple[str, ...] = ("id",)) -> list[Field] | SimReply:
    """The fields asked of ``node``, or the API's error for broken syntax or an unknown field."""
    fields = requested(q, default)
    if isinstance(fields, SimReply):
        return fields
    bad = check(node, fields)
    if bad is not None:
        return E.invalid(E.NONEXISTING_FIELD.format(field=bad.field, node=bad.node))
    return fields


def _nested_url(req: Request) -> Callable[[Any, str, int, int], str]:
    """The ``paging.next`` of an expanded edge cut by its limit: the edge itself, from there."""
    def url(obj: Any, edge: str, limit: int, offset: int) -> str:
        params = {"access_token": req.token.token, "limit": str(limit), "after": _cursor(offset)}
        return f"{req.base_url}/{req.version}/{obj.id}/{edge}?{urlencode(params)}"
    return url


def _render(known: Mapping[str, Callable[[Any], Any]], obj: Any, fields: list[str]) -> dict:
    return {f: known[f](obj) for f in fields}


def _fields_reply(q: Query, known: Mapping[str, Callable[[Any], Any]], obj: Any, kind: str,
                  default: tuple[str, ...] = ("id",)) -> SimReply:
    fields = _field_list(q, known, kind, default)
    return fields if isinstance(fields, SimReply) else _ok(_render(known, obj, fields))


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(b"sim:%d" % offset).decode()


def _offset(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode())
    except (ValueError, TypeError):
        return None
    return int(raw[4:]) if raw[:4] == b"sim:" and raw[4:].isdigit() else None


def _page_window(q: Query, total: int) -> tuple[int, int, int] | SimReply:
    """(start, end, limit) of the page the query asks for."""
    raw = q.get("limit")
    if raw is not None and not raw.isdigit():
        return E.invalid(E.BAD_NUMBER.format(name="limit"))
    limit = min(MAX_LIMIT, max(1, int(raw))) if raw else DEFAULT_LIMIT
    if q.get("after"):
        start = _offset(q["after"])
        if start is None or start > total:
            return E.invalid(E.CURSOR_TOO_FAR)
        return start, min(total, start + limit), limit
    if q.get("before"):
        end = _offset(q["before"])
        if end is None or end > total:
            return E.invalid(E.CURSOR_TOO_FAR)
        return max(0, end - limit), end, limit
    return 0, min(total, limit), limit


def _edge_url(req: Request, limit: int, direction: str, cursor: str) -> str:
    """A paging URL as the API writes it: the access token first (yes, embedded), then the query."""
    params = {"access_token": req.token.token}
    params.update((k, v) for k, v in req.query.items() if k not in ("access_token", "after", "before", "limit"))
    params.update(limit=str(limit), **{direction: cursor})
    return f"{req.base_url}/{req.version}/{req.node_id}/{req.edge}?{urlencode(params)}"


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
