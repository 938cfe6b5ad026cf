"""Nothing owed is forgotten, each object is planned once, paging ends, a token is one budget:
whole harvests against the simulator, with the answers bent on the way by small transports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson
import pytest

from harvester import Harvester
from harvester.graph.transport import Response
from harvester.simulator.faults import HTML_503
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec
from harvester.sinks import manifest
from harvester.state.store import StateStore

from support import NOW, assert_matches_truth, world_config


class Outage(SimulatorTransport):
    """The simulator, but every call from the ``after``-th on is an HTML 503 while ``down``."""

    def __init__(self, simulator: Simulator, after: int):
        super().__init__(simulator)
        self.after, self.calls, self.down = after, 0, True

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        self.calls += 1
        if self.down and self.calls > self.after:
            return Response(503, {"content-type": "text/html"}, HTML_503)
        return await super().get(url, headers)


class Bent(SimulatorTransport):
    """The simulator, with the bodies of ``/media`` pages rewritten by ``bend(path, query, body)``."""

    def __init__(self, simulator: Simulator, bend: Callable[[str, dict, dict], dict]):
        super().__init__(simulator)
        self.bend = bend
        self.media_pages = 0

    async def get(self, url: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if query.get("after", "").startswith("0x"):         # a cursor of ours: the API gets page 1
            url = url.split("?")[0] + "?limit=100&fields=" + query.get("fields", "id")
        response = await super().get(url, headers)
        if not parts.path.endswith("/media") or response.status != 200:
            return response
        self.media_pages += 1
        body = self.bend(parts.path, query, orjson.loads(response.body))
        return Response(200, response.headers, orjson.dumps(body))


async def harvest(config, env, transport, world, *, now=None):
    state = StateStore(config.state.path)
    try:
        async with Harvester(config, tokens=env, transport=transport, state=state,
                             now=world.now if now is None else now) as harvester:
            summary = await harvester.run()
    finally:
        state.close()
    return harvester, summary


def truth(world, config):
    return expected_records(world, config.window.since, config.window.until)


@pytest.mark.slow
@pytest.mark.looptime
async def test_an_outage_mid_run_is_owed_and_the_next_run_gets_everything(tmp_path):
    """The API goes down after 150 calls (every answer an HTML 503): the run gives up what it
    cannot call, exit 3. It comes back: the next run, a new one, asks again what was owed
    (breakdowns of media whose plain call was done among them), exits 0, and the output is the
    ground truth record for record."""
    world = World(WorldSpec(now=NOW, seed=5, accounts=6, media_per_account=25))
    config, env = world_config(world, tmp_path / "out")
    transport = Outage(Simulator(world), after=150)
    first, summary = await harvest(config, env, transport, world)
    assert summary.exit_code == 3 and summary.failed
    state = StateStore(config.state.path)
    owed = state.owed(a.id for a in config.accounts)
    state.close()
    assert owed and any(o.kind == "unit" and "breakdown" in o.body.decode() for o in owed)

    transport.down = False
    second, summary = await harvest(config, env, transport, world)
    assert second.run_id != first.run_id
    assert summary.exit_code == 0, summary.render()
    assert summary.carried_over == {first.run_id: len([o for o in owed if o.kind == "unit"])}
    assert f"carried over from run {first.run_id}" in summary.render()
    assert_matches_truth(list(manifest.current_records(tmp_path / "out")), truth(world, config))
    state = StateStore(config.state.path)
    assert state.owed(a.id for a in config.accounts) == []
    state.close()


@pytest.mark.looptime
async def test_owed_work_the_api_no_longer_keeps_is_reported_once_and_forgotten(tmp_path):
    world = World(WorldSpec(now=NOW, seed=5, accounts=3, media_per_account=10, stories_per_account=4, few_viewers=0))
    config, env = world_config(world, tmp_path / "out")
    transport = Outage(Simulator(world), after=100)
    await harvest(config, env, transport, world)
    state = StateStore(config.state.path)
    stories = [o for o in state.owed(a.id for a in config.accounts) if o.expires_at < world.now + 86400]
    state.close()
    assert stories, "the outage should leave story units owed"
    transport.down = False
    _, summary = await harvest(config, env, transport, world, now=world.now + 86400)
    lost = [o for o in summary.failed if "no longer keeps it" in o.reason]
    assert len(lost) >= len(stories) and summary.exit_code == 3
    _, summary = await harvest(config, env, transport, world, now=world.now + 86400)
    assert not [o for o in summary.failed if "no longer keeps it" in o.reason]


@pytest.mark.looptime
async def test_a_media_id_listed_twice_is_planned_once(tmp_path):
    world = World(WorldSpec(now=NOW, seed=8, accounts=4, media_per_account=20))
    config, env = world_config(world, tmp_path / "out")
    first_page: dict[str, list] = {}

    def bend(path: str, query: dict, body: dict) -> dict:
        data = body["data"]
        account = path.split("/")[-2]
        if data and "after" not in query:
            first_page.setdefault(account, [dict(data[0])])
            data.insert(1, dict(data[0]))                       # twice on one page
            for other, items in first_page.items():             # and on another account's page
                if other != account:
                    data.extend(items)
        return body

    transport = Bent(Simulator(world), bend)
    harvester, summary = await harvest(config, env, transport, world)
    assert summary.exit_code == 0, summary.render()
    assert harvester.stats.get("media/duplicate") > 0
    records = list(manifest.current_records(tmp_path / "out"))
    assert_matches_truth(records, truth(world, config))


@pytest.mark.looptime
async def test_an_endless_or_circular_paging_chain_ends_and_is_reported(tmp_path):
    world = World(WorldSpec(now=NOW, seed=9, accounts=2, media_per_account=30, tokens=2))
    config, env = world_config(world, tmp_path / "out")
    circular = world.tokens[0].account_ids[0]

    def bend(path: str, query: dict, body: dict) -> dict:
        account = path.split("/")[-2]
        after = int(query["after"][2:], 16) if "after" in query else 0
        cursor = "0x1" if account == circular else f"0x{after + 1:x}"
        nxt = f"http://simulator/v25.0/{account}/media?limit=100&fields={query['fields']}&after={cursor}"
        return {"data": body["data"], "paging": {"cursors": {"after": cursor}, "next": nxt}}

    transport = Bent(Simulator(world), bend)
    harvester, summary = await harvest(config, env, transport, world)
    assert harvester.stats.get("paging/repeated") == 1
    assert harvester.stats.get("paging/bounded") == 1
    bounded = [o for o in summary.failed if "paging stopped" in o.reason]
    assert len(bounded) == 1 and summary.exit_code == 3
    assert transport.media_pages < 20


@pytest.mark.looptime
async def test_two_variables_holding_one_token_share_one_budget(tmp_path):
    """Slots are keyed by the token, not the variable: a token named twice gets one slot, and
    a tight limit is never exceeded for it."""
    world = World(WorldSpec(now=NOW, seed=4, accounts=4, media_per_account=3, tokens=1))
    config, env = world_config(world, tmp_path / "out", calls_per_window=40, window_seconds=60)
    token = next(iter(env.values()))
    raw_accounts = list(config.accounts)
    assert len(raw_accounts) == 4
    accounts = tuple(msgspec.structs.replace(a, token_env=f"NAME_{i}") for i, a in enumerate(raw_accounts))
    config = msgspec.structs.replace(config, accounts=accounts)
    env = {f"NAME_{i}": token for i in range(4)}
    simulator = Simulator(world, SimulatorSettings(calls_per_window=40, window_seconds=60))
    harvester, summary = await harvest(config, env, SimulatorTransport(simulator), world)
    assert summary.exit_code == 0, summary.render()
    assert len(harvester._scheduler.slots) == 1
    assert harvester.token_names == {next(iter(harvester._scheduler.slots)): "NAME_0, NAME_1, NAME_2, NAME_3"}
    assert simulator.counters.snapshot()["throttled"] == 0
    assert token not in repr(harvester._scheduler.slots)
