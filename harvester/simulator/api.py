"""The Graph API's answers: nodes, edges with cursor paging, insights with every rule of the reference.

``GraphApi.handle`` gets a request the pipeline (server.py) has already authenticated, throttled
and fault-checked, and answers it as graph.facebook.com (a "facebook" token: ``/me`` is the user,
``/me/accounts`` lists pages, a page has ``instagram_business_account``) or graph.instagram.com
(an "instagram" token: ``/me`` is the Instagram account) would. A token reads only its own
accounts, their pages and media; anything else is the API's 100/33 "Unsupported get request".
Metric rules come from :mod:`harvester.catalog`; values from :class:`~.world.World`.

This module routes a call to what answers it and answers the nodes and edges; the insights are
:mod:`.account_insights` and :mod:`.media_insights`, the parsed call and the cursor paging
:mod:`.request`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ..days import iso
from . import errors as E
from . import expansion
from .account_insights import AccountInsights
from .drift import Drift
from .errors import SimReply
from .fields import Edge, Field, Lazy, Node, check, render
from .media_insights import MediaInsights
from .request import DEFAULT_LIMIT, MAX_LIMIT, Query, Request, nested_url, ok, page_window, paged, requested
from .world import ACCOUNT_BASE, Account, Media, TokenInfo, World

__all__ = ["DEFAULT_LIMIT", "DEFAULT_VERSION", "MAX_LIMIT", "GraphApi", "Nodes", "Query", "Request", "nodes_of",
           "render_listed", "requested"]

DEFAULT_VERSION = "v25.0"

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
        self.account_insights = AccountInsights(world)
        """``/{account}/insights`` (:mod:`.account_insights`)."""
        self.media_insights = MediaInsights(world, drift, self.wall)
        """``/{media}/insights``, by id or nested in a page of media (:mod:`.media_insights`)."""
        self.edges: dict[tuple[str, str | None], Callable[[Request, Any], SimReply]] = {
            ("user", None): self._user, ("user", "accounts"): self._pages,
            ("page", None): self._page,
            ("account", None): self._account, ("account", "media"): self._media_edge,
            ("account", "stories"): self._stories, ("account", "insights"): self.account_insights.answer,
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
        return fields if isinstance(fields, SimReply) else ok(render(self.nodes.page, account, fields))

    def _account(self, req: Request, account: Account) -> SimReply:
        # Instagram Login's /me also answers user_id
        node = self.nodes.ig_login_account if req.token.kind == "instagram" else self.nodes.account
        return self._node_reply(req, node, account)

    def _media_node(self, req: Request, media: Media) -> SimReply:
        return self._node_reply(req, self.nodes.media_node(media), media)

    def _node_reply(self, req: Request, node: Node, obj: Any) -> SimReply:
        fields = _checked(req.query, node)
        return fields if isinstance(fields, SimReply) else ok(render(node, obj, fields, nested_url(req)))

    # --- edges: cursor paging ---------------------------------------------------------------

    def _pages(self, req: Request, token: TokenInfo) -> SimReply:
        fields = _checked(req.query, self.nodes.page, default=("name", "id"))
        if isinstance(fields, SimReply):
            return fields
        accounts = [self.world.account(int(a) - ACCOUNT_BASE) for a in token.account_ids]
        return paged(req, len(accounts), lambda i: render(self.nodes.page, accounts[i], fields))

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
        url = nested_url(req)
        one: Callable[[int], dict] = lambda i: render(node, item(i), fields, url)  # noqa: E731
        window = page_window(req.query, total)
        if insights is None or isinstance(window, SimReply):
            return paged(req, total, one)
        return expansion.page(insights, window[2], one,
                              lambda i, q: self.media_insights.answer(item(i), q, req.token.kind),
                              lambda nested: paged(req, total, nested))

    def _media_insights(self, req: Request, media: Media) -> SimReply:
        return self.media_insights.answer(media, req.query, req.token.kind)


# --- helpers -----------------------------------------------------------------------------------


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


def _render(known: Mapping[str, Callable[[Any], Any]], obj: Any, fields: list[str]) -> dict:
    return {f: known[f](obj) for f in fields}


def _fields_reply(q: Query, known: Mapping[str, Callable[[Any], Any]], obj: Any, kind: str,
                  default: tuple[str, ...] = ("id",)) -> SimReply:
    fields = _field_list(q, known, kind, default)
    return fields if isinstance(fields, SimReply) else ok(_render(known, obj, fields))
