"""One token's slot (harvester.schedule.slot), without a scheduler: its queue, pause, death, usage
feedback and depth change only through its methods, and its view says what holds it."""

from __future__ import annotations

from harvester.graph.policy import Action, Decision
from harvester.graph.wire import Usage
from harvester.schedule.limiter import RollingWindowLimiter
from harvester.schedule.slot import Entry, Slot


class Call:
    """A job as the slot holds it (the slot never calls it)."""

    def __init__(self, label: str, priority: int = 0):
        self.key, self.label, self.account_id, self.priority = "t", label, "a", priority

    async def __call__(self, flight=None):
        return None


def slot(**options) -> Slot:
    return Slot("t", RollingWindowLimiter(100, 3600.0, clock=lambda: 0.0), **options)


def entry(label: str, seq: int, priority: int = 0) -> Entry:
    return Entry(priority, seq, Call(label, priority))


def test_leaves_come_out_first_in_first_out_and_other_work_deepest_first():
    s = slot()
    for e in (entry("leaf 1", 1), entry("account", 2, 3), entry("leaf 2", 3), entry("page", 4, 2),
              entry("chain", 5, 1)):
        s.push(e)
    assert s.queued() == s.pending() == 5
    assert [s.pop(0).job.label for _ in range(2)] == ["leaf 1", "leaf 2"]
    assert [s.pop(1).job.label for _ in range(3)] == ["chain", "page", "account"]


def test_a_retry_waits_out_its_backoff_out_of_the_queue():
    s = slot()
    s.delay(entry("leaf", 1), until=10.0)
    s.delay(entry("page", 2, 2), until=20.0)
    assert s.queued() == 0 and s.pending() == 2 and not s.can_start()
    assert s.release(9.9) == 0
    assert s.release(10.0) == 1 and s.can_start(0) and not s.can_start(1)     # one leaf back
    assert s.release(20.0) == 0 and s.can_start(1)


def test_a_dead_slot_hands_back_everything_once_and_starts_nothing():
    s = slot()
    s.push(entry("leaf", 1)), s.push(entry("page", 2, 2)), s.delay(entry("retry", 3), 5.0)
    death = Decision(Action.FAIL_TOKEN, "token expired")
    assert s.kill(death) and not s.kill(death)               # reported once
    assert [e.job.label for e in s.drain()] == ["leaf", "page", "retry"]
    assert s.pending() == 0 and s.death is death
    s.push(entry("late", 4))
    assert not s.can_start()


def test_an_unproven_slot_probes_with_one_call_and_a_proven_one_goes_to_its_depth():
    s = slot(max_in_flight=4)
    s.push(entry("a", 1)), s.push(entry("b", 2))
    s.started()
    assert s.in_flight_limit() == 1 and not s.can_start()
    s.answered(started=1.0)
    assert s.proven and s.in_flight_limit() == 4 and s.can_start()
    s.throttled(now=2.0)
    assert not s.proven and s.in_flight_limit() == 1
    s.answered(started=1.5)                                  # sent before the throttle: proves nothing
    assert not s.proven


def test_throttles_count_in_a_row_and_one_of_a_call_sent_before_adds_nothing():
    s = slot()
    assert s.count_throttle(started=1.0) == 1
    s.throttled(now=2.0)
    assert s.count_throttle(started=1.5) is None             # that episode is handled
    assert s.count_throttle(started=3.0) == 2 and s.throttles == 3
    s.answered(started=4.0)
    assert s.count_throttle(started=5.0) == 1


def test_a_pause_only_ever_grows_and_the_view_says_what_holds_the_work():
    s = slot()
    s.push(entry("leaf", 1))
    s.pause(30.0), s.pause(10.0)
    assert s.paused_until == 30.0
    view = s.view(now=5.0)
    assert (view.state, view.waiting_on, view.resumes_at, view.busy, view.queued) == ("paused", "throttle", 30.0,
                                                                                      True, 1)
    s.limited(now=31.0)
    assert s.look_at(40.0) and not s.look_at(50.0) and s.look_at(35.0)     # the earliest look wins
    assert s.view(now=31.0).waiting_on == "limit" and s.view(now=31.0).resumes_at == 35.0
    assert s.unlimited(now=36.0) == 5.0 and s.view(now=36.0).waiting_on is None


def test_slot_feedback_is_clamped_and_errors_never_speed_up():
    clock = [0.0]
    slot = Slot("a", RollingWindowLimiter(200, 3600, clock=lambda: clock[0]))
    slot.observe(Usage(95), 0.0, in_window=100)
    assert slot.limiter.limit == 105
    slot.observe(Usage(40), 0.0, in_window=100, may_speed_up=False)
    assert slot.limiter.limit == 105
    slot.observe(Usage(40), 0.0, in_window=100)
    assert slot.limiter.limit == 200                         # back up, never above the configured
    slot.observe(Usage(99), 0.0, in_window=100, may_speed_up=False)
    assert slot.limiter.limit == 101
    slot.observe(None, 0.0)
    slot.observe(Usage(0, 30.0), 5.0)
    assert slot.paused_until == 35.0 and slot.limiter.limit == 101


def test_a_depth_cut_to_a_fraction_fills_and_grows_again():
    """After a cut the depth is a fraction (4.5) and the slot may hold int(depth) calls: filling
    those is filling its depth, so its answers grow it again (it stayed at 4 calls forever)."""
    slot = Slot("t", RollingWindowLimiter(1000, 3600.0), max_in_flight=64)
    slot.pace.depth, slot.proven = 4.5, True
    for _ in range(slot.in_flight_limit()):
        slot.started(room=True)
    assert slot.full
    slot.queue.append(object())     # type: ignore[arg-type]  (work waits: only the depth holds it)
    assert slot.held_by_depth()
