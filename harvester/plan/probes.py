"""Calls of a kind of object go one at a time until the API has answered its metrics.

Every call of a kind asks the same metrics, so a metric the API refuses for the kind is refused
by every call of it already sent when the first refusal comes back: at a few dozen calls in
flight, a few dozen refusals before the kind has learned it (:mod:`.refusals`). So a call whose
metrics the run has not yet seen answered for its kind (:meth:`Refusals.known`) is a **probe**:
at most :data:`PROBES` of a kind are out at once, whatever the number of tokens, and the other
calls of the kind wait here, not in the scheduler. The first answer of any token settles the
kind for every token: the waiting calls whose metrics are now known go (all at once), and the
next ones take the probes' places. A kind whose metrics are answered waits one round trip at
the start of a run; one that refuses a metric costs about :data:`~.refusals.LEARN_AFTER`
refusals plus the probes handed over meanwhile. Nothing is dropped here: a waiting call is sent,
later, as it is (less what was learned refused meanwhile, which the call leaves out).

A probe that was throttled or is to be retried (:meth:`Probes.stalled`), or has not ended
:data:`HANDOVER_SECONDS` after it was sent (its token paused or rate-limited before it went, or
the API slow), **hands over**: it no longer counts, and a waiting call of another token goes as
a probe in its place. So one token never holds another's calls
for longer than that, and a slow API costs a probe more per hand-over time, not a stall.

Invariant: a call waits only while a probe of its kind is out that was sent less than
:data:`HANDOVER_SECONDS` ago (or every token with waiting calls has a probe out); every probe's
end (:meth:`Probes.ended`: answered, refused or given up) and every hand-over lets the waiting
go on; so no call waits for ever while the scheduler runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .refusals import Kind, Refusals

PROBES = 1
"""Calls of a kind, asking metrics not yet answered for it, out at once (all tokens together)."""
HANDOVER_SECONDS = 5.0
"""How long a probe may be out before another token's call goes as a probe beside it: well
above an insights call's round trip, well below a throttled token's pause."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class _Untimed:
    def cancel(self) -> None:
        pass


_UNTIMED = _Untimed()
"""The timer of a probe sent outside an event loop (a job driven by hand): it never hands over."""

Later = Callable[[float, Callable[[], None]], Cancellable]
"""Call a function so many seconds on (``loop.call_later``)."""


class Probed(Protocol):
    """A call the probes hold: its token, its kind and the metrics it would ask now, and
    whether it is out as a probe."""

    key: str
    probe: Kind | None

    def wanted(self) -> tuple[Kind, tuple[str, ...]]: ...


J = TypeVar("J", bound=Probed)


class Probes(Generic[J]):
    """Which calls go now (``send``) and which wait for their kind's probe. ``later``: how a
    hand-over is timed (None: the running loop's ``call_later``)."""

    def __init__(self, refusals: Refusals, send: Callable[[J], None], probes: int = PROBES, *,
                 later: Later | None = None, handover: float = HANDOVER_SECONDS):
        self.refusals, self.send, self.probes = refusals, send, probes
        self.handover, self._later = handover, later
        self._out: Counter[Kind] = Counter()
        """Probes of a kind out and not handed over."""
        self._timers: dict[int, Cancellable] = {}
        """id of a probe out and not handed over -> its hand-over timer."""
        self._slow: Counter[tuple[Kind, str]] = Counter()
        """(kind, token key) -> its probes out that handed over: that token gets no other."""
        self._waiting: dict[Kind, dict[str, dict[tuple[str, ...], deque[J]]]] = {}
        """Kind -> token key -> the metrics asked -> the calls waiting, in order."""
        self._count = 0
        """Calls waiting (the sum over ``_waiting``)."""
        self._due: list[Kind] = []
        self._releasing = False
        self.handovers = 0
        """Probes that handed over (for the closing note and tests)."""

    def admit(self, call: J, *, now: bool = False) -> None:
        """Send ``call`` if its metrics are known for its kind, or as a probe if one may go (or
        ``now``: a call asked again without a refused metric, whose probe just ended); else it waits."""
        self._admit(call, *call.wanted(), now=now)

    def _admit(self, call: J, kind: Kind, metrics: tuple[str, ...], *, now: bool = False) -> None:
        """:meth:`admit` of a call whose kind and metrics (``call.wanted()``) were just read."""
        if self.refusals.known(kind, metrics):
            call.probe = None
        elif now or self._may_probe(kind, call.key):
            self._probe(call, kind)
        else:
            self._waiting.setdefault(kind, {}).setdefault(call.key, {}).setdefault(metrics, deque()).append(call)
            self._count += 1
            return
        self.send(call)

    def ended(self, call: J) -> None:
        """``call`` was answered or given up: if it was a probe, what waited on it goes on."""
        kind = call.probe
        if kind is None:
            return
        call.probe = None
        timer = self._timers.pop(id(call), None)
        if timer is not None:
            timer.cancel()
            self._out[kind] -= 1
        else:                                   # it had handed over
            self._slow[kind, call.key] -= 1
        self._go_on(kind)

    def stalled(self, call: J) -> None:
        """``call`` will not answer soon (throttled, or to be retried after a backoff): if it is
        a probe, it hands over now."""
        kind, timer = call.probe, self._timers.get(id(call))
        if kind is not None and timer is not None:
            timer.cancel()
            self._hand_over(call, kind)

    def waiting(self) -> int:
        """Calls waiting for a probe of their kind."""
        return self._count

    def _may_probe(self, kind: Kind, key: str) -> bool:
        return self._out[kind] < self.probes and not self._slow[kind, key]

    def _probe(self, call: J, kind: Kind) -> None:
        call.probe = kind
        self._out[kind] += 1
        later = self._later
        if later is None:
            try:
                later = self._later = asyncio.get_running_loop().call_later
            except RuntimeError:            # driven by hand, outside a loop: nothing to time
                self._timers[id(call)] = _UNTIMED
                return
        self._timers[id(call)] = later(self.handover, lambda: self._hand_over(call, kind))

    def _hand_over(self, call: J, kind: Kind) -> None:
        """``call`` is out as a probe for too long: it no longer counts, another token's goes."""
        if self._timers.pop(id(call), None) is None or call.probe is not kind:
            return
        self._out[kind] -= 1
        self._slow[kind, call.key] += 1
        self.handovers += 1
        self._go_on(kind)

    def _go_on(self, kind: Kind) -> None:
        self._due.append(kind)
        if self._releasing:                 # a send that ended a call at once (a dead token's)
            return
        self._releasing = True
        try:
            while self._due:
                self._release(self._due.pop())
        finally:
            self._releasing = False

    def _release(self, kind: Kind) -> None:
        """Every waiting call of ``kind`` whose metrics are now known goes; so does a probe, if
        none is out, from the first token with waiting calls that has no probe out."""
        tokens = self._waiting.get(kind, {})
        for key, groups in list(tokens.items()):
            for metrics in list(groups):
                calls = groups[metrics]
                while calls:
                    wanted = calls[0].wanted()
                    if not (self.refusals.known(*wanted) or self._may_probe(kind, key)):
                        break
                    self._count -= 1
                    self._admit(calls.popleft(), *wanted)
                if not calls:
                    del groups[metrics]
            if not groups:
                del tokens[key]
        if not tokens:
            self._waiting.pop(kind, None)
