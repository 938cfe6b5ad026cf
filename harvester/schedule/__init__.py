"""Who calls when: a rolling-window limiter per token, a slot per token, one scheduler.

    limiter.py    RollingWindowLimiter: at most N starts in any rolling window, none idle
    slot.py       Slot: one token's queue, limiter, pause, backoff, death and counters
    scheduler.py  Scheduler: fair dispatch over slots under a global cap; outcomes by policy
"""

from .limiter import RollingWindowLimiter
from .scheduler import Scheduler
from .slot import Slot

__all__ = ["RollingWindowLimiter", "Scheduler", "Slot"]
