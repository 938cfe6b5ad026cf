"""Which metrics an answer of the API refused, read from its words.

The API refuses a metric it will not serve for an object with an error naming it (API-FACTS and
practitioners' reports): "does not support the X metric for this media product type" (several:
"the X, Y metric"), "The metric X is not supported for this media type", "the X metric is no
longer supported", or "metric[i] must be one of the following values: ..." (the i-th metric
asked). The error policy decides REFUSE on those words; this module says which of the asked
metrics they name, so that the unit is asked again without exactly those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_INDEX = re.compile(r"metric\[(\d+)\] must be one of", re.IGNORECASE)
_NAMED = (
    re.compile(r"does not support the (.+?) metrics? for this media product type", re.IGNORECASE),
    re.compile(r"(?:metric )?(\w+) is not supported for this media type", re.IGNORECASE),
    re.compile(r"the (\w+) metric is no longer supported", re.IGNORECASE),
)
_ENUM = re.compile(r"must be one of the following values: (.*)$", re.IGNORECASE | re.DOTALL)


def refused_metrics(message: str | None, asked: Sequence[str]) -> tuple[str, ...]:
    """The metrics of ``asked`` that ``message`` refuses, in asked order; () when it names none
    of them (then the unit cannot be saved by dropping a metric)."""
    text = message or ""
    if (m := _INDEX.search(text)) is not None:
        index = int(m.group(1))
        return (asked[index],) if index < len(asked) else ()
    named: set[str] = set()
    for pattern in _NAMED:
        if (m := pattern.search(text)) is not None:
            named.update(n.strip().lower() for n in m.group(1).split(","))
    return tuple(name for name in asked if name in named)


def listed_metrics(message: str | None) -> tuple[str, ...]:
    """The metric names a "must be one of the following values: ..." answer lists (the API's
    current enum), in its order; () for any other message."""
    m = _ENUM.search(message or "")
    if m is None:
        return ()
    return tuple(n for n in (part.strip().rstrip(".") for part in m.group(1).split(",")) if re.fullmatch(r"\w+", n))
