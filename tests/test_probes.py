"""Calls of a kind go one per token until the API answered their metrics (harvester.plan.probes)."""

from __future__ import annotations

from harvester.plan.probes import Probes
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


def gate() -> tuple[Probes[Call], list[Call], Refusals]:
    refusals, sent = Refusals(), []
    return Probes(refusals, sent.append), sent, refusals


def test_one_call_per_kind_and_token_goes_until_its_metrics_are_answered_then_all():
    probes, sent, refusals = gate()
    calls = [Call() for _ in range(5)] + [Call("b")] + [Call(kind=REEL)]
    for call in calls:
        probes.admit(call)
    assert sent == [calls[0], calls[5], calls[6]] and probes.waiting() == 4
    refusals.answered(IMAGE, METRICS)
    probes.ended(calls[0])
    assert sent[3:] == calls[1:5] and probes.waiting() == 0
    assert all(c.probe is None for c in calls[1:5])             # known: none of them is a probe
    probes.admit(later := Call())
    assert sent[-1] is later and later.probe is None


def test_a_refused_metric_is_probed_one_call_at_a_time_until_learned_then_the_rest_go_without_it():
    probes, sent, refusals = gate()
    calls = [Call(refusals=refusals) for _ in range(10)]
    for call in calls:
        probes.admit(call)
    refusals_seen = 0
    while refusals.dropped(IMAGE) == frozenset():
        probe = sent[-1]
        refusals_seen += 1
        refusals.refused(IMAGE, "shares", "does not support the shares metric", 0.0)
        retry = Call(refusals=refusals, metrics=("reach", "views"))
        probes.admit(retry, now=True)                            # asked again at once without it
        probes.ended(probe)
        refusals.answered(IMAGE, retry.wanted()[1])
        probes.ended(retry)
    assert refusals_seen == 3 and probes.waiting() == 0
    assert all(c.wanted()[1] == ("reach", "views") for c in calls)


def test_a_throttled_tokens_probe_holds_back_only_its_own_calls():
    probes, sent, _ = gate()
    a, b = [Call("a") for _ in range(3)], [Call("b") for _ in range(3)]
    for call in a + b:
        probes.admit(call)
    assert sent == [a[0], b[0]]                                  # a[0] may sit behind a pause for long
    probes.ended(b[0])                                           # b's probe ended without an answer
    assert sent == [a[0], b[0], b[1]] and probes.waiting() == 3


def test_a_send_that_gives_the_call_up_at_once_does_not_recurse():
    """A dead token's calls are given up inside ``send``: thousands of them end in a loop, not a stack."""
    refusals = Refusals()
    held: Probes[Call] = Probes(refusals, [].append)
    first = Call()
    held.admit(first)
    calls = [Call() for _ in range(5000)]
    for call in calls:
        held.admit(call)
    held.send = lambda call: held.ended(call)
    held.ended(first)
    assert held.waiting() == 0 and all(c.probe is None for c in calls)
