"""``harvester``'s CLI in a process whose clock reads the test worlds' present: ``python
tests/present.py run --config ...``. The process starts at :data:`support.NOW` (moved by
``HARVESTER_TEST_SHIFT_HOURS``) and its clock runs on from there, as libfaketime would set it, for
the two readings harvester makes of the date: ``time.time()`` and ``datetime.now()``. So a
subprocess harvest of a pinned world plans the same days and ages as the world's ground truth."""

from __future__ import annotations

import datetime as _datetime
import functools
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

from support import NOW

DATE_READERS = ("harvester.config.load", "harvester.report", "harvester.singer.sink")
"""Modules that read the date with ``datetime.now()`` through their module's ``datetime``: replaced."""
DATE_FUNCTIONS = {"harvester.cli": "backfill_config"}
"""Functions that import ``datetime`` in their body and take ``today=``: given the pinned date.
(tests/test_present.py fails when another module reads the date.)"""


class _PinnedDateTime(_datetime.datetime):
    """``datetime.now()`` from the pinned ``time.time()`` (every other method is datetime's)."""

    @classmethod
    def now(cls, tz=None):
        return _datetime.datetime.fromtimestamp(time.time(), tz)


def _today() -> _datetime.date:
    return _datetime.datetime.fromtimestamp(time.time(), _datetime.UTC).date()


def pin(now: float, setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """From here on ``time.time()``, and the date where harvester reads it, read ``now`` plus the time
    elapsed since (``setattr``: pytest's ``monkeypatch.setattr``, to undo it after a test)."""
    real = time.time
    offset = now - real()
    setattr(time, "time", lambda: real() + offset)
    setattr(time, "time_ns", lambda: int((real() + offset) * 1e9))
    for module in map(importlib.import_module, DATE_READERS):
        assert module.datetime in (_datetime.datetime, _PinnedDateTime), module   # a new reading: pin it too
        setattr(module, "datetime", _PinnedDateTime)
    for name, function in DATE_FUNCTIONS.items():
        module = importlib.import_module(name)
        original = getattr(module, function)
        original = getattr(original, "__wrapped__", original)

        @functools.wraps(original)
        def dated(*args, today=None, _original=original, **kwargs):
            return _original(*args, today=today or _today(), **kwargs)
        setattr(module, function, dated)


def main() -> int:
    pin(NOW)
    from harvester.cli import main as cli
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
