"""Counted nouns for people: ``1 account``, ``2 accounts``, ``1,024 units``.

One function, used wherever the CLI prints a count, so that no line says "1 accounts".
"""

from __future__ import annotations

IRREGULAR = {"entry": "entries", "media": "media", "copy": "copies", "reply": "replies", "is": "are",
             "was": "were", "has": "have"}


def plural(n: float, word: str, words: str | None = None) -> str:
    """``n`` and ``word`` in the number it takes: ``plural(1, "account") == "1 account"``,
    ``plural(3, "unit") == "3 units"``; ``words``: the plural, when it is not ``word + "s"``
    or a known irregular one."""
    many = words or IRREGULAR.get(word) or word + "s"
    count = f"{int(n):,}" if float(n).is_integer() else f"{n:,.1f}"
    return f"{count} {word if n == 1 else many}"
