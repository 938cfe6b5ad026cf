"""The library stops when told (issue 22, point 1): leaving the loop, leaving the ``async with``,
cancelling and a timeout end the harvest of ``records()`` whatever its buffer holds (empty, half,
full), leave no task behind and make no call after; a consumer that stops reading stops the calls
within about the buffer's worth; ``run()`` cancelled keeps what it committed and is resumed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from harvester import Harvester, natural_key
from harvester.run.buffer import RECORDS_BUFFER
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.state.store import StateStore

from support import NOW, assert_matches_truth, run_records, world_config

BUFFER = 64
HANG = 600.0
"""Loop seconds after which a stop counts as hung (looptime jumps there at once when it is)."""
SETTINGS = SimulatorSettings(calls_per_window=1_000_000, latency_ms=40)


class Stop(Exception):
    """The consumer's own error, raised inside the ``async with``."""


def world_of(**spec) -> World:
    """A world whose answers let the buffer be seen half full: one answer's records enter it at
    once, so an answer of more than half its size can carry it from under half to full (as seed
    22's did once the simulated world's figures changed, issue 22.5)."""
    return World(WorldSpec(**{"seed": 23, "accounts": 4, "media_per_account": 25, "now": NOW, **spec}))


def calls(simulator: Simulator) -> int:
    return simulator.counters.snapshot()["calls"]


async def reach(harvester: Harvester, fill: str, read: int) -> None:
    """Pause (as a slow consumer does) until the buffer holds ``fill``: half or full."""
    target = {"half": BUFFER // 2, "full": BUFFER}[fill]
    while harvester.buffered < target:
        await asyncio.sleep(0.001)


def filled(harvester: Harvester, fill: str) -> bool:
    n = harvester.buffered
    return {"empty": n == 0, "half": BUFFER // 2 <= n < BUFFER, "full": n == BUFFER}[fill]


async def consume(harvester: Harvester, fill: str, at_stop: asyncio.Event, stop: str,
                  timeout: asyncio.Timeout | None = None, held: bool = False) -> int:
    """Read records; after 20, bring the buffer to ``fill`` and stop as ``stop`` says (``cancel``:
    wait there for the test to cancel this task). ``held``: the iterator is kept in a variable,
    so that only the end of the ``async with`` (not the loop's) can stop the harvest."""
    read = 0
    records = harvester.records(buffer=BUFFER)
    async for _ in (records if held else harvester.records(buffer=BUFFER)):
        read += 1
        if read < 20 or (fill == "empty" and harvester.buffered):
            continue
        if fill != "empty":
            await reach(harvester, fill, read)
        assert filled(harvester, fill), (fill, harvester.buffered)
        at_stop.set()
        at_stop.when = asyncio.get_running_loop().time()  # type: ignore[attr-defined]
        if stop == "break":
            break
        if stop == "raise":
            raise Stop
        if timeout is not None:
            timeout.reschedule(asyncio.get_running_loop().time())   # it fires now, wherever we wait
        if fill != "empty":
            await asyncio.sleep(HANG * 10)                         # a slow consumer, in its own work
        # "empty": the next record is awaited on an empty buffer, where the stop finds the consumer
    return read


@pytest.mark.looptime
@pytest.mark.parametrize("fill", ["empty", "half", "full"])
@pytest.mark.parametrize("stop, held", [("break", False), ("raise", False), ("raise", True), ("cancel", False),
                                        ("cancel", True), ("timeout", False), ("timeout", True)])
async def test_each_way_of_stopping_ends_the_harvest_whatever_the_buffer_holds(tmp_path, stop, held, fill):
    world = world_of()
    config, env = world_config(world, tmp_path / "out")
    simulator = Simulator(world, SETTINGS)
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    at_stop = asyncio.Event()
    async with asyncio.timeout(HANG):               # a hang fails here, at once on looptime's clock
        harvester = Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), now=world.now)
        if stop in ("break", "raise"):
            with contextlib.suppress(Stop):
                async with harvester:
                    await consume(harvester, fill, at_stop, stop, held=held)
                    while not asyncio.all_tasks() <= before:   # the loop was left: the harvest ends
                        await asyncio.sleep(0.001)
        elif stop == "cancel":
            async def session() -> None:
                async with harvester:
                    await consume(harvester, fill, at_stop, stop, held=held)
            task = asyncio.ensure_future(session())
            await at_stop.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(None) as timeout, harvester:
                    await consume(harvester, fill, at_stop, stop, timeout, held=held)
    assert at_stop.is_set()
    ended, stopped = loop.time(), at_stop.when  # type: ignore[attr-defined]
    assert ended - stopped < 1.0, ended - stopped          # the calls in flight are cancelled, not awaited
    await asyncio.sleep(0.01)                             # a held iterator is closed when dropped: at once
    assert asyncio.all_tasks() <= before                  # nothing left running
    served = calls(simulator)
    await asyncio.sleep(3600)
    assert calls(simulator) == served                     # and nothing calls the API after


@pytest.mark.looptime
async def test_a_consumer_that_stops_reading_stops_the_calls(tmp_path):
    """It reads one record and then nothing for an hour: once the buffer (the default one) is
    full, no call starts (the calls in flight answer into the buffer's last room or wait); far
    from the whole harvest."""
    world = world_of(accounts=12, media_per_account=60)
    config, env = world_config(world, tmp_path / "out", days=30)
    simulator = Simulator(world, SETTINGS)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator),
                                now=world.now) as harvester:
        async for _ in harvester.records():
            stopped = calls(simulator)
            while harvester.buffered < RECORDS_BUFFER:
                await asyncio.sleep(0.001)
            full = calls(simulator)                     # the simulator counts a call when it arrives
            await asyncio.sleep(3600)
            assert calls(simulator) == full             # nothing started once the buffer was full
            break
    assert full - stopped < 100, (stopped, full)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world, SETTINGS)),
                         now=world.now) as harvester:
        total = sum([1 async for _ in harvester.records()])
    assert total > 20 * RECORDS_BUFFER                  # the consumer really held the harvest back


@pytest.mark.looptime
async def test_a_consumer_that_pauses_and_reads_on_gets_every_record(tmp_path):
    """Held while the buffer is full, the harvest goes on once the consumer has read half of it:
    every record comes, once, as a consumer that never paused gets them."""
    world = world_of()
    config, env = world_config(world, tmp_path / "out")
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world, SETTINGS)),
                         now=world.now) as harvester:
        straight = sorted(natural_key(r) for r in [r async for r in harvester.records(buffer=BUFFER)])
    got, held = [], 0
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world, SETTINGS)),
                         now=world.now) as harvester:
        async for record in harvester.records(buffer=BUFFER):
            got.append(natural_key(record))
            if len(got) % 500 == 1:
                while harvester.buffered < BUFFER and harvester.finished is None:   # until the harvest is held
                    await asyncio.sleep(0.01)
                held += harvester.buffered == BUFFER
                await asyncio.sleep(60)
    assert held >= 3 and sorted(got) == straight


def test_a_buffer_that_is_not_a_positive_whole_number_is_refused(tmp_path):
    world = world_of()
    config, env = world_config(world, tmp_path / "out")
    harvester = Harvester(config, tokens=env)
    for bad in (0, -5, 2.5, "10", True):
        with pytest.raises(ValueError, match=r"records\(buffer=.*\): expected a whole number of records, at least 1"):
            harvester.records(buffer=bad)  # type: ignore[arg-type]


@pytest.mark.looptime
@pytest.mark.parametrize("stop", ["cancel", "timeout"])
async def test_run_cancelled_keeps_what_it_committed_and_the_next_run_resumes_it(tmp_path, stop):
    world = world_of()
    config, env = world_config(world, tmp_path / "out")
    loop = asyncio.get_running_loop()
    simulator = Simulator(world, SETTINGS)
    state = StateStore(config.state.path)

    async def first() -> None:
        async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                             now=world.now) as harvester:
            await harvester.run()

    def done() -> int:
        return state.db.execute("SELECT count(*) FROM units WHERE status = 'done'").fetchone()[0]

    async with asyncio.timeout(HANG):
        task = asyncio.ensure_future(first())
        while done() == 0:                      # the first commit
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)               # and more written since, not committed yet
        at_stop = done()
        stopped = loop.time()
        if stop == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await task
    assert loop.time() - stopped < 1.0
    assert done() > at_stop                     # what was written is committed on the way out
    first_calls = calls(simulator)
    (status,) = state.db.execute("SELECT status FROM runs").fetchone()
    assert status == "running"                               # unfinished: the next run resumes it
    simulator = Simulator(world, SETTINGS)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(simulator), state=state,
                         now=world.now) as harvester:
        summary = await harvester.run()
    state.close()
    assert harvester.resumed and summary.exit_code == 0
    truth = expected_records(world, config.window.since, config.window.until)
    assert_matches_truth(run_records(tmp_path / "out", harvester.run_id), truth)
    assert calls(simulator) < len(truth) and first_calls > 0
