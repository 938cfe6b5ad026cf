"""The progress display reads counters and slots; it never touches the work."""

import asyncio
import io
import re

import pytest

from harvester import Harvester
from harvester.commands import progress
from harvester.commands.progress import Progress, _limit_eta
from harvester.schedule.limiter import RollingWindowLimiter
from harvester.schedule.slot import Entry, Slot
from harvester.simulator.pipeline import Simulator
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.world import World, WorldSpec

from support import NOW, world_config


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.looptime
async def test_live_block_on_a_terminal_and_lines_otherwise(tmp_path):
    world = World(WorldSpec(now=NOW, seed=2, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "out")
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        await h.run()
        live, plain = Progress(h, stream=Tty()), Progress(h, stream=io.StringIO())
        live.show(), plain.show()
    text = live.stream.getvalue()
    assert "units" in text and "TOKEN_0" in text and "queued 0 calls" in text
    assert plain.stream.getvalue().startswith("[harvester] units ") and "TOKEN_0" not in plain.stream.getvalue()
    assert plain.interval == 30.0 and live.interval == 0.5
    for token in env.values():
        assert token not in text


def _Slot(*, paused_until=0.0, limited_since=None, timer_at=None, queued=1, in_flight=0):
    """A real slot in the given state (set directly: the scheduler is not running), as progress sees it."""
    slot = Slot("t", RollingWindowLimiter(10, 60), paused_until=paused_until, limited_since=limited_since,
                timer_at=timer_at, in_flight=in_flight)
    slot.queue = [Entry(0, n, None) for n in range(queued)]  # type: ignore[arg-type]
    return slot.view(100.0)


def test_the_line_says_which_tokens_wait_and_when_the_next_may_call():
    from harvester.commands.progress import _waiting
    slots = [_Slot(limited_since=90.0, timer_at=100.0 + 3600), _Slot(limited_since=95.0, timer_at=100.0 + 370),
             _Slot(paused_until=160.0, timer_at=160.0), _Slot(), _Slot(limited_since=1.0, queued=0),
             _Slot(limited_since=1.0, timer_at=101.0, in_flight=1)]
    assert _waiting(slots, 100.0) == " | tokens waiting: 2 at their rate limit, 1 throttled, next call in 1m00s"
    assert _waiting([_Slot()], 100.0) == ""


@pytest.mark.looptime
async def test_the_eta_counts_down_while_every_token_waits_on_its_rate_limit(tmp_path):
    world = World(WorldSpec(now=NOW, seed=2, accounts=2, media_per_account=10))
    config, env = world_config(world, tmp_path / "out", calls_per_window=20, window_seconds=600)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        task = asyncio.ensure_future(h.run())
        progress = Progress(h, stream=io.StringIO())
        while not ((pacing := h.pacing(10**6)) and _limit_eta(pacing.slots, pacing.now)[0]):
            await asyncio.sleep(1)
            progress.lines()
        progress.lines()
        first = progress.eta
        await asyncio.sleep(200)                     # every token still waits on its window
        progress.lines()
        assert first is not None and first >= 200
        assert progress.eta == pytest.approx(first - 200, abs=5)     # counts down, does not grow
        await task


@pytest.mark.looptime
async def test_the_live_block_fits_a_narrow_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    world = World(WorldSpec(now=NOW, seed=2, accounts=3, media_per_account=10))
    config, env = world_config(world, tmp_path / "out")
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        await h.run()
        live = Progress(h, stream=Tty())
        live.show(), live.show()
    rows = live.stream.getvalue().replace("\x1b[2K", "\n").split("\n")
    rows = [r.split("\x1b[")[0] for r in rows if r]
    assert rows and max(len(r) for r in rows) <= 39
    assert any(r.endswith("…") for r in rows)


@pytest.mark.looptime
async def test_with_many_tokens_the_live_block_lists_a_few_busy_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "TOKEN_LINES", 2)
    world = World(WorldSpec(now=NOW, seed=2, accounts=3, tokens=3, media_per_account=0))
    config, env = world_config(world, tmp_path / "out", days=1)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        live = Progress(h, stream=Tty())
        task = asyncio.ensure_future(h.run())
        while not (pacing := h.pacing(2)) or not pacing.tokens:
            await asyncio.sleep(0)
        busy = live.lines()
        await task
        idle = live.lines()
    assert len(busy) == 1 + 2 + 1 and busy[-1] == "  ... 3 tokens in all, 3 busy"
    assert idle[1:] == ["  ... 3 tokens in all, 0 busy"]


@pytest.mark.looptime
async def test_on_100_columns_the_first_line_keeps_the_eta_and_drops_less_useful_parts(tmp_path, monkeypatch):
    """Every token waits on its window: the full first line is far wider than 100 columns; the live
    block keeps units, the ETA and why it waits, dropping whole parts (records, calls, ...)."""
    monkeypatch.setenv("COLUMNS", "100")
    world = World(WorldSpec(seed=2, accounts=2, media_per_account=10, now=1_796_000_000.0))
    config, env = world_config(world, tmp_path / "out", calls_per_window=20, window_seconds=600)
    async with Harvester.pinned(config, tokens=env, transport=SimulatorTransport(Simulator(world)), now=world.now) as h:
        task = asyncio.ensure_future(h.run())
        live = Progress(h, stream=Tty())
        while not ((pacing := h.pacing(10**6)) and _limit_eta(pacing.slots, pacing.now)[0]):
            await asyncio.sleep(1)
        await asyncio.sleep(60)
        full = live.lines()[0]
        live.show()
        h.stop()
        await task
    first = live.stream.getvalue().split("\x1b[2K")[1].split("\n")[0]
    assert len(full) > 120 and len(first) <= 99 and not first.endswith("…")
    eta = re.search(r" \| eta ([^,|]+)", full)
    assert eta and eta.group(1).strip() != "?" and f" | eta {eta.group(1).strip()}" in first
    assert first.startswith("units ") and "tokens waiting: 2 at their rate limit" in first
    assert "records" not in first
