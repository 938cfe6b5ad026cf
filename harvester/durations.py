"""One way to show a duration, everywhere one is shown (progress, summary, estimate, status)."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``12.3 s`` under a minute, ``6m10s`` under an hour, ``1h05m`` under a day, ``2d03h`` beyond;
    ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    days, whole = divmod(whole, 86400)
    hours, whole = divmod(whole, 3600)
    minutes, secs = divmod(whole, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"
