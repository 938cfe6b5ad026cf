"""Nested field expansion for the discovery nodes (``/me``, ``/me/accounts``): a minimal parser.

The Graph API reads ``fields=id,name,instagram_business_account{id,username}``: a comma list
whose names may carry a ``{...}`` of the linked node's own fields, to any depth. Only what
discovery needs is here; simulator/fields.py (another change) grows the general parser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Spec = list[tuple[str, "Spec | None"]]
"""Each requested field with its sub-fields (None: not expanded)."""

Renderers = Mapping[str, Callable[[Any], Any]]
Link = tuple[Callable[[Any], Any], Renderers]
"""A field that links another node: how to get that node, and its fields."""


def parse(raw: str) -> Spec | None:
    """The fields of ``raw``, or None when its braces do not balance or a name is empty."""
    spec, i = _parse(raw, 0)
    return spec if spec is not None and i == len(raw) else None


def _parse(raw: str, i: int) -> tuple[Spec | None, int]:
    """A comma list from ``i`` up to an unmatched ``}`` or the end, and where it stopped."""
    spec: Spec = []
    while True:
        j = i
        while j < len(raw) and raw[j] not in ",{}":
            j += 1
        name = raw[i:j].strip()
        if not name:
            return None, j
        sub: Spec | None = None
        if j < len(raw) and raw[j] == "{":
            sub, j = _parse(raw, j + 1)
            if sub is None or j >= len(raw) or raw[j] != "}":
                return None, j
            j += 1
        spec.append((name, sub))
        if j < len(raw) and raw[j] == ",":
            i = j + 1
            continue
        return spec, j


def unknown(spec: Spec, known: Renderers, links: Mapping[str, Link]) -> tuple[str, str | None] | None:
    """(field, link) of the first field no node knows; ``link`` None for the top node."""
    for name, sub in spec:
        if name not in known and name not in links:
            return name, None
        if sub is not None:
            if name not in links:
                return name, None      # GUESS: a scalar field with sub-fields, as an unknown field
            inner = links[name][1]
            bad = unknown(sub, inner, {})
            if bad is not None:
                return bad[0], name
    return None


def render(spec: Spec, known: Renderers, links: Mapping[str, Link], obj: Any) -> dict[str, Any]:
    """``obj`` with the fields of ``spec``: a link is ``{"id": ...}``, or its own fields when expanded
    (the id always, as the API answers it on every node)."""
    out: dict[str, Any] = {}
    for name, sub in spec:
        if name in links:
            target_of, inner = links[name]
            target = target_of(obj)
            out[name] = render(sub or [("id", None)], inner, {}, target)
        else:
            out[name] = known[name](obj)
    if "id" in known and "id" not in out:
        out["id"] = known["id"](obj)
    return out
