"""How configuration mistakes are found and said: rules as data, generic checks, and messages that
name the file, the key, what is wrong and what is allowed (never a token)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any, NamedTuple

from ..errors import ConfigError


class ValueRule(NamedTuple):
    """What one scalar key accepts: its TOML types, a check of the value, and how to say so."""

    types: tuple[type, ...]
    ok: Callable[[Any], bool]
    expected: str


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


def _one_of(choices: tuple[str, ...]) -> ValueRule:
    return ValueRule((str,), lambda v: v in choices, "one of " + ", ".join(f'"{c}"' for c in choices))


#: Graph API tokens start so (user/page: EAA..., Instagram Login: IGQ..., IGAA...) or are long runs of
#: token characters; a value like this is never echoed, in case someone pasted a token.
_TOKEN_LIKE = re.compile(r"(EAA|IGQ|IGAA)\w{16,}|[\w|-]{60,}")


# --- messages --------------------------------------------------------------------------------


class Problems:
    """Every problem found, each prefixed with the file name."""

    def __init__(self, path: str):
        self.path = path
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(f"{self.path}: {message}")

    def raise_any(self) -> None:
        if self.messages:
            raise ConfigError(self.messages)


def _show(value: Any) -> str:
    """A value as TOML writes it; anything that looks like an access token is never shown."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if _TOKEN_LIKE.fullmatch(value):
            return "<value not shown: it looks like an access token>"
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
             (datetime, "a date-time"), (date, "a date"), (time, "a time"), (list, "an array"), (dict, "a table"))
    return next(name for t, name in kinds if isinstance(value, t))


def _names(names) -> str:
    return ", ".join(names) if names else "none"


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {_show(close[0])}?)" if close else ""


def _to_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


# --- generic checks --------------------------------------------------------------------------


def _table(p: Problems, value: Any, where: str) -> dict:
    if isinstance(value, dict):
        return value
    p.add(f"{where} is {_kind(value)}; expected a table")
    return {}


def _unknown(p: Problems, table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            p.add(f"{where} has an unknown key {_show(key)}{_did_you_mean(key, allowed)}; allowed: {_names(allowed)}")


def _check(p: Problems, where: str, value: Any, rule: ValueRule) -> bool:
    if (isinstance(value, bool) and bool not in rule.types) or not isinstance(value, rule.types):
        p.add(f"{where} = {_show(value)} is {_kind(value)}; expected {rule.expected}")
        return False
    if not rule.ok(value):
        p.add(f"{where} = {_show(value)} is not valid; expected {rule.expected}")
        return False
    return True


def _checked(p: Problems, table: dict, rules: dict[str, ValueRule], where: str, sep: str = " ") -> dict[str, Any]:
    """The known keys of a table that pass their rule (the others are reported)."""
    _unknown(p, table, rules, where)
    return {k: v for k, v in table.items() if k in rules and _check(p, f"{where}{sep}{k}", v, rules[k])}


def _strings(p: Problems, value: Any, where: str) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    p.add(f"{where} = {_show(value)} is {_kind(value)}; expected an array of strings")
    return None


def _no_repeats(p: Problems, items: list, where: str) -> None:
    first: dict = {}
    for i, item in enumerate(items):
        if item in first:
            p.add(f"{where}[{i}] = {_show(item)} repeats {where.split()[-1]}[{first[item]}]")
        first.setdefault(item, i)
