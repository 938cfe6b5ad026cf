"""Calls of a kind go one at a time, all tokens together, until the API answered their metrics;
a probe out too long hands over to another token's call (harvester.plan.probes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harvester.plan.probes import HANDOVER_SECONDS, Probes
from harvester.plan.refusals import Kind, Refusals

IMAGE = Kind("media", "FEED", "IMAGE", "facebook", "v25.0")
REEL = Kind("media", "REELS", "VIDEO", "facebook", "v25.0")
METRICS = ("reach", "shares", "views")


class Call:
    def __init__(self, key: str = "a", kind: Kind = IMAGE, metrics: tuple[str, ...] = METRICS,
                 refusals: Refusals | None = None):
        self.key, self.kind, self.metrics, self.refusals = key, kind, metrics, refusals
        self.probe: Kind | None = None

    def wanted(self) -> tuple[Kind, tuple[str, ...]]:
        dropped = self.refusals.dropped(self.kind) if self.refusals is not None else ()
        return self.kind, tuple(m for m in self.metrics if m not in dropped)


class Timers:
    """A hand-over clock driven by hand: ``fire()`` runs the timers still set, in order."""

    def __init__(self) -> None:
        self.set: list[Timer] = []

    def __call__(self, delay: float, then: Callable[[], None]) -> Timer:
        timer = Timer(delay, then)
        self.set.append(timer)
        return timer

    def fire(self) -> None:
        due, self.set = [t for t in self.set if not t.cancelled], []
        for timer in due:
            timer.then()


class Timer:
    def __init__(self, delay: float, then: Callable[[], None]):
        self.delay, self.then, self.cancelled = delay, then, False

    def cancel(self) -> None:
        self.cancelled = True


def gate() -> tuple[Probes[Call], list[Call], Refusals, Timers]:
    refusals, sent, timers = Refusals(), [], Timers()
    return Probes(refusals, sent.append, later=timers), sent, refusals, timers


def test_one_call_per_kind_goes_whatever_the_tokens_until_its_metrics_are_answered_then_all():
    probes, sent, refusals, _ = gate()
    calls = [Call() for _ in range(5)] + [Call("b") for _ in range(3)] + [Call(kind=REEL)]
    for call in calls:
        probes.admit(call)
    assert sent == [calls[0], calls[8]] and probes.waiting() == 7
    refusals.answered(IMAGE, METRICS)                           # token a's answer settles the kind for b too
    probes.ended(calls[0])
    assert sent[2:] == calls[1:8] and probes.waiting() == 0
    assert all(c.probe is None for c in calls[1:8])             # known: none of them is a probe
    probes.admit(later := Call("c"))
    assert sent[-1] is later and later.probe is None


def test_a_refused_metric_costs_learn_after_refusals_across_tokens_then_the_rest_go_without_it():
    probes, sent, refusals, _ = gate()
    calls = [Call(key, refusals=refusals) for _ in range(10) for key in "abcdefghij"]
    for call in calls:
        probes.admit(call)
    assert len(sent) == 1
    refusals_seen = 0
    while refusals.dropped(IMAGE) == frozenset():
        out = [c for c in sent if c.probe is not None and c.metrics == METRICS]
        assert len(out) == 1                                     # one call asking shares at a time
        probe = out[0]
        refusals_seen += 1
        refusals.refused(IMAGE, "shares", "does not support the shares metric", 0.0)
        retry = Call(probe.key, refusals=refusals, metrics=("reach", "views"))
        probes.admit(retry, now=True)                            # asked again at once without it
        probes.ended(probe)
        refusals.answered(IMAGE, retry.wanted()[1])
        probes.ended(retry)
    assert refusals_seen == 3 and probes.waiting() == 0 and len(sent) == 100 + 3
    assert all(c.wanted()[1] == ("reach", "views") for c in calls)


def test_a_probe_out_too_long_hands_over_to_another_tokens_call():
    probes, sent, refusals, timers = gate()
    a, b, c = [Call("a") for _ in range(3)], [Call("b") for _ in range(3)], [Call("c") for _ in range(3)]
    for call in a + b + c:
        probes.admit(call)
    assert sent == [a[0]] and [t.delay for t in timers.set] == [HANDOVER_SECONDS]
    timers.fire()                                                # a's probe sits behind a pause
    assert sent == [a[0], b[0]] and probes.handovers == 1       # a's next calls stay: a is slow
    refusals.answered(IMAGE, METRICS)
    probes.ended(b[0])
    assert sent == [a[0], b[0], *a[1:], *b[1:], *c] and probes.waiting() == 0
    probes.ended(a[0])                                          # the slow probe ends at last: nothing owed
    timers.fire()
    assert len(sent) == 9 and probes.handovers == 1


def test_a_throttled_probe_hands_over_at_once():
    probes, sent, _, timers = gate()
    a, b = [Call("a") for _ in range(2)], [Call("b") for _ in range(2)]
    for call in a + b:
        probes.admit(call)
    probes.stalled(a[0])                                         # throttled: retried after a pause
    assert sent == [a[0], b[0]] and probes.handovers == 1
    probes.stalled(a[0])
    timers.fire()                                                # b's probe is slow too: no one else waits
    assert sent == [a[0], b[0]] and probes.waiting() == 2 and probes.handovers == 2


def test_a_probe_given_up_lets_the_next_token_probe():
    probes, sent, _, _ = gate()
    a, b = [Call("a") for _ in range(3)], [Call("b") for _ in range(3)]
    for call in a + b:
        probes.admit(call)
    probes.ended(a[0])                                           # given up without an answer
    assert sent == [a[0], a[1]] and probes.waiting() == 4


@pytest.mark.looptime
async def test_a_throttled_tokens_probe_holds_other_tokens_for_the_hand_over_time_at_most():
    """On the loop's clock: token a's probe is paused for an hour; b's and c's calls of the kind
    go once it has been out for the hand-over time, settled by b's answer."""
    loop = asyncio.get_running_loop()
    refusals = Refusals()
    went: dict[str, list[float]] = {}

    def send(call: Call) -> None:
        went.setdefault(call.key, []).append(loop.time() - start)
        loop.call_later(3600 if call.key == "a" else 0.2, answered, call)

    def answered(call: Call) -> None:
        refusals.answered(*call.wanted())
        probes.ended(call)

    probes: Probes[Call] = Probes(refusals, send)
    start = loop.time()
    for key in "abc":
        for _ in range(4):
            probes.admit(Call(key))
    await asyncio.sleep(HANDOVER_SECONDS + 1)
    assert went["a"] == pytest.approx([0.0] + [HANDOVER_SECONDS + 0.2] * 3)   # (they queue behind a's pause)
    assert went["b"] == pytest.approx([HANDOVER_SECONDS] + [HANDOVER_SECONDS + 0.2] * 3)
    assert went["c"] == pytest.approx([HANDOVER_SECONDS + 0.2] * 4)
    assert probes.waiting() == 0
    await asyncio.sleep(3600)                                    # the slow probe ends: nothing is owed
    assert sum(map(len, went.values())) == 12 and probes.handovers == 1


def test_a_send_that_gives_the_call_up_at_once_does_not_recurse():
    """A dead token's calls are given up inside ``send``: thousands of them end in a loop, not a stack."""
    refusals = Refusals()
    held: Probes[Call] = Probes(refusals, [].append, later=Timers())
    first = Call()
    held.admit(first)
    calls = [Call() for _ in range(5000)]
    for call in calls:
        held.admit(call)
    held.send = lambda call: held.ended(call)
    held.ended(first)
    assert held.waiting() == 0 and all(c.probe is None for c in calls)
