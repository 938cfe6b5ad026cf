"""The scheduler in simulated time (looptime): exact windows with no idle budget, fairness,
throttles and dead tokens, bounded jittered retries, priorities, usage feedback, stop and cancel."""

import asyncio
import itertools
import random

import orjson
import pytest

from harvester.errors import ConfigError, GraphError, TransportError
from harvester.graph.policy import Action, Decision
from harvester.graph.wire import Usage
from harvester.schedule.limiter import RollingWindowLimiter
from harvester.schedule.scheduler import Scheduler
from harvester.schedule.slot import Slot
from harvester.simulator.ratelimit import RollingWindow
from harvester.summary import Stats

from support import NOW

pytestmark = pytest.mark.looptime


def graph_error(code, subcode=None, *, usage=None, message="boom"):
    return GraphError(status=400 if code != 2 else 500, code=code, subcode=subcode, message=message, usage=usage)


class Job:
    """A fake call: records when it starts, sleeps ``duration``, then plays its next outcome
    (an exception to raise or a usage to return; after the list runs out, None)."""

    def __init__(self, log, key, label, *, priority=0, duration=0.0, outcomes=(), then=None):
        self.log, self.key, self.label, self.priority = log, key, label, priority
        self.account_id = f"acct-{key}"
        self.duration, self.outcomes, self.then = duration, list(outcomes), then
        self.starts: list[float] = []
        self.cancelled = False

    async def __call__(self, flight=None):
        now = asyncio.get_running_loop().time()
        self.starts.append(now)
        self.log.append((self.key, self.label, now))
        try:
            if self.duration:
                await asyncio.sleep(self.duration)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.then is not None:
            self.then()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Harness:
    def __init__(self, *, calls=100, seconds=60, max_in_flight=64, max_attempts=5, **options):
        self.stats = Stats()
        self.log: list[tuple[str, str, float]] = []
        self.given_up: list[tuple[Job, Decision]] = []
        self.dead: list[tuple[str, Decision]] = []
        self.scheduler = Scheduler(calls, seconds, max_in_flight, max_attempts, self.stats,
                                   on_give_up=lambda job, d: self.given_up.append((job, d)),
                                   on_token_dead=lambda key, d: self.dead.append((key, d)), **options)
        self.origin = asyncio.get_running_loop().time()

    def job(self, key, label, **kw) -> Job:
        job = Job(self.log, key, label, **kw)
        self.scheduler.submit(job)
        return job

    def jobs(self, key, n, **kw) -> list[Job]:
        return [self.job(key, f"{key}{i}", **kw) for i in range(n)]

    def starts(self, key) -> list[float]:
        return [t - self.origin for k, _, t in self.log if k == key]

    async def run(self) -> float:
        await self.scheduler.run()
        return asyncio.get_running_loop().time() - self.origin


def most_in_window(starts, limit, seconds) -> int:
    window = RollingWindow(limit, seconds)
    return max(window.record(t) for t in starts)


class Half(random.Random):
    def random(self):
        return 0.5


# -- exactness and no idle budget ---------------------------------------------------------------

async def test_tight_limits_over_several_tokens_keep_every_window_and_meet_the_bound():
    h = Harness(calls=5, seconds=10)
    for key in ("a", "b", "c"):
        h.jobs(key, 23)
    makespan = await h.run()
    assert makespan == 40                                    # bursts at 0, 10, 20, 30, 40: the bound
    for key in ("a", "b", "c"):
        starts = h.starts(key)
        assert most_in_window(starts, 5, 10) == 5            # zero violations
        assert [starts.count(t) for t in (0, 10, 20, 30, 40)] == [5, 5, 5, 5, 3]
    assert h.stats.get("calls/ok") == 69
    assert h.stats.get("wait/limit_seconds") == 3 * 40


async def test_200_per_hour_with_latency_each_call_starts_as_the_one_200_earlier_leaves():
    h = Harness(calls=200, seconds=3600, max_in_flight=64, per_token_in_flight=8)
    for key in ("t0", "t1", "t2", "t3"):
        h.jobs(key, 1000, duration=0.25)
    makespan = await h.run()
    for key in ("t0", "t1", "t2", "t3"):
        starts = h.starts(key)
        assert most_in_window(starts, 200, 3600) == 200
        assert sum(t < 3600 for t in starts) == 200
        assert all(starts[i] == pytest.approx(starts[i - 200] + 3600, abs=1e-4) for i in range(200, 1000))
    assert makespan < 4 * 3600 + 60


async def test_the_global_cap_bounds_calls_in_flight():
    h = Harness(max_in_flight=3, per_token_in_flight=8)
    for key in "abcd":
        h.jobs(key, 5, duration=1)
    makespan = await h.run()
    starts = sorted(t for _, _, t in h.log)
    overlapping = max(sum(s <= t < s + 1 for s in starts) for t in starts)
    assert overlapping == 3
    assert makespan == 7                                     # 20 calls, 3 at a time, 1 s each


async def test_per_token_cap_bounds_one_token_in_flight():
    """One call probes a new token; once it has answered, the per-token cap holds."""
    h = Harness(max_in_flight=50, per_token_in_flight=2)
    h.jobs("a", 6, duration=1)
    assert await h.run() == 4
    assert h.starts("a") == [0, 1, 1, 2, 2, 3]


# -- fairness -----------------------------------------------------------------------------------

async def test_a_token_with_a_thousand_jobs_does_not_delay_another_with_three():
    h = Harness(calls=10_000, seconds=3600, max_in_flight=2)
    h.jobs("big", 1000, duration=1)
    h.jobs("small", 3, duration=1)
    await h.run()
    assert h.starts("small") == [0, 1, 2]
    assert len(h.starts("big")) == 1000


async def test_a_rate_limited_token_does_not_hold_the_global_cap():
    h = Harness(calls=2, seconds=100, max_in_flight=1)
    h.jobs("slow", 4)
    h.jobs("fast", 3, duration=0)
    h.scheduler.slots["fast"].limiter.calls = h.scheduler.slots["fast"].limiter.limit = 100
    await h.run()
    assert h.starts("fast") == [0, 0, 0]
    assert h.starts("slow") == [0, 0, 100, 100]


# -- throttles ----------------------------------------------------------------------------------

async def test_a_throttled_token_pauses_alone_and_the_pause_grows():
    h = Harness(seconds=3600, per_token_in_flight=1)
    throttled = h.job("a", "a0", outcomes=[graph_error(17), graph_error(17)])
    h.job("a", "a1")
    h.jobs("b", 3, duration=1)
    await h.run()
    assert h.starts("b") == [0, 1, 2]
    assert throttled.starts == [0, 60, 180]                  # paused 60 s, then 120 s
    assert h.starts("a") == [0, 60, 180, 180]
    assert h.given_up == []
    assert h.stats.get("throttles") == 2
    assert h.stats.get("wait/backoff_seconds") == 180
    assert h.stats.get("errors/code/17") == 2


async def test_a_throttle_waits_for_the_time_the_server_gives_and_uses_no_attempt():
    h = Harness(max_attempts=1, seconds=3600)
    job = h.job("a", "a0", outcomes=[graph_error(17, usage=Usage(80, 300.0))])
    await h.run()
    assert job.starts == [0, 300]
    assert h.given_up == []
    assert h.stats.get("calls/ok") == 1


async def test_an_app_throttle_pauses_every_token():
    h = Harness(per_token_in_flight=1, seconds=3600)
    h.job("a", "a0", outcomes=[graph_error(4, usage=Usage(80, 120.0))])
    h.jobs("b", 2, duration=1)
    await h.run()
    assert h.starts("a") == [0, 120]
    assert h.starts("b") == [0, 120]                          # b1 was ready at 1 but the app paused


async def test_usage_at_the_high_mark_slows_the_token_before_it_is_throttled():
    h = Harness(calls=10, seconds=60, per_token_in_flight=1)
    h.jobs("a", 3, outcomes=[Usage(95)])
    h.jobs("b", 3, outcomes=[Usage(50)])
    await h.run()
    assert h.starts("a") == [0, 60, 120]                     # 1 call in the window is 95 %: limit 1
    assert h.starts("b") == [0, 0, 0]
    assert h.scheduler.slots["a"].limiter.limit == 1
    assert h.scheduler.slots["b"].limiter.limit == 10


async def test_usage_with_a_regain_time_pauses_the_token():
    h = Harness(per_token_in_flight=1, seconds=3600)
    h.job("a", "a0", outcomes=[Usage(80, 90.0)])
    h.job("a", "a1")
    await h.run()
    assert h.starts("a") == [0, 90]


# -- dead tokens --------------------------------------------------------------------------------

async def test_a_dead_token_gives_every_job_up_once_and_reports_once():
    h = Harness(per_token_in_flight=2)
    first = h.job("a", "a0", duration=1, outcomes=[graph_error(190, 463)])
    second = h.job("a", "a1", duration=2, outcomes=[graph_error(190, 463)])
    queued = [h.job("a", f"q{i}") for i in range(3)]
    late: list[Job] = []
    h.job("b", "b0", duration=5, then=lambda: late.append(Job(h.log, "a", "late")) or h.scheduler.submit(late[0]))
    h.jobs("b", 2)
    await h.run()
    assert [key for key, _ in h.dead] == ["a"]
    assert h.dead[0][1].action is Action.FAIL_TOKEN and "190/463" in h.dead[0][1].reason
    given = [job for job, _ in h.given_up]
    assert sorted(j.label for j in given) == ["a0", "a1", "late", "q0", "q1", "q2"]
    assert all(d.action is Action.FAIL_TOKEN for _, d in h.given_up)
    assert all(not j.starts for j in queued + late)           # never called
    assert first.starts == [0] and second.starts == []      # the probe found the token dead: one call
    assert len(h.starts("b")) == 3
    assert h.scheduler.slots["a"].dead and h.scheduler.slots["a"].death.reason
    assert h.stats.get("errors/code/190") == 1


async def test_a_retry_of_a_token_that_died_meanwhile_is_given_up():
    h = Harness(per_token_in_flight=2)
    a0 = h.job("a", "a0", duration=2, outcomes=[graph_error(2)])
    a1 = h.job("a", "a1", duration=1, outcomes=[graph_error(190)])
    await h.run()
    assert len(h.dead) == 1
    assert sorted(j.label for j, _ in h.given_up) == ["a0", "a1"]
    assert a0.starts == [0] and a1.starts == [2]              # a0's retry waited, then was given up


# -- retries ------------------------------------------------------------------------------------

async def test_retries_are_bounded_with_growing_waits_and_only_that_job_waits():
    h = Harness(per_token_in_flight=1, max_attempts=4, rng=Half(), backoff_base=2.0)
    failing = h.job("a", "a0", outcomes=[graph_error(2)] * 10)
    h.jobs("a", 2, duration=0.5)
    await h.run()
    assert failing.starts == [0, 1, 3, 7]                    # waits 1, 2, 4: half of 2, 4, 8
    assert h.starts("a")[1:3] == [0, 0.5]                    # the token kept working meanwhile
    [(job, decision)] = h.given_up
    assert job is failing and decision.action is Action.FAIL
    assert decision.reason == "service error (2) after 4 attempts" and decision.code == 2
    assert h.stats.get("retries") == 3
    assert h.stats.get("wait/backoff_seconds") == 7
    assert h.stats.get("calls/error") == 4


async def test_full_jitter_waits_stay_under_the_doubling_ceiling():
    h = Harness(max_attempts=6, rng=random.Random(7), backoff_base=10.0, backoff_cap=40.0)
    job = h.job("a", "a0", outcomes=[TransportError("reset")] * 5)
    await h.run()
    gaps = [b - a for a, b in itertools.pairwise(job.starts)]
    assert len(gaps) == 5 and all(g > 0 for g in gaps)
    assert all(g <= c for g, c in zip(gaps, [10, 20, 40, 40, 40], strict=True))
    assert len(set(gaps)) == 5                               # jittered, not fixed
    assert h.given_up == [] and h.stats.get("errors/transport") == 5


async def test_skip_and_fail_give_the_unit_up_without_retrying():
    h = Harness()
    few_viewers = graph_error(10, message="(#10) Not enough viewers for the media to show insights")
    skipped = h.job("a", "a0", outcomes=[few_viewers])
    failed = h.job("a", "a1", outcomes=[graph_error(100, message="Invalid parameter")])
    await h.run()
    assert skipped.starts == failed.starts == [0]
    actions = {job.label: d.action for job, d in h.given_up}
    assert actions == {"a0": Action.SKIP, "a1": Action.FAIL}
    assert h.stats.get("retries") == 0


async def test_a_missing_token_kills_the_slot_through_the_default_policy():
    h = Harness(per_token_in_flight=1)
    h.jobs("a", 3, outcomes=[ConfigError("no access token for token_env 'A'")])
    await h.run()
    assert len(h.dead) == 1 and len(h.given_up) == 3
    assert h.stats.get("errors/ConfigError") == 1


# -- order, submissions, stop, cancel, abort ----------------------------------------------------

async def test_work_that_makes_more_work_first_while_few_leaves_wait():
    """Priority above 0 (it makes more work) starts first, the lower first, while fewer leaves
    (priority 0) than the leaf target wait; leaves go FIFO."""
    h = Harness(per_token_in_flight=1)
    for label, priority in [("p2", 2), ("p0a", 0), ("p1", 1), ("p0b", 0)]:
        h.job("a", label, priority=priority)
    await h.run()
    assert [label for _, label, _ in h.log] == ["p1", "p2", "p0a", "p0b"]


async def test_leaves_first_while_the_leaf_target_is_met():
    h = Harness(max_in_flight=1)
    labels = await leaves_then_opening(h, h.scheduler.leaf_target)
    assert labels.index("opens") == 3 and labels[:3] == ["a0", "a1", "a2"]     # leaves below the target: it goes


async def leaves_then_opening(h: Harness, leaves: int) -> list[str]:
    """``leaves + 2`` leaves queued on one token, then work that opens more: the order they ran."""
    h.jobs("a", leaves + 2)
    h.job("a", "opens", priority=1)
    await h.run()
    return [label for _, label, _ in h.log]


async def test_the_leaf_target_grows_with_the_calls_in_flight_up_to_a_ceiling():
    """16 leaves per call in flight, at most LEAF_CEILING: past it, a wider cap on calls in flight
    queues no more work (the queued and held work is the harvest's memory)."""
    from harvester.schedule.scheduler import LEAF_BUFFER, LEAF_CEILING

    assert Harness(max_in_flight=4).scheduler.leaf_target == 4 * LEAF_BUFFER
    assert Harness(max_in_flight=512).scheduler.leaf_target == LEAF_CEILING == 2048
    assert Harness(max_in_flight=100_000).scheduler.leaf_target == LEAF_CEILING
    labels = await leaves_then_opening(Harness(max_in_flight=512, per_token_in_flight=1), LEAF_CEILING)
    assert labels.index("opens") == 3 and labels[:3] == ["a0", "a1", "a2"]     # leaves below the ceiling: it goes


async def test_while_the_calls_held_outside_reach_the_leaf_target_no_page_or_account_starts():
    """Calls held outside the scheduler (a kind's probes) are planned work it cannot see: while
    they are at the leaf target, a media's first call (priority 1) and leaves still start, but
    no page or account that would plan more; once they go, the rest starts."""
    held = {"n": 0}
    h = Harness(per_token_in_flight=1, held=lambda: held["n"])
    held["n"] = h.scheduler.leaf_target
    h.job("a", "account", priority=3)
    h.job("a", "page", priority=2)
    h.job("a", "first call", priority=1)
    h.job("a", "leaf", then=lambda: held.update(n=0))           # the probe answered: the held calls went
    await h.run()
    assert [label for _, label, _ in h.log] == ["first call", "leaf", "page", "account"]


async def test_jobs_may_submit_more_jobs_and_run_waits_for_them():
    h = Harness(calls=2, seconds=10)
    children: list[Job] = []

    def spawn():
        for i in range(3):
            children.append(h.job("a", f"child{i}"))

    h.job("a", "parent", then=spawn)
    assert await h.run() == 10
    assert all(c.starts for c in children)


async def test_stop_lets_calls_in_flight_finish_and_starts_nothing_more():
    h = Harness(per_token_in_flight=2)
    jobs = h.jobs("a", 10, duration=10)
    runner = asyncio.create_task(h.scheduler.run())
    await asyncio.sleep(5)
    h.scheduler.stop()
    await runner
    assert asyncio.get_running_loop().time() - h.origin == 10
    assert [len(j.starts) for j in jobs] == [1] + [0] * 9      # the probe call, then nothing more
    assert h.stats.get("calls/ok") == 1 and not any(j.cancelled for j in jobs)


async def test_cancelling_run_cancels_the_calls_in_flight():
    h = Harness(per_token_in_flight=2)
    jobs = h.jobs("a", 4, duration=10)
    runner = asyncio.create_task(h.scheduler.run())
    await asyncio.sleep(5)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert [j.cancelled for j in jobs] == [True, False, False, False]
    assert h.stats.get("calls/ok") == 0


async def test_an_exception_outside_the_error_tree_aborts_run_and_cancels_the_rest():
    h = Harness()
    slow = h.job("a", "slow", duration=100)
    h.job("b", "bug", duration=1, outcomes=[ValueError("a bug")])
    with pytest.raises(ValueError, match="a bug"):
        await h.run()
    assert slow.cancelled
    assert asyncio.get_running_loop().time() - h.origin == 1


async def test_slots_are_keyed_by_token_and_show_their_counters():
    h = Harness(max_attempts=2, rng=Half())
    h.job("a", "a0", outcomes=[graph_error(2)])
    h.job("b", "b0")
    await h.run()
    a, b = h.scheduler.slots["a"], h.scheduler.slots["b"]
    assert (a.calls, a.errors, b.calls, b.errors) == (2, 1, 1, 0)
    assert "a" in repr(a) and not a.queue and not a.delayed


async def test_discovery_waits_while_leaf_jobs_can_use_the_capacity():
    """50 tokens, each with one discovery job that finds 20 leaf jobs; 4 calls in flight at most.
    Deep before wide: the queue never holds the work of every token at once."""
    h = Harness(calls=10**6, seconds=3600, max_in_flight=4)
    most_queued = 0

    def discover(key):
        def found():
            nonlocal most_queued
            for i in range(20):
                h.job(key, f"{key}-leaf{i}", duration=1.0)
            most_queued = max(most_queued, h.scheduler.rings.pending)
        return found

    for n in range(50):
        h.job(f"t{n}", f"t{n}-discover", priority=2, duration=1.0, then=discover(f"t{n}"))
    elapsed = await h.run()
    assert len(h.log) == 50 * 21
    assert most_queued <= h.scheduler.leaf_target + 4 * 20 + 50   # a few tokens' leaves, not 50 x 20
    assert elapsed == pytest.approx(50 * 21 / 4, abs=2)   # and the capacity was never idle


async def test_rate_limited_leaves_never_hold_back_discovery():
    """When leaf jobs wait on their token's limiter, other tokens' discovery goes ahead."""
    h = Harness(calls=2, seconds=100, max_in_flight=4)
    h.jobs("busy", 6)                                  # 2 now, 2 at 100 s, 2 at 200 s
    late = h.job("idle", "idle-discover", priority=2)
    await h.run()
    assert late.starts == [0.0]


async def test_a_throttled_token_comes_back_with_one_probe_call():
    """After a throttle pause, one call finds out whether it is over: a token still throttled
    costs one more call, not one per call in flight."""
    h = Harness(per_token_in_flight=4)
    h.job("a", "a0", duration=1)                                   # proves the token
    h.job("a", "a1", duration=1, outcomes=[graph_error(17)])       # throttled: pause 60 s
    h.jobs("a", 6, duration=1)
    await h.run()
    starts = h.starts("a")
    after = [t for t in starts if t >= 60]
    assert after[0] < after[1] and after.count(after[0]) == 1      # one probe, then the rest


def test_the_seams_are_typed_action_keyed_and_the_slot_changes_only_through_methods():
    import dataclasses

    from harvester.graph import policy
    from harvester.graph import policy as decision
    from harvester.schedule.outcomes import HANDLERS

    assert policy.Action is decision.Action and policy.Decision is decision.Decision
    assert set(HANDLERS) == set(Action)
    slot = Slot("a", RollingWindowLimiter(10, 60, clock=lambda: 0.0))
    assert dataclasses.is_dataclass(slot) and not hasattr(slot, "__dict__")
    with pytest.raises(AttributeError):
        slot.dead_reason = "x"                              # gone, and no new attributes
    death = Decision(Action.FAIL_TOKEN, "token expired (190/463)")
    assert slot.kill(death) and not slot.kill(death) and slot.death is death
    slot.throttled(5.0)
    slot.answered(5.0)
    assert not slot.proven                                  # sent with the throttle: proves nothing
    slot.answered(5.5)
    assert slot.proven and slot.throttled_in_row == 0


# -- throttles weighed by their evidence ----------------------------------------------------------

@pytest.mark.parametrize("code", [4, 17, 32, 613, 80002])
async def test_a_lone_throttle_against_a_budget_far_from_spent_costs_that_call_a_short_retry(code):
    h = Harness(seconds=3600, per_token_in_flight=2, rng=Half())
    h.job("a", "a0", outcomes=[Usage(5)])                               # the token reports 5 %
    blip = h.job("a", "a1", duration=1, outcomes=[graph_error(code, usage=Usage(5))])
    rest = h.jobs("a", 2, duration=1, outcomes=[Usage(5)])
    h.jobs("b", 3, duration=1, outcomes=[Usage(5)])
    await h.run()
    assert blip.starts == [0, 1.5]                                       # half of LONE_RETRY, not 2 s or 60 s
    assert [job.starts for job in rest] == [[0], [1]]                    # its token's other calls go on
    assert h.starts("b") == [0, 1, 1]                                    # even code 4 pauses no other token
    slot = h.scheduler.slots["a"]
    assert slot.proven and slot.pace.depth == 2 and slot.paused_until == 0    # no probe, no cut, no pause
    assert h.stats.get("throttles") == 1 and h.stats.get("throttles/lone") == 1
    assert h.stats.get("throttles/waited_out") == 0
    assert h.given_up == []


async def test_lone_throttles_grow_and_several_in_a_row_are_waited_out():
    h = Harness(seconds=3600, per_token_in_flight=1, rng=Half())
    low = [graph_error(17, usage=Usage(5))] * 3
    job = h.job("a", "a0", outcomes=low)
    await h.run()
    assert job.starts == [0, 0.5, 1.5, 241.5]            # 1 s and 2 s of jitter, then the third waited out
    assert h.stats.get("throttles/lone") == 2            # (60 s doubling: the row is 3 long)


@pytest.mark.parametrize("usage, why", [(Usage(95), "spent"), (None, "nothing reported")])
async def test_a_throttle_with_the_budget_spent_or_unknown_is_waited_out_as_before(usage, why):
    h = Harness(seconds=3600, per_token_in_flight=1)
    job = h.job("a", "a0", outcomes=[graph_error(4, usage=usage)])
    h.jobs("b", 2, duration=1)
    await h.run()
    assert job.starts[1] >= 60                            # (at 95 % its limiter also holds it back)
    assert h.starts("b") == [0, 60]                       # code 4 waited out: every token paused
    assert h.stats.get("throttles/lone") == 0


async def test_an_app_throttle_weighs_the_usage_every_token_reported():
    h = Harness(seconds=3600, per_token_in_flight=1)
    h.job("b", "b0", outcomes=[Usage(96)])                # another token reports the budget spent
    job = h.job("a", "a0", duration=1, outcomes=[graph_error(4, usage=Usage(5))])
    await h.run()
    assert job.starts == [0, 61]


async def test_throttles_of_calls_sent_before_the_first_do_not_grow_the_pause():
    h = Harness(seconds=3600, per_token_in_flight=4)
    h.job("a", "proof")
    h.jobs("a", 4, duration=1, outcomes=[graph_error(17, usage=Usage(100))])   # 4 in flight, all throttled
    await h.run()
    assert h.stats.get("throttles") == 4
    assert h.scheduler.slots["a"].throttled_in_row == 0
    assert h.stats.get("wait/backoff_seconds") == 60                          # one pause, not 60+120+240+480


# -- waits the server asks for are capped at the window ------------------------------------------

async def test_a_wait_of_a_billion_minutes_parks_no_token_beyond_the_window():
    h = Harness(seconds=3600, per_token_in_flight=1)
    job = h.job("a", "a0", outcomes=[graph_error(4, usage=Usage(100, 60e9))])
    h.jobs("b", 2, duration=1)
    await h.run()
    assert job.starts == [0, 3600]
    assert h.starts("b") == [0, 3600]
    assert h.stats.get("waits/capped") == 1 and h.scheduler.capped_wait == 60e9


async def test_a_usage_header_asking_a_billion_minutes_pauses_at_most_the_window():
    h = Harness(seconds=600, per_token_in_flight=1)
    h.job("a", "a0", outcomes=[Usage(10, 60e9)])
    h.job("a", "a1")
    await h.run()
    assert h.starts("a") == [0, 600]
    assert h.stats.get("waits/capped") == 1


async def test_the_progress_line_says_a_wait_was_capped():
    import io
    import types

    from harvester.commands.progress import Progress

    h = Harness(seconds=3600, per_token_in_flight=1)
    h.job("a", "a0", outcomes=[graph_error(17, usage=Usage(100, 60e9))])
    await h.run()
    run = types.SimpleNamespace(stats=h.stats, token_names={}, pacing=h.scheduler.pacing)     # what Progress reads
    line = Progress(run, stream=io.StringIO()).lines()[0]
    assert "server asked for a wait of 6e+10 s: capped at 1h00m" in line


async def test_a_real_throttle_still_sees_one_call_per_pause(tmp_path):
    """The simulator's own rate limit (5 calls per 600 s) hit by a harvest configured far above
    it: every throttle answer reports the budget spent, and after each, the token's next calls
    come one at a time, after a pause."""
    from harvester import Harvester
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.world import World, WorldSpec

    from support import world_config

    received: dict[int, list[tuple[float, bool]]] = {}

    class Recording(Simulator):
        async def serve(self, method, path, query, headers, *, base_url=None):
            now = asyncio.get_running_loop().time()
            answer = await super().serve(method, path, query, headers, base_url=base_url)
            token = self.world.token(headers["Authorization"][7:])
            throttled = answer.status == 400 and orjson.loads(answer.body)["error"]["code"] in (4, 17, 80002)
            received.setdefault(token.index, []).append((now, throttled))
            return answer

    world = World(WorldSpec(now=NOW, seed=3, accounts=3, media_per_account=8))
    simulator = Recording(world, SimulatorSettings(calls_per_window=5, window_seconds=600, latency_ms=20))
    config, env = world_config(world, tmp_path / "out", days=2, window_seconds=600)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    assert simulator.counters.snapshot()["throttled"] > 0
    probes = 0
    for calls in received.values():
        throttled_at = None
        for i, (when, throttled) in enumerate(calls):
            if throttled_at is not None and when > throttled_at:       # the first call after a throttle
                assert when - throttled_at >= 60                         # waited out, not a lone pause
                assert sum(1 for w, _ in calls if w == when) == 1        # alone: one call per pause
                probes += 1
                throttled_at = None
            if throttled and throttled_at is None:
                throttled_at = max(w for w, _ in calls[: i + 1])
    assert probes > 0


# -- retry budgets per decision -----------------------------------------------------------------

async def test_a_whole_answer_of_the_wrong_shape_is_retried_once_and_a_cut_one_to_the_bound():
    from harvester.errors import DecodeError

    detail = "bad insights body (812 bytes): Expected `int`, got `str` - at `$.data[0].values[0].value`"
    h = Harness(max_attempts=5, rng=Half())
    whole = h.job("a", "whole", outcomes=[DecodeError(detail, status=200, complete=True)] * 5)
    cut = h.job("b", "cut", outcomes=[DecodeError("Input data was truncated", status=200)] * 5)
    await h.run()
    assert len(whole.starts) == 2 and len(cut.starts) == 5
    reasons = {job.label: d.reason for job, d in h.given_up}
    assert reasons["whole"] == f"unreadable answer (HTTP 200): {detail} after 2 attempts"
    assert all(d.action is Action.FAIL for _, d in h.given_up)


async def test_an_object_the_token_may_not_see_fails_at_once_with_the_apis_words():
    from harvester.simulator.errors import UNSUPPORTED_GET

    message = UNSUPPORTED_GET.format(id="17841400000000002")
    h = Harness()
    job = h.job("a", "a0", outcomes=[graph_error(100, 33, message=message)] * 5)
    await h.run()
    assert job.starts == [0]
    [(_, decision)] = h.given_up
    assert decision.reason == "object does not exist or is not permitted for this token (100/33)"
    assert (decision.code, decision.subcode, decision.message) == (100, 33, message)


async def test_a_harvest_with_throttle_blips_yields_the_ground_truth_and_waits_none_out(tmp_path):
    """5 % of answers are throttles (codes 4, 17, 80002) with the usage far from spent: each is a lone
    one (its token alone pauses seconds, code 4 included), and every record of the truth comes."""
    from harvester import Harvester
    from harvester.simulator.pipeline import Simulator, SimulatorSettings
    from harvester.simulator.transport import SimulatorTransport
    from harvester.simulator.truth import expected_records
    from harvester.simulator.world import World, WorldSpec
    from harvester.summary import THROTTLES, THROTTLES_LONE, THROTTLES_WAITED_OUT

    from support import NOW, assert_matches_truth, run_records, world_config

    world = World(WorldSpec(seed=5, accounts=4, media_per_account=15, now=NOW))
    config, env = world_config(world, tmp_path / "out", days=2)
    kinds = ("throttle_4", "throttle_17", "throttle_80002")
    simulator = Simulator(world, SimulatorSettings(faults=0.05, fault_kinds=kinds, latency_ms=20))
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        summary = await harvester.run()
    assert summary.exit_code == 0
    throttles = simulator.counters.snapshot()["faults"]
    assert set(throttles) <= set(kinds) and sum(throttles.values()) > 0
    stats = harvester.stats
    assert stats.get(THROTTLES) == sum(throttles.values())     # every throttle was seen as one
    assert stats.get(THROTTLES_LONE) > 0 and stats.get(THROTTLES_WAITED_OUT) == 0     # and none waited out
    records = run_records(tmp_path / "out", harvester.run_id)
    assert_matches_truth(records, expected_records(world, config.window.since, config.window.until))
