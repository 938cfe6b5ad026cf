"""Times, the log of send and start times the limiter, the simulator's windows and the call-cost
log keep: expiry at its cutoff (a time at the cutoff leaves, in each of the three), compaction
that keeps order and content, and memory bounded by the live times however many pass through."""

import math
import random
import sys

import pytest

from harvester.schedule.cost import CallCosts
from harvester.schedule.limiter import RollingWindowLimiter
from harvester.schedule.times import Times
from harvester.simulator.ratelimit import RollingWindow


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_time_at_the_cutoff_leaves_and_one_a_hair_after_stays():
    times = Times([1.0, 2.0, 3.0])
    assert times.expire(0.5) == 3
    assert times.expire(1.0) == 2                       # 1.0 <= 1.0: gone
    assert times.expire(math.nextafter(2.0, 0.0)) == 2 and times.tolist() == [2.0, 3.0]
    assert times.expire(2.0) == 1 and times.tolist() == [3.0]
    assert times.expire(3.0) == 0 and len(times) == 0 and times.tolist() == []


def test_each_user_drops_a_time_at_exactly_its_cutoff():
    # the limiter: a start at 0 leaves a window of 10 s (margin 0.5) at 10.5, not before
    clock = Clock()
    limiter = RollingWindowLimiter(5, 10, margin=0.5, clock=clock)
    limiter.try_acquire()
    clock.now = 10.499
    assert limiter.in_window() == 1
    clock.now = 10.5
    assert limiter.in_window() == 0
    # the simulator: a call at 0 leaves a window of 100 s at 100
    window = RollingWindow(limit=3, seconds=100)
    window.record(0.0)
    assert window.count(99.999) == 1 and window.count(100.0) == 0
    # the call-cost log: a call sent at 0 is forgotten by an edge at 0
    clock = Clock()
    costs = CallCosts(200, 3600, clock)
    costs.sent("t")
    assert costs._tokens["t"].expire(-0.001) == 1
    assert costs._tokens["t"].expire(0.0) == 0


def test_expiry_stops_at_the_first_time_after_the_cutoff():
    """The log is read from its head: a time out of order behind a live one stays until that
    one leaves (what each of the three copies did)."""
    times = Times([1.0, 5.0, 2.0, 6.0])
    assert times.expire(3.0) == 3 and times.tolist() == [5.0, 2.0, 6.0]
    assert times.expire(5.0) == 1 and times.tolist() == [6.0]


def test_length_index_and_iteration_see_only_the_live_times_oldest_first():
    times = Times()
    for t in range(10):
        times.append(float(t))
    times.expire(3.0)
    assert len(times) == 6 and bool(times)
    assert times[0] == 4.0 and times[5] == 9.0 and times[-1] == 9.0 and times[-6] == 4.0
    assert list(times) == times.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    for i in (6, -7):
        with pytest.raises(IndexError):
            times[i]
    assert repr(times) == "Times([4.0, 5.0, 6.0, 7.0, 8.0, 9.0])"
    times.expire(9.0)
    assert not times and list(times) == []
    with pytest.raises(IndexError):
        times[0]


def test_append_many_appends_a_time_n_times():
    times = Times([1.0])
    times.append_many(2.0, 3)
    times.append_many(3.0, 0)
    times.append_many(4.0, -1)
    assert times.tolist() == [1.0, 2.0, 2.0, 2.0]
    assert times.expire(1.5) == 3


def test_compaction_keeps_order_and_content():
    """Random appends and cutoffs against a plain list read from a head: the same live times,
    in the same order, after every step, through many compactions and frees."""
    rng = random.Random(7)
    times, model, head = Times(), [], 0
    now, compactions = 0.0, 0
    for _ in range(20_000):
        for _ in range(rng.choice((0, 1, 1, 2, 5, 40))):
            now += rng.random()
            times.append(now)
            model.append(now)
        edge = now - rng.choice((0.5, 3.0, 30.0, 300.0))
        before = times.capacity()
        while head < len(model) and model[head] <= edge:
            head += 1
        assert times.expire(edge) == len(model) - head
        compactions += times.capacity() < before
        assert times.tolist() == model[head:]
        assert len(times) == len(model) - head
        if len(times):
            assert times[0] == model[head] and times[-1] == model[-1]
    assert compactions > 100


@pytest.mark.parametrize("live", [1, 2, 7, 200, 5000])
def test_memory_stays_bounded_by_the_live_times(live):
    """200,000 times (a million for a wide window) through a window of ``live``: the array never
    holds much more than twice the live times, however many have passed."""
    times = Times()
    worst = 0
    for i in range(max(200_000, 200 * live)):
        times.append(float(i))
        assert times.expire(i - live) == min(i + 1, live)
        worst = max(worst, times.capacity())
    assert worst <= 2.5 * (live + 1) + 8
    assert sys.getsizeof(times) <= sys.getsizeof(Times()) + 8 * worst


def test_a_burst_that_leaves_gives_its_memory_back():
    times = Times()
    for i in range(100_000):
        times.append(float(i))
    full = sys.getsizeof(times)
    assert times.capacity() >= 100_000 and full > 800_000
    assert times.expire(99_989.0) == 10 and times.capacity() < 32
    assert sys.getsizeof(times) < full // 1000
    assert times.expire(1e9) == 0 and times.capacity() == 0
    assert sys.getsizeof(times) == sys.getsizeof(Times())
