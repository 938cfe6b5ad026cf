"""The ``fields`` parameter as the Graph API reads it, and nodes rendered by it.

``fields=id,caption,children.limit(5){id,media_type},owner{username}`` is a comma list of names,
each optionally followed by modifiers ``.name(args)`` (``limit`` is the one the simulator
honours; others, such as ``insights.metric(...)``, are parsed and kept) and by ``{...}``, the
fields of the linked node or edge, to any depth. Whitespace around names is allowed, as in the
field-expansion guide's ``albums.limit(5){name, photos.limit(2)}``. Broken syntax is the API's
code 2500 ``Syntax error "Expected end of string instead of "{"." at character 46: <fields>``
(a 0-based index, the wording seen in a real answer); an unknown field is 100 "Tried accessing
nonexisting field (x) on node type (IGMedia)".

:func:`parse_fields` is the parser; :class:`Node` describes a node type (its scalar fields,
links to single nodes, edges to lists of nodes) and :func:`check` / :func:`render` answer a
parsed list on one object of it. A getter returns None for a field the API leaves out of the
answer (a caption a media does not have): the field is absent, never ``null``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec


class Field(msgspec.Struct, frozen=True):
    """One requested field: ``subfields`` None when not expanded with ``{...}``."""

    name: str
    subfields: tuple[Field, ...] | None = None
    limit: int | None = None
    modifiers: tuple[tuple[str, str], ...] = ()
    """Every ``.name(args)`` in order, ``limit`` included, args as written."""


class FieldsSyntaxError(ValueError):
    """Broken ``fields`` syntax: where, what was expected, what was found (as the API words it)."""

    def __init__(self, text: str, position: int, expected: str):
        self.text, self.position, self.expected = text, position, expected
        found = f'"{text[position]}"' if position < len(text) else "end of string"
        self.found = found
        super().__init__(f'Syntax error "Expected {expected} instead of {found}." at character {position}: {text}')


def parse_fields(text: str) -> list[Field]:
    """The fields of ``text`` in order (empty items, as in ``a,,b`` or a trailing comma, are
    skipped: GUESS, the simulator always has). Raises :class:`FieldsSyntaxError`."""
    parser = _Parser(text)
    fields = parser.items(top=True)
    if parser.i != len(text):
        raise FieldsSyntaxError(text, parser.i, "end of string")
    return fields


def names(fields: Sequence[Field]) -> list[str]:
    """The top-level names, in order."""
    return [f.name for f in fields]


MAX_DEPTH: Final = 32
"""Levels of ``{...}`` a list may nest; deeper is refused as a syntax error at the brace (GUESS:
the API's own limit is not documented), so no request can exhaust the parser's recursion."""
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _Parser:
    __slots__ = ("depth", "i", "text")

    def __init__(self, text: str):
        self.text, self.i, self.depth = text, 0, 0

    def _skip_spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\n":
            self.i += 1

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def items(self, *, top: bool) -> list[Field]:
        """A comma list up to the end (top) or up to the ``}`` that closes it (not consumed)."""
        out: list[Field] = []
        while True:
            self._skip_spaces()
            c = self._peek()
            if c == ",":
                self.i += 1
                continue
            if c == "" or c == "}":
                return out
            out.append(self.item(top=top))
            self._skip_spaces()
            c = self._peek()
            if c == ",":
                self.i += 1
            elif c == "" or (c == "}" and not top):
                return out
            else:
                raise FieldsSyntaxError(self.text, self.i, "end of string" if top else '"}"')

    def item(self, *, top: bool) -> Field:
        start = self.i
        while self._peek() and self._peek() in _NAME_CHARS:
            self.i += 1
        if self.i == start:
            raise FieldsSyntaxError(self.text, self.i, "end of string" if top else '"}"')
        name = self.text[start:self.i]
        modifiers: list[tuple[str, str]] = []
        subfields: tuple[Field, ...] | None = None
        while True:
            self._skip_spaces()
            c = self._peek()
            if c == ".":
                self.i += 1
                modifiers.append(self.modifier())
            elif c == "{" and subfields is None:
                if self.depth == MAX_DEPTH:
                    raise FieldsSyntaxError(self.text, self.i, "end of string" if top else '"}"')
                self.i += 1
                self.depth += 1
                subfields = tuple(self.items(top=False))
                self.depth -= 1
                if self._peek() != "}":
                    raise FieldsSyntaxError(self.text, self.i, '"}"')
                self.i += 1
            else:
                break
        return Field(name, subfields, _limit(modifiers), tuple(modifiers))

    def modifier(self) -> tuple[str, str]:
        start = self.i
        while self._peek() and self._peek() in _NAME_CHARS:
            self.i += 1
        if self.i == start:
            raise FieldsSyntaxError(self.text, self.i, "name")
        name = self.text[start:self.i]
        if self._peek() != "(":
            raise FieldsSyntaxError(self.text, self.i, '"("')
        close = self.text.find(")", self.i)
        if close < 0:
            raise FieldsSyntaxError(self.text, len(self.text), '")"')
        args = self.text[self.i + 1:close].strip()
        self.i = close + 1
        return name, args


def _limit(modifiers: list[tuple[str, str]]) -> int | None:
    """The last ``.limit(n)``, if its argument is a whole number (others are ignored: GUESS)."""
    values = [a for m, a in modifiers if m == "limit" and a.isdigit()]
    return int(values[-1]) if values else None


# --- nodes ---------------------------------------------------------------------------------------

Getter = Callable[[Any], Any]


@dataclass(frozen=True)
class Edge:
    """A list of nodes reached from an object (``children``, an account's ``media``):
    ``items(obj)`` is None where the API omits the field (the children of a single photo); it
    may be any sequence that slices (a :class:`Lazy` one for thousands of media)."""

    items: Callable[[Any], Sequence[Any] | None]
    node: Node
    default_limit: int = 25


@dataclass(frozen=True)
class Node:
    """A node type: its name in errors, scalar fields, links to one node, edges to many."""

    type_name: str
    scalars: Mapping[str, Getter]
    links: Mapping[str, tuple[Getter, Node]] = field(default_factory=dict)
    edges: Mapping[str, Edge] = field(default_factory=dict)

    def knows(self, name: str) -> bool:
        return name in self.scalars or name in self.links or name in self.edges


class Lazy(Sequence[Any]):
    """``n`` items made by ``make(i)`` only when sliced or indexed."""

    def __init__(self, n: int, make: Callable[[int], Any]):
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.make(i) for i in range(*index.indices(self.n))]
        if not -self.n <= index < self.n:
            raise IndexError(index)
        return self.make(index % self.n)


class Unknown(msgspec.Struct, frozen=True):
    """The first field a node does not have, and that node's type (for the API's message)."""

    field: str
    node: str


def check(node: Node, fields: Sequence[Field]) -> Unknown | None:
    """The first field of ``fields`` (depth first) that its node does not know, or None."""
    for f in fields:
        if not node.knows(f.name):
            return Unknown(f.name, node.type_name)
        if f.subfields is None:
            continue
        if f.name in node.links:
            inner = node.links[f.name][1]
        elif f.name in node.edges:
            inner = node.edges[f.name].node
        else:
            return Unknown(f.name, node.type_name)   # GUESS: sub-fields of a scalar, as an unknown field
        bad = check(inner, f.subfields)
        if bad is not None:
            return bad
    return None


ID_ONLY: Final = (Field("id"),)


def render(node: Node, obj: Any, fields: Sequence[Field], page_url: Callable[[Any, str, int, int], str] | None = None
           ) -> dict[str, Any]:
    """``obj``'s answer for ``fields`` (already :func:`check`-ed), in the order asked, with ``id``
    last when not asked (the API answers it on every node). A link not expanded is ``{"id"}``;
    an edge is ``{"data": [...]}`` (ids only unless expanded), cut at its ``.limit()``, with
    ``paging`` (``next`` from ``page_url(obj, edge, limit, offset)``) only when items remain."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in node.scalars:
            value = node.scalars[f.name](obj)
            if value is not None:
                out[f.name] = value
        elif f.name in node.links:
            target_of, inner = node.links[f.name]
            target = target_of(obj)
            if target is not None:
                out[f.name] = render(inner, target, f.subfields or ID_ONLY, page_url)
        else:
            edge = node.edges[f.name]
            items = edge.items(obj)
            if items is not None:
                out[f.name] = _edge(edge, obj, f, items, page_url)
    if "id" in node.scalars and "id" not in out:
        out["id"] = node.scalars["id"](obj)
    return out


def _edge(edge: Edge, obj: Any, f: Field, items: Sequence[Any],
          page_url: Callable[[Any, str, int, int], str] | None) -> dict[str, Any]:
    limit = f.limit if f.limit is not None else edge.default_limit
    shown = items[:limit]
    body: dict[str, Any] = {"data": [render(edge.node, item, f.subfields or ID_ONLY, page_url) for item in shown]}
    if len(items) > len(shown) and page_url is not None:
        body["paging"] = {"next": page_url(obj, f.name, limit, len(shown))}
    return body
