"""Progress while a harvest runs: a live block on a terminal, plain log lines otherwise.

It only reads the run's flat counters and the scheduler's per-slot views, every ``interval``
seconds; it never touches the work itself, so it can be left out (library use) at no cost.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    def __init__(self, harvester, *, stream: TextIO = sys.stderr, interval: float | None = None):
        self.harvester = harvester
        self.stream = stream
        self.live = stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.live else 30.0)
        self._lines = 0
        self._started = time.monotonic()

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
        planned, done = c.get("units/planned", 0), c.get("units/done", 0)
        finished = done + c.get("units/skipped", 0) + c.get("units/failed", 0) + c.get("units/failed_token", 0)
        elapsed = time.monotonic() - self._started
        eta = elapsed * (planned - finished) / finished if finished else None
        lines = [f"units {int(finished):,}/{int(planned):,} (more as media are found) | calls ok "
                 f"{int(c.get('calls/ok', 0)):,} err {int(c.get('calls/error', 0)):,} | records "
                 f"{int(c.get('records/written', 0)):,} | waited {c.get('wait/limit_seconds', 0):.0f}s | "
                 f"elapsed {_fmt_seconds(elapsed)} eta {_fmt_seconds(eta)}"]
        scheduler = self.harvester._scheduler
        if scheduler is not None:
            lines[0] += _waiting(scheduler.slots.values(), scheduler.now())
            if scheduler.capped_wait is not None:
                lines[0] += (f" | server asked for a wait of {scheduler.capped_wait:.3g} s: capped at "
                             f"{_fmt_seconds(scheduler.window_seconds)}")
        for slot in (scheduler.slots.values() if scheduler is not None and self.live else ()):
            lines.append("  " + _slot_line(slot))
        return lines

    def show(self) -> None:
        lines = self.lines()
        if self.live:
            up = f"\x1b[{self._lines}F" if self._lines else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines = len(lines)
        else:
            self.stream.write(f"[harvester] {lines[0]}\n")
        self.stream.flush()


def _waiting(slots, now: float) -> str:
    """Why nothing may be moving: tokens whose work waits on their rate limit or a throttle pause,
    and when the first of them may call again (a shared token's window can take up to an hour)."""
    limited = throttled = 0
    resume: float | None = None
    for slot in slots:
        waiting = slot.waiting_on(now)
        if waiting is None:
            continue
        throttled += waiting == "throttle"
        limited += waiting == "limit"
        if slot.timer_at is not None:
            resume = slot.timer_at if resume is None else min(resume, slot.timer_at)
    if not (limited or throttled):
        return ""
    parts = [f"{n:,} {what}" for n, what in ((limited, "at their rate limit"), (throttled, "throttled")) if n]
    after = f", next call in {_fmt_seconds(max(0.0, resume - now))}" if resume is not None else ""
    return f" | tokens waiting: {', '.join(parts)}{after}"


def _slot_line(slot) -> str:
    now = asyncio.get_running_loop().time()      # the scheduler's clock: the loop's, not the wall's
    state = "dead" if slot.dead else "paused" if slot.paused_until > now else "ok"
    return (f"{slot.key:<24} {state:<6} queued {len(slot.queue):,} calls {slot.calls:,} errors {slot.errors:,} "
            f"throttles {slot.throttles:,} waited {slot.waited:.0f}s")
