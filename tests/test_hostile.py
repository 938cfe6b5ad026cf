"""Hostile answers (issue 10, point 7): a small simulated world harvested in memory with each
kind of ``harvester.simulator.hostile``. The run finishes without a traceback, the spoiled units
fail with a reason (or the bad item is dropped), and every other record matches the ground truth."""

from __future__ import annotations

import logging

import msgspec
import pytest

from harvester import Harvester
from harvester.errors import DecodeError
from harvester.graph.client import GraphClient
from harvester.graph.wire import decode_media_page
from harvester.simulator import hostile
from harvester.simulator.cli import main as simulate
from harvester.simulator.pipeline import Simulator, SimulatorSettings
from harvester.simulator.transport import SimulatorTransport
from harvester.simulator.truth import expected_records
from harvester.simulator.world import World, WorldSpec

from support import NOW, assert_matches_truth, run_records, world_config

CAP = 1 << 20
"""[graph] max_response_bytes of these harvests: far above their answers, far below huge_body's."""


class Recording:
    """The in-memory transport, keeping every URL the client asked for."""

    def __init__(self, inner):
        self.inner, self.urls = inner, []

    async def get(self, url, headers):
        self.urls.append(url)
        return await self.inner.get(url, headers)

    async def close(self):
        await self.inner.close()


async def harvest(tmp_path, caplog, kind: str):
    caplog.set_level(logging.DEBUG)
    world = World(WorldSpec(now=NOW, seed=7, accounts=3, media_per_account=8))
    config, env = world_config(world, tmp_path / "out", days=2, graph={"max_response_bytes": CAP})
    simulator = Simulator(world, SimulatorSettings(hostile=(kind,)))
    simulator.hostile.huge_bytes = 2 * CAP
    transport = Recording(SimulatorTransport(simulator))
    async with Harvester.pinned(config, tokens=env, transport=transport, now=world.now) as harvester:
        summary = await harvester.run()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert simulator.hostile.hits[kind], f"{kind} changed no answer: the test proves nothing"
    truth = expected_records(world, config.window.since, config.window.until)
    return summary, run_records(tmp_path / "out", harvester.run_id), truth, transport.urls


def victims(truth, urls) -> set[str]:
    """Media with records in the truth whose answers the victim kinds spoil (accounts never are:
    the objects of the media insights calls made)."""
    media = {u.split("/")[-2] for u in urls if "/insights?" in u and "period=" not in u}
    return {key[0] for key in truth if hostile.is_victim(key[0]) and key[0] in media}


def assert_victims_failed(summary, spoiled: set[str]) -> None:
    assert spoiled, "no victim in this world"
    failed = {o.label.split()[1] for o in summary.failed}
    assert failed == spoiled, summary.failed
    assert all(o.label.startswith("media ") and o.reason for o in summary.failed)
    assert summary.exit_code == 3


@pytest.mark.looptime
@pytest.mark.parametrize("kind", ["duplicate_id", "deep_usage", "odd_timestamps", "bad_ids"])
async def test_kinds_that_cost_nothing_but_the_bad_items(tmp_path, caplog, kind):
    """A repeated id, a usage header nested 100,000 levels, odd or unreadable timestamps, ids that
    are not Graph ids: the bad items (or the header) are dropped and the harvest is the truth. A
    repeat is no failure (the media is planned once); an id that is not a Graph id is refused,
    reported with its reason (exit 3), and never goes into a URL."""
    summary, records, truth, urls = await harvest(tmp_path, caplog, kind)
    assert_matches_truth(records, truth)
    if kind == "bad_ids":
        assert summary.exit_code == 3 and summary.failed
        assert all("is not a Graph id" in o.reason for o in summary.failed)
    else:
        assert summary.exit_code == 0 and not summary.failed
    assert not [u for u in urls if "/me/" in u or "access_token" in u or "%" in u.split("?")[0]]


@pytest.mark.looptime
@pytest.mark.parametrize("kind", ["deep_unknown", "deep_error_data", "huge_body", "error_after_32"])
async def test_kinds_that_fail_the_spoiled_units(tmp_path, caplog, kind):
    """An unknown field or error_data nested 100,000 levels, a body past the cap, an error
    object after 32 bytes of a 200: every unit of a victim media fails with a reason; all the
    other records are the truth's."""
    summary, records, truth, urls = await harvest(tmp_path, caplog, kind)
    spoiled = victims(truth, urls)
    assert_matches_truth(records, {k: v for k, v in truth.items() if k[0] not in spoiled})
    assert_victims_failed(summary, spoiled)


@pytest.mark.looptime
async def test_an_object_value_on_a_media_metric_fails_that_unit_not_its_breakdowns(tmp_path, caplog):
    summary, records, truth, urls = await harvest(tmp_path, caplog, "object_value")
    spoiled = victims(truth, urls)
    lost = {k for k in truth if k[0] in spoiled and not k[4]}     # the plain unit's records
    assert_matches_truth(records, {k: v for k, v in truth.items() if k not in lost})
    assert not [r for r in records if r["dimension_keys"] == ["hour"] and r["object_type"] == "media"]
    assert_victims_failed(summary, spoiled)
    assert all(" by " not in o.label for o in summary.failed)


@pytest.mark.looptime
async def test_a_next_page_elsewhere_is_never_called(tmp_path, caplog):
    """Every page's paging.next leads to /me/accounts: the first pages hold every media of
    this world, so the harvest is the truth; each edge's next page fails, and /me is never asked."""
    summary, records, truth, urls = await harvest(tmp_path, caplog, "next_elsewhere")
    assert_matches_truth(records, truth)
    assert not [u for u in urls if "/me/" in u]
    assert {o.label.split()[2] for o in summary.failed} == {"/media", "/stories"}
    assert all(o.label.endswith("page 2") for o in summary.failed)
    assert summary.exit_code == 3


# --- at the simulator's level (the jobs' side of these is the lead's) --------------------------


def client_of(kinds: tuple[str, ...], **spec) -> tuple[GraphClient, World, Simulator]:
    world = World(WorldSpec(now=NOW, seed=7, accounts=2, **spec))
    simulator = Simulator(world, SimulatorSettings(hostile=kinds))
    return GraphClient(SimulatorTransport(simulator), "http://simulator", "v25.0"), world, simulator


@pytest.mark.looptime
async def test_endless_paging_never_ends_and_each_cursor_is_new():
    client, world, _ = client_of(("endless_paging",), media_per_account=5)
    token = world.tokens[0]
    edge = f"{token.account_ids[0]}/media"
    page = decode_media_page((await client.get(edge, {"fields": "id", "limit": "100"}, token.token)).body)
    first = [i.id for i in page.data]
    cursors = set()
    for _ in range(20):
        assert page.paging.next and page.data
        cursors.add(page.paging.cursors.after)
        page = decode_media_page((await client.follow(page.paging.next, token.token, path=edge)).body)
        assert [i.id for i in page.data] == first
    assert len(cursors) == 20


@pytest.mark.looptime
async def test_duplicate_id_repeats_an_item_and_the_decoder_keeps_it_for_the_jobs():
    client, world, _ = client_of(("duplicate_id",), media_per_account=5)
    token = world.tokens[0]
    reply = await client.get(f"{token.account_ids[0]}/media", {"fields": "id"}, token.token)
    page = decode_media_page(reply.body)
    assert len({i.id for i in page.data}) == len(page.data) - 1
    assert page.data[-1].id == page.data[0].id and page.rejected == []


@pytest.mark.looptime
async def test_next_elsewhere_is_refused_by_the_client_with_its_path():
    client, world, _ = client_of(("next_elsewhere",), media_per_account=5)
    token = world.tokens[0]
    edge = f"{token.account_ids[0]}/media"
    page = decode_media_page((await client.get(edge, {"fields": "id"}, token.token)).body)
    with pytest.raises(DecodeError) as info:
        await client.follow(page.paging.next, token.token, path=edge)
    assert str(info.value) == f"paging.next leads to /v25.0/me/accounts, not /{edge}"
    assert info.value.complete


def test_simulate_refuses_an_unknown_hostile_kind(capsys):
    assert simulate(["--hostile", "deep_usage,nope"]) == 2
    assert "nope is not a hostile kind; choose from duplicate_id" in capsys.readouterr().err


def test_settings_refuse_an_unknown_hostile_kind():
    with pytest.raises(ValueError, match="unknown hostile kind nope"):
        Simulator(World(WorldSpec(now=NOW, seed=1, accounts=1)), SimulatorSettings(hostile=("nope",)))


@pytest.mark.slow
async def test_hostile_answers_over_loopback_cost_only_the_spoiled_units(simulator_server, tmp_path, caplog):
    """The real transport, several kinds at once: the bad items dropped, the victims' units
    failed, the rest the truth."""
    caplog.set_level(logging.DEBUG)
    world = World(WorldSpec(now=NOW, seed=7, accounts=3, media_per_account=8))
    kinds = ("duplicate_id", "deep_usage", "odd_timestamps", "bad_ids", "deep_unknown", "error_after_32")
    server = await simulator_server(world, SimulatorSettings(hostile=kinds))
    config, env = world_config(world, tmp_path / "out", days=2, base_url=server.url,
                               scheduler={"max_attempts": 2})
    async with Harvester.pinned(config, tokens=env, now=world.now) as harvester:
        summary = await harvester.run()
    assert not [r for r in caplog.records if r.exc_info]
    truth = expected_records(world, config.window.since, config.window.until)
    hits = server.simulator.hostile.hits
    media = {p.strip("/").split("/")[1] for kind in ("deep_unknown", "error_after_32") for p in hits[kind]}
    spoiled = {key[0] for key in truth if key[0] in media}
    assert spoiled
    assert_matches_truth(run_records(tmp_path / "out", harvester.run_id),
                         {k: v for k, v in truth.items() if k[0] not in spoiled})
    refused = [o for o in summary.failed if "is not a Graph id" in o.reason]
    assert refused and all(" page " in o.label for o in refused)
    assert_victims_failed(msgspec.structs.replace(summary, failed=[o for o in summary.failed if o not in refused]),
                          spoiled)


@pytest.mark.looptime
async def test_duplicates_across_edges_and_accounts_list_one_media_twice():
    """For the jobs' side (each object planned once per run): the same media id on an account's
    /media and /stories, and on two accounts' /media."""
    client, world, _ = client_of(("duplicate_across_edges", "duplicate_across_accounts"), media_per_account=6)
    ids = {}
    for token in world.tokens:
        for edge in ("media", "stories"):
            reply = await client.get(f"{token.account_ids[0]}/{edge}", {"fields": "id,timestamp", "limit": "100"},
                                     token.token)
            ids[token.index, edge] = [i.id for i in decode_media_page(reply.body).data]
    assert ids[0, "media"][0] in ids[0, "stories"] and ids[1, "media"][0] in ids[1, "stories"]
    assert ids[1, "media"][0] == ids[0, "media"][-1] and ids[0, "media"][0] == ids[1, "media"][-1]


def test_the_simulator_banner_names_the_hostile_kinds():
    from harvester.simulator.cli import describe
    banner = describe(World(WorldSpec(now=NOW, seed=1, accounts=1)), "http://127.0.0.1:1",
                      SimulatorSettings(hostile=("bad_ids", "deep_usage")))
    assert "hostile bad_ids, deep_usage" in banner.splitlines()[1]
