"""What an error answer does to its job, its token's slot and the others: the policy's decision
(``decide``) handled by the table :data:`HANDLERS`. A ``RETRY`` is bounded by ``max_attempts``, or
by the decision's own ``attempts`` when it gives fewer, with full-jitter backoff; a ``SKIP`` or
``FAIL`` gives the job up; a ``FAIL_TOKEN`` kills the slot and gives up everything queued on it.

Throttles are weighed by their evidence (:class:`ThrottleEvidence`, read by :func:`waited_out`
through the table :data:`WAIT_OUT`): the server's estimate, the latest usage its answers reported
within the window (the token's own, or for code 4 the highest of any token), how many came in a
row and what share of the token's recent answers they make. With an estimate, with the budget
reported spent (at or above ``HIGH_MARK``), with nothing reported, from the third in a row, or
once throttles make ``THROTTLE_SHARE`` of its recent answers, a throttle is waited out: the
token (code 4: every token) pauses for the estimate or 60 s doubling, its depth is halved, and
then one call probes it. Otherwise it is a lone one, a throttle the budget does not explain: it
costs that call a short retry (full jitter under ``LONE_RETRY``, doubling if the next is lone
too), and nothing else: the token keeps its pace, its depth and its other calls. A real
throttle is never answered by a burst: the token's next throttle before an answer makes a row,
and its calls throttled meanwhile wait the pause behind one probe. A throttle of a call sent
before (or with) the last waited-out one adds nothing: that episode is handled. Every wait the
server asks for (in a throttle or a usage header) is capped at the window (``waits/capped``,
:attr:`Outcomes.capped_wait`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import ClassVar

import msgspec

from .. import summary as stat
from ..errors import GraphError, HarvesterError, TransportError
from ..graph.policy import Action, Decision
from ..summary import Stats, plural
from .pace import HIGH_MARK
from .rings import Rings
from .slot import Entry, Job, Slot

__all__ = ["HANDLERS", "Outcomes", "ThrottleEvidence", "backoff", "waited_out"]


BACKOFF_BASE = 1.0
"""The ceiling of the first retry's wait (seconds); it doubles with each attempt (full jitter)."""

BACKOFF_CAP = 300.0
"""The highest ceiling of a retry's wait."""


THROTTLE_FIRST_PAUSE = 60.0
"""The pause after a throttle that is waited out when the server gave no wait; it doubles, up to
the window."""

LONE_RETRY = 1.0
"""The ceiling of a lone throttle's retry (seconds, full jitter: that call only, even for code 4);
it doubles for a second lone one in a row."""

LONE_THROTTLES = 2
"""Throttles in a row that may still be lone ones: one more is waited out."""

THROTTLE_SHARE = 0.2
"""Throttles are no blips once they make this share of a token's recent answers (a moving
average of weight ``slot.FAST_WEIGHT / 2``, about the last 16): a server that throttles every
other call reaches it at its fourth throttle, never in a row; 1 % of blips stays far below."""

class ThrottleEvidence(msgspec.Struct, frozen=True):
    """What is known when a throttle answer comes."""

    estimate: float | None
    """The server's wait (``estimated_time_to_regain_access``), if it gave one."""
    percent: int | None
    """The latest usage reported within the window: the token's own (its throttle answer's
    included), or for an app throttle the highest any token reported (each answer's figure is at
    least the app's ``X-App-Usage``). None: nothing reported."""
    in_row: int
    """Throttles in a row of this token, this one included."""
    share: float = 0.0
    """The share of throttles among the token's recent answers, this one included."""


WAIT_OUT: tuple[tuple[Callable[[ThrottleEvidence], bool], str], ...] = (
    (lambda e: e.estimate is not None, "the server gave a wait"),
    (lambda e: e.percent is None, "no usage reported"),
    (lambda e: e.percent is not None and e.percent >= HIGH_MARK, "usage at the high mark"),
    (lambda e: e.in_row > LONE_THROTTLES, "several in a row"),
    (lambda e: e.share >= THROTTLE_SHARE, "many among its recent answers"),
)
"""When a throttle is waited out (as the scope says, probing with one call); else it is lone."""


def waited_out(evidence: ThrottleEvidence) -> str | None:
    """Why a throttle is waited out, or None: a lone one, a short retry of that call."""
    return next((why for holds, why in WAIT_OUT if holds(evidence)), None)


class Outcomes:
    """The scheduler's answer to its calls' errors. It changes the slots through their methods and
    the queue through ``rings`` and ``timer`` (look at a slot again then), never the dispatch."""

    def __init__(self, stats: Stats, *, slots: dict[str, Slot], rings: Rings, timer: Callable[[float, Slot], None],
                 clock: Callable[[], float], decide: Callable[[HarvesterError], Decision], window_seconds: float,
                 max_attempts: int, on_give_up: Callable[[Job, Decision], None],
                 on_token_dead: Callable[[str, Decision], None], backoff_base: float = BACKOFF_BASE,
                 backoff_cap: float = BACKOFF_CAP, rng: random.Random | None = None):
        self.stats, self.slots, self.rings, self.timer, self.now = stats, slots, rings, timer, clock
        self.decide, self.window_seconds, self.max_attempts = decide, window_seconds, max_attempts
        self.on_give_up, self.on_token_dead = on_give_up, on_token_dead
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.rng = rng or random.Random()
        self.app_paused_until = 0.0
        """Until when an app throttle paused every token (a slot made meanwhile starts paused)."""
        self.capped_wait: float | None = None
        """The longest wait the server asked for above the window (each was capped at it)."""

    def __repr__(self) -> str:
        return f"Outcomes(slots={len(self.slots)}, capped_wait={self.capped_wait})"

    def capped(self, asked: float) -> None:
        """The server asked for a wait above the window: it was cut to the window."""
        self.stats.inc(stat.WAITS_CAPPED)
        self.capped_wait = max(self.capped_wait or 0.0, asked)

    def waited(self, slot: Slot, counter: str, seconds: float) -> None:
        slot.wait(seconds)
        self.stats.inc(counter, seconds)

    def failed(self, slot: Slot, entry: Entry, error: HarvesterError, started: float) -> None:
        """A call of ``slot`` (``entry``'s, started at ``started``) answered ``error``."""
        self.stats.inc(stat.CALLS_ERROR)
        self.stats.inc(_error_counter(error))
        slot.failed()
        asked = slot.observe(error.usage if isinstance(error, GraphError) else None, self.now(), may_speed_up=False)
        decision = self.decide(error)
        if decision.wait is not None and decision.wait > self.window_seconds:
            asked = max(asked or 0.0, decision.wait)
            decision = msgspec.structs.replace(decision, wait=self.window_seconds)
        if asked is not None:
            self.capped(asked)
        if isinstance(error, GraphError) and decision.action in ANSWERS:
            slot.answered(started)              # the API answered this unit: the token works
        if slot.death is not None and decision.action in (Action.RETRY, Action.THROTTLE):
            self.on_give_up(entry.job, slot.death)
            return
        self.HANDLERS[decision.action](self, slot, entry, decision)

    def _retry(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        slot.pace.erred(entry.started, self.now())   # a transient error: maybe fewer calls in flight
        entry.attempts += 1
        if entry.attempts >= min(self.max_attempts, decision.attempts or self.max_attempts):
            reason = f"{decision.reason} after {plural(entry.attempts, 'attempt')}"
            self.on_give_up(entry.job, msgspec.structs.replace(decision, action=Action.FAIL, reason=reason, wait=None,
                                                             transient=True))
            return
        wait = backoff(entry.attempts, decision, self.rng, self.backoff_base, self.backoff_cap)
        self.stats.inc(stat.RETRIES)
        self.waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        self.rings.delay(slot, entry, self.now() + wait)
        self.timer(self.now() + wait, slot)

    def _throttle(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        """Wait a throttle out if the evidence says the budget may be spent, then probe with one
        call; else retry that call alone shortly (see :data:`WAIT_OUT`). A call sent before the
        last waited-out throttle adds nothing: it is queued again behind that pause."""
        self.stats.inc(stat.THROTTLES)
        now = self.now()
        in_row = slot.count_throttle(entry.started)
        if in_row is None:
            self._requeue(slot, entry)
            return
        evidence = ThrottleEvidence(decision.wait, self._reported_usage(slot, decision.scope, now), in_row,
                                    slot.pace.throttle_share)
        if waited_out(evidence) is None:
            self._lone(slot, entry, in_row, now)
            return
        self.stats.inc(stat.THROTTLES_WAITED_OUT)
        slot.pace.cut(entry.started, now)
        scope = decision.scope
        wait = decision.wait or _doubling(THROTTLE_FIRST_PAUSE, in_row, self.window_seconds)
        until = now + wait
        if scope == "app":
            self.app_paused_until = max(self.app_paused_until, until)
        for paused in self.slots.values() if scope == "app" else (slot,):
            paused.pause(until)
            paused.throttled(now)                 # after the pause, one call finds out
        self.waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        self._requeue(slot, entry)

    def _lone(self, slot: Slot, entry: Entry, in_row: int, now: float) -> None:
        """A lone throttle: that call again after a short jittered wait, and nothing else (no
        pause, no cut, no probe: one blip costs about one call)."""
        self.stats.inc(stat.THROTTLES_LONE)
        wait = self.rng.random() * _doubling(LONE_RETRY, in_row, self.window_seconds)
        self.waited(slot, stat.WAIT_BACKOFF_SECONDS, wait)
        self.rings.delay(slot, entry, now + wait)
        self.timer(now + wait, slot)

    def _requeue(self, slot: Slot, entry: Entry) -> None:
        """Back in the queue: a throttled attempt does not count."""
        self.rings.push(slot, entry)
        self.rings.add(slot)

    def _give_up(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        self.on_give_up(entry.job, decision)

    def _fail_token(self, slot: Slot, entry: Entry, decision: Decision) -> None:
        if slot.kill(decision):
            self.on_token_dead(slot.key, decision)
        self.on_give_up(entry.job, decision)
        for queued in self.rings.drain(slot):
            self.on_give_up(queued.job, decision)

    def _reported_usage(self, slot: Slot, scope: str, now: float) -> int | None:
        """The usage evidence of a throttle of ``scope`` (see :class:`ThrottleEvidence`)."""
        if scope != "app":
            return slot.pace.reported_usage(now, self.window_seconds)
        reports = [r for s in self.slots.values() if (r := s.pace.reported_usage(now, self.window_seconds)) is not None]
        return max(reports) if reports else None

    HANDLERS: ClassVar[dict[Action, Callable[[Outcomes, Slot, Entry, Decision], None]]] = {
        Action.RETRY: _retry,
        Action.THROTTLE: _throttle,
        Action.SKIP: _give_up,
        Action.REFUSE: _give_up,
        Action.FAIL: _give_up,
        Action.FAIL_TOKEN: _fail_token,
    }
    """What each policy action does to the job, its slot and the others."""


HANDLERS = Outcomes.HANDLERS

ANSWERS = frozenset({Action.SKIP, Action.REFUSE, Action.FAIL})
"""Actions for an API error that is about the unit, not the token: like data, it proves the token
works (after a throttle, the probe may well meet a media without insights)."""


def backoff(attempts: int, decision: Decision, rng: random.Random, base: float = BACKOFF_BASE,
            cap: float = BACKOFF_CAP) -> float:
    """The wait before the next attempt of a call that failed ``attempts`` times: full jitter under
    a ceiling doubling from ``base`` up to ``cap``, and at least what the server asked for."""
    ceiling = min(cap, base * 2 ** (attempts - 1))
    return max(rng.random() * ceiling, decision.wait or 0.0)


def _doubling(first: float, n: int, cap: float) -> float:
    """``first`` for the first in a row, doubling with each after, at most ``cap``."""
    return min(cap, first * 2 ** (n - 1))


def _error_counter(error: HarvesterError) -> str:
    if isinstance(error, GraphError) and error.code is not None:
        return f"errors/code/{error.code}"
    if isinstance(error, TransportError):
        return stat.ERRORS_TRANSPORT
    return f"errors/{type(error).__name__}"

