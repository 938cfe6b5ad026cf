"""What a harvest of 100,000 tokens pays per token: an idle slot stays small (its limiter's log
is a flat array, freed when its window empties; no queue of waiters unless someone waits), and
the simulator's latency draws keep nothing per request."""

from __future__ import annotations

import asyncio
import sys

import msgspec
import pytest

from harvester import Harvester
from harvester.config.model import TOKEN_DEPTH_CAP, Account
from harvester.graph.aiohttp_transport import AiohttpTransport
from harvester.schedule.limiter import RollingWindowLimiter
from harvester.schedule.scheduler import Scheduler
from harvester.simulator.faults import Faults
from harvester.simulator.world import World, WorldSpec
from harvester.summary import Stats

from support import NOW, world_config

IDLE_SLOT_BYTES = 1000
"""What an idle slot that made 26 calls within its window (a nightly account's) may hold: 2,015
bytes with deques for its log and its waiters, 887 with the flat log (tracemalloc over 10,000
slots, everything they allocate: 2,880 bytes before, 1,048 after). 959 by the time the log became
a ``Times`` and 999 since (the log's own object, 48 bytes, less the limiter's head index, 8)."""


class Call:
    priority = 0

    def __init__(self, key: str):
        self.key = self.label = self.account_id = key

    async def __call__(self, flight=None):
        await asyncio.sleep(0.3)

    def gave_up(self, decision) -> None:
        pass


def footprint(slot) -> int:
    """The bytes of what one slot holds of its own (its limiter and log, its pace, its queues, its key)."""
    limiter = slot.limiter
    parts = [slot, slot.pace, limiter, limiter._starts, limiter._waiters, slot.queue, slot.delayed, slot.key]
    return sum(sys.getsizeof(p) for p in parts if p is not None)


@pytest.mark.looptime
async def test_an_idle_slot_costs_little():
    scheduler = Scheduler(200, 3600, 512, 5, Stats(), on_give_up=lambda job, d: None,
                          on_token_dead=lambda key, d: None, per_token_in_flight=64)
    tokens, calls = 300, 26
    for i in range(tokens):
        for _ in range(calls):
            scheduler.submit(Call(f"token-{i:016x}"))
    await scheduler.run()
    assert len(scheduler.slots) == tokens
    assert all(slot.limiter.in_window() == calls for slot in scheduler.slots.values())
    assert max(footprint(slot) for slot in scheduler.slots.values()) < IDLE_SLOT_BYTES


def test_the_limiters_log_is_freed_when_its_window_empties():
    now = [0.0]
    limiter = RollingWindowLimiter(200, 60, clock=lambda: now[0])
    for i in range(150):
        now[0] = i * 0.1
        assert limiter.try_acquire() == 0.0
    assert limiter.in_window() == 150
    now[0] = 100.0
    assert limiter.in_window() == 0
    assert len(limiter._starts) == 0 and limiter._starts.capacity() == 0


def draw(faults: Faults, token: int, path: str) -> float:
    """One request's latency, served (answered) at once."""
    decision = faults.decide(token, path, {"metric": "reach"})
    faults.served(decision)
    return decision.latency


def test_latency_only_draws_keep_nothing_per_request():
    faults = Faults(seed=3, share=0.0, latency_ms=300)
    draws = [draw(faults, i % 7, f"/v25.0/{i}/insights") for i in range(5000)]
    assert faults._seen == {} and faults._serving == {}
    assert 0.25 < sum(draws) / len(draws) < 0.35           # still exponential around its mean
    assert draw(faults, 1, "/v25.0/1/insights") == draws[1]


def test_a_copy_sent_while_its_request_is_served_draws_its_own_latency():
    """A hedged call's copy: another server's time, not the first request's again."""
    faults = Faults(seed=3, share=0.0, latency_ms=300)
    first = faults.decide(1, "/v25.0/1/insights", {"metric": "reach"})
    copy = faults.decide(1, "/v25.0/1/insights", {"metric": "reach"})
    assert copy.latency != first.latency
    faults.served(copy)
    faults.served(first)
    assert faults._serving == {}
    assert draw(faults, 1, "/v25.0/1/insights") == first.latency   # a repeat afterwards: as the first


@pytest.mark.parametrize(("scheduler", "limit"), [({}, 3 * TOKEN_DEPTH_CAP), ({"max_in_flight": 16}, 16),
                                                  ({"per_token_in_flight": 2}, 3 * 2)])
async def test_the_connection_pool_follows_the_calls_in_flight(tmp_path, scheduler, limit):
    world = World(WorldSpec(now=NOW, seed=4, accounts=3, tokens=3, media_per_account=0))
    config, env = world_config(world, tmp_path / "out", scheduler=scheduler)
    async with Harvester.pinned(config, tokens=env, now=world.now) as harvester:
        assert isinstance(harvester.transport, AiohttpTransport)
        assert harvester.transport.limit == limit


def test_every_tokens_login_and_file_come_from_one_pass(tmp_path):
    """The harvest asks every token name its login and token file: ``token_tables`` answers as
    ``login_of`` and ``token_file_of`` do, from one pass over the tables (asking those two of
    each of 100,000 names scanned 100,000 tables each: hours before the first call)."""
    world = World(WorldSpec(now=NOW, seed=4, accounts=6, tokens=3, media_per_account=0))
    config, _ = world_config(world, tmp_path / "out")
    config = msgspec.structs.replace(config, accounts=(
        *config.accounts, Account(id="17841400000099", token_file=str(tmp_path / "t"), login="instagram")))
    tables = config.token_tables()
    assert list(tables) == list(config.token_keys())
    for name, table in tables.items():
        assert (table.login, table.token_file) == (config.login_of(name), config.token_file_of(name))
    assert tables[f"file:{tmp_path / 't'}"].login == "instagram"
