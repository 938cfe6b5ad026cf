"""Progress while a harvest runs: a live block on a terminal, plain log lines otherwise.

It only reads what the run hands out (:class:`Watched`: its flat counters, the scheduler's
:class:`~harvester.schedule.scheduler.Pacing` with its per-slot views), every ``interval``
seconds; it never touches the work itself, so it can be left out (library use) at no cost.
With more tokens than ``TOKEN_LINES``, only busy tokens are viewed (an idle one adds nothing to
the ETA or the waits: a refresh over 100,000 tokens costs what their busy ones cost) and the live
block lists the first ``TOKEN_LINES`` of them, then how many more there are.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Protocol, TextIO

from .. import summary as stat
from ..schedule.scheduler import Pacing
from ..schedule.slot import SlotView
from ..summary import Stats, error_counts, plural
from ..summary import format_duration as _fmt_seconds

log = logging.getLogger("harvester.progress")
TOKEN_LINES = 20
"""Tokens the live block lists at most, one line each."""


class Watched(Protocol):
    """What progress reads of a run (a :class:`harvester.Harvester` is one)."""

    @property
    def stats(self) -> Stats: ...

    @property
    def token_names(self) -> Mapping[str, str]: ...

    def pacing(self, every: int) -> Pacing | None:
        """The scheduler's figures (None before the harvest starts)."""
        ...


class Progress:
    def __init__(self, harvester: Watched, *, stream: TextIO | None = None, interval: float | None = None,
                 as_log: bool = False):
        self.harvester = harvester
        self.stream = stream = sys.stderr if stream is None else stream     # the current one, not import time's
        self.as_log = as_log
        """Each report a log event (``--log-format json``), never the live block."""
        self.live = stream.isatty() and not as_log
        self.interval = interval if interval is not None else (0.5 if self.live else 30.0)
        self._lines = 0
        self.head: list[tuple[str, str]] = []
        """The first line's parts, ``(name, text)``, as :meth:`lines` last made them (see :func:`fit`)."""
        self._started = self._sampled = _now()
        self.eta: float | None = None
        self._active = 0.0
        """Seconds during which some token could work: the ETA's rate is measured over these, so
        that it does not grow while every token waits on its rate limit."""

    async def run(self) -> None:
        """Report until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.show()
        finally:
            if self.live:
                self.show()
                self.stream.write("\n")

    def lines(self) -> list[str]:
        c = self.harvester.stats.counters
        planned, done = c.get(stat.UNITS_PLANNED, 0), c.get(stat.UNITS_DONE, 0)
        finished = done + c.get(stat.UNITS_SKIPPED, 0) + c.get(stat.UNITS_FAILED, 0) + c.get(stat.UNITS_FAILED_TOKEN, 0)
        pacing = self.harvester.pacing(TOKEN_LINES)
        now = _now()
        elapsed = now - self._started
        views = pacing.slots if pacing is not None else []
        held, limit_eta = _limit_eta(views, pacing.now) if pacing is not None else (False, 0.0)
        if not held:
            self._active += now - self._sampled
        self._sampled = now
        self.eta = eta = _eta(self._active, planned - finished, finished, limit_eta)
        errors, skipped, _ = error_counts(c)
        head = [("units", f"units {int(finished):,}/{int(planned):,}"), ("more", " (more as media are found)"),
                ("eta", f" | eta {_fmt_seconds(eta)}"), ("elapsed", f", elapsed {_fmt_seconds(elapsed)}"),
                ("calls", f" | calls ok {int(c.get(stat.CALLS_OK, 0)):,} err {errors:,} skipped {skipped:,}"),
                ("records", f" | records {int(c.get(stat.RECORDS_WRITTEN, 0)):,}"),
                ("waited", f" | waited {_fmt_seconds(c.get(stat.WAIT_LIMIT_SECONDS, 0))}")]
        if pacing is not None:
            head.append(("tokens", _waiting(views, pacing.now)))
            if pacing.capped_wait is not None:
                head.append(("capped", f" | server asked for a wait of {pacing.capped_wait:.3g} s: capped at "
                                       f"{_fmt_seconds(pacing.window_seconds)}"))
        self.head = head
        lines = ["".join(text for _, text in head)]
        for view in views[:TOKEN_LINES] if self.live else ():
            lines.append("  " + _slot_line(view, self.harvester.token_names.get(view.key, view.key)))
        tokens = pacing.tokens if pacing is not None else 0
        if self.live and tokens > TOKEN_LINES:
            lines.append(f"  ... {plural(tokens, 'token')} in all, {len(views):,} busy")
        return lines

    def show(self) -> None:
        lines = self.lines()
        if self.live:        # one terminal row per line, or the block scrolls instead of redrawing
            width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
            lines = [fit(self.head, width), *(_cut(line, width) for line in lines[1:])]
            up = f"\x1b[{self._lines}F" if self._lines else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines = len(lines)
        elif self.as_log:
            c = self.harvester.stats.counters
            log.info(lines[0], extra={"event": "progress", "eta_seconds": self.eta,
                                      "units_done": int(c.get(stat.UNITS_DONE, 0)),
                                      "units_planned": int(c.get(stat.UNITS_PLANNED, 0)),
                                      "records_written": int(c.get(stat.RECORDS_WRITTEN, 0))})
            return
        else:
            self.stream.write(f"[harvester] {lines[0]}\n")
        self.stream.flush()


DROPPED_FIRST = ("more", "records", "calls", "waited", "elapsed", "capped", "tokens")
"""The parts of the first line a narrow terminal drops, least useful first: the units done and
the ETA are never dropped (on 100 columns the ETA was the part cut off)."""


def fit(head: Sequence[tuple[str, str]], width: int) -> str:
    """The first line within ``width`` columns: whole parts dropped in :data:`DROPPED_FIRST`'s
    order until it fits, then cut with an ellipsis if even units and ETA do not."""
    kept = list(head)
    for name in DROPPED_FIRST:
        if sum(len(text) for _, text in kept) <= width:
            break
        kept = [(n, text) for n, text in kept if n != name]
    return _cut("".join(text for _, text in kept), width)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _now() -> float:
    """The event loop's clock (the scheduler's too), or the monotonic one outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _eta(active: float, remaining: float, finished: float, limit_eta: float) -> float | None:
    """The rate seen while tokens could work, for what is left; never less than what the rate
    limits still impose (:func:`_limit_eta`)."""
    if not finished:
        return limit_eta or None
    return max(active * max(0.0, remaining) / finished, limit_eta)


def _limit_eta(views: Sequence[SlotView], now: float) -> tuple[bool, float]:
    """Whether every token with work waits (rate limit or throttle pause), and the least time the
    slowest waiting token needs for its queued calls: until it may call again, then one window
    per ``calls_per_window`` calls."""
    waiting = working = 0
    eta = 0.0
    for view in views:
        if view.waiting_on is None:
            working += view.busy
            continue
        waiting += 1
        resume = view.resumes_at if view.resumes_at is not None else now
        eta = max(eta, max(0.0, resume - now) + view.windows_left * view.window_seconds)
    return bool(waiting) and not working, eta


def _waiting(views: Sequence[SlotView], now: float) -> str:
    """Why nothing may be moving: tokens whose work waits on their rate limit or a throttle pause,
    and when the first of them may call again (a shared token's window can take up to an hour)."""
    limited = sum(v.waiting_on == "limit" for v in views)
    throttled = sum(v.waiting_on == "throttle" for v in views)
    if not (limited or throttled):
        return ""
    resume = min((v.resumes_at for v in views if v.waiting_on and v.resumes_at is not None), default=None)
    parts = [f"{n:,} {what}" for n, what in ((limited, "at their rate limit"), (throttled, "throttled")) if n]
    after = f", next call in {_fmt_seconds(max(0.0, resume - now))}" if resume is not None else ""
    return f" | tokens waiting: {', '.join(parts)}{after}"


def _slot_line(view: SlotView, name: str) -> str:
    return (f"{name:<24} {view.state:<6} queued {view.queued:,} calls {view.calls:,} errors {view.errors:,} "
            f"throttles {view.throttles:,} waited {_fmt_seconds(view.waited)}")
