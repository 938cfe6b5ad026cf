"""The rolling-window limiter on a fake clock and in looptime: exact windows, no idle budget,
FIFO waiters, checked against the simulator's own throttling rule."""

import asyncio
import random

import pytest

from harvester.schedule.limiter import RollingWindowLimiter
from harvester.simulator.ratelimit import RollingWindow


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def checked(starts: list[float], limit: int, seconds: float) -> int:
    """The most calls the simulator's window ever held: above ``limit`` means a throttle."""
    window = RollingWindow(limit, seconds)
    return max((window.record(t) for t in starts), default=0)


def best_starts(arrivals: list[float], limit: int, seconds: float) -> list[float]:
    """The earliest FIFO schedule a rolling window allows: start at arrival, after the previous
    start, and once the start ``limit`` places earlier has left the window."""
    starts: list[float] = []
    for i, arrival in enumerate(arrivals):
        t = max(arrival, starts[-1] if starts else arrival)
        if i >= limit:
            t = max(t, starts[i - limit] + seconds)
        starts.append(t)
    return starts


def test_a_full_window_starts_at_once_and_the_next_when_the_first_leaves():
    clock = FakeClock()
    limiter = RollingWindowLimiter(3, 100, clock=clock)
    assert [limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire() == pytest.approx(100)
    clock.now = 99.5
    assert limiter.try_acquire() == pytest.approx(0.5)
    assert limiter.in_window() == 3
    clock.now = 100.0                      # (0, 100]: the starts at 0 have left
    assert [limiter.try_acquire() for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert limiter.in_window() == 3


def test_counted_right_after_a_start_is_the_window_then_without_reading_the_clock():
    clock = FakeClock()
    limiter = RollingWindowLimiter(3, 10, clock=clock)
    for now in (0.0, 4.0, 10.0, 10.0, 19.0):       # the starts at 0 and 4 leave on the way
        clock.now = now
        assert limiter.try_acquire() == 0.0
        counted = limiter.counted()
        assert counted == limiter.in_window()
        clock.now = now + 100                   # what in_window() would read later: not counted()
        assert limiter.counted() == counted
    assert counted == 3


def test_the_blocking_start_is_the_one_that_makes_room():
    clock = FakeClock()
    limiter = RollingWindowLimiter(2, 10, clock=clock)
    limiter.try_acquire()
    clock.now = 4.0
    limiter.try_acquire()
    assert limiter.try_acquire() == pytest.approx(6)      # the start at 0 leaves at 10
    clock.now = 10.0
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(4)      # now the start at 4 must leave


def test_margin_widens_the_window():
    clock = FakeClock()
    limiter = RollingWindowLimiter(1, 10, margin=0.5, clock=clock)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(10.5)
    clock.now = 10.0
    assert limiter.try_acquire() == pytest.approx(0.5)
    clock.now = 10.5
    assert limiter.try_acquire() == 0.0


def test_lowering_the_limit_waits_for_enough_starts_to_leave_and_never_passes_calls():
    clock = FakeClock()
    limiter = RollingWindowLimiter(4, 100, clock=clock)
    for t in (0, 10, 20):
        clock.now = t
        assert limiter.try_acquire() == 0.0
    limiter.set_limit(2)
    assert limiter.limit == 2
    assert limiter.try_acquire() == pytest.approx(90)     # 0 and 10 must leave: at 110
    limiter.set_limit(1000)
    assert limiter.limit == 4
    limiter.set_limit(0)
    assert limiter.limit == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        RollingWindowLimiter(0, 10)
    with pytest.raises(ValueError):
        RollingWindowLimiter(1, 0)


@pytest.mark.looptime
async def test_the_pitfall_1000_calls_at_200_per_hour_take_four_hours_not_five():
    loop = asyncio.get_running_loop()
    limiter = RollingWindowLimiter(200, 3600)
    start = loop.time()
    starts = []
    for _ in range(1000):
        await limiter.acquire()
        starts.append(loop.time() - start)
    assert starts[-1] == 4 * 3600
    assert checked(starts, 200, 3600) == 200                   # never 399 in the first hour
    assert sum(t < 3600 for t in starts) == 200
    assert sorted(set(starts)) == [0, 3600, 7200, 10800, 14400]  # full-window bursts


@pytest.mark.parametrize("seed", range(30))
def test_random_arrivals_keep_the_window_and_start_as_early_as_it_allows(seed):
    """Callers arrive at random (integer) times, retry exactly when told, in FIFO order."""
    rng = random.Random(seed)
    limit, seconds = rng.randint(1, 6), rng.choice([5, 10, 60])
    arrivals = sorted(rng.randint(0, 4 * seconds) for _ in range(rng.randint(1, 60)))
    clock = FakeClock()
    limiter = RollingWindowLimiter(limit, seconds, clock=clock)
    starts = []
    for arrival in arrivals:
        clock.now = max(clock.now, arrival)
        while (wait := limiter.try_acquire()) > 0:
            clock.now += wait
        starts.append(clock.now)
    assert checked(starts, limit, seconds) <= limit
    assert starts == pytest.approx(best_starts(arrivals, limit, seconds))


@pytest.mark.looptime
@pytest.mark.parametrize("seed", range(10))
async def test_random_arrivals_through_acquire_in_simulated_time(seed):
    rng = random.Random(1000 + seed)
    limit, seconds = rng.randint(1, 8), rng.choice([60, 3600])
    arrivals = sorted({rng.randint(0, 3 * seconds) for _ in range(rng.randint(5, 80))})
    loop = asyncio.get_running_loop()
    origin = loop.time()
    limiter = RollingWindowLimiter(limit, seconds)
    starts: dict[int, float] = {}

    async def caller(i: int, arrival: float) -> None:
        await asyncio.sleep(arrival)
        await limiter.acquire()
        starts[i] = loop.time() - origin

    async with asyncio.TaskGroup() as tg:
        for i, arrival in enumerate(arrivals):
            tg.create_task(caller(i, arrival))
    ordered = [starts[i] for i in range(len(arrivals))]
    assert checked(ordered, limit, seconds) <= limit
    assert ordered == pytest.approx(best_starts(arrivals, limit, seconds), abs=1e-4)


@pytest.mark.looptime
async def test_waiters_start_first_come_first_served_and_a_cancelled_one_hands_over():
    loop = asyncio.get_running_loop()
    limiter = RollingWindowLimiter(1, 10)
    await limiter.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    first = asyncio.create_task(waiter("first"))
    await asyncio.sleep(1)
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(1)
    third = asyncio.create_task(waiter("third"))
    await asyncio.sleep(1)
    assert limiter.try_acquire() > 0                 # no jumping the queue
    second.cancel()
    await asyncio.gather(first, third, second, return_exceptions=True)
    assert order == ["first", "third"]
    assert loop.time() == pytest.approx(20)          # one start per 10 s: at 0, 10, 20


@pytest.mark.looptime
async def test_as_a_context_manager():
    limiter = RollingWindowLimiter(2, 60)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        async with limiter:
            pass
    assert loop.time() == pytest.approx(60)
    assert limiter.in_window() == 1
