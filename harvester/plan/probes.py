"""Calls of a kind of object go a few at a time until the API has answered its metrics.

Every call of a kind asks the same metrics, so a metric the API refuses for the kind is refused
by every call of it already sent when the first refusal comes back: at a few dozen calls in
flight, a few dozen refusals before the kind has learned it (:mod:`.refusals`). So a call whose
metrics the run has not yet seen answered for its kind (:meth:`Refusals.known`) is a **probe**:
at most :data:`PROBES` of a kind per token are out at once, and the others wait here, not in the
scheduler. When a probe ends, the waiting calls whose metrics are now known go (all at once),
and the next ones take the probes' places: a kind whose metrics are answered waits one round
trip at the start of a run, and one that refuses a metric costs about :data:`~.refusals.LEARN_AFTER`
refusals plus the probes out when it is learned (one per token with calls of the kind).
Nothing is dropped here: a waiting call is sent, later, as it is (less what was learned
refused meanwhile, which the call leaves out).

Invariant: a call waits only while :data:`PROBES` probes of its kind and token are out, and
every probe's end (:meth:`Probes.ended`: answered, refused or given up) lets the waiting go on;
so no call waits for ever while the scheduler runs, nor on another token's pause.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .refusals import Kind, Refusals

PROBES = 1
"""Calls of a kind, asking metrics not yet answered for it, out at once per token: one token's
probe never waits on another's (a throttled or rate-limited token holds back only its own calls)."""


class Probed(Protocol):
    """A call the probes hold: its token, its kind and the metrics it would ask now, and
    whether it is out as a probe."""

    key: str
    probe: Kind | None

    def wanted(self) -> tuple[Kind, tuple[str, ...]]: ...


J = TypeVar("J", bound=Probed)


class Probes(Generic[J]):
    """Which calls go now (``send``) and which wait for their kind's probes."""

    def __init__(self, refusals: Refusals, send: Callable[[J], None], probes: int = PROBES):
        self.refusals, self.send, self.probes = refusals, send, probes
        self._out: Counter[tuple[Kind, str]] = Counter()
        self._waiting: dict[Kind, dict[str, dict[tuple[str, ...], deque[J]]]] = {}
        """Kind -> token key -> the metrics asked -> the calls waiting, in order."""
        self._due: list[Kind] = []
        self._releasing = False

    def admit(self, call: J, *, now: bool = False) -> None:
        """Send ``call`` if its metrics are known for its kind, or as a probe if one may go (or
        ``now``: a call asked again without a refused metric, whose probe just ended); else it waits."""
        kind, metrics = call.wanted()
        if self.refusals.known(kind, metrics):
            call.probe = None
        elif now or self._out[kind, call.key] < self.probes:
            call.probe = kind
            self._out[kind, call.key] += 1
        else:
            self._waiting.setdefault(kind, {}).setdefault(call.key, {}).setdefault(metrics, deque()).append(call)
            return
        self.send(call)

    def ended(self, call: J) -> None:
        """``call`` was answered or given up: if it was a probe, what waited on it goes on."""
        kind = call.probe
        if kind is None:
            return
        call.probe = None
        self._out[kind, call.key] -= 1
        self._due.append(kind)
        if self._releasing:                 # a send that ended a call at once (a dead token's)
            return
        self._releasing = True
        try:
            while self._due:
                self._release(self._due.pop())
        finally:
            self._releasing = False

    def waiting(self) -> int:
        """Calls waiting for a probe of their kind."""
        return sum(len(calls) for tokens in self._waiting.values() for groups in tokens.values()
                   for calls in groups.values())

    def _release(self, kind: Kind) -> None:
        """Every waiting call of ``kind`` whose metrics are now known goes; so does a probe of
        each token that has none out."""
        tokens = self._waiting.get(kind, {})
        for key, groups in list(tokens.items()):
            for metrics in list(groups):
                calls = groups[metrics]
                while calls and (self.refusals.known(*calls[0].wanted()) or self._out[kind, key] < self.probes):
                    self.admit(calls.popleft())
                if not calls:
                    del groups[metrics]
            if not groups:
                del tokens[key]
        if not tokens:
            self._waiting.pop(kind, None)
