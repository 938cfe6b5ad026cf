"""``harvester``'s CLI in a process whose clock reads the test worlds' present: ``python
tests/present.py run --config ...``. The process starts at :data:`support.NOW` (moved by
``HARVESTER_TEST_SHIFT_HOURS``) and its clock runs on from there, as libfaketime would set it, for
the two readings harvester makes of the date: ``time.time()`` and ``datetime.now()``. So a
subprocess harvest of a pinned world plans the same days and ages as the world's ground truth."""

from __future__ import annotations

import datetime as _datetime
import sys
import time
from collections.abc import Callable
from typing import Any

from support import NOW


class _PinnedDateTime(_datetime.datetime):
    """``datetime.now()`` from the pinned ``time.time()`` (every other method is datetime's)."""

    @classmethod
    def now(cls, tz=None):
        return _datetime.datetime.fromtimestamp(time.time(), tz)


def pin(now: float, setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """From here on ``time.time()``, and ``datetime.now()`` where harvester reads it, read ``now``
    plus the time elapsed since (``setattr``: pytest's ``monkeypatch.setattr``, to undo it after a test)."""
    import harvester.config.load
    import harvester.report
    real = time.time
    offset = now - real()
    setattr(time, "time", lambda: real() + offset)
    setattr(time, "time_ns", lambda: int((real() + offset) * 1e9))
    for module in (harvester.config.load, harvester.report):
        assert module.datetime in (_datetime.datetime, _PinnedDateTime), module   # a new reading: pin it too
        setattr(module, "datetime", _PinnedDateTime)


def main() -> int:
    pin(NOW)
    from harvester.cli import main as cli
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
