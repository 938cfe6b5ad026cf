"""What the simulator served, as flat counters: calls per token (by index, never the token),
per endpoint, throttles, faults by kind, statuses, and the most calls any token had in one
rolling window (exact: the count is taken at every call, and a window's count can only peak at a
call)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_NUMERIC = re.compile(r"^\d+$")

ENDPOINTS = {"insights": "insights", "media": "media", "stories": "stories",
             "children": "children", "accounts": "accounts"}
"""Last path segment -> endpoint name; ``/{id}`` is "account" or "node", ``/me`` is "me"."""


class Counters:
    def __init__(self, account_ids: Iterable[str] = ()):
        self.account_ids = frozenset(account_ids)
        self.calls = 0
        self.calls_by_token: Counter[int] = Counter()
        self.nested_by_token: Counter[int] = Counter()
        """Media whose insights pages nested, charged as calls (``expansion_cost = "per-object"``)."""
        self.throttled: Counter[str] = Counter()
        self.throttled_by_token: Counter[int] = Counter()
        self.max_in_window: dict[int, int] = {}
        self.endpoints: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.token_errors: Counter[str] = Counter()

    def call(self, path: str) -> None:
        self.calls += 1
        self.endpoints[self.endpoint(path)] += 1

    def token_call(self, index: int) -> None:
        self.calls_by_token[index] += 1

    def nested(self, index: int, n: int) -> None:
        self.nested_by_token[index] += n

    def window(self, index: int, in_window: int) -> None:
        if in_window > self.max_in_window.get(index, 0):
            self.max_in_window[index] = in_window

    def throttle(self, index: int, scope: str) -> None:
        self.throttled[scope] += 1
        self.throttled_by_token[index] += 1

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def status(self, status: int | str) -> None:
        self.statuses[str(status)] += 1

    def token_error(self, reason: str) -> None:
        self.token_errors[reason] += 1

    def endpoint(self, path: str) -> str:
        """``/v25.0/{id}/insights`` -> "insights/account" or "insights/media", and so on."""
        parts = [p for p in path.split("/") if p][1:]
        if not parts:
            return "root"
        if parts[0] == "me":
            return "me" if len(parts) == 1 else ENDPOINTS.get(parts[1], "other")
        if len(parts) == 1:
            return "account" if parts[0] in self.account_ids else "node" if _NUMERIC.match(parts[0]) else "other"
        name = ENDPOINTS.get(parts[1], "other")
        if name == "insights":
            return "insights/account" if parts[0] in self.account_ids else "insights/media"
        return name

    def snapshot(self) -> dict:
        """Plain JSON-ready data (string keys), for tests, the demo and ``/__simulator__/counters``."""
        return {
            "calls": self.calls,
            "calls_by_token": _keyed(self.calls_by_token),
            "charged": self.calls + sum(self.nested_by_token.values()),
            "nested_by_token": _keyed(self.nested_by_token),
            "throttled": sum(self.throttled.values()),
            "throttled_by_scope": dict(self.throttled),
            "throttled_by_token": _keyed(self.throttled_by_token),
            "max_in_window": _keyed(self.max_in_window),
            "endpoints": dict(self.endpoints),
            "faults": dict(self.faults),
            "statuses": dict(self.statuses),
            "token_errors": dict(self.token_errors),
        }


def _keyed(counts: dict[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items())}
