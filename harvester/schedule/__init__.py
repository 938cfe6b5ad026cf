"""Who calls when: a rolling-window limiter per token, a slot per token, one scheduler.

    limiter.py    RollingWindowLimiter: at most N starts in any rolling window, none idle
    times.py      Times: a log of times leaving from the front by a cutoff (the limiter's
                  starts, the call-cost log's sends, the simulator's windows' calls)
    slot.py       Job (protocol), Entry, Slot: one token's queue, limiter, pause,
                  death and counters
    pace.py       Pace: a slot's usage evidence, its limiter's limit and its depth
    scheduler.py  Scheduler: fair dispatch over slots under a global cap; outcomes by policy,
                  throttles weighed by their evidence
    dispatch.py   Dispatcher, Timers: the scheduler's loop, its timers and its calls' tasks
"""

from .limiter import RollingWindowLimiter
from .scheduler import Scheduler
from .slot import Job, Slot

__all__ = ["Job", "RollingWindowLimiter", "Scheduler", "Slot"]
